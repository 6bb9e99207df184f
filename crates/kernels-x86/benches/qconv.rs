//! Int8 convs, 1 thread by default: ResNet50's 7x7 stride-2 stem, its 3x3 convs and
//! MobileNetV2's first conv (implicit im2col), plus the shallow pointwise convs (depth 16-64,
//! the input plane read in place) of both models, on the best int8 kernel.
//! Criterion's elements/s are 2·c_out·(c_in·kh·kw)·oh·ow operations/s, i.e. GOPS. u8 output
//! with per-channel scales, bias and ReLU (the models' fused epilogue). `GEMM_THREADS` sets the
//! thread count.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lithe_kernels::int8::{QActivation, QConvGeometry, QLinearConv2d, QuantEpilogue, QuantOut};
use lithe_kernels_x86::best_i8_gemm;
use std::hint::black_box;
use std::time::Duration;

/// (label, c_in, h = w, c_out, kernel, stride, pad)
const SHAPES: &[(&str, usize, usize, usize, usize, usize, usize)] = &[
    ("resnet50_conv1_3x224_64_k7s2", 3, 224, 64, 7, 2, 3),
    ("resnet50_64x56_64_k3s1", 64, 56, 64, 3, 1, 1),
    ("resnet50_128x28_128_k3s1", 128, 28, 128, 3, 1, 1),
    ("resnet50_256x14_256_k3s1", 256, 14, 256, 3, 1, 1),
    ("resnet50_512x7_512_k3s1", 512, 7, 512, 3, 1, 1),
    ("resnet50_128x56_128_k3s2", 128, 56, 128, 3, 2, 1),
    ("mbv2_conv1_3x224_32_k3s2", 3, 224, 32, 3, 2, 1),
    ("mbv2_pw_16x112_96", 16, 112, 96, 1, 1, 0),
    ("mbv2_pw_24x56_144", 24, 56, 144, 1, 1, 0),
    ("resnet50_pw_64x56_64", 64, 56, 64, 1, 1, 0),
    ("resnet50_pw_64x56_256", 64, 56, 256, 1, 1, 0),
];

fn bench(c: &mut Criterion) {
    let threads: usize = std::env::var("GEMM_THREADS").ok().and_then(|t| t.parse().ok()).unwrap_or(1);
    let kern = best_i8_gemm();
    let mut g = c.benchmark_group(format!("qconv_t{threads}"));
    g.sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    for &(label, ci, hw, co, k, s, p) in SHAPES {
        let o = (hw + 2 * p - k) / s + 1;
        g.throughput(Throughput::Elements((2 * co * ci * k * k * o * o) as u64));
        let x: Vec<u8> = (0..ci * hw * hw).map(|i| (i * 5 % 253) as u8).collect();
        let w: Vec<i8> = (0..co * ci * k * k).map(|i| ((i * 7 % 251) as i32 - 125) as i8).collect();
        let w_scale: Vec<f32> = (0..co).map(|i| 0.001 + (i % 7) as f32 * 1e-4).collect();
        let bias: Vec<f32> = (0..co).map(|i| (i % 5) as f32 * 0.1).collect();
        let geom = QConvGeometry { strides: [s, s], pads: [p; 4], dilations: [1, 1], groups: 1 };
        let conv = QLinearConv2d::prepare(kern, &w, [co, ci, k, k], &w_scale, geom).expect("prepare");
        let ep = QuantEpilogue { x_scale: 0.02, bias: Some(&bias), bias_i32: None, activation: QActivation::Relu };
        let mut out = vec![0u8; co * o * o];
        g.bench_function(BenchmarkId::new(kern.name(), label), |b| {
            b.iter(|| {
                let q = QuantOut::U8 { data: &mut out, scale: 0.05, zero_point: 0 };
                conv.run(black_box(&x), [1, ci, hw, hw], 128, &ep, q, threads).expect("run");
                black_box(&mut out);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
