//! Int8 depthwise convolution (u8 in and out, zero point 128, ReLU6, per-channel weight scales)
//! next to the f32 depthwise kernel (ReLU6) on the MobileNetV1/V2 depthwise shapes and two 5x5
//! ones, 1 thread (`DW_THREADS=2` for two).
//!
//! A summary table (median µs of interleaved runs, int8 and f32 side by side) is printed first,
//! then the criterion groups. `LITHE_INT8_DW=f32` (or `=i16`) runs the previous int8 kernels.
//! Elements/s = 2·k²·outputs.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lithe_kernels::fast::{DwPads, DwParams, FastActivation, depthwise_conv2d_nchw};
use lithe_kernels::int8::{I8Gemm4x8c4Generic, QActivation, QConvGeometry, QLinearConv2d, QuantEpilogue, QuantOut};
use std::hint::black_box;
use std::time::Instant;

/// (channels, height = width, kernel, stride).
const SHAPES: [(usize, usize, usize, usize); 17] = [
    (32, 112, 3, 1),
    (96, 112, 3, 2),
    (64, 112, 3, 2),
    (144, 56, 3, 1),
    (144, 56, 3, 2),
    (128, 56, 3, 1),
    (192, 28, 3, 1),
    (192, 28, 3, 2),
    (256, 28, 3, 1),
    (384, 14, 3, 1),
    (512, 14, 3, 1),
    (576, 14, 3, 1),
    (576, 14, 3, 2),
    (960, 7, 3, 1),
    (1024, 7, 3, 1),
    (240, 14, 5, 1),
    (672, 14, 5, 2),
];

static GENERIC: I8Gemm4x8c4Generic = I8Gemm4x8c4Generic;

struct Case {
    label: String,
    ch: usize,
    hw: usize,
    flops: u64,
    conv: QLinearConv2d,
    x: Vec<u8>,
    bias: Vec<f32>,
    out: Vec<u8>,
    xf: Vec<f32>,
    wf: Vec<f32>,
    params: DwParams,
    outf: Vec<f32>,
}

fn case(ch: usize, hw: usize, k: usize, s: usize) -> Case {
    let p = k / 2;
    let o = (hw + 2 * p - k) / s + 1;
    let x: Vec<u8> = (0..ch * hw * hw).map(|i| (i * 5 % 253) as u8).collect();
    let w: Vec<i8> = (0..ch * k * k).map(|i| ((i * 7 % 251) as i32 - 125) as i8).collect();
    let w_scale: Vec<f32> = (0..ch).map(|i| 0.001 + (i % 7) as f32 * 1e-4).collect();
    let bias: Vec<f32> = (0..ch).map(|i| (i % 5) as f32 * 0.1).collect();
    let geom = QConvGeometry { strides: [s, s], pads: [p; 4], dilations: [1, 1], groups: ch };
    let conv = QLinearConv2d::prepare(&GENERIC, &w, [ch, 1, k, k], &w_scale, geom).expect("prepare");
    assert!(conv.is_depthwise());
    Case {
        label: format!("c{ch}_{hw}x{hw}_k{k}s{s}"),
        ch,
        hw,
        flops: (2 * k * k * ch * o * o) as u64,
        conv,
        xf: x.iter().map(|&v| v as f32 * 0.01).collect(),
        x,
        wf: w.iter().map(|&v| v as f32 * 0.01).collect(),
        bias,
        out: vec![0u8; ch * o * o],
        params: DwParams { kernel: k, stride: s, pads: DwPads { top: p, left: p, bottom: p, right: p } },
        outf: vec![0f32; ch * o * o],
    }
}

fn run_int8(c: &mut Case, threads: usize) {
    let ep = QuantEpilogue {
        x_scale: 0.02,
        bias: Some(&c.bias),
        bias_i32: None,
        activation: QActivation::Clamp { min: 0.0, max: 6.0 },
    };
    let q = QuantOut::U8 { data: &mut c.out, scale: 0.05, zero_point: 0 };
    c.conv.run(black_box(&c.x), [1, c.ch, c.hw, c.hw], 128, &ep, q, threads).expect("int8 dw");
    black_box(&mut c.out);
}

fn run_f32(c: &mut Case, threads: usize) {
    let act = FastActivation::Clip { min: 0.0, max: 6.0 };
    let (ch, hw) = (c.ch, c.hw);
    depthwise_conv2d_nchw(
        black_box(&c.xf),
        1,
        ch,
        hw,
        hw,
        &c.wf,
        Some(&c.bias),
        &c.params,
        None,
        &act,
        &mut c.outf,
        threads,
    )
    .expect("f32 dw");
    black_box(&mut c.outf);
}

fn threads() -> usize {
    std::env::var("DW_THREADS").ok().and_then(|t| t.parse().ok()).unwrap_or(1)
}

/// Median µs of `reps` timed rounds of `iters` calls, int8 and f32 rounds interleaved.
fn summary() {
    let t = threads();
    eprintln!("{:<22} {:>9} {:>9} {:>7}", format!("shape ({t} thread)"), "int8 us", "f32 us", "f32/i8");
    for &(ch, hw, k, s) in &SHAPES {
        let mut c = case(ch, hw, k, s);
        let iters = (4e7 / c.flops as f64).clamp(5.0, 2000.0) as u32;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..15 {
            let t0 = Instant::now();
            for _ in 0..iters {
                run_int8(&mut c, t);
            }
            a.push(t0.elapsed().as_secs_f64() / f64::from(iters));
            let t0 = Instant::now();
            for _ in 0..iters {
                run_f32(&mut c, t);
            }
            b.push(t0.elapsed().as_secs_f64() / f64::from(iters));
        }
        let med = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2] * 1e6
        };
        let (i8us, f32us) = (med(&mut a), med(&mut b));
        eprintln!("{:<22} {:>9.1} {:>9.1} {:>7.2}", c.label, i8us, f32us, f32us / i8us);
    }
}

fn bench(cr: &mut Criterion) {
    summary();
    let t = threads();
    let mut g = cr.benchmark_group(format!("int8_dwconv_t{t}"));
    g.sample_size(20);
    for &(ch, hw, k, s) in &SHAPES {
        let mut c = case(ch, hw, k, s);
        g.throughput(Throughput::Elements(c.flops));
        let label = c.label.clone();
        g.bench_function(BenchmarkId::new("qu8s8", &label), |b| b.iter(|| run_int8(&mut c, t)));
        g.bench_function(BenchmarkId::new("f32", &label), |b| b.iter(|| run_f32(&mut c, t)));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
