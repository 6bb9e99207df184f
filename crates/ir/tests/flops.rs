//! FLOPs counts.

mod common;
use common::sh;
use lithe_ir::op::{ConvAttrs, ConvTransposeAttrs, GemmAttrs, PoolAttrs, ResizeAttrs, ResizeMode, flops};
use lithe_ir::{DType, Op, TypeInfo};

fn t(s: &str) -> TypeInfo {
    TypeInfo { dtype: DType::F32, shape: Some(sh(s)) }
}

fn f(op: &Op, ins: &[Option<&str>], outs: &[&str]) -> Option<u64> {
    let ins: Vec<Option<TypeInfo>> = ins.iter().map(|s| s.map(t)).collect();
    let ins: Vec<Option<&TypeInfo>> = ins.iter().map(Option::as_ref).collect();
    let outs: Vec<TypeInfo> = outs.iter().map(|s| t(s)).collect();
    let outs: Vec<&TypeInfo> = outs.iter().collect();
    flops(op, &ins, &outs)
}

#[test]
fn conv_flops() {
    let op = Op::Conv(ConvAttrs { strides: vec![2, 2], pads: vec![1; 4], group: 1, ..Default::default() });
    // 1*32*112*112 outputs, 3*3*3 MACs each, 2 FLOPs per MAC, plus one bias add per output.
    let out = 32 * 112 * 112;
    assert_eq!(f(&op, &[Some("1,3,224,224"), Some("32,3,3,3")], &["1,32,112,112"]), Some(2 * out * 27));
    assert_eq!(
        f(&op, &[Some("1,3,224,224"), Some("32,3,3,3"), Some("32")], &["1,32,112,112"]),
        Some(2 * out * 27 + out)
    );
    assert_eq!(2 * out * 27 + out, 22_077_440);
    // Depthwise: each output reads only its own channel.
    let dw = Op::Conv(ConvAttrs { pads: vec![1; 4], group: 32, ..Default::default() });
    assert_eq!(f(&dw, &[Some("1,32,112,112"), Some("32,1,3,3")], &["1,32,112,112"]), Some(2 * out * 9));
    assert_eq!(f(&op, &[Some("N,3,224,224"), Some("32,3,3,3")], &["N,32,112,112"]), None);

    let ct = Op::ConvTranspose(ConvTransposeAttrs::default());
    assert_eq!(f(&ct, &[Some("1,16,14,14"), Some("16,8,3,3")], &["1,8,16,16"]), Some(2 * 16 * 14 * 14 * 8 * 9));
}

#[test]
fn matrix_flops() {
    let g = Op::Gemm(GemmAttrs { trans_b: true, ..Default::default() });
    assert_eq!(f(&g, &[Some("1,512"), Some("1000,512"), Some("1000")], &["1,1000"]), Some(2 * 512 * 1000 + 1000));
    let g = Op::Gemm(GemmAttrs { trans_a: true, ..Default::default() });
    assert_eq!(f(&g, &[Some("64,8"), Some("64,10")], &["8,10"]), Some(2 * 8 * 10 * 64));
    assert_eq!(f(&Op::MatMul, &[Some("2,3,4"), Some("4,5")], &["2,3,5"]), Some(2 * 30 * 4));
}

#[test]
fn elementwise_pool_norm_flops() {
    assert_eq!(f(&Op::Add, &[Some("2,3"), Some("3")], &["2,3"]), Some(6));
    assert_eq!(f(&Op::Relu, &[Some("2,3")], &["2,3"]), Some(6));
    assert_eq!(f(&Op::Sigmoid, &[Some("2,3")], &["2,3"]), Some(24));
    assert_eq!(f(&Op::Max, &[Some("4"), Some("4"), Some("4")], &["4"]), Some(8));
    let mp = Op::MaxPool(PoolAttrs { kernel_shape: vec![3, 3], strides: vec![2, 2], ..Default::default() });
    assert_eq!(f(&mp, &[Some("1,64,112,112")], &["1,64,55,55"]), Some(64 * 55 * 55 * 9));
    assert_eq!(f(&Op::GlobalAveragePool, &[Some("1,512,7,7")], &["1,512,1,1"]), Some(512 * 49));
    assert_eq!(
        f(
            &Op::BatchNormalization { epsilon: 1e-5 },
            &[Some("1,8,4,4"), Some("8"), Some("8"), Some("8"), Some("8")],
            &["1,8,4,4"]
        ),
        Some(256)
    );
    let rm = Op::ReduceMean(Default::default());
    assert_eq!(f(&rm, &[Some("2,10")], &["2,1"]), Some(22));
    let lin = Op::Resize(ResizeAttrs { mode: ResizeMode::Linear, ..Default::default() });
    // Two resized axes: 4 taps, 2 FLOPs per tap, per output element.
    assert_eq!(f(&lin, &[Some("1,3,8,8")], &["1,3,16,16"]), Some(768 * 8));
    assert_eq!(f(&Op::Resize(ResizeAttrs::default()), &[Some("1,3,8,8")], &["1,3,16,16"]), Some(0));
}

#[test]
fn data_movement_is_free_and_unknown_is_none() {
    assert_eq!(f(&Op::Reshape { allowzero: false }, &[Some("N,3"), Some("2")], &["?,?"]), Some(0));
    assert_eq!(f(&Op::Transpose { perm: None }, &[None], &[]), Some(0));
    assert_eq!(f(&Op::Add, &[Some("N,3"), Some("3")], &["N,3"]), None);
    assert_eq!(f(&Op::MatMul, &[Some("2,?"), Some("4,5")], &["2,5"]), None);
    // Absurd shapes saturate instead of overflowing.
    let huge = format!("{},{}", u32::MAX, u32::MAX);
    assert_eq!(f(&Op::MatMul, &[Some(&huge), Some(&huge)], &[&huge]), Some(u64::MAX));
}
