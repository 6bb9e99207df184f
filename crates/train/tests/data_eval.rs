//! `Trainer::evaluate_metrics` on a hand-set linear classifier: top-1, top-5 and loss exact.

use lithe_ir::builder::GraphBuilder;
use lithe_ir::{DType, Dim, Tensor};
use lithe_train::data::Dataset;
use lithe_train::{Trainer, TrainerConfig};

#[test]
fn evaluate_metrics_reports_top1_top5_and_loss() {
    // logits = W x with W picking each feature for classes 0..4, zero for class 4, minus the sum
    // for class 5: x = [4, 3, 2, 1] gives [4, 3, 2, 1, 0, -10].
    let mut b = GraphBuilder::new("linear");
    let x = b.input("x", DType::F32, &[Dim::Sym("batch".into()), 4.into()]);
    #[rustfmt::skip]
    let w = Tensor::from_vec(&[6, 4], vec![
        1., 0., 0., 0.,
        0., 1., 0., 0.,
        0., 0., 1., 0.,
        0., 0., 0., 1.,
        0., 0., 0., 0.,
        -1., -1., -1., -1.,
    ])
    .unwrap();
    let y = b.linear(x, w, None).unwrap();
    b.output(y);
    let trainer = Trainer::new(b.finish().unwrap(), TrainerConfig::default()).unwrap();
    // Labels 0 (rank 0), 3 (rank 3), 5 (rank 5), 4 (rank 4), 1 (rank 1).
    let labels = vec![0, 3, 5, 4, 1];
    let data = Dataset::new([4f32, 3., 2., 1.].repeat(5), vec![4], labels.clone()).unwrap();
    let m = trainer.evaluate_metrics(&data, 3).unwrap();
    assert_eq!((m.samples, m.top1, m.top5), (5, 0.2, 0.8));
    let logits = [4f64, 3., 2., 1., 0., -10.];
    let lse = logits.iter().map(|v| v.exp()).sum::<f64>().ln();
    let want = labels.iter().map(|&l| lse - logits[l]).sum::<f64>() / 5.0;
    assert!((m.loss - want).abs() < 1e-6, "{} vs {want}", m.loss);
    // The same numbers as the older one-metric helpers.
    assert_eq!(trainer.evaluate(&data, 2).unwrap(), m.top1);
    assert!((trainer.eval_loss(&data, 2).unwrap() as f64 - m.loss).abs() < 1e-5);
}
