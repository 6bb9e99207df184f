//! Load a `.nb` file repeatedly (for profiling the load path):
//! `cargo run --release -p lithe-runtime --example load_loop -- model.nb [runs]`.

use lithe_runtime::{Predictor, PredictorOptions};
use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = PathBuf::from(args.next().ok_or("usage: load_loop MODEL.nb [RUNS]")?);
    let runs: usize = args.next().map(|r| r.parse()).transpose()?.unwrap_or(1000);
    let start = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(Predictor::from_file(&path, PredictorOptions::default())?);
    }
    println!("{runs} loads of {}: {:?} each", path.display(), start.elapsed() / runs as u32);
    Ok(())
}
