//! The quantization-aware training table of docs/quantization.md: the committed MNIST nets
//! (`testdata/mnist`), fp32 against post-training int8 and QAT int8 for every activation
//! strategy with per-channel and per-layer weights. Every int8 accuracy is measured on the
//! converted graph as the int8 kernels run it (QConv nodes), on the 1,000 test digits.
//!
//! ```sh
//! cargo run --release -p lithe-quant --example qat_mnist -- [lenet_bn|dwsep|both] [epochs=2] [lr=1e-4] [batch=64] [seed=1]
//! ```

use lithe_ir::Graph;
use lithe_passes::PassManager;
use lithe_quant::eval::compare;
use lithe_quant::ptq::{PtqConfig, quantize_static};
use lithe_quant::qat::{ActStrategy, LabelledSource, QatConfig, QatModel, QatTrainOptions};
use lithe_train::data::Dataset;
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
    let mut options = QatTrainOptions { epochs: 2, batch_size: 64, lr: 1e-4, ..Default::default() };
    for arg in std::env::args().skip(1) {
        match arg.split_once('=') {
            Some(("epochs", v)) => options.epochs = v.parse()?,
            Some(("lr", v)) => options.lr = v.parse()?,
            Some(("batch", v)) => options.batch_size = v.parse()?,
            Some(("seed", v)) => options.seed = v.parse()?,
            None if arg == "both" => {}
            None if arg == "lenet_bn" || arg == "dwsep" => {
                models = vec![if arg == "dwsep" { "dwsep" } else { "lenet_bn" }]
            }
            _ => return Err(format!("unknown argument '{arg}'").into()),
        }
    }
    let dir = mnist();
    let train = Dataset::from_idx(&dir.join("train-images-idx3-ubyte"), &dir.join("train-labels-idx1-ubyte"))?;
    let test = Dataset::from_idx(&dir.join("t10k-images-idx3-ubyte"), &dir.join("t10k-labels-idx1-ubyte"))?;
    let train_source = LabelledSource::new(&train, "input");
    let test_source = LabelledSource::new(&test, "input");
    println!(
        "QAT recipe: {} epochs over {} training digits, batch {}, Adam lr {} (cosine to 0), seed {}",
        options.epochs,
        train.len(),
        options.batch_size,
        options.lr,
        options.seed
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
