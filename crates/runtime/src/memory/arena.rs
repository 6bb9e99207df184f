//! The arena: one byte buffer holding every planned intermediate value of a run.
//!
//! Values are stored in native byte order, one element after the other, row-major. The
//! reference kernels return owned tensors: a result is copied into its slot after the kernel
//! ran and a reader gets a tensor rebuilt from the slot's bytes. The fast kernels read and
//! write f32 slots in place ([`Arena::f32_slots`]). Either way the plan is load-bearing: a
//! plan that let two live values overlap would corrupt results.

use crate::RuntimeError;
use half::f16;
use lithe_ir::{DType, Tensor, TensorView};

/// One cache line of arena storage: the buffer is a vector of these, so it is 64-byte aligned.
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug)]
struct Line([u8; LINE]);

const LINE: usize = 64;

/// One growable 64-byte aligned buffer; it only grows, and only when a larger plan needs it.
#[derive(Debug, Default)]
pub(crate) struct Arena {
    lines: Vec<Line>,
}

impl Arena {
    /// Current size in bytes.
    pub fn len(&self) -> usize {
        self.lines.len() * LINE
    }

    /// Make the arena at least `len` bytes (one reallocation when it grows).
    pub fn reserve_len(&mut self, len: usize) {
        if len > self.len() {
            tracing::debug!(from = self.len(), to = len, "growing the arena");
            self.lines = vec![Line([0; LINE]); len.div_ceil(LINE)];
        }
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: `Line` is `repr(C)` around a byte array (size 64, no padding), so the vector's
        // lines are `len()` initialized bytes; the slice borrows `self`.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast::<u8>(), self.len()) }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        let len = self.len();
        // SAFETY: as in `bytes`, and the slice borrows `self` mutably, so it is unique.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<u8>(), len) }
    }

    /// In-place byte access for one kernel call: the slots `reads` (offset, bytes) shared and
    /// the slot `write` exclusive. Every slot must lie in the arena and `write` must not
    /// overlap any read (reads may overlap each other).
    pub fn byte_slots(
        &mut self,
        reads: &[(usize, usize)],
        write: (usize, usize),
    ) -> Result<(Vec<&[u8]>, &mut [u8]), RuntimeError> {
        let len = self.len();
        let check = |(offset, bytes): (usize, usize)| -> Result<std::ops::Range<usize>, RuntimeError> {
            let end =
                offset.checked_add(bytes).filter(|&e| e <= len).ok_or_else(|| out_of_arena(offset, bytes, len))?;
            Ok(offset..end)
        };
        let w = check(write)?;
        let mut read_ranges = Vec::with_capacity(reads.len());
        for &r in reads {
            let r = check(r)?;
            if r.start < w.end && w.start < r.end && !w.is_empty() && !r.is_empty() {
                return Err(RuntimeError::Internal(format!(
                    "arena slot {}..{} is read and written by the same kernel ({}..{})",
                    r.start, r.end, w.start, w.end
                )));
            }
            read_ranges.push(r);
        }
        let base = self.lines.as_mut_ptr().cast::<u8>();
        let reads = read_ranges
            .into_iter()
            .map(|r| {
                // SAFETY: `r` lies inside the buffer (checked) of initialized bytes. It does not
                // overlap the written slot, the only mutable borrow handed out, and all slices
                // borrow `self` mutably so nothing else touches the buffer meanwhile.
                unsafe { std::slice::from_raw_parts(base.add(r.start), r.len()) }
            })
            .collect();
        // SAFETY: as above; this is the only mutable slice and no read overlaps it.
        let out = unsafe { std::slice::from_raw_parts_mut(base.add(w.start), w.len()) };
        Ok((reads, out))
    }

    /// [`byte_slots`](Self::byte_slots) as f32: every slot must also start 4-byte aligned and
    /// hold whole f32s.
    pub fn f32_slots(
        &mut self,
        reads: &[(usize, usize)],
        write: (usize, usize),
    ) -> Result<(Vec<&[f32]>, &mut [f32]), RuntimeError> {
        let (reads, out) = self.byte_slots(reads, write)?;
        let reads = reads.into_iter().map(f32s).collect::<Result<Vec<_>, _>>()?;
        Ok((reads, f32s_mut(out)?))
    }

    /// Copy `t`'s elements to `offset`; the slot must be exactly `t.size_bytes()` long.
    pub fn write(&mut self, offset: usize, bytes: usize, t: &Tensor) -> Result<(), RuntimeError> {
        let dst = self.slot_mut(offset, bytes)?;
        if t.size_bytes() != bytes {
            return Err(RuntimeError::Internal(format!(
                "a {} B tensor does not fit its {bytes} B arena slot",
                t.size_bytes()
            )));
        }
        match t.data_view() {
            TensorView::F32(a) => encode(dst, a.iter(), |v| v.to_ne_bytes()),
            TensorView::F16(a) => encode(dst, a.iter(), |v| v.to_bits().to_ne_bytes()),
            TensorView::I8(a) => encode(dst, a.iter(), |v| v.to_ne_bytes()),
            TensorView::U8(a) => encode(dst, a.iter(), |v| [*v]),
            TensorView::I16(a) => encode(dst, a.iter(), |v| v.to_ne_bytes()),
            TensorView::I32(a) => encode(dst, a.iter(), |v| v.to_ne_bytes()),
            TensorView::I64(a) => encode(dst, a.iter(), |v| v.to_ne_bytes()),
            TensorView::Bool(a) => encode(dst, a.iter(), |v| [u8::from(*v)]),
        }
        Ok(())
    }

    /// The tensor of `dtype` and `shape` stored at `offset`.
    pub fn read(&self, offset: usize, dtype: DType, shape: &[usize]) -> Result<Tensor, RuntimeError> {
        let count = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
        let bytes = count.and_then(|n| n.checked_mul(dtype.size_bytes())).ok_or_else(|| {
            RuntimeError::Internal(format!("the size of a {dtype} tensor of shape {shape:?} overflows"))
        })?;
        let src = self.slot(offset, bytes)?;
        let built = match dtype {
            DType::F32 => Tensor::from_vec(shape, decode(src, f32::from_ne_bytes)),
            DType::F16 => Tensor::from_vec(shape, decode(src, |b| f16::from_bits(u16::from_ne_bytes(b)))),
            DType::I8 => Tensor::from_vec(shape, decode(src, i8::from_ne_bytes)),
            DType::U8 => Tensor::from_vec(shape, decode(src, |b: [u8; 1]| b[0])),
            DType::I16 => Tensor::from_vec(shape, decode(src, i16::from_ne_bytes)),
            DType::I32 => Tensor::from_vec(shape, decode(src, i32::from_ne_bytes)),
            DType::I64 => Tensor::from_vec(shape, decode(src, i64::from_ne_bytes)),
            DType::Bool => Tensor::from_vec(shape, decode(src, |b: [u8; 1]| b[0] != 0)),
        };
        built.map_err(|e| RuntimeError::Internal(format!("rebuilding a tensor from the arena: {e}")))
    }

    fn slot(&self, offset: usize, bytes: usize) -> Result<&[u8], RuntimeError> {
        let len = self.len();
        offset
            .checked_add(bytes)
            .and_then(|end| self.bytes().get(offset..end))
            .ok_or_else(|| out_of_arena(offset, bytes, len))
    }

    fn slot_mut(&mut self, offset: usize, bytes: usize) -> Result<&mut [u8], RuntimeError> {
        let len = self.len();
        offset
            .checked_add(bytes)
            .and_then(|end| self.bytes_mut().get_mut(offset..end))
            .ok_or_else(|| out_of_arena(offset, bytes, len))
    }
}

/// `bytes` as f32 elements; fails unless 4-byte aligned and a whole number of f32s.
pub(crate) fn f32s(bytes: &[u8]) -> Result<&[f32], RuntimeError> {
    check_f32s(bytes)?;
    // SAFETY: the pointer is 4-byte aligned and the length a multiple of 4 (checked), the
    // bytes are initialized, every bit pattern is a valid f32, and the result borrows `bytes`.
    Ok(unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<f32>(), bytes.len() / 4) })
}

/// `bytes` as mutable f32 elements (see [`f32s`]).
pub(crate) fn f32s_mut(bytes: &mut [u8]) -> Result<&mut [f32], RuntimeError> {
    check_f32s(bytes)?;
    // SAFETY: as in `f32s`; the result borrows `bytes` mutably, so it is unique.
    Ok(unsafe { std::slice::from_raw_parts_mut(bytes.as_mut_ptr().cast::<f32>(), bytes.len() / 4) })
}

fn check_f32s(bytes: &[u8]) -> Result<(), RuntimeError> {
    if bytes.as_ptr().align_offset(4) != 0 || !bytes.len().is_multiple_of(4) {
        return Err(RuntimeError::Internal(format!("a {} B arena slot is not an f32 slot", bytes.len())));
    }
    Ok(())
}

fn out_of_arena(offset: usize, bytes: usize, len: usize) -> RuntimeError {
    RuntimeError::Internal(format!("arena slot {offset}+{bytes} B is outside the {len} B arena"))
}

/// Write the elements of `values` one after the other into `dst`.
fn encode<'a, T: 'a, const N: usize>(dst: &mut [u8], values: impl Iterator<Item = &'a T>, f: impl Fn(&T) -> [u8; N]) {
    for (chunk, v) in dst.chunks_exact_mut(N).zip(values) {
        chunk.copy_from_slice(&f(v));
    }
}

/// The elements stored one after the other in `src`.
fn decode<T, const N: usize>(src: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
    src.chunks_exact(N)
        .map(|c| {
            let mut b = [0u8; N];
            b.copy_from_slice(c);
            f(b)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dtype_round_trips_at_an_offset() {
        let tensors = [
            Tensor::from_vec(&[2, 2], vec![1.5f32, -0.0, f32::INFINITY, 3.25]).unwrap(),
            Tensor::from_vec(&[3], vec![f16::from_f32(0.5), f16::from_f32(-2.0), f16::from_f32(65504.0)]).unwrap(),
            Tensor::from_vec(&[2], vec![-128i8, 127]).unwrap(),
            Tensor::from_vec(&[2], vec![0u8, 255]).unwrap(),
            Tensor::from_vec(&[2], vec![i16::MIN, 7]).unwrap(),
            Tensor::from_vec(&[1, 2], vec![i32::MAX, -1]).unwrap(),
            Tensor::from_vec(&[3], vec![i64::MIN, 0, 1 << 40]).unwrap(),
            Tensor::from_vec(&[4], vec![true, false, false, true]).unwrap(),
            Tensor::from_vec(&[0, 3], Vec::<f32>::new()).unwrap(),
        ];
        let mut arena = Arena::default();
        arena.reserve_len(64 * 20);
        for (i, t) in tensors.iter().enumerate() {
            arena.write(64 * i + 64, t.size_bytes(), t).unwrap();
        }
        for (i, t) in tensors.iter().enumerate() {
            assert_eq!(&arena.read(64 * i + 64, t.dtype(), t.shape()).unwrap(), t);
        }
    }

    #[test]
    fn slots_outside_the_arena_are_errors() {
        let mut arena = Arena::default();
        arena.reserve_len(16);
        assert_eq!(arena.len(), 64, "whole cache lines");
        let t = Tensor::from_vec(&[8], vec![0f32; 8]).unwrap();
        assert!(arena.write(48, 32, &t).is_err());
        assert!(arena.write(0, 16, &t).is_err());
        assert!(arena.read(usize::MAX, DType::F32, &[1]).is_err());
        assert!(arena.read(0, DType::I64, &[usize::MAX, 2]).is_err());
    }

    #[test]
    fn f32_slots_are_in_place_and_refuse_overlap() {
        let mut arena = Arena::default();
        arena.reserve_len(256);
        let t = Tensor::from_vec(&[4], vec![1.0f32, 2.0, 3.0, 4.0]).unwrap();
        arena.write(64, 16, &t).unwrap();
        {
            let (reads, out) = arena.f32_slots(&[(64, 16), (64, 8)], (128, 16)).unwrap();
            assert_eq!(reads[0], &[1.0, 2.0, 3.0, 4.0]);
            assert_eq!(reads[1], &[1.0, 2.0]);
            for (o, i) in out.iter_mut().zip(reads[0]) {
                *o = i * 10.0;
            }
        }
        assert_eq!(arena.read(128, DType::F32, &[4]).unwrap().to_f32_vec(), vec![10.0, 20.0, 30.0, 40.0]);
        assert!(arena.f32_slots(&[(64, 16)], (72, 16)).is_err(), "overlap");
        assert!(arena.f32_slots(&[], (250, 16)).is_err(), "outside");
        assert!(arena.f32_slots(&[(2, 4)], (128, 16)).is_err(), "misaligned");
        assert_eq!(arena.bytes().as_ptr() as usize % 64, 0);
    }
}
