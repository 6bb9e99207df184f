//! Where quantization-aware training loses accuracy, on the validation split of the MNIST
//! training digits (QAT on the first 3,000, accuracy on the last 1,000; never the test
//! digits): PTQ, QAT before and after training, the eval-mode fake-quantized graph against
//! the converted int8 graph, PTQ with one node left in fp32 at a time, the per-channel ranges
//! of each quantized node's input, and each activation's QAT threshold against PTQ's (QAT
//! without and with the depthwise input equalization unless `equalize=` picks one).
//!
//! ```sh
//! cargo run --release -p lithe-quant --example qat_diag -- [lenet_bn|dwsep] [strategy=S] [seed=N] [equalize=0|1]
//! ```

use lithe_ir::{Graph, Tensor};
use lithe_passes::PassManager;
use lithe_quant::calib::CalibAlgo;
use lithe_quant::eval::compare;
use lithe_quant::ptq::{PtqConfig, quantize_static};
use lithe_quant::qat::{ActStrategy, LabelledSource, QatConfig, QatModel, QatTrainOptions};
use lithe_train::data::Dataset;
use std::collections::HashMap;
use std::path::PathBuf;

type Error = Box<dyn std::error::Error>;

fn accuracy(fp32: &Graph, g: &Graph, data: &LabelledSource<'_>) -> Result<f64, Error> {
    Ok(compare(fp32, g, data, 250, None, 2)?.accuracy(data.labels()).1)
}

/// Top-1 of `g` with the digits fp32 gets right and `g` wrong (broken) and the reverse (fixed).
fn flips(fp32: &Graph, g: &Graph, data: &LabelledSource<'_>) -> Result<String, Error> {
    let a = compare(fp32, g, data, 250, None, 2)?;
    let (mut broken, mut fixed) = (0, 0);
    for ((&x, &y), &l) in a.classes.0.iter().zip(&a.classes.1).zip(data.labels()) {
        broken += usize::from(x == l && y != l);
        fixed += usize::from(x != l && y == l);
    }
    Ok(format!("{:.1}% (broken {broken}, fixed {fixed}, cosine {:.5})", 100.0 * a.accuracy(data.labels()).1, a.cosine))
}

/// Top-1 of the eval-mode fake-quantized graph (on the tape, before conversion).
fn fake_accuracy(qat: &mut QatModel, val: &Dataset) -> Result<f64, Error> {
    let per: usize = val.sample_shape.iter().product();
    let mut correct = 0;
    for start in (0..val.len()).step_by(250) {
        let n = (val.len() - start).min(250);
        let mut shape = vec![n];
        shape.extend(&val.sample_shape);
        let x = Tensor::from_vec(&shape, val.x[start * per..(start + n) * per].to_vec())?;
        let out = qat.predict(vec![x])?;
        let classes = out.len() / n;
        let flat: Vec<f32> = out.iter().copied().collect();
        for i in 0..n {
            let row = &flat[i * classes..(i + 1) * classes];
            let arg = (0..classes).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap_or(0);
            correct += usize::from(arg == val.labels[start + i]);
        }
    }
    Ok(correct as f64 / val.len() as f64)
}

fn main() -> Result<(), Error> {
    let mut model = "dwsep".to_string();
    let mut strategies: Vec<ActStrategy> = Vec::new();
    let mut options = QatTrainOptions::default();
    let mut equalize = vec![false, true];
    for arg in std::env::args().skip(1) {
        match arg.split_once('=') {
            Some(("strategy", v)) => strategies.push(v.parse()?),
            Some(("equalize", v)) => equalize = vec![v == "1"],
            Some(("seed", v)) => options.seed = v.parse()?,
            Some(("epochs", v)) => options.epochs = v.parse()?,
            Some(("lr", v)) => options.lr = v.parse()?,
            None => model = arg,
            _ => return Err(format!("unknown argument '{arg}'").into()),
        }
    }
    if strategies.is_empty() {
        strategies.push(QatConfig::default().act_strategy);
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/mnist");
    let train = Dataset::from_idx(&dir.join("train-images-idx3-ubyte"), &dir.join("train-labels-idx1-ubyte"))?;
    let per = train.sample_shape.iter().product::<usize>();
    let fit = train.take(3000);
    let val = Dataset::new(train.x[3000 * per..].to_vec(), train.sample_shape.clone(), train.labels[3000..].to_vec())?;
    let (fit_source, val_source) = (LabelledSource::new(&fit, "input"), LabelledSource::new(&val, "input"));
    let opts = lithe_onnx::ImportOptions { input_shapes: HashMap::new(), ..Default::default() };
    let imported = lithe_onnx::load_model(&dir.join(format!("{model}.onnx")), &opts)?;
    let mut fp32 = imported.clone();
    PassManager::default_pipeline().run(&mut fp32)?;
    println!("{model} fp32 val {:.1}%", 100.0 * accuracy(&fp32, &fp32, &val_source)?);
    channel_stats(&imported, &fit_source)?;
    let mut hist = HashMap::new();
    for (name, algo) in [("hist", CalibAlgo::Hist { percent: 0.9999 }), ("abs_max", CalibAlgo::AbsMax)] {
        let mut g = fp32.clone();
        let config = PtqConfig { algo, batch_size: 64, ..PtqConfig::default() };
        let report = quantize_static(&mut g, &fit_source, &config, &mut |_, _| {})?;
        PassManager::default_pipeline().run(&mut g)?;
        println!("{model} PTQ {name} per-channel val {}", flips(&fp32, &g, &val_source)?);
        if name == "hist" {
            for node in &report.quantized {
                let mut g = fp32.clone();
                let config = PtqConfig { algo, batch_size: 64, skip: vec![node.clone()], ..PtqConfig::default() };
                quantize_static(&mut g, &fit_source, &config, &mut |_, _| {})?;
                PassManager::default_pipeline().run(&mut g)?;
                println!("  PTQ hist without {node}: {}", flips(&fp32, &g, &val_source)?);
            }
            hist = report.ranges.into_iter().map(|(n, r)| (n, r.threshold)).collect();
        }
    }
    for (strategy, equalize) in strategies.iter().flat_map(|&s| equalize.iter().map(move |&e| (s, e))) {
        println!("-- equalize {equalize}");
        let config = QatConfig { act_strategy: strategy, equalize, ..QatConfig::default() };
        let mut qat = QatModel::prepare(&imported, &fit_source, &config, &mut |_| {})?;
        let before = qat.thresholds();
        println!(
            "{model} QAT {strategy} untrained: int8 val {:.1}%, fake-quant eval val {:.1}%",
            100.0 * accuracy(&fp32, &qat.convert_int8()?, &val_source)?,
            100.0 * fake_accuracy(&mut qat, &val)?
        );
        qat.train(&fit, &options, &mut |_, _, _, _| {})?;
        println!(
            "{model} QAT {strategy} trained: int8 val {}, fake-quant eval val {:.1}%",
            flips(&fp32, &qat.convert_int8()?, &val_source)?,
            100.0 * fake_accuracy(&mut qat, &val)?
        );
        println!("| activation | PTQ hist | QAT before | QAT after | after / hist |");
        for ((name, after), (_, b)) in qat.thresholds().into_iter().zip(before) {
            let h = hist.get(&name).copied().unwrap_or(f32::NAN);
            let a = after.unwrap_or(f32::NAN);
            println!("| {name} | {h:.3} | {:.3} | {a:.3} | {:.2} |", b.unwrap_or(f32::NAN), a / h);
        }
    }
    Ok(())
}

/// Per-channel max of each quantized node's input activation (fp32, BN folded) and the
/// per-channel max|w| of its weight: how much of the per-tensor activation range each channel
/// uses.
fn channel_stats(imported: &Graph, source: &LabelledSource<'_>) -> Result<(), Error> {
    let mut g = imported.clone();
    let mut passes = PassManager::default_pipeline();
    for p in ["fuse_conv_residual", "fuse_activation", "fuse_qdq_conv"] {
        passes.disable(p)?;
    }
    passes.run(&mut g)?;
    let (nodes, _) = lithe_quant::ptq::quantizable_nodes(&g, &[], false);
    let values = lithe_quant::ptq::activation_values(&g, &nodes);
    let mut maxima: Vec<Vec<f32>> = vec![Vec::new(); values.len()];
    let mut runner = lithe_quant::ptq::ValueRunner::new(&g, &values, 2)?;
    runner.run_source(
        source,
        250,
        None,
        &mut |ts| {
            for (m, t) in maxima.iter_mut().zip(ts) {
                let shape = t.shape().to_vec();
                let v = t.to_f32_vec();
                let c = if shape.len() >= 2 { shape[1] } else { 1 };
                let inner: usize = shape.iter().skip(2).product();
                if m.is_empty() {
                    *m = vec![0.0; c];
                }
                for (i, x) in v.iter().enumerate() {
                    let ch = (i / inner.max(1)) % c;
                    m[ch] = m[ch].max(x.abs());
                }
            }
        },
        &mut |_| {},
    )?;
    for ((&id, &v), m) in nodes.iter().zip(&values).zip(&maxima) {
        let mut sorted = m.clone();
        sorted.sort_by(f32::total_cmp);
        let w = g.node_inputs(id)[1].and_then(|w| g.const_value(w)).map(|t| t.to_f32_vec()).unwrap_or_default();
        println!(
            "{} input {} channels {}: channel max min/median/max {:.3}/{:.3}/{:.3}; weights {} max|w| {:.3}",
            g.node(id).name,
            g.value(v).name,
            m.len(),
            sorted.first().copied().unwrap_or(0.0),
            sorted.get(sorted.len() / 2).copied().unwrap_or(0.0),
            sorted.last().copied().unwrap_or(0.0),
            w.len(),
            w.iter().fold(0.0f32, |a, &b| a.max(b.abs()))
        );
        if g.node(id).name == "/3/Conv" {
            println!("  channel maxima: {:?}", m.iter().map(|x| (x * 100.0).round() / 100.0).collect::<Vec<_>>());
            let per = w.len() / m.len().max(1);
            let wm: Vec<f32> = w
                .chunks(per.max(1))
                .map(|c| (c.iter().fold(0.0f32, |a, &b| a.max(b.abs())) * 100.0).round() / 100.0)
                .collect();
            println!("  weight channel max|w|: {wm:?}");
        }
    }
    Ok(())
}
