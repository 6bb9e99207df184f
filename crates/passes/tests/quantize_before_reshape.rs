//! `quantize_before_reshape` moves per-tensor quantization in front of shape-only ops and
//! must give the same bytes.

mod common;

use lithe_ir::builder::GraphBuilder;
use lithe_ir::{DType, Graph, Op, Tensor};
use lithe_passes::Pass;
use lithe_passes::qdq_pool::QuantizeBeforeReshape;

fn graph(op: Op, extra: Option<Tensor>, to: DType) -> Graph {
    let mut b = GraphBuilder::new("q_reshape");
    let x = b.input("x", DType::F32, &[2usize, 3, 4]);
    let mut inputs = vec![x];
    if let Some(t) = extra {
        inputs.push(b.constant("shape", t));
    }
    let y = b.node(op, &inputs).unwrap();
    let s = b.constant("s", Tensor::scalar(0.037f32));
    let z = match to {
        DType::U8 => b.constant("z", Tensor::scalar(128u8)),
        _ => b.constant("z", Tensor::scalar(-3i8)),
    };
    let q = b.node(Op::QuantizeLinear { axis: 1, to }, &[y, s, z]).unwrap();
    b.output(q);
    b.finish().unwrap()
}

#[test]
fn moved_quantization_gives_the_same_bytes_and_shape() {
    let x: Vec<f32> = (0..24).map(|i| (i as f32 - 11.3) * 0.41).collect();
    let x = Tensor::from_vec(&[2, 3, 4], x).unwrap();
    let cases = [
        (Op::Reshape { allowzero: false }, Some(Tensor::from_vec(&[2], vec![4i64, 6]).unwrap())),
        (Op::Flatten { axis: 1 }, None),
    ];
    for (op, extra) in cases {
        for to in [DType::U8, DType::I8] {
            let before = graph(op.clone(), extra.clone(), to);
            let mut after = before.clone();
            assert_eq!(QuantizeBeforeReshape.run(&mut after).unwrap(), 1, "{op:?}");
            let q = after.outputs()[0];
            assert!(!matches!(after.node(q.node).op, Op::QuantizeLinear { .. }), "{op:?} not moved");
            let (a, b) =
                (common::eval(&before, std::slice::from_ref(&x)), common::eval(&after, std::slice::from_ref(&x)));
            assert_eq!(a[0].shape(), b[0].shape());
            assert_eq!(a[0].to_f32_vec(), b[0].to_f32_vec(), "{op:?} {to:?}");
            assert_eq!(after.value(q).ty.dtype, to);
        }
    }
}
