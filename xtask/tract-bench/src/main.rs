//! `tract-bench MODEL.onnx WARMUP REPEATS`: load an ONNX model with a fixed 1x3x224x224 f32
//! input, optimize it, run it WARMUP times untimed and REPEATS times timed, and print one JSON
//! line `{"engine":"tract","version":...,"median_ms":...,"min_ms":...,"max_ms":...}`.
//!
//! tract runs a model on the calling thread only, so there is no thread count.

use std::time::Instant;
use tract_onnx::prelude::*;

fn main() -> TractResult<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: tract-bench MODEL.onnx WARMUP REPEATS");
        std::process::exit(2);
    }
    let warmup: usize = args[2].parse()?;
    let repeats: usize = args[3].parse::<usize>()?.max(1);
    let model = tract_onnx::onnx()
        .model_for_path(&args[1])?
        .with_input_fact(0, f32::fact([1, 3, 224, 224]).into())?
        .into_optimized()?
        .into_runnable()?;
    // A deterministic, non-constant input (the values do not matter for timing).
    let data: Vec<f32> = (0..3 * 224 * 224).map(|i| ((i % 251) as f32 - 125.0) / 125.0).collect();
    let input: Tensor = tract_ndarray::Array4::from_shape_vec((1, 3, 224, 224), data)?.into();
    for _ in 0..warmup {
        model.run(tvec!(input.clone().into()))?;
    }
    let mut times = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let inp = tvec!(input.clone().into());
        let start = Instant::now();
        model.run(inp)?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let n = times.len();
    let median = if n % 2 == 1 { times[n / 2] } else { (times[n / 2 - 1] + times[n / 2]) / 2.0 };
    println!(
        "{{\"engine\":\"tract\",\"version\":\"{}\",\"median_ms\":{median:.4},\"min_ms\":{:.4},\"max_ms\":{:.4}}}",
        env!("TRACT_VERSION"),
        times[0],
        times[n - 1]
    );
    Ok(())
}
