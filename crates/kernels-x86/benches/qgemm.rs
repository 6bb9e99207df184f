//! Int8 GEMM throughput next to f32 on the same shapes (criterion's elements/s = 2·m·n·k
//! operations/s, i.e. GOPS for int8 and GFLOP/s for f32): square sizes, conv-shaped problems
//! (`m` output channels, `k` depth, `n` positions) and MobileNetV2's pointwise convs.
//!
//! int8: weights packed once ([`PackedI8Weights`]), u8 activations packed per call, u8 output
//! requantized with per-channel scales and bias (the full fused epilogue). f32: the best f32
//! kernel with its weights packed once (`PackedA`) and the activations strided, no epilogue.
//! `GEMM_THREADS` sets the thread count (default 1).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lithe_kernels::fast::{DwPads, DwParams, FastActivation, depthwise_conv2d_nchw};
use lithe_kernels::gemm::{F32Gemm4x8Generic, F32GemmMicrokernel, GemmEpilogue, GemmInput, MatRef, PackedA, sgemm};
use lithe_kernels::int8::{
    I8Gemm4x8c4Generic, I8Input, PackedI8Weights, QActivation, QConvGeometry, QLinearConv2d, QuantEpilogue, QuantOut,
    U8MatRef, i8_gemm,
};
use lithe_kernels_x86::{available_i8_gemm, best_i8_gemm, detect_f32_gemm};
use std::hint::black_box;

/// (label, m, n, k)
const SHAPES: &[(&str, usize, usize, usize)] = &[
    ("sq512", 512, 512, 512),
    ("sq1024", 1024, 1024, 1024),
    ("sq2048", 2048, 2048, 2048),
    ("conv_m512_k512_n196", 512, 196, 512),
    ("conv_m1024_k1024_n49", 1024, 49, 1024),
    ("conv_m64_k64_n3136", 64, 3136, 64),
    ("conv_m64_k576_n3136", 64, 3136, 576),
    ("mbv2_m144_k24_n3136", 144, 3136, 24),
    ("mbv2_m32_k144_n3136", 32, 3136, 144),
    ("mbv2_m384_k64_n196", 384, 196, 64),
    ("mbv2_m64_k384_n196", 64, 196, 384),
    ("mbv2_m960_k160_n49", 960, 49, 160),
    ("mbv2_m1280_k320_n49", 1280, 49, 320),
    // ResNet50's 3x3 convs (im2col depth 9·c_in) and 1x1 convs, MobileNetV2's first expansion (with
    // conv_m64_k576_n3136, mbv2_m144_k24_n3136 and mbv2_m1280_k320_n49 above).
    ("r50_m128_k1152_n784", 128, 784, 1152),
    ("r50_m256_k2304_n196", 256, 196, 2304),
    ("r50_m512_k4608_n49", 512, 49, 4608),
    ("r50_m256_k64_n3136", 256, 3136, 64),
    ("r50_m64_k256_n3136", 64, 3136, 256),
    ("r50_m512_k128_n784", 512, 784, 128),
    ("r50_m1024_k256_n196", 1024, 196, 256),
    ("r50_m2048_k512_n49", 2048, 49, 512),
    ("mbv2_m96_k16_n12544", 96, 12544, 16),
];

fn bench(c: &mut Criterion) {
    let threads: usize = std::env::var("GEMM_THREADS").ok().and_then(|t| t.parse().ok()).unwrap_or(1);
    let mut i8_kernels = available_i8_gemm();
    static GENERIC: I8Gemm4x8c4Generic = I8Gemm4x8c4Generic;
    i8_kernels.push(&GENERIC);
    let f32_kernel: &dyn F32GemmMicrokernel = detect_f32_gemm().unwrap_or(&F32Gemm4x8Generic);
    let mut g = c.benchmark_group(format!("qgemm_t{threads}"));
    g.sample_size(10);
    for &(label, m, n, k) in SHAPES {
        g.throughput(Throughput::Elements((2 * m * n * k) as u64));
        let w: Vec<i8> = (0..m * k).map(|i| ((i * 7 % 251) as i32 - 125) as i8).collect();
        let x: Vec<u8> = (0..k * n).map(|i| (i * 5 % 253) as u8).collect();
        let w_scale: Vec<f32> = (0..m).map(|i| 0.001 + (i % 7) as f32 * 1e-4).collect();
        let bias: Vec<f32> = (0..m).map(|i| (i % 5) as f32 * 0.1).collect();
        let ep = QuantEpilogue { x_scale: 0.02, bias: Some(&bias), bias_i32: None, activation: QActivation::Relu };
        let mut out = vec![0u8; m * n];
        for &kern in &i8_kernels {
            if kern.name().contains("generic") && m * n * k > 512 * 512 * 512 {
                continue;
            }
            let packed = PackedI8Weights::pack(kern, m, k, &w, &w_scale).expect("pack");
            let xv = U8MatRef::new(&x, k, n, n).expect("x view");
            g.bench_function(BenchmarkId::new(kern.name(), label), |bch| {
                bch.iter(|| {
                    let o = QuantOut::U8 { data: &mut out, scale: 0.05, zero_point: 3 };
                    i8_gemm(kern, &packed, I8Input::Dense(xv), 128, &ep, o, n, threads).expect("i8_gemm");
                    black_box(&mut out);
                })
            });
        }
        let a: Vec<f32> = w.iter().map(|&v| v as f32 * 0.001).collect();
        let b: Vec<f32> = x.iter().map(|&v| v as f32 * 0.01).collect();
        let mut outf = vec![0f32; m * n];
        let av = MatRef::row_major(&a, m, k).expect("A view");
        let bv = MatRef::row_major(&b, k, n).expect("B view");
        let pa = PackedA::pack(f32_kernel, av).expect("pack A");
        let fep = GemmEpilogue::default();
        g.bench_function(BenchmarkId::new(format!("f32/{}", f32_kernel.name()), label), |bch| {
            bch.iter(|| {
                sgemm(f32_kernel, m, n, k, GemmInput::Packed(&pa), GemmInput::Strided(bv), &mut outf, n, &fep, threads)
                    .expect("sgemm");
                black_box(&mut outf);
            })
        });
    }
    g.finish();
}

/// MobileNetV2's depthwise convs and two 5x5 ones (channels, height = width, kernel, stride):
/// the int8 direct kernel (u8 out, ReLU6) next to the f32 one (ReLU6). Elements/s =
/// 2·k²·outputs. `LITHE_INT8_DW=i16` runs the int8 i16 row kernel instead of the phase planes.
fn depthwise(c: &mut Criterion) {
    let threads: usize = std::env::var("GEMM_THREADS").ok().and_then(|t| t.parse().ok()).unwrap_or(1);
    let shapes = [
        (32usize, 112usize, 3usize, 1usize),
        (96, 112, 3, 2),
        (144, 56, 3, 1),
        (144, 56, 3, 2),
        (192, 28, 3, 1),
        (192, 28, 3, 2),
        (384, 14, 3, 1),
        (576, 14, 3, 1),
        (576, 14, 3, 2),
        (960, 7, 3, 1),
        (240, 14, 5, 1),
        (672, 14, 5, 2),
    ];
    let mut g = c.benchmark_group(format!("qdwconv_t{threads}"));
    g.sample_size(10);
    for (ch, hw, k, s) in shapes {
        let label = format!("c{ch}_{hw}x{hw}_k{k}s{s}");
        let p = k / 2;
        let o = (hw + 2 * p - k) / s + 1;
        g.throughput(Throughput::Elements((2 * k * k * ch * o * o) as u64));
        let x: Vec<u8> = (0..ch * hw * hw).map(|i| (i * 5 % 253) as u8).collect();
        let w: Vec<i8> = (0..ch * k * k).map(|i| ((i * 7 % 251) as i32 - 125) as i8).collect();
        let w_scale: Vec<f32> = (0..ch).map(|i| 0.001 + (i % 7) as f32 * 1e-4).collect();
        let bias: Vec<f32> = (0..ch).map(|i| (i % 5) as f32 * 0.1).collect();
        let geom = QConvGeometry { strides: [s, s], pads: [p; 4], dilations: [1, 1], groups: ch };
        let conv = QLinearConv2d::prepare(best_i8_gemm(), &w, [ch, 1, k, k], &w_scale, geom).expect("prepare");
        let ep = QuantEpilogue {
            x_scale: 0.02,
            bias: Some(&bias),
            bias_i32: None,
            activation: QActivation::Clamp { min: 0.0, max: 6.0 },
        };
        let mut out = vec![0u8; ch * o * o];
        g.bench_function(BenchmarkId::new("qu8s8_dwconv", &label), |b| {
            b.iter(|| {
                let q = QuantOut::U8 { data: &mut out, scale: 0.05, zero_point: 0 };
                conv.run(&x, [1, ch, hw, hw], 128, &ep, q, threads).expect("run");
                black_box(&mut out);
            })
        });
        let xf: Vec<f32> = x.iter().map(|&v| v as f32 * 0.01).collect();
        let wf: Vec<f32> = w.iter().map(|&v| v as f32 * 0.01).collect();
        let params = DwParams { kernel: k, stride: s, pads: DwPads { top: p, left: p, bottom: p, right: p } };
        let mut outf = vec![0f32; ch * o * o];
        let act = FastActivation::Clip { min: 0.0, max: 6.0 };
        g.bench_function(BenchmarkId::new("f32_dwconv", &label), |b| {
            b.iter(|| {
                depthwise_conv2d_nchw(&xf, 1, ch, hw, hw, &wf, Some(&bias), &params, None, &act, &mut outf, threads)
                    .expect("f32 dw");
                black_box(&mut outf);
            })
        });
    }
    g.finish();
}

/// QuantizeLinear / DequantizeLinear on a 1x32x112x112 tensor (MobileNetV2's first activation),
/// per tensor and per channel, u8: the fast slices next to the reference's scalar
/// `quantize_value` loop. Throughput in bytes read + written (GB/s).
fn quantize(c: &mut Criterion) {
    use lithe_kernels::int8::{
        dequantize_linear, dequantize_linear_per_channel, quantize_linear, quantize_linear_per_channel,
    };
    let threads: usize = std::env::var("GEMM_THREADS").ok().and_then(|t| t.parse().ok()).unwrap_or(1);
    let (ch, hw) = (32usize, 112 * 112);
    let n = ch * hw;
    let x: Vec<f32> = (0..n).map(|i| ((i * 7919) % 2001) as f32 * 0.013 - 13.0).collect();
    let scales: Vec<f32> = (0..ch).map(|i| 0.05 + i as f32 * 1e-3).collect();
    let zps: Vec<u8> = (0..ch).map(|i| (100 + i) as u8).collect();
    let mut q = vec![0u8; n];
    let mut y = vec![0f32; n];
    let mut g = c.benchmark_group(format!("quantize_t{threads}"));
    g.sample_size(20);
    g.throughput(Throughput::Bytes((5 * n) as u64));
    g.bench_function("quantize_u8/1x32x112x112", |b| {
        b.iter(|| quantize_linear(black_box(&x), 0.05, 128u8, &mut q, threads).expect("quantize"))
    });
    g.bench_function("quantize_u8_per_channel/1x32x112x112", |b| {
        b.iter(|| quantize_linear_per_channel(black_box(&x), &scales, &zps, hw, &mut q, threads).expect("quantize"))
    });
    g.bench_function("reference_quantize_value/1x32x112x112", |b| {
        b.iter(|| {
            for (o, &v) in q.iter_mut().zip(black_box(&x)) {
                *o = lithe_kernels::reference::quantize::quantize_value(v, 0.05, 128, 0, 255) as u8;
            }
        })
    });
    g.bench_function("dequantize_u8/1x32x112x112", |b| {
        b.iter(|| dequantize_linear(black_box(&q), 0.05, 128u8, &mut y, threads).expect("dequantize"))
    });
    g.bench_function("dequantize_u8_per_channel/1x32x112x112", |b| {
        b.iter(|| dequantize_linear_per_channel(black_box(&q), &scales, &zps, hw, &mut y, threads).expect("dequantize"))
    });
    g.finish();
}

criterion_group!(benches, bench, depthwise, quantize);
criterion_main!(benches);
