//! The arena: one byte buffer holding every planned intermediate value of a run.
//!
//! The reference kernels return owned tensors, so a result is copied into its slot after the
//! kernel ran and a reader gets a tensor rebuilt from the slot's bytes (native byte order,
//! one element after the other, row-major). Kernels that read and write the arena directly
//! come with the fast kernels; until then the copies make the plan load-bearing: a plan that
//! let two live values overlap would corrupt results.

use crate::RuntimeError;
use half::f16;
use lithe_ir::{DType, Tensor, TensorView};

/// One growable byte buffer; it only grows, and only when a larger plan needs it.
#[derive(Debug, Default)]
pub(crate) struct Arena {
    bytes: Vec<u8>,
}

impl Arena {
    /// Current size in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Make the arena at least `len` bytes (one reallocation when it grows).
    pub fn reserve_len(&mut self, len: usize) {
        if len > self.bytes.len() {
            tracing::debug!(from = self.bytes.len(), to = len, "growing the arena");
            self.bytes = vec![0u8; len];
        }
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
        let len = self.bytes.len();
        offset
            .checked_add(bytes)
            .and_then(|end| self.bytes.get(offset..end))
            .ok_or_else(|| out_of_arena(offset, bytes, len))
    }

    fn slot_mut(&mut self, offset: usize, bytes: usize) -> Result<&mut [u8], RuntimeError> {
        let len = self.bytes.len();
        offset
            .checked_add(bytes)
            .and_then(|end| self.bytes.get_mut(offset..end))
            .ok_or_else(|| out_of_arena(offset, bytes, len))
    }
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
        let t = Tensor::from_vec(&[8], vec![0f32; 8]).unwrap();
        assert!(arena.write(0, 32, &t).is_err());
        assert!(arena.write(0, 16, &t).is_err());
        assert!(arena.read(usize::MAX, DType::F32, &[1]).is_err());
        assert!(arena.read(0, DType::I64, &[usize::MAX, 2]).is_err());
    }
}
