//! The nn reference kernels return errors, never panic, on arbitrary small shapes and
//! attributes (including zero sizes, zero strides, mismatched ranks and bad parameter tensors).

use lithe_ir::Tensor;
use lithe_ir::op::{
    AutoPad, AvgPoolAttrs, ConvAttrs, ConvTransposeAttrs, CoordTransform, GemmAttrs, NearestMode, PadMode, PoolAttrs,
    ResizeAttrs, ResizeMode, SoftmaxAttrs,
};
use lithe_kernels::reference::{conv, conv_transpose, matmul, norm, pad, pool, resize, softmax};
use proptest::prelude::*;

fn tensor(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_vec(shape, (0..n).map(|i| (i % 7) as f32 - 3.0).collect()).unwrap()
}

fn shape_strategy() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0usize..4, 0..5)
}

fn small_vec(max_len: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0usize..4, 0..max_len)
}

fn auto_pad() -> impl Strategy<Value = AutoPad> {
    prop_oneof![Just(AutoPad::NotSet), Just(AutoPad::Valid), Just(AutoPad::SameUpper), Just(AutoPad::SameLower)]
}

fn conv_attrs() -> impl Strategy<Value = ConvAttrs> {
    (prop::option::of(small_vec(4)), small_vec(4), small_vec(4), small_vec(7), auto_pad(), 0usize..4).prop_map(
        |(kernel_shape, strides, dilations, pads, auto_pad, group)| ConvAttrs {
            kernel_shape,
            strides,
            dilations,
            pads,
            auto_pad,
            group,
            epilogue: Default::default(),
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn conv_never_panics(a in conv_attrs(), xs in shape_strategy(), ws in shape_strategy(), bias in prop::option::of(small_vec(2))) {
        let b = bias.map(|s| tensor(&s));
        let _ = conv::conv(&a, &tensor(&xs), &tensor(&ws), b.as_ref());
    }

    #[test]
    fn conv_transpose_never_panics(
        a in conv_attrs(), xs in shape_strategy(), ws in shape_strategy(),
        output_padding in small_vec(4), output_shape in prop::option::of(prop::collection::vec(0usize..12, 0..4)),
    ) {
        let a = ConvTransposeAttrs { conv: a, output_padding, output_shape };
        let _ = conv_transpose::conv_transpose(&a, &tensor(&xs), &tensor(&ws), None);
    }

    #[test]
    fn pools_never_panic(
        kernel_shape in small_vec(4), strides in small_vec(4), dilations in small_vec(4), pads in small_vec(7),
        auto_pad in auto_pad(), ceil_mode in any::<bool>(), count_include_pad in any::<bool>(), xs in shape_strategy(),
    ) {
        let p = PoolAttrs { kernel_shape, strides, dilations, pads, auto_pad, ceil_mode };
        let x = tensor(&xs);
        let _ = pool::max_pool(&p, &x);
        let _ = pool::average_pool(&AvgPoolAttrs { pool: p, count_include_pad }, &x);
        let _ = pool::global_average_pool(&x);
        let _ = pool::global_max_pool(&x);
    }

    #[test]
    fn matmul_gemm_never_panic(a in shape_strategy(), b in shape_strategy(), c in prop::option::of(shape_strategy()), ta in any::<bool>(), tb in any::<bool>()) {
        let (a, b) = (tensor(&a), tensor(&b));
        let _ = matmul::matmul(&a, &b);
        let c = c.map(|s| tensor(&s));
        let _ = matmul::gemm(&GemmAttrs { alpha: 1.0, beta: 1.0, trans_a: ta, trans_b: tb }, &a, &b, c.as_ref());
    }

    #[test]
    fn norms_and_softmax_never_panic(xs in shape_strategy(), ps in prop::collection::vec(shape_strategy(), 4), axis in -5i64..5, coerce in any::<bool>()) {
        let x = tensor(&xs);
        let p: Vec<Tensor> = ps.iter().map(|s| tensor(s)).collect();
        let _ = norm::batch_norm(1e-5, &x, &p[0], &p[1], &p[2], &p[3]);
        let _ = norm::layer_norm(axis, 1e-5, &x, &p[0], Some(&p[1]));
        let _ = softmax::softmax(&SoftmaxAttrs { axis, coerce_2d: coerce }, &x);
    }

    #[test]
    fn resize_never_panics(
        xs in shape_strategy(), mode in 0usize..3, coord in 0usize..6, nearest in 0usize..4, exclude in any::<bool>(),
        scales in prop::option::of(prop::collection::vec(-1.0f32..3.0, 0..5)),
        sizes in prop::option::of(prop::collection::vec(-1i64..6, 0..5)),
        roi in prop::option::of(prop::collection::vec(-1.0f32..2.0, 0..10)),
    ) {
        let a = ResizeAttrs {
            mode: [ResizeMode::Nearest, ResizeMode::Linear, ResizeMode::Cubic][mode],
            coord: [
                CoordTransform::HalfPixel, CoordTransform::PytorchHalfPixel, CoordTransform::AlignCorners,
                CoordTransform::Asymmetric, CoordTransform::TfCropAndResize, CoordTransform::HalfPixelSymmetric,
            ][coord],
            nearest: [NearestMode::RoundPreferFloor, NearestMode::RoundPreferCeil, NearestMode::Floor, NearestMode::Ceil][nearest],
            cubic_coeff_a: -0.75,
            extrapolation_value: 0.0,
            exclude_outside: exclude,
        };
        let f = |v: Vec<f32>| Tensor::from_vec(&[v.len()], v).unwrap();
        let s = scales.map(f);
        let z = sizes.map(|v| Tensor::from_vec(&[v.len()], v).unwrap());
        let r = roi.map(f);
        let _ = resize::resize(&a, &tensor(&xs), r.as_ref(), s.as_ref(), z.as_ref());
    }

    #[test]
    fn pad_never_panics(
        xs in shape_strategy(), mode in 0usize..4, pads in prop::collection::vec(-4i64..5, 0..9),
        axes in prop::option::of(prop::collection::vec(-5i64..5, 0..5)), value in prop::option::of(small_vec(2)),
    ) {
        let mode = [PadMode::Constant, PadMode::Reflect, PadMode::Edge, PadMode::Wrap][mode];
        let p = Tensor::from_vec(&[pads.len()], pads).unwrap();
        let ax = axes.map(|v| Tensor::from_vec(&[v.len()], v).unwrap());
        let val = value.map(|s| tensor(&s));
        let _ = pad::pad(mode, &tensor(&xs), &p, val.as_ref(), ax.as_ref());
    }
}
