//! Shape rules never panic, whatever the operator, attributes, input types and constant
//! parameter values (huge, negative, empty, symbolic, mismatched).

use lithe_ir::op::{
    ArgAttrs, AutoPad, AvgPoolAttrs, ConvAttrs, ConvTransposeAttrs, CoordTransform, GemmAttrs, InferInput, PadMode,
    PoolAttrs, ReduceAttrs, ResizeAttrs, ResizeMode, SoftmaxAttrs, flops, infer,
};
use lithe_ir::{DType, Dim, Op, Shape, Tensor, TypeInfo};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// xorshift64*: a small deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<T: Clone>(&mut self, v: &[T]) -> T {
        v[self.below(v.len())].clone()
    }
    fn size(&mut self) -> usize {
        self.pick(&[0, 1, 1, 2, 2, 3, 5, 7, usize::MAX, 1 << 40])
    }
    fn int(&mut self) -> i64 {
        self.pick(&[0, 1, 2, 3, -1, -2, -3, 5, 100, i64::MAX, i64::MIN, 1 << 40, -(1 << 40)])
    }
    fn sizes(&mut self, max: usize) -> Vec<usize> {
        let n = self.below(max + 1);
        (0..n).map(|_| self.size()).collect()
    }
    fn bool(&mut self) -> bool {
        self.next() & 1 == 1
    }
    fn dim(&mut self) -> Dim {
        match self.below(12) {
            0 => Dim::Sym("N".into()),
            1 => Dim::Sym("M".into()),
            2 => Dim::Unknown,
            3 => Dim::Known(usize::MAX),
            4 => Dim::Known(1 << 40),
            5 => Dim::Known(0),
            6 | 7 => Dim::Known(1),
            n => Dim::Known(n - 5),
        }
    }
}

fn conv_attrs(r: &mut Rng) -> ConvAttrs {
    ConvAttrs {
        kernel_shape: if r.bool() { Some(r.sizes(3)) } else { None },
        strides: r.sizes(3),
        dilations: r.sizes(3),
        pads: r.sizes(6),
        auto_pad: r.pick(&[AutoPad::NotSet, AutoPad::Valid, AutoPad::SameUpper, AutoPad::SameLower]),
        group: r.pick(&[0, 1, 1, 2, 3, usize::MAX]),
        epilogue: Default::default(),
    }
}

fn pool_attrs(r: &mut Rng) -> PoolAttrs {
    PoolAttrs {
        kernel_shape: r.sizes(3),
        strides: r.sizes(3),
        dilations: r.sizes(3),
        pads: r.sizes(6),
        auto_pad: r.pick(&[AutoPad::NotSet, AutoPad::Valid, AutoPad::SameUpper, AutoPad::SameLower]),
        ceil_mode: r.bool(),
    }
}

fn random_op(r: &mut Rng) -> Op {
    let red = |r: &mut Rng| ReduceAttrs { keepdims: r.bool(), noop_with_empty_axes: r.bool() };
    match r.below(56) {
        0 => Op::Conv(conv_attrs(r)),
        1 => Op::ConvTranspose(ConvTransposeAttrs {
            conv: conv_attrs(r),
            output_padding: r.sizes(3),
            output_shape: if r.bool() { Some(r.sizes(3)) } else { None },
        }),
        2 => Op::BatchNormalization { epsilon: 1e-5 },
        3 => Op::Relu,
        4 => Op::Clip,
        5 => Op::LeakyRelu { alpha: 0.1 },
        6 => Op::PRelu,
        7 => Op::Sigmoid,
        8 => Op::HardSigmoid { alpha: 0.2, beta: 0.5 },
        9 => Op::HardSwish,
        10 => Op::Tanh,
        11 => Op::Softmax(SoftmaxAttrs { axis: r.int(), coerce_2d: r.bool() }),
        12 => Op::Gemm(GemmAttrs { trans_a: r.bool(), trans_b: r.bool(), ..Default::default() }),
        13 => Op::MatMul,
        14 => Op::Add,
        15 => Op::Sub,
        16 => Op::Mul,
        17 => Op::Div,
        18 => Op::Pow,
        19 => Op::Sqrt,
        20 => Op::MaxPool(pool_attrs(r)),
        21 => Op::AveragePool(AvgPoolAttrs { pool: pool_attrs(r), count_include_pad: r.bool() }),
        22 => Op::GlobalAveragePool,
        23 => Op::GlobalMaxPool,
        24 => Op::Concat { axis: r.int() },
        25 => Op::Reshape { allowzero: r.bool() },
        26 => Op::Flatten { axis: r.int() },
        27 => Op::Transpose { perm: if r.bool() { Some(r.sizes(5)) } else { None } },
        28 => Op::Squeeze,
        29 => Op::Unsqueeze,
        30 => Op::Pad { mode: r.pick(&[PadMode::Constant, PadMode::Reflect, PadMode::Edge, PadMode::Wrap]) },
        31 => Op::Resize(ResizeAttrs {
            mode: r.pick(&[ResizeMode::Nearest, ResizeMode::Linear, ResizeMode::Cubic]),
            coord: r.pick(&[CoordTransform::HalfPixel, CoordTransform::TfCropAndResize]),
            ..Default::default()
        }),
        32 => Op::Slice,
        33 => Op::Split { axis: r.int(), num_outputs: r.pick(&[0, 1, 2, 3, usize::MAX]) },
        34 => Op::Gather { axis: r.int() },
        35 => Op::Shape { start: r.int(), end: if r.bool() { Some(r.int()) } else { None } },
        36 => Op::Identity,
        37 => Op::Dropout,
        38 => Op::ReduceMean(red(r)),
        39 => Op::ReduceSum(red(r)),
        40 => Op::ReduceMax(red(r)),
        41 => Op::ArgMax(ArgAttrs { axis: r.int(), keepdims: r.bool(), select_last_index: r.bool() }),
        42 => Op::Cast { to: r.pick(&DType::ALL) },
        43 => Op::LayerNormalization { axis: r.int(), epsilon: 1e-5 },
        44 => Op::ConstantOfShape {
            value: if r.bool() { Tensor::scalar(1.0f32) } else { Tensor::zeros(DType::I64, &[r.below(3)]) },
        },
        45 => Op::Expand,
        46 => Op::Range,
        47 => Op::Where,
        48 => Op::Equal,
        49 => Op::Erf,
        50 => Op::Exp,
        51 => Op::Log,
        52 => Op::Neg,
        53 => Op::Abs,
        54 => Op::Min,
        _ => Op::Max,
    }
}

/// A random input: absent, typed (maybe unranked) or a constant.
fn random_input(r: &mut Rng) -> Option<(TypeInfo, Option<Tensor>)> {
    match r.below(8) {
        0 => None,
        1 => Some((TypeInfo::unranked(r.pick(&DType::ALL)), None)),
        2 | 3 => {
            let v: Vec<i64> = (0..r.below(6)).map(|_| r.int()).collect();
            let t = if r.bool() {
                Tensor::from_vec(&[v.len()], v).unwrap()
            } else {
                Tensor::from_vec(&[v.len()], v.into_iter().map(|x| x as i32).collect()).unwrap()
            };
            Some((TypeInfo::new(t.dtype(), t.ir_shape()), Some(t)))
        }
        4 => {
            let v: Vec<f32> =
                (0..r.below(9)).map(|_| r.pick(&[0.0, 1.0, 2.0, 0.5, -1.0, f32::NAN, f32::INFINITY, 1e30])).collect();
            let t =
                if v.len() == 1 && r.bool() { Tensor::scalar(v[0]) } else { Tensor::from_vec(&[v.len()], v).unwrap() };
            Some((TypeInfo::new(t.dtype(), t.ir_shape()), Some(t)))
        }
        5 => {
            let t = Tensor::scalar(r.int());
            Some((TypeInfo::new(t.dtype(), t.ir_shape()), Some(t)))
        }
        _ => {
            let rank = r.below(6);
            let shape = Shape((0..rank).map(|_| r.dim()).collect());
            let dtype = if r.below(4) == 0 { r.pick(&DType::ALL) } else { DType::F32 };
            Some((TypeInfo { dtype, shape: Some(shape) }, None))
        }
    }
}

#[test]
fn shape_rules_never_panic() {
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    let mut ok = 0;
    for case in 0..50_000 {
        let op = random_op(&mut r);
        let n_in = r.below(6);
        let ins: Vec<Option<(TypeInfo, Option<Tensor>)>> = (0..n_in).map(|_| random_input(&mut r)).collect();
        let n_out = r.pick(&[1, 1, 1, 0, 2, 3, usize::MAX]);
        let result = catch_unwind(AssertUnwindSafe(|| {
            let refs: Vec<Option<InferInput<'_>>> = ins
                .iter()
                .map(|i| i.as_ref().map(|(info, value)| InferInput { info, value: value.as_ref() }))
                .collect();
            let res = infer(&op, &refs, n_out);
            if let Ok(outs) = &res {
                assert_eq!(outs.len(), n_out);
                let tys: Vec<Option<&TypeInfo>> = ins.iter().map(|i| i.as_ref().map(|(t, _)| t)).collect();
                let outs: Vec<&TypeInfo> = outs.iter().collect();
                let _ = flops(&op, &tys, &outs);
            }
            res.is_ok()
        }));
        match result {
            Ok(true) => ok += 1,
            Ok(false) => {}
            Err(_) => panic!("case {case}: {op:?} with inputs {ins:?} and {n_out} outputs panicked"),
        }
    }
    // The generator is not all garbage: a fair share of the cases are accepted.
    assert!(ok > 1_500, "only {ok} cases were accepted");
}
