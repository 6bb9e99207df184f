//! Depthwise convolution on MobileNetV2/V3-like shapes: fast kernel (bias + ReLU6 fused) at 1
//! and 2 threads, and the reference Conv on one shape for comparison.
//!
//! Throughput is reported in elements per second where one element is one FLOP
//! (2 * k * k per output), so `Gelem/s` reads as GFLOP/s. A summary with GB/s (input + output
//! + weights, each touched once) is printed first.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lithe_ir::Tensor;
use lithe_ir::op::ConvAttrs;
use lithe_kernels::fast::{DwPads, DwParams, FastActivation, depthwise_conv2d_nchw};
use lithe_kernels::reference::conv::conv;
use std::hint::black_box;
use std::time::Instant;

/// (channels, height = width, kernel, stride).
const SHAPES: [(usize, usize, usize, usize); 9] = [
    (576, 14, 3, 2),
    (32, 112, 3, 1),
    (96, 112, 3, 2),
    (144, 56, 3, 1),
    (192, 28, 3, 1),
    (576, 14, 3, 1),
    (960, 7, 3, 1),
    (240, 14, 5, 1),
    (672, 14, 5, 2),
];

struct Setup {
    c: usize,
    h: usize,
    params: DwParams,
    x: Vec<f32>,
    w: Vec<f32>,
    b: Vec<f32>,
    out: Vec<f32>,
    flops: u64,
    bytes: u64,
}

fn setup(c: usize, h: usize, k: usize, s: usize) -> Setup {
    let p = k / 2;
    let params = DwParams { kernel: k, stride: s, pads: DwPads { top: p, left: p, bottom: p, right: p } };
    let (oh, ow) = params.output_size(h, h).expect("shape fits");
    let x: Vec<f32> = (0..c * h * h).map(|i| (i % 17) as f32 * 0.1 - 0.8).collect();
    let w: Vec<f32> = (0..c * k * k).map(|i| (i % 7) as f32 * 0.05 - 0.15).collect();
    let b: Vec<f32> = (0..c).map(|i| i as f32 * 0.01).collect();
    let outputs = (c * oh * ow) as u64;
    let flops = outputs * 2 * (k * k) as u64;
    let bytes = 4 * (x.len() as u64 + outputs + w.len() as u64 + c as u64);
    Setup { c, h, params, x, w, b, out: vec![0.0; c * oh * ow], flops, bytes }
}

const RELU6: FastActivation<'static> = FastActivation::Clip { min: 0.0, max: 6.0 };

fn run(s: &mut Setup, threads: usize) {
    depthwise_conv2d_nchw(
        black_box(&s.x),
        1,
        s.c,
        s.h,
        s.h,
        &s.w,
        Some(&s.b),
        &s.params,
        None,
        &RELU6,
        &mut s.out,
        threads,
    )
    .expect("valid shapes");
    black_box(&s.out);
}

fn summary() {
    eprintln!("{:<28} {:>8} {:>10} {:>8}", "shape (1 thread)", "us", "GFLOP/s", "GB/s");
    for &(c, h, k, st) in &SHAPES {
        let mut s = setup(c, h, k, st);
        run(&mut s, 1);
        let iters = (2e8 / s.flops as f64).clamp(10.0, 2000.0) as u32;
        let t = Instant::now();
        for _ in 0..iters {
            run(&mut s, 1);
        }
        let sec = t.elapsed().as_secs_f64() / f64::from(iters);
        eprintln!(
            "{:<28} {:>8.1} {:>10.2} {:>8.2}",
            format!("1x{c}x{h}x{h} {k}x{k}s{st}"),
            sec * 1e6,
            s.flops as f64 / sec / 1e9,
            s.bytes as f64 / sec / 1e9
        );
    }
}

fn bench(cr: &mut Criterion) {
    summary();
    let mut g = cr.benchmark_group("f32_dwconv");
    for &(c, h, k, st) in &SHAPES {
        let mut s = setup(c, h, k, st);
        g.throughput(Throughput::Elements(s.flops));
        for threads in [1, 2] {
            let id = BenchmarkId::new(format!("1x{c}x{h}x{h}_{k}x{k}s{st}"), format!("t{threads}"));
            g.bench_function(id, |b| b.iter(|| run(&mut s, threads)));
        }
    }
    // The reference (im2col + GEMM per group) on one shape.
    let (c, h, k) = (144, 56, 3);
    let s = setup(c, h, k, 1);
    g.throughput(Throughput::Elements(s.flops));
    let attrs = ConvAttrs { pads: vec![1; 4], group: c, ..ConvAttrs::default() };
    let xt = Tensor::from_vec(&[1, c, h, h], s.x.clone()).expect("shape");
    let wt = Tensor::from_vec(&[c, 1, k, k], s.w.clone()).expect("shape");
    let bt = Tensor::from_vec(&[c], s.b.clone()).expect("shape");
    g.bench_function(BenchmarkId::new(format!("1x{c}x{h}x{h}_{k}x{k}s1"), "reference"), |b| {
        b.iter(|| conv(&attrs, black_box(&xt), &wt, Some(&bt)).expect("valid"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
