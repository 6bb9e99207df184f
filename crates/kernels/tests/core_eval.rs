//! The `eval` dispatcher: input/output conventions, and a fuzz test that no operator panics.

use lithe_ir::op::{
    Activation, ArgAttrs, AutoPad, AvgPoolAttrs, ConvAttrs, ConvTransposeAttrs, CoordTransform, Epilogue, FcAttrs,
    GemmAttrs, NearestMode, PadMode, PoolAttrs, QConvAttrs, ReduceAttrs, ResizeAttrs, ResizeMode, SoftmaxAttrs,
};
use lithe_ir::{DType, Op, QuantParams, Tensor};
use lithe_kernels::KernelError;
use lithe_kernels::reference::{cast::cast, eval};
use proptest::prelude::*;
use std::collections::BTreeSet;

fn v1(v: Vec<f32>) -> Tensor {
    let n = v.len();
    Tensor::from_vec(&[n], v).unwrap()
}

#[test]
fn const_and_input() {
    let c = v1(vec![1., 2.]);
    assert_eq!(eval(&Op::Const(c.clone()), &[], 1).unwrap(), vec![c.clone()]);
    let e = eval(&Op::Input, &[], 1).unwrap_err();
    assert!(matches!(e, KernelError::Invalid { op: "Input", .. }), "{e}");
    assert!(eval(&Op::Const(c.clone()), &[Some(&c)], 1).is_err());
}

#[test]
fn missing_and_surplus_inputs() {
    let x = v1(vec![1., 2.]);
    let e = eval(&Op::Add, &[Some(&x), None], 1).unwrap_err();
    assert_eq!(e.to_string(), "Add: missing required input 1 (B)");
    let e = eval(&Op::Add, &[Some(&x)], 1).unwrap_err();
    assert_eq!(e.to_string(), "Add: missing required input 1 (B)");
    let e = eval(&Op::Relu, &[], 1).unwrap_err();
    assert_eq!(e.to_string(), "Relu: missing required input 0 (X)");
    let e = eval(&Op::Relu, &[Some(&x), Some(&x)], 1).unwrap_err();
    assert_eq!(e.to_string(), "Relu: takes at most 1 inputs, got 2");
    let e = eval(&Op::Where, &[None, Some(&x), Some(&x)], 1).unwrap_err();
    assert_eq!(e.to_string(), "Where: missing required input 0 (condition)");
    let e = eval(&Op::Concat { axis: 0 }, &[Some(&x), None], 1).unwrap_err();
    assert!(matches!(e, KernelError::Invalid { op: "Concat", .. }), "{e}");
    let e = eval(&Op::BatchNormalization { epsilon: 1e-5 }, &[Some(&x); 4], 1).unwrap_err();
    assert_eq!(e.to_string(), "BatchNormalization: missing required input 4 (input_var)");
}

#[test]
fn output_counts() {
    let x = v1(vec![1., -2.]);
    let e = eval(&Op::Relu, &[Some(&x)], 2).unwrap_err();
    assert_eq!(e.to_string(), "Relu: produces 1 output, 2 requested");
    assert!(eval(&Op::Relu, &[Some(&x)], 0).is_err());
    let out = eval(&Op::Dropout, &[Some(&x)], 1).unwrap();
    assert_eq!(out, vec![x.clone()]);
    let out = eval(&Op::Dropout, &[Some(&x), None, None], 2).unwrap();
    assert_eq!(out[0], x);
    assert_eq!(out[1], Tensor::from_vec(&[2], vec![true, true]).unwrap());
    assert!(eval(&Op::Dropout, &[Some(&x)], 3).is_err());
    let out = eval(&Op::Split { axis: 0, num_outputs: 2 }, &[Some(&x)], 2).unwrap();
    assert_eq!(out.len(), 2);
}

#[test]
fn identity_keeps_quantization() {
    let mut x = Tensor::from_vec(&[2], vec![3u8, 4]).unwrap();
    x.quant = Some(QuantParams { scale: vec![0.1], zero_point: vec![3], axis: None });
    assert_eq!(eval(&Op::Identity, &[Some(&x)], 1).unwrap(), vec![x.clone()]);
    assert_eq!(eval(&Op::Dropout, &[Some(&x)], 1).unwrap(), vec![x]);
}

// ---- Random operators on random inputs never panic. ----

/// Random attribute material for [`build_op`].
#[derive(Clone, Debug)]
struct Params {
    ints: Vec<i64>,
    flags: Vec<bool>,
    lists: Vec<Vec<usize>>,
    floats: Vec<f32>,
    dtype: DType,
    tensor: Tensor,
}

/// Number of operator kinds [`build_op`] knows (`Input`, `Const` and every IR operator).
const NUM_OPS: usize = 65;

fn build_op(k: usize, p: &Params) -> Op {
    let i = |n: usize| p.ints[n];
    let b = |n: usize| p.flags[n];
    let u = |n: usize| p.lists[n].clone();
    let f = |n: usize| p.floats[n];
    let pick = |n: usize, len: usize| (p.ints[n].unsigned_abs() as usize) % len;
    let auto_pad = [AutoPad::NotSet, AutoPad::Valid, AutoPad::SameUpper, AutoPad::SameLower][pick(0, 4)];
    let conv = ConvAttrs {
        kernel_shape: if b(0) { Some(u(0)) } else { None },
        strides: u(1),
        dilations: u(2),
        pads: u(3),
        auto_pad,
        group: i(1).unsigned_abs() as usize,
        epilogue: Default::default(),
    };
    let activation = [
        Activation::None,
        Activation::Relu,
        Activation::Clip { min: f(0), max: f(1) },
        Activation::LeakyRelu { alpha: f(0) },
        Activation::PRelu,
        Activation::HardSwish,
        Activation::HardSigmoid { alpha: f(0), beta: f(1) },
        Activation::Sigmoid,
        Activation::Tanh,
    ][pick(5, 9)];
    let pool = PoolAttrs { kernel_shape: u(0), strides: u(1), dilations: u(2), pads: u(3), auto_pad, ceil_mode: b(1) };
    let reduce = ReduceAttrs { keepdims: b(2), noop_with_empty_axes: b(3) };
    match k {
        0 => Op::Input,
        1 => Op::Const(p.tensor.clone()),
        2 => Op::Conv(ConvAttrs { epilogue: Epilogue { residual: b(4), activation }, ..conv.clone() }),
        3 => Op::ConvTranspose(ConvTransposeAttrs {
            conv,
            output_padding: u(4),
            output_shape: if b(4) { Some(u(5)) } else { None },
        }),
        4 => Op::BatchNormalization { epsilon: f(0) },
        5 => Op::Relu,
        6 => Op::Clip,
        7 => Op::LeakyRelu { alpha: f(0) },
        8 => Op::PRelu,
        9 => Op::Sigmoid,
        10 => Op::HardSigmoid { alpha: f(0), beta: f(1) },
        11 => Op::HardSwish,
        12 => Op::Tanh,
        13 => Op::Softmax(SoftmaxAttrs { axis: i(2), coerce_2d: b(0) }),
        14 => Op::Gemm(GemmAttrs { alpha: f(0), beta: f(1), trans_a: b(0), trans_b: b(1) }),
        15 => Op::MatMul,
        16 => Op::Add,
        17 => Op::Sub,
        18 => Op::Mul,
        19 => Op::Div,
        20 => Op::Pow,
        21 => Op::Sqrt,
        22 => Op::MaxPool(pool),
        23 => Op::AveragePool(AvgPoolAttrs { pool, count_include_pad: b(5) }),
        24 => Op::GlobalAveragePool,
        25 => Op::GlobalMaxPool,
        26 => Op::Concat { axis: i(2) },
        27 => Op::Reshape { allowzero: b(0) },
        28 => Op::Flatten { axis: i(2) },
        29 => Op::Transpose { perm: if b(0) { Some(u(0)) } else { None } },
        30 => Op::Squeeze,
        31 => Op::Unsqueeze,
        32 => Op::Pad { mode: [PadMode::Constant, PadMode::Reflect, PadMode::Edge, PadMode::Wrap][pick(3, 4)] },
        33 => Op::Resize(ResizeAttrs {
            mode: [ResizeMode::Nearest, ResizeMode::Linear, ResizeMode::Cubic][pick(3, 3)],
            coord: [
                CoordTransform::HalfPixel,
                CoordTransform::PytorchHalfPixel,
                CoordTransform::AlignCorners,
                CoordTransform::Asymmetric,
                CoordTransform::TfCropAndResize,
                CoordTransform::HalfPixelSymmetric,
            ][pick(4, 6)],
            nearest: [
                NearestMode::RoundPreferFloor,
                NearestMode::RoundPreferCeil,
                NearestMode::Floor,
                NearestMode::Ceil,
            ][pick(5, 4)],
            cubic_coeff_a: f(0),
            extrapolation_value: f(1),
            exclude_outside: b(0),
        }),
        34 => Op::Slice,
        35 => Op::Split { axis: i(2), num_outputs: pick(3, 4) },
        36 => Op::Gather { axis: i(2) },
        37 => Op::Shape { start: i(2), end: if b(0) { Some(i(3)) } else { None } },
        38 => Op::Identity,
        39 => Op::Dropout,
        40 => Op::ReduceMean(reduce),
        41 => Op::ReduceSum(reduce),
        42 => Op::ReduceMax(reduce),
        43 => Op::ArgMax(ArgAttrs { axis: i(2), keepdims: b(0), select_last_index: b(1) }),
        44 => Op::Cast { to: p.dtype },
        45 => Op::LayerNormalization { axis: i(2), epsilon: f(0) },
        46 => Op::ConstantOfShape { value: p.tensor.clone() },
        47 => Op::Expand,
        48 => Op::Range,
        49 => Op::Where,
        50 => Op::Equal,
        51 => Op::Erf,
        52 => Op::Exp,
        53 => Op::Log,
        54 => Op::Neg,
        55 => Op::Abs,
        56 => Op::Min,
        57 => Op::FullyConnected(FcAttrs { activation }),
        58 => Op::QuantizeLinear { axis: p.ints[0], to: p.dtype },
        59 => Op::DequantizeLinear { axis: p.ints[0] },
        60 => Op::DynamicQuantizeLinear,
        61 => Op::QConv(QConvAttrs {
            conv: ConvAttrs { epilogue: Epilogue { residual: b(4), activation }, ..conv.clone() },
            to: p.dtype,
        }),
        62 => Op::QAdd,
        63 => Op::QGlobalAveragePool,
        _ => Op::Max,
    }
}

fn any_dtype() -> impl Strategy<Value = DType> {
    prop::sample::select(DType::ALL.to_vec())
}

/// Element values that stress kernels: small integers (good indices and shapes), fractions,
/// extremes (which saturate to MIN/MAX in integer dtypes), infinities and NaN.
fn element() -> impl Strategy<Value = f32> {
    prop_oneof![
        8 => (-3i32..5).prop_map(|v| v as f32),
        2 => -2.5f32..2.5,
        1 => prop::sample::select(vec![1e30f32, -1e30, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 65536.]),
    ]
}

fn shape() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0usize..4, 0..5)
}

/// Build a tensor of `shape` from the first elements of `values`, converted to `dtype`.
fn make(shape: &[usize], values: &[f32], dtype: DType) -> Tensor {
    let n: usize = shape.iter().product();
    cast(&Tensor::from_vec(shape, values[..n].to_vec()).unwrap(), dtype)
}

fn tensor() -> impl Strategy<Value = Tensor> {
    (any_dtype(), shape(), prop::collection::vec(element(), 81)).prop_map(|(d, s, v)| make(&s, &v, d))
}

/// Up to 6 inputs; most share one dtype and many one shape, so that kernels get past their
/// argument checks often; some are absent.
fn inputs() -> impl Strategy<Value = Vec<Option<Tensor>>> {
    let one = (
        prop::bool::weighted(0.9),
        prop::bool::weighted(0.7),
        prop::bool::weighted(0.5),
        any_dtype(),
        shape(),
        prop::collection::vec(element(), 81),
    );
    (
        prop_oneof![2 => Just(DType::F32), 1 => Just(DType::I64), 1 => any_dtype()],
        shape(),
        prop::collection::vec(one, 6),
    )
        .prop_map(|(d0, s0, items)| {
            items
                .into_iter()
                .map(|(present, same_dtype, same_shape, d, s, v)| {
                    let dtype = if same_dtype { d0 } else { d };
                    let shape = if same_shape { &s0 } else { &s };
                    present.then(|| make(shape, &v, dtype))
                })
                .collect()
        })
}

/// The usual number of inputs of operator kind `k` (the largest, for optional inputs).
fn arity(k: usize) -> usize {
    match k {
        0 | 1 => 0,
        4 => 5,
        2 | 3 | 6 | 14 | 26 | 39 | 45 | 48 | 49 | 56 | 57 => 3,
        8 | 15..=20 | 27 | 30 | 31 | 35 | 36 | 40..=42 | 47 | 50 => 2,
        32 | 33 => 4,
        34 => 5,
        61 => 9,
        _ => 1,
    }
}

fn params() -> impl Strategy<Value = Params> {
    (
        prop::collection::vec(prop_oneof![8 => -4i64..5, 1 => Just(i64::MAX), 1 => Just(i64::MIN)], 6),
        prop::collection::vec(any::<bool>(), 6),
        prop::collection::vec(prop::collection::vec(0usize..4, 0..5), 6),
        prop::collection::vec(prop::sample::select(vec![0f32, 0.5, 1., -1., 1e-5, f32::NAN, 1e30]), 2),
        any_dtype(),
        tensor(),
    )
        .prop_map(|(ints, flags, lists, floats, dtype, tensor)| Params {
            ints,
            flags,
            lists,
            floats,
            dtype,
            tensor,
        })
}

#[test]
fn fuzz_covers_every_operator() {
    let p = Params {
        ints: vec![0; 6],
        flags: vec![false; 6],
        lists: vec![vec![]; 6],
        floats: vec![0.; 2],
        dtype: DType::F32,
        tensor: v1(vec![0.]),
    };
    let names: BTreeSet<&str> = (0..NUM_OPS).map(|k| build_op(k, &p).name()).collect();
    let mut want: BTreeSet<&str> = Op::all_names().into_iter().collect();
    want.insert("Input");
    want.insert("Const");
    assert_eq!(names, want);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn eval_never_panics(
        k in 0..NUM_OPS,
        p in params(),
        mut inputs in inputs(),
        index_i64 in any::<bool>(),
        natural_arity in prop::bool::weighted(0.85),
        count in 0usize..7,
        outputs in prop_oneof![4 => Just(None), 1 => (0usize..4).prop_map(Some)],
    ) {
        let op = build_op(k, &p);
        // Often give index-like inputs (shapes, axes, starts, ...) their usual dtype.
        let index_slots: &[usize] = match k {
            27 | 30 | 31 | 35 | 36 | 40..=42 | 47 => &[1],
            32 => &[1, 3],
            33 => &[3],
            34 => &[1, 2, 3, 4],
            46 => &[0],
            _ => &[],
        };
        if index_i64 {
            for &slot in index_slots {
                if let Some(Some(t)) = inputs.get_mut(slot) {
                    *t = cast(t, DType::I64);
                }
            }
        }
        let n = if natural_arity { arity(k) } else { count };
        let ins: Vec<Option<&Tensor>> = inputs.iter().take(n).map(Option::as_ref).collect();
        let num_outputs = outputs.unwrap_or(match &op {
            Op::Split { num_outputs, .. } => *num_outputs,
            Op::Dropout => 1 + usize::from(p.flags[5]),
            Op::DynamicQuantizeLinear => 3,
            _ => 1,
        });
        if let Ok(out) = eval(&op, &ins, num_outputs) {
            prop_assert_eq!(out.len(), num_outputs, "{:?}", op);
        }
    }
}
