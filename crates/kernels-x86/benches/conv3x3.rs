//! 3x3 stride-1 pad-1 convs: Winograd F(2,3) / F(4,3) / F(6,3) vs im2col + GEMM, with the best
//! available microkernel. Throughput is direct-conv FLOPs (`2 * C_in * 9 * C_out * OH * OW`).
//! Shapes: ResNet18/ResNet50's 3x3 convs (`C_in = C_out`) and SqueezeNet 1.1's expand convs;
//! `SHAPES=resnet` or `SHAPES=squeezenet` runs one set, `THREADS=N` sets the threads.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lithe_ir::Tensor;
use lithe_ir::op::ConvAttrs;
use lithe_kernels::conv2d_gemm::Conv2dGemm;
use lithe_kernels::conv2d_winograd::{Conv2dWinograd, WinogradTile};
use lithe_kernels::gemm::Residual;
use lithe_kernels_x86::available_f32_gemm;
use std::hint::black_box;
use std::time::Duration;

fn bench(c: &mut Criterion) {
    let Some(&kernel) = available_f32_gemm().first() else { return };
    let threads: usize = std::env::var("THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let resnet: &[(usize, usize, usize)] = &[(64, 64, 56), (128, 128, 28), (256, 256, 14), (512, 512, 7)];
    let squeezenet: &[(usize, usize, usize)] = &[(16, 64, 55), (32, 128, 27), (48, 192, 13), (64, 256, 13)];
    let shapes: Vec<(usize, usize, usize)> = match std::env::var("SHAPES").as_deref() {
        Ok("resnet") => resnet.to_vec(),
        Ok("squeezenet") => squeezenet.to_vec(),
        _ => resnet.iter().chain(squeezenet).copied().collect(),
    };
    let attrs = ConvAttrs { pads: vec![1, 1, 1, 1], ..ConvAttrs::default() };
    let mut g = c.benchmark_group(format!("conv3x3_{}_t{threads}", kernel.name()));
    g.warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1)).sample_size(10);
    for &(ci, co, hw) in &shapes {
        let n = co * ci * 9;
        let w = Tensor::from_vec(&[co, ci, 3, 3], (0..n).map(|i| (i % 13) as f32 * 0.01 - 0.06).collect()).unwrap();
        let x: Vec<f32> = (0..ci * hw * hw).map(|i| (i % 7) as f32 * 0.1 - 0.3).collect();
        let shape = [1, ci, hw, hw];
        let mut y = vec![0.0; co * hw * hw];
        let mut scratch = Vec::new();
        g.throughput(Throughput::Elements((2 * ci * 9 * co * hw * hw) as u64));
        let id = format!("{ci}to{co}_{hw}x{hw}");
        let gemm = Conv2dGemm::prepare(kernel, &attrs, &w, None, None).unwrap();
        g.bench_function(BenchmarkId::new("im2col_gemm", &id), |b| {
            b.iter(|| gemm.run(black_box(&x), &shape, Residual::None, &mut y, &mut scratch, threads).unwrap())
        });
        for tile in [WinogradTile::F2x3, WinogradTile::F4x3, WinogradTile::F6x3] {
            let wino = Conv2dWinograd::prepare(kernel, &attrs, &w, None, None, tile).unwrap();
            g.bench_function(BenchmarkId::new(format!("winograd_{tile:?}"), &id), |b| {
                b.iter(|| wino.run(black_box(&x), &shape, Residual::None, &mut y, &mut scratch, threads).unwrap())
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
