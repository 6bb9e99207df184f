//! Tensors read in place from shared bytes equal the same elements copied into an owned
//! tensor, and every unsafe precondition of the in-place view is checked up front.

use half::f16;
use lithe_ir::{DType, Element, SharedBytes, Tensor, shared_aligned_copy};
use proptest::prelude::*;

/// A shared buffer with `bytes` at `offset` from a 64-byte aligned start.
fn shared(bytes: &[u8], offset: usize) -> SharedBytes {
    let mut padded = vec![0u8; offset];
    padded.extend_from_slice(bytes);
    let s = shared_aligned_copy(&padded);
    assert_eq!((*s).as_ref().as_ptr() as usize % 64, 0);
    s
}

fn le_bytes<T: Element>(v: &[T], f: fn(T) -> Vec<u8>) -> Vec<u8> {
    v.iter().flat_map(|&x| f(x)).collect()
}

#[test]
fn in_place_equals_the_owned_copy() {
    let v: Vec<f32> = (0..24).map(|i| i as f32 * 0.5 - 3.0).collect();
    let owned = Tensor::from_vec(&[2, 3, 4], v.clone()).unwrap();
    let t =
        Tensor::in_place(DType::F32, &[2, 3, 4], shared(&le_bytes(&v, |x| x.to_le_bytes().to_vec()), 64), 64).unwrap();
    assert!(t.is_in_place());
    assert_eq!((t.dtype(), t.shape(), t.len(), t.size_bytes()), (DType::F32, &[2usize, 3, 4][..], 24, 96));
    assert_eq!(t.view_in_place::<f32>().unwrap(), owned.view::<f32>().unwrap().view());
    assert!(t.view_in_place::<i32>().is_none());
    assert!(t.is_in_place(), "view_in_place must not copy");
    // data() copies once and keeps the copy.
    assert_eq!(&t, &owned);
    assert!(!t.is_in_place());
    // A clone shares the bytes and starts without a copy.
    let c = t.clone();
    assert!(c.is_in_place());
    let mut m = c.clone();
    m.data_mut();
    assert!(!m.is_in_place());
    assert_eq!(m, owned);
    assert_eq!(c.reshaped(&[24]).unwrap().to_f32_vec(), v);
    assert_eq!(c.into_data(), owned.into_data());
}

#[test]
fn preconditions_are_errors() {
    let bytes = shared(&[0u8; 64], 0);
    // Out of bounds, overflowing shapes.
    assert!(Tensor::in_place(DType::F32, &[17], bytes.clone(), 0).is_err());
    assert!(Tensor::in_place(DType::F32, &[4], bytes.clone(), 60).is_err());
    assert!(Tensor::in_place(DType::F32, &[usize::MAX, 2], bytes.clone(), 0).is_err());
    assert!(Tensor::in_place(DType::F32, &[1], bytes.clone(), usize::MAX).is_err());
    // Misaligned for the element type.
    let e = Tensor::in_place(DType::F32, &[2], bytes.clone(), 2).unwrap_err().to_string();
    assert!(e.contains("aligned"), "{e}");
    assert!(Tensor::in_place(DType::I64, &[2], bytes.clone(), 4).is_err());
    assert!(Tensor::in_place(DType::U8, &[3], bytes.clone(), 3).is_ok());
    // Bool bytes would need checking: refused.
    assert!(Tensor::in_place(DType::Bool, &[2], bytes.clone(), 0).is_err());
    // Empty tensors are fine.
    let t = Tensor::in_place(DType::F32, &[0, 3], bytes, 64).unwrap();
    assert_eq!(t.len(), 0);
}

fn check<T: Element>(v: Vec<T>, to_le: fn(T) -> Vec<u8>, shape: &[usize], offset: usize) {
    let owned = Tensor::from_vec(shape, v.clone()).unwrap();
    let t = Tensor::in_place(T::DTYPE, shape, shared(&le_bytes(&v, to_le), offset), offset).unwrap();
    assert_eq!(t.view_in_place::<T>().unwrap(), owned.view::<T>().unwrap().view());
    assert_eq!(t, owned);
}

proptest! {
    #[test]
    fn every_dtype_reads_back(dims in prop::collection::vec(0usize..5, 0..4), seed in any::<u64>(), slot in 0usize..4) {
        let n: usize = dims.iter().product();
        let offset = slot * 64;
        let ints: Vec<i64> = (0..n as u64).map(|i| (seed.wrapping_mul(i + 1) >> 3) as i64).collect();
        check(ints.iter().map(|&x| f32::from_bits(x as u32 & 0x7f7f_ffff)).collect(), |x| x.to_le_bytes().to_vec(), &dims, offset);
        check(ints.iter().map(|&x| f16::from_bits(x as u16 & 0x7bff)).collect(), |x| x.to_bits().to_le_bytes().to_vec(), &dims, offset);
        check(ints.iter().map(|&x| x as i8).collect(), |x| x.to_le_bytes().to_vec(), &dims, offset);
        check(ints.iter().map(|&x| x as u8).collect(), |x| x.to_le_bytes().to_vec(), &dims, offset);
        check(ints.iter().map(|&x| x as i16).collect(), |x| x.to_le_bytes().to_vec(), &dims, offset);
        check(ints.iter().map(|&x| x as i32).collect(), |x| x.to_le_bytes().to_vec(), &dims, offset);
        check(ints.clone(), |x| x.to_le_bytes().to_vec(), &dims, offset);
    }
}

#[test]
fn data_view_and_expect_view_do_not_copy() {
    let v: Vec<i32> = (0..6).map(|i| i * 7 - 20).collect();
    let owned = Tensor::from_vec(&[2, 3], v.clone()).unwrap();
    let t = Tensor::in_place(DType::I32, &[2, 3], shared(&le_bytes(&v, |x| x.to_le_bytes().to_vec()), 0), 0).unwrap();
    assert_eq!(t.data_view(), owned.data_view());
    assert_eq!(t.data_view(), owned.data().view());
    assert!(matches!(t.data_view(), lithe_ir::TensorView::I32(a) if a.shape() == [2, 3]));
    let n = lithe_ir::dispatch_view!(t.data_view(), a => a.len());
    assert_eq!(n, 6);
    assert_eq!(t.expect_view::<i32>("x").unwrap(), owned.view::<i32>().unwrap().view());
    let e = t.expect_view::<f32>("weight").unwrap_err().to_string();
    assert!(e.contains("weight"), "{e}");
    assert_eq!(t.to_i64_vec(), owned.to_i64_vec());
    assert_eq!(t.to_f32_vec(), owned.to_f32_vec());
    assert_eq!(t.reshaped(&[3, 2]).unwrap(), owned.reshaped(&[3, 2]).unwrap());
    assert!(t.is_in_place(), "views and conversions must not copy");
    // Bool tensors are always owned and view as such.
    let b = Tensor::from_vec(&[2], vec![true, false]).unwrap();
    assert!(matches!(b.data_view(), lithe_ir::TensorView::Bool(a) if a.iter().copied().eq([true, false])));
}
