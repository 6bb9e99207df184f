//! Reference kernels read their inputs without copying them: a model whose weights are read in
//! place from shared bytes (a memory-mapped `.nb`) runs without ever copying the weights.
//!
//! Every test runs a kernel twice, once on owned tensors and once with some inputs replaced by
//! the same elements read in place, and checks that (1) the outputs are bit-identical and (2)
//! every in-place input is still in place afterwards (no copy was made).

use half::f16;
use lithe_ir::op::{
    Activation, ArgAttrs, AvgPoolAttrs, ConvAttrs, ConvTransposeAttrs, Epilogue, FcAttrs, GemmAttrs, PadMode,
    PoolAttrs, ReduceAttrs, ResizeAttrs, ResizeMode, SoftmaxAttrs,
};
use lithe_ir::{DType, Element, Op, QuantParams, SharedBytes, Tensor, dispatch_view};
use lithe_kernels::reference::eval;
use std::sync::Arc;

/// Bytes whose first byte sits at a 64-byte aligned address (a window into a larger `Vec`).
struct Aligned {
    buf: Vec<u8>,
    start: usize,
    len: usize,
}

impl AsRef<[u8]> for Aligned {
    fn as_ref(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }
}

/// A shared buffer with `bytes` at `offset` from a 64-byte aligned start.
fn shared(bytes: &[u8], offset: usize) -> SharedBytes {
    let len = offset + bytes.len();
    let mut buf = vec![0u8; len + 64];
    let start = (64 - buf.as_ptr() as usize % 64) % 64;
    buf[start + offset..start + len].copy_from_slice(bytes);
    Arc::new(Aligned { buf, start, len })
}

/// Element types with a little-endian byte encoding.
trait Le: Element {
    fn le(self) -> Vec<u8>;
}

macro_rules! le {
    ($($t:ty),*) => {$(
        impl Le for $t {
            fn le(self) -> Vec<u8> {
                self.to_le_bytes().to_vec()
            }
        }
    )*};
}

le!(f32, f16, i8, u8, i16, i32, i64);

/// One kernel input: the tensor given to the owned run and the one given to the in-place run.
#[derive(Clone)]
struct Arg {
    owned: Tensor,
    run: Tensor,
    /// `run` reads its elements in place.
    in_place: bool,
}

/// The same owned tensor in both runs.
fn own<T: Element>(shape: &[usize], v: Vec<T>) -> Arg {
    let t = Tensor::from_vec(shape, v).unwrap();
    Arg { owned: t.clone(), run: t, in_place: false }
}

/// An owned tensor, and the same elements read in place (at a 64-byte offset in their buffer).
fn inp<T: Le>(shape: &[usize], v: Vec<T>) -> Arg {
    let owned = Tensor::from_vec(shape, v.clone()).unwrap();
    let bytes: Vec<u8> = v.iter().flat_map(|&x| x.le()).collect();
    let run = Tensor::in_place(T::DTYPE, shape, shared(&bytes, 64), 64).unwrap();
    assert!(run.is_in_place());
    Arg { owned, run, in_place: true }
}

/// Deterministic values in `[-2, 2)` (multiples of 1/64, so no two runs differ by rounding).
fn vals(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 33) % 256) as f32 / 64.0 - 2.0
        })
        .collect()
}

fn positive(n: usize, seed: u64) -> Vec<f32> {
    vals(n, seed).into_iter().map(|v| v.abs() + 0.25).collect()
}

fn ints<T: TryFrom<i64>>(n: usize, seed: u64) -> Vec<T> {
    vals(n, seed).into_iter().map(|v| T::try_from((v * 8.0) as i64).ok().unwrap()).collect()
}

/// Dtype, shape, quantization and the exact bits of every element.
fn bits(t: &Tensor) -> (DType, Vec<usize>, Option<QuantParams>, Vec<u64>) {
    let v: Vec<u64> = dispatch_view!(&t.data_view(), a => a.iter().map(|x| x.to_f64().to_bits()).collect());
    (t.dtype(), t.shape().to_vec(), t.quant.clone(), v)
}

/// Run `op` on the owned and on the in-place inputs (`None`: absent optional input) and compare.
fn check_ops(owned_op: &Op, run_op: &Op, args: &[Option<Arg>], num_outputs: usize) {
    let owned: Vec<Option<&Tensor>> = args.iter().map(|a| a.as_ref().map(|a| &a.owned)).collect();
    let run: Vec<Option<&Tensor>> = args.iter().map(|a| a.as_ref().map(|a| &a.run)).collect();
    let want = eval(owned_op, &owned, num_outputs).unwrap_or_else(|e| panic!("{}: {e}", owned_op.name()));
    let got = eval(run_op, &run, num_outputs).unwrap_or_else(|e| panic!("{} in place: {e}", run_op.name()));
    assert_eq!(want.len(), got.len(), "{}", owned_op.name());
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        assert_eq!(bits(w), bits(g), "{} output {i}", owned_op.name());
    }
    let mut any = false;
    for (i, a) in args.iter().enumerate() {
        if let Some(a) = a.as_ref().filter(|a| a.in_place) {
            any = true;
            assert!(a.run.is_in_place(), "{}: input {i} was copied", owned_op.name());
        }
    }
    assert!(any || args.is_empty(), "{}: no input was in place", owned_op.name());
}

fn check(op: &Op, args: &[Option<Arg>], num_outputs: usize) {
    check_ops(op, op, args, num_outputs);
}

fn f32s(shape: &[usize], seed: u64) -> Vec<f32> {
    vals(shape.iter().product(), seed)
}

#[test]
fn conv_weights_and_bias() {
    let x = [1, 4, 6, 6];
    let attrs = ConvAttrs { pads: vec![1, 1, 1, 1], group: 2, ..ConvAttrs::default() };
    let w = inp(&[8, 2, 3, 3], f32s(&[8, 2, 3, 3], 2));
    let b = inp(&[8], f32s(&[8], 3));
    check(&Op::Conv(attrs.clone()), &[Some(own(&x, f32s(&x, 1))), Some(w.clone()), Some(b.clone())], 1);
    // Input in place too, and no bias.
    check(&Op::Conv(attrs.clone()), &[Some(inp(&x, f32s(&x, 1))), Some(w.clone())], 1);
    // Strided, with a fused residual (in place) and ReLU.
    let fused = ConvAttrs {
        strides: vec![2, 2],
        epilogue: Epilogue { residual: true, activation: Activation::Relu },
        ..attrs.clone()
    };
    let y = [1, 8, 3, 3];
    check(
        &Op::Conv(fused),
        &[Some(own(&x, f32s(&x, 1))), Some(w.clone()), Some(b.clone()), Some(inp(&y, f32s(&y, 4)))],
        1,
    );
    // A fused PRelu with its slope in place.
    let prelu = ConvAttrs { epilogue: Epilogue { residual: false, activation: Activation::PRelu }, ..attrs };
    check(
        &Op::Conv(prelu),
        &[Some(own(&x, f32s(&x, 1))), Some(w), Some(b), None, Some(inp(&[8, 1, 1], f32s(&[8, 1, 1], 5)))],
        1,
    );
}

#[test]
fn conv_transpose_weights_and_bias() {
    let x = [1, 4, 3, 3];
    let attrs = ConvTransposeAttrs {
        conv: ConvAttrs { strides: vec![2, 2], pads: vec![1, 1, 1, 1], ..ConvAttrs::default() },
        output_padding: vec![1, 1],
        output_shape: None,
    };
    check(
        &Op::ConvTranspose(attrs),
        &[Some(own(&x, f32s(&x, 1))), Some(inp(&[4, 3, 3, 3], f32s(&[4, 3, 3, 3], 2))), Some(inp(&[3], f32s(&[3], 3)))],
        1,
    );
}

#[test]
fn gemm_matmul_fully_connected_weights() {
    let gemm = GemmAttrs { alpha: 0.5, beta: 2.0, trans_a: false, trans_b: true };
    let a = own(&[3, 5], f32s(&[3, 5], 1));
    check(
        &Op::Gemm(gemm.clone()),
        &[Some(a.clone()), Some(inp(&[4, 5], f32s(&[4, 5], 2))), Some(inp(&[4], f32s(&[4], 3)))],
        1,
    );
    let gemm_t = GemmAttrs { trans_a: true, trans_b: false, ..gemm };
    check(
        &Op::Gemm(gemm_t),
        &[
            Some(inp(&[5, 3], f32s(&[5, 3], 4))),
            Some(inp(&[5, 4], f32s(&[5, 4], 5))),
            Some(inp(&[3, 1], f32s(&[3, 1], 6))),
        ],
        1,
    );

    let x = [2, 3, 5];
    check(&Op::MatMul, &[Some(own(&x, f32s(&x, 1))), Some(inp(&[5, 4], f32s(&[5, 4], 2)))], 1);
    check(&Op::MatMul, &[Some(inp(&[5], f32s(&[5], 7))), Some(inp(&[2, 5, 4], f32s(&[2, 5, 4], 8)))], 1);
    let h = |s: &[usize], seed| f32s(s, seed).into_iter().map(f16::from_f32).collect::<Vec<_>>();
    check(&Op::MatMul, &[Some(own(&x, h(&x, 1))), Some(inp(&[5, 4], h(&[5, 4], 2)))], 1);
    check(&Op::MatMul, &[Some(own(&x, ints::<i32>(30, 1))), Some(inp(&[5, 4], ints::<i32>(20, 2)))], 1);
    check(&Op::MatMul, &[Some(own(&x, ints::<i64>(30, 1))), Some(inp(&[5, 4], ints::<i64>(20, 2)))], 1);

    let fc = FcAttrs { activation: Activation::LeakyRelu { alpha: 0.1 } };
    check(
        &Op::FullyConnected(fc),
        &[Some(own(&x, f32s(&x, 1))), Some(inp(&[5, 4], f32s(&[5, 4], 2))), Some(inp(&[4], f32s(&[4], 3)))],
        1,
    );
    let fc = FcAttrs { activation: Activation::Clip { min: -0.5, max: 0.75 } };
    check(&Op::FullyConnected(fc), &[Some(own(&x, f32s(&x, 1))), Some(inp(&[5, 4], f32s(&[5, 4], 2)))], 1);
}

#[test]
fn batch_and_layer_norm_parameters() {
    let x = [2, 3, 4, 4];
    let c = |seed| inp(&[3], f32s(&[3], seed));
    check(
        &Op::BatchNormalization { epsilon: 1e-5 },
        &[Some(own(&x, f32s(&x, 1))), Some(c(2)), Some(c(3)), Some(c(4)), Some(inp(&[3], positive(3, 5)))],
        1,
    );
    check(
        &Op::LayerNormalization { axis: -1, epsilon: 1e-5 },
        &[Some(own(&x, f32s(&x, 1))), Some(inp(&[4], f32s(&[4], 2))), Some(inp(&[4], f32s(&[4], 3)))],
        3,
    );
}

#[test]
fn elementwise_second_operands() {
    let x = [2, 3, 4];
    for op in [Op::Add, Op::Sub, Op::Mul, Op::Div, Op::Pow, Op::Equal, Op::PRelu] {
        let b = if matches!(op, Op::Div | Op::Pow) { positive(3, 2) } else { f32s(&[3, 1], 2) };
        check(&op, &[Some(own(&x, f32s(&x, 1))), Some(inp(&[3, 1], b))], 1);
    }
    for op in [Op::Add, Op::Mul] {
        check(&op, &[Some(own(&x, ints::<i8>(24, 1))), Some(inp(&[4], ints::<i8>(4, 2)))], 1);
        check(&op, &[Some(own(&x, ints::<i16>(24, 1))), Some(inp(&[4], ints::<i16>(4, 2)))], 1);
        check(&op, &[Some(own(&x, ints::<i32>(24, 1))), Some(inp(&[4], ints::<i32>(4, 2)))], 1);
        check(&op, &[Some(inp(&x, ints::<i64>(24, 1))), Some(inp(&[4], ints::<i64>(4, 2)))], 1);
        let u: Vec<u8> = (0..4).collect();
        check(&op, &[Some(own(&[4], u.clone())), Some(inp(&[4], u))], 1);
        let h: Vec<f16> = f32s(&[4], 2).into_iter().map(f16::from_f32).collect();
        check(&op, &[Some(own(&[3, 4], vec![f16::ONE; 12])), Some(inp(&[4], h))], 1);
    }
    // Pow with an integer exponent of another dtype.
    check(&Op::Pow, &[Some(own(&x, f32s(&x, 1))), Some(inp(&[4], vec![0i64, 1, 2, 3]))], 1);
    for op in [Op::Min, Op::Max] {
        check(
            &op,
            &[Some(inp(&x, f32s(&x, 1))), Some(own(&[4], f32s(&[4], 2))), Some(inp(&[3, 1], f32s(&[3, 1], 3)))],
            1,
        );
    }
    let cond: Vec<bool> = (0..24).map(|i| i % 3 == 0).collect();
    check(&Op::Where, &[Some(own(&x, cond)), Some(inp(&x, f32s(&x, 1))), Some(inp(&[4], f32s(&[4], 2)))], 1);
    check(&Op::Clip, &[Some(own(&x, f32s(&x, 1))), Some(inp(&[], vec![-0.5f32])), Some(inp(&[1], vec![1.0f32]))], 1);
}

#[test]
fn gather_indices_and_data() {
    let d = [5, 3];
    check(&Op::Gather { axis: 0 }, &[Some(inp(&d, f32s(&d, 1))), Some(inp(&[2, 2], vec![4i64, 0, -1, 2]))], 1);
    check(&Op::Gather { axis: 1 }, &[Some(inp(&d, f32s(&d, 1))), Some(inp(&[2], vec![2i32, 0]))], 1);
    check(&Op::Gather { axis: 0 }, &[Some(own(&d, ints::<i64>(15, 1))), Some(inp(&[], vec![3i64]))], 1);
    // An embedding table in place, indexed by an owned tensor.
    check(&Op::Gather { axis: 0 }, &[Some(inp(&[10, 4], f32s(&[10, 4], 2))), Some(own(&[3], vec![9i64, 1, 1]))], 1);
}

#[test]
fn concat_inputs() {
    let s = |n: usize| [2, n, 3];
    check(
        &Op::Concat { axis: 1 },
        &[
            Some(inp(&s(1), f32s(&s(1), 1))),
            Some(own(&s(2), f32s(&s(2), 2))),
            Some(inp(&s(3), f32s(&s(3), 3))),
            Some(inp(&s(0), Vec::<f32>::new())),
        ],
        1,
    );
    check(&Op::Concat { axis: -1 }, &[Some(inp(&[2], vec![1i64, 2])), Some(inp(&[3], vec![3i64, 4, 5]))], 1);
}

#[test]
fn unary_ops_on_in_place_inputs() {
    let x = [1, 2, 4, 4];
    let ops = [
        Op::Relu,
        Op::Sigmoid,
        Op::Tanh,
        Op::HardSwish,
        Op::HardSigmoid { alpha: 0.2, beta: 0.5 },
        Op::LeakyRelu { alpha: 0.1 },
        Op::Exp,
        Op::Erf,
        Op::Abs,
        Op::Neg,
        Op::Identity,
        Op::Softmax(SoftmaxAttrs { axis: -1, coerce_2d: false }),
        Op::Transpose { perm: Some(vec![0, 3, 1, 2]) },
        Op::Transpose { perm: None },
        Op::Flatten { axis: 2 },
        Op::Shape { start: 1, end: None },
        Op::Cast { to: DType::F16 },
        Op::Cast { to: DType::I32 },
        Op::Cast { to: DType::Bool },
        Op::GlobalAveragePool,
        Op::GlobalMaxPool,
        Op::MaxPool(PoolAttrs { kernel_shape: vec![2, 2], strides: vec![2, 2], ..PoolAttrs::default() }),
        Op::AveragePool(AvgPoolAttrs {
            pool: PoolAttrs { kernel_shape: vec![3, 3], pads: vec![1, 1, 1, 1], ..PoolAttrs::default() },
            count_include_pad: false,
        }),
        Op::ArgMax(ArgAttrs { axis: 1, keepdims: false, select_last_index: true }),
        Op::ReduceMean(ReduceAttrs::default()),
    ];
    for op in &ops {
        check(op, &[Some(inp(&x, f32s(&x, 1)))], 1);
    }
    let p = [2, 3];
    check(&Op::Sqrt, &[Some(inp(&p, positive(6, 1)))], 1);
    check(&Op::Log, &[Some(inp(&p, positive(6, 2)))], 1);
    check(&Op::Relu, &[Some(inp(&p, ints::<i16>(6, 3)))], 1);
    check(&Op::Dropout, &[Some(inp(&p, f32s(&p, 4)))], 2);
    let c = Op::Const(inp(&p, f32s(&p, 5)).run);
    check(&c, &[], 1);
    assert!(matches!(&c, Op::Const(t) if t.is_in_place()), "Const was copied");
}

#[test]
fn shape_and_index_inputs_in_place() {
    let x = [2, 3, 4];
    let data = || inp(&x, f32s(&x, 1));
    let i64s = |v: Vec<i64>| inp(&[v.len()], v);
    check(&Op::Reshape { allowzero: false }, &[Some(data()), Some(i64s(vec![0, -1, 2]))], 1);
    check(&Op::Squeeze, &[Some(inp(&[2, 1, 3], f32s(&[2, 1, 3], 2))), Some(i64s(vec![1]))], 1);
    check(&Op::Unsqueeze, &[Some(data()), Some(i64s(vec![0, -1]))], 1);
    check(&Op::Expand, &[Some(inp(&[3, 1], f32s(&[3, 1], 3))), Some(i64s(vec![2, 3, 4]))], 1);
    check(
        &Op::Slice,
        &[
            Some(data()),
            Some(i64s(vec![1, -1])),
            Some(i64s(vec![3, 0])),
            Some(i64s(vec![1, 2])),
            Some(i64s(vec![1, -1])),
        ],
        1,
    );
    check(&Op::Split { axis: 2, num_outputs: 2 }, &[Some(data()), Some(i64s(vec![1, 3]))], 2);
    check(&Op::Split { axis: 1, num_outputs: 3 }, &[Some(data())], 3);
    check(
        &Op::Pad { mode: PadMode::Constant },
        &[Some(data()), Some(i64s(vec![0, 1, -1, 0, 0, 2])), Some(inp(&[], vec![1.5f32]))],
        1,
    );
    check(&Op::Pad { mode: PadMode::Reflect }, &[Some(data()), Some(inp(&[6], vec![0i32, 1, 1, 0, 1, 2]))], 1);
    check(&Op::ReduceSum(ReduceAttrs::default()), &[Some(data()), Some(i64s(vec![0, 2]))], 1);
    check(
        &Op::ReduceMax(ReduceAttrs { keepdims: false, ..ReduceAttrs::default() }),
        &[Some(data()), Some(i64s(vec![-1]))],
        1,
    );
    let img = [1, 1, 3, 3];
    let linear = ResizeAttrs { mode: ResizeMode::Linear, ..ResizeAttrs::default() };
    check(&Op::Resize(linear), &[Some(inp(&img, f32s(&img, 4))), None, Some(inp(&[4], vec![1f32, 1., 2., 1.5]))], 1);
    check(
        &Op::Resize(ResizeAttrs::default()),
        &[Some(inp(&img, ints::<i64>(9, 5))), None, None, Some(i64s(vec![1, 1, 5, 4]))],
        1,
    );
    check(&Op::Range, &[Some(inp(&[], vec![1i64])), Some(inp(&[], vec![20i64])), Some(inp(&[], vec![3i64]))], 1);
    check(&Op::Range, &[Some(inp(&[], vec![0.5f32])), Some(inp(&[], vec![4f32])), Some(inp(&[], vec![0.75f32]))], 1);
    // ConstantOfShape: the value attribute and the shape input in place.
    let value = inp(&[1], vec![7i32]);
    let run_op = Op::ConstantOfShape { value: value.run };
    check_ops(&Op::ConstantOfShape { value: value.owned }, &run_op, &[Some(i64s(vec![2, 3]))], 1);
    assert!(matches!(&run_op, Op::ConstantOfShape { value } if value.is_in_place()), "value was copied");
}
