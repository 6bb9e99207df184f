//! Train a testdata/mnist architecture from random initialization on the 4,000 training rows
//! and evaluate on the 1,000 test rows, reporting per epoch loss, accuracy, wall time and
//! images per second.
//!
//! ```sh
//! cargo run --release -p lithe-train --example mnist -- lenet_bn [seed=N]
//! cargo run --release -p lithe-train --example mnist -- dwsep [seed=N]
//! cargo run --release -p lithe-train --example mnist -- dwsep val=500 epochs=10 lr=0.003 shift=batch smoothing=0
//! ```
//!
//! Options: `epochs=N`, `lr=X`, `seed=N` (initialization, shuffling, augmentation),
//! `init=torch|kaiming` (torch's default, Kaiming uniform with `a = sqrt(5)`, i.e. uniform in
//! `±1/sqrt(fan_in)`; or Kaiming normal), `shift=sample|batch|none` (a random shift of up to
//! 2 pixels, zero-filled, per sample or one per batch, or none), `crop=P` (random crop with
//! `P` pixels of zero padding per sample instead), `smoothing=X` (label smoothing), `wd=X`
//! (Adam's L2 weight decay), `val=N` (hold out the last `N` training rows and report accuracy
//! on them instead of the test rows, which are then not read: how the defaults were chosen).
//!
//! Defaults (chosen on `val=500` over seeds 1-5, see `docs/training.md`): batch 64, Adam with
//! weight decay 1e-4, cosine decay to 0 over all steps, label smoothing 0.1, a random shift of
//! up to 2 pixels per sample, torch's initialization; lenet_bn 20 epochs at 2e-3, dwsep
//! 30 epochs at 3e-3. `epochs=8 shift=batch smoothing=0` (lenet_bn) and `epochs=10 lr=0.003
//! shift=batch smoothing=0` (dwsep) give the recipe of `testdata/mnist/torch_results.json`.

use lithe_train::data::{Augment, AugmentSteps, Batches, Dataset};
use lithe_train::models::{self, Init};
use lithe_train::optim::OptimizerKind;
use lithe_train::schedule::Schedule;
use lithe_train::{Trainer, TrainerConfig};
use std::path::Path;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args.first().map(String::as_str).unwrap_or("lenet_bn");
    let (mut epochs, mut lr) = match name {
        "lenet_bn" => (20usize, 2e-3f32),
        "dwsep" => (30, 3e-3),
        other => return Err(format!("unknown model {other} (lenet_bn or dwsep)").into()),
    };
    let (mut seed, mut init, mut augment) = (20240605u64, Init::TorchDefault, Augment::Shift { max: 2 });
    let (mut smoothing, mut wd, mut val) = (0.1f32, 1e-4f32, 0usize);
    for arg in args.iter().skip(1) {
        let (k, v) = arg.split_once('=').ok_or_else(|| format!("expected key=value, got {arg}"))?;
        match (k, v) {
            ("epochs", v) => epochs = v.parse()?,
            ("lr", v) => lr = v.parse()?,
            ("seed", v) => seed = v.parse()?,
            ("init", "kaiming") => init = Init::KaimingNormal,
            ("init", "torch") => init = Init::TorchDefault,
            ("shift", "sample") => augment = Augment::Shift { max: 2 },
            ("shift", "batch") => augment = Augment::ShiftBatch { max: 2 },
            ("shift", "none") => augment = Augment::None,
            ("crop", v) => {
                augment = Augment::Steps(AugmentSteps { crop_padding: v.parse()?, ..AugmentSteps::default() })
            }
            ("smoothing", v) => smoothing = v.parse()?,
            ("wd", v) => wd = v.parse()?,
            ("val", v) => val = v.parse()?,
            _ => return Err(format!("unknown option {arg}").into()),
        }
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/mnist");
    let all = Dataset::from_idx(&dir.join("train-images-idx3-ubyte"), &dir.join("train-labels-idx1-ubyte"))?;
    // With `val=N` the last N training rows are the evaluation set and the test rows are not read.
    let (train, test, eval_name) = if val > 0 {
        if val >= all.len() {
            return Err(format!("val={val} leaves no training rows of {}", all.len()).into());
        }
        let (keep, per) = (all.len() - val, all.sample_shape.iter().product::<usize>());
        let part = |r: std::ops::Range<usize>| {
            Dataset::new(all.x[r.start * per..r.end * per].to_vec(), all.sample_shape.clone(), all.labels[r].to_vec())
        };
        (part(0..keep)?, part(keep..all.len())?, "validation")
    } else {
        let test = Dataset::from_idx(&dir.join("t10k-images-idx3-ubyte"), &dir.join("t10k-labels-idx1-ubyte"))?;
        (all, test, "test")
    };
    let graph = if name == "lenet_bn" { models::lenet_bn(seed, init)? } else { models::dwsep(seed, init)? };
    const BATCH: usize = 64;
    let steps = epochs * train.len().div_ceil(BATCH);
    let config = TrainerConfig {
        optimizer: OptimizerKind::adam(wd),
        schedule: Schedule::cosine(lr, steps),
        label_smoothing: smoothing,
        ..TrainerConfig::default()
    };
    let mut trainer = Trainer::new(graph, config)?;
    println!(
        "{name}: {} trainable tensors, {} parameters; {} train / {} {eval_name} rows; {epochs} epochs, lr {lr}, \
         batch {BATCH}, weight decay {wd}, label smoothing {smoothing}, seed {seed}, {init:?}, {augment:?}, {} threads, \
         GEMM {}",
        trainer.params().len(),
        trainer.params().num_scalars(trainer.graph()),
        train.len(),
        test.len(),
        rayon::current_num_threads(),
        lithe_train::gemm::kernel_name()
    );
    let mut train_time = 0f64;
    let mut acc = 0f64;
    for epoch in 0..epochs {
        let t0 = Instant::now();
        let (mut loss_sum, mut seen) = (0f64, 0usize);
        for (x, labels) in Batches::new(&train, BATCH, Some(seed.wrapping_add(epoch as u64)), augment) {
            let s = trainer.step(x, &labels)?;
            loss_sum += s.loss as f64 * labels.len() as f64;
            seen += labels.len();
        }
        let dt = t0.elapsed().as_secs_f64();
        train_time += dt;
        let t1 = Instant::now();
        acc = trainer.evaluate(&test, 250)?;
        println!(
            "epoch {:2}: train loss {:.4}, {eval_name} accuracy {:.1}%, {:.2} s ({:.0} images/s), eval {:.2} s",
            epoch + 1,
            loss_sum / seen as f64,
            100.0 * acc,
            dt,
            seen as f64 / dt,
            t1.elapsed().as_secs_f64()
        );
    }
    println!(
        "{name}: final {eval_name} accuracy {:.1}% after {epochs} epochs, training {:.1} s, {:.0} images/s",
        100.0 * acc,
        train_time,
        (epochs * train.len()) as f64 / train_time
    );
    Ok(())
}
