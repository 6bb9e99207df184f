//! The quantization-aware training table of docs/quantization.md: the committed MNIST nets
//! (`testdata/mnist`), fp32 against post-training int8 and QAT int8 for every activation
//! strategy with per-channel and per-layer weights. Every int8 accuracy is measured on the
//! converted graph as the int8 kernels run it (QConv nodes), on the 1,000 test digits.
//!
//! ```sh
//! cargo run --release -p lithe-quant --example qat_mnist -- [lenet_bn|dwsep|both] [epochs=2] [lr=3e-5] [batch=64] [seed=1] [shift=0] [finetune_only] [select]
//! ```

use lithe_ir::Graph;
use lithe_passes::PassManager;
use lithe_quant::eval::compare;
use lithe_quant::ptq::{PtqConfig, quantize_static};
use lithe_quant::qat::{ActStrategy, LabelledSource, QatConfig, QatModel, QatTrainOptions};
use lithe_train::data::{Augment, Batches, Dataset};
use lithe_train::optim::OptimizerKind;
use lithe_train::schedule::Schedule;
use lithe_train::{Trainer, TrainerConfig};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

type Error = Box<dyn std::error::Error>;

fn mnist() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/mnist")
}

fn accuracy(fp32: &Graph, int8: &Graph, test: &LabelledSource<'_>) -> Result<(f64, f64), Error> {
    let a = compare(fp32, int8, test, 250, None, 2)?;
    Ok(a.accuracy(test.labels()))
}

fn main() -> Result<(), Error> {
    let mut models = vec!["lenet_bn", "dwsep"];
    let mut finetune_only = false;
    let mut select = false;
    let mut options = QatTrainOptions::default();
    for arg in std::env::args().skip(1) {
        match arg.split_once('=') {
            Some(("epochs", v)) => options.epochs = v.parse()?,
            Some(("lr", v)) => options.lr = v.parse()?,
            Some(("batch", v)) => options.batch_size = v.parse()?,
            Some(("seed", v)) => options.seed = v.parse()?,
            Some(("shift", v)) => {
                options.augment = match v.parse()? {
                    0 => Augment::None,
                    max => Augment::ShiftBatch { max },
                }
            }
            None if arg == "both" => {}
            None if arg == "finetune_only" => finetune_only = true,
            None if arg == "select" => select = true,
            None if arg == "lenet_bn" || arg == "dwsep" => {
                models = vec![if arg == "dwsep" { "dwsep" } else { "lenet_bn" }]
            }
            _ => return Err(format!("unknown argument '{arg}'").into()),
        }
    }
    let dir = mnist();
    let train = Dataset::from_idx(&dir.join("train-images-idx3-ubyte"), &dir.join("train-labels-idx1-ubyte"))?;
    let test = Dataset::from_idx(&dir.join("t10k-images-idx3-ubyte"), &dir.join("t10k-labels-idx1-ubyte"))?;
    if select {
        return select_recipe(&models, &train, &dir, &options);
    }
    let train_source = LabelledSource::new(&train, "input");
    let test_source = LabelledSource::new(&test, "input");
    println!(
        "QAT recipe: {} epochs over {} training digits, batch {}, Adam lr {} (cosine to 0), seed {}, {:?}",
        options.epochs,
        train.len(),
        options.batch_size,
        options.lr,
        options.seed,
        options.augment
    );
    println!("| model | method | weights | top-1 (int8 kernels) | vs fp32 | time |");
    println!("|---|---|---|---:|---:|---:|");
    for model in models {
        let opts = lithe_onnx::ImportOptions { input_shapes: HashMap::new(), ..Default::default() };
        let imported = lithe_onnx::load_model(&dir.join(format!("{model}.onnx")), &opts)?;
        let mut fp32 = imported.clone();
        PassManager::default_pipeline().run(&mut fp32)?;
        let (acc32, _) = accuracy(&fp32, &fp32, &test_source)?;
        println!("| {model} | fp32 | | {:.1}% | | |", 100.0 * acc32);
        // The noise floor: the same fine-tuning without fake quantization (BN folded).
        let start = Instant::now();
        let mut folded = imported.clone();
        let mut passes = PassManager::default_pipeline();
        for p in ["fuse_conv_residual", "fuse_activation", "fuse_qdq_conv"] {
            passes.disable(p)?;
        }
        passes.run(&mut folded)?;
        let steps = train.len().div_ceil(options.batch_size) * options.epochs;
        let config = TrainerConfig {
            optimizer: OptimizerKind::adam(0.0),
            schedule: Schedule::cosine(options.lr, steps),
            ..TrainerConfig::default()
        };
        let mut trainer = Trainer::new(folded, config)?;
        for epoch in 1..=options.epochs {
            let seed = options.seed.wrapping_add(epoch as u64);
            for (x, labels) in Batches::new(&train, options.batch_size, Some(seed), options.augment) {
                trainer.step(x, &labels)?;
            }
        }
        let (_, tuned) = accuracy(&fp32, trainer.graph(), &test_source)?;
        println!(
            "| {model} | fp32 fine-tuned, same recipe | | {:.1}% | {:+.1} | {:.1} s |",
            100.0 * tuned,
            100.0 * (tuned - acc32),
            start.elapsed().as_secs_f64()
        );
        if finetune_only {
            continue;
        }
        for per_channel in [true, false] {
            let start = Instant::now();
            let mut g = fp32.clone();
            let config = PtqConfig { per_channel, batch_size: 64, ..PtqConfig::default() };
            quantize_static(&mut g, &train_source, &config, &mut |_, _| {})?;
            PassManager::default_pipeline().run(&mut g)?;
            let (_, acc8) = accuracy(&fp32, &g, &test_source)?;
            println!(
                "| {model} | PTQ hist | {} | {:.1}% | {:+.1} | {:.1} s |",
                if per_channel { "per-channel" } else { "per-layer" },
                100.0 * acc8,
                100.0 * (acc8 - acc32),
                start.elapsed().as_secs_f64()
            );
        }
        for strategy in ["abs_max", "moving_average_abs_max", "range_abs_max"] {
            for per_channel in [true, false] {
                let start = Instant::now();
                let act_strategy: ActStrategy = strategy.parse()?;
                let config = QatConfig { act_strategy, per_channel, ..QatConfig::default() };
                let mut qat = QatModel::prepare(&imported, &train_source, &config, &mut |_| {})?;
                let epochs = qat.train(&train, &options, &mut |_, _, _, _| {})?;
                let int8 = qat.convert_int8()?;
                let secs = start.elapsed().as_secs_f64();
                let (_, acc8) = accuracy(&fp32, &int8, &test_source)?;
                let loss = epochs.last().map(|e| e.loss).unwrap_or(f32::NAN);
                println!(
                    "| {model} | QAT {strategy} | {} | {:.1}% | {:+.1} | {secs:.1} s (last epoch loss {loss:.4}) |",
                    if per_channel { "per-channel" } else { "per-layer" },
                    100.0 * acc8,
                    100.0 * (acc8 - acc32),
                );
            }
        }
    }
    Ok(())
}

/// Choose the recipe on a validation split of the training digits (the last 1,000; QAT on
/// the first 3,000), never on the test digits: default strategy, per-channel weights.
fn select_recipe(models: &[&str], train: &Dataset, dir: &std::path::Path, base: &QatTrainOptions) -> Result<(), Error> {
    let per = train.sample_shape.iter().product::<usize>();
    let fit = train.take(3000);
    let val = Dataset::new(train.x[3000 * per..].to_vec(), train.sample_shape.clone(), train.labels[3000..].to_vec())?;
    let (fit_source, val_source) = (LabelledSource::new(&fit, "input"), LabelledSource::new(&val, "input"));
    println!("| model | epochs | lr | validation top-1 (int8 kernels) |");
    println!("|---|---:|---:|---:|");
    for model in models {
        let opts = lithe_onnx::ImportOptions { input_shapes: HashMap::new(), ..Default::default() };
        let imported = lithe_onnx::load_model(&dir.join(format!("{model}.onnx")), &opts)?;
        let mut fp32 = imported.clone();
        PassManager::default_pipeline().run(&mut fp32)?;
        let (acc32, _) = accuracy(&fp32, &fp32, &val_source)?;
        println!("| {model} | fp32 | | {:.1}% |", 100.0 * acc32);
        for epochs in [2, 4] {
            for lr in [3e-5f32, 1e-4, 3e-4] {
                let options = QatTrainOptions { epochs, lr, ..base.clone() };
                let mut qat = QatModel::prepare(&imported, &fit_source, &QatConfig::default(), &mut |_| {})?;
                qat.train(&fit, &options, &mut |_, _, _, _| {})?;
                let (_, acc8) = accuracy(&fp32, &qat.convert_int8()?, &val_source)?;
                println!("| {model} | {epochs} | {lr} | {:.1}% |", 100.0 * acc8);
            }
        }
    }
    Ok(())
}
