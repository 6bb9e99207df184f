//! A fused Conv/FullyConnected epilogue equals the unfused op sequence, exactly.

use lithe_ir::op::{Activation, ConvAttrs, Epilogue, FcAttrs};
use lithe_ir::{Op, Tensor};
use lithe_kernels::reference::eval;
use proptest::prelude::*;

fn t(shape: &[usize], v: Vec<f32>) -> Tensor {
    Tensor::from_vec(shape, v).unwrap()
}

fn run(op: Op, ins: &[Option<&Tensor>]) -> Tensor {
    eval(&op, ins, 1).unwrap().remove(0)
}

/// The standalone op (and its extra inputs) for an activation.
fn standalone(act: Activation, y: &Tensor, slope: Option<&Tensor>) -> Tensor {
    match act {
        Activation::None => y.clone(),
        Activation::Relu => run(Op::Relu, &[Some(y)]),
        Activation::Clip { min, max } => {
            let (lo, hi) = (Tensor::scalar(min), Tensor::scalar(max));
            run(Op::Clip, &[Some(y), Some(&lo), Some(&hi)])
        }
        Activation::LeakyRelu { alpha } => run(Op::LeakyRelu { alpha }, &[Some(y)]),
        Activation::PRelu => run(Op::PRelu, &[Some(y), slope]),
        Activation::HardSwish => run(Op::HardSwish, &[Some(y)]),
        Activation::HardSigmoid { alpha, beta } => run(Op::HardSigmoid { alpha, beta }, &[Some(y)]),
        Activation::Sigmoid => run(Op::Sigmoid, &[Some(y)]),
        Activation::Tanh => run(Op::Tanh, &[Some(y)]),
    }
}

fn activation() -> impl Strategy<Value = Activation> {
    prop_oneof![
        Just(Activation::None),
        Just(Activation::Relu),
        (-2f32..0.0, 0f32..6.0).prop_map(|(min, max)| Activation::Clip { min, max }),
        (0f32..0.5).prop_map(|alpha| Activation::LeakyRelu { alpha }),
        Just(Activation::PRelu),
        Just(Activation::HardSwish),
        (0.1f32..0.5, 0.2f32..0.8).prop_map(|(alpha, beta)| Activation::HardSigmoid { alpha, beta }),
        Just(Activation::Sigmoid),
        Just(Activation::Tanh),
    ]
}

fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) % 2001) as f32 / 500.0 - 2.0)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn conv_epilogue_is_the_unfused_sequence(
        act in activation(), residual in any::<bool>(), bias in any::<bool>(),
        c in 1usize..4, m in 1usize..4, hw in 1usize..6, seed in any::<u32>(),
    ) {
        let x = t(&[1, c, hw, hw], values(c * hw * hw, seed));
        let w = t(&[m, c, 3, 3], values(m * c * 9, seed ^ 7));
        let b = t(&[m], values(m, seed ^ 11));
        let r = t(&[1, m, hw, hw], values(m * hw * hw, seed ^ 13));
        let slope = t(&[m, 1, 1], values(m, seed ^ 17));
        let base = ConvAttrs { pads: vec![1; 4], ..Default::default() };
        let b_in = bias.then_some(&b);
        let mut want = run(Op::Conv(base.clone()), &[Some(&x), Some(&w), b_in]);
        if residual {
            want = run(Op::Add, &[Some(&want), Some(&r)]);
        }
        let want = standalone(act, &want, Some(&slope));
        let fused = Op::Conv(ConvAttrs { epilogue: Epilogue { residual, activation: act }, ..base });
        let prelu = matches!(act, Activation::PRelu);
        let got = run(fused, &[Some(&x), Some(&w), b_in, residual.then_some(&r), prelu.then_some(&slope)]);
        prop_assert_eq!(got.to_f32_vec(), want.to_f32_vec());
    }

    #[test]
    fn fully_connected_is_matmul_add_activation(
        act in activation(), bias in any::<bool>(), rows in 1usize..4, k in 1usize..6, n in 1usize..5, seed in any::<u32>(),
    ) {
        let x = t(&[2, rows, k], values(2 * rows * k, seed));
        let w = t(&[k, n], values(k * n, seed ^ 3));
        let b = t(&[n], values(n, seed ^ 5));
        let slope = t(&[n], values(n, seed ^ 9));
        let mut want = run(Op::MatMul, &[Some(&x), Some(&w)]);
        if bias {
            want = run(Op::Add, &[Some(&want), Some(&b)]);
        }
        let want = standalone(act, &want, Some(&slope));
        let prelu = matches!(act, Activation::PRelu);
        let got = run(Op::FullyConnected(FcAttrs { activation: act }), &[Some(&x), Some(&w), bias.then_some(&b), prelu.then_some(&slope)]);
        prop_assert_eq!(got.to_f32_vec(), want.to_f32_vec());
    }
}

#[test]
fn fused_inputs_must_match_the_epilogue() {
    let x = t(&[1, 1, 2, 2], vec![1.0; 4]);
    let w = t(&[1, 1, 1, 1], vec![2.0]);
    let r = t(&[1, 1, 2, 2], vec![1.0; 4]);
    let fused = Op::Conv(ConvAttrs {
        epilogue: Epilogue { residual: true, activation: Activation::None },
        ..Default::default()
    });
    assert!(eval(&fused, &[Some(&x), Some(&w), None], 1).is_err(), "missing residual");
    let wrong = t(&[1, 1, 1, 2], vec![1.0; 2]);
    assert!(eval(&fused, &[Some(&x), Some(&w), None, Some(&wrong)], 1).is_err(), "residual of another shape");
    let y = eval(&fused, &[Some(&x), Some(&w), None, Some(&r)], 1).unwrap();
    assert_eq!(y[0].to_f32_vec(), vec![3.0; 4]);
    let plain = Op::Conv(ConvAttrs::default());
    assert!(eval(&plain, &[Some(&x), Some(&w), None, Some(&r)], 1).is_err(), "residual without the flag");
    let fc = Op::FullyConnected(FcAttrs { activation: Activation::PRelu });
    let w2 = t(&[4, 1], vec![1.0; 4]);
    let x2 = t(&[1, 4], vec![-1.0; 4]);
    assert!(eval(&fc, &[Some(&x2), Some(&w2), None], 1).is_err(), "PRelu without slope");
}
