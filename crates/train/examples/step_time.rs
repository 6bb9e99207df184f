//! Where a training step's time goes: forward (train mode), backward, per model, batch 64.
//!
//! ```sh
//! cargo run --release -p lithe-train --example step_time
//! ```

use lithe_ir::{Outlet, Tensor};
use lithe_train::models::{self, Init};
use lithe_train::rng::Rng;
use lithe_train::{Mode, Params, Tape};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const BATCH: usize = 64;
    const REPEATS: usize = 20;
    let mut rng = Rng::new(1);
    let x = Tensor::from_vec(&[BATCH, 1, 28, 28], (0..BATCH * 784).map(|_| rng.uniform() as f32).collect())?;
    for (name, g) in
        [("lenet_bn", models::lenet_bn(1, Init::TorchDefault)?), ("dwsep", models::dwsep(1, Init::TorchDefault)?)]
    {
        let tape = Tape::new(&g)?;
        let targets: Vec<Outlet> = Params::select(&g, &[]).outlets();
        let out = g.outputs()[0];
        let (mut tf, mut tb) = (0f64, 0f64);
        for i in 0..REPEATS + 2 {
            let t0 = Instant::now();
            let fwd = tape.forward(vec![x.clone()], Mode::Train)?;
            let t1 = Instant::now();
            let seed = ndarray::ArrayD::from_elem(fwd.f32(out)?.raw_dim(), 1.0 / BATCH as f32);
            tape.backward(&fwd, vec![(out, seed)], &targets)?;
            let t2 = Instant::now();
            if i >= 2 {
                tf += (t1 - t0).as_secs_f64();
                tb += (t2 - t1).as_secs_f64();
            }
        }
        let (f, b) = (1e3 * tf / REPEATS as f64, 1e3 * tb / REPEATS as f64);
        println!(
            "{name}: forward {f:.2} ms, backward {b:.2} ms per batch of {BATCH} ({:.0} images/s for both), {} threads",
            BATCH as f64 / ((f + b) / 1e3),
            rayon::current_num_threads()
        );
    }
    Ok(())
}
