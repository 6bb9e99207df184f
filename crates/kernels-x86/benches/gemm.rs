//! sgemm throughput (criterion reports elements/s = FLOP/s): square sizes and conv-shaped
//! problems, for every available kernel plus the generic one on small sizes.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lithe_kernels::gemm::{F32Gemm4x8Generic, F32GemmMicrokernel, GemmEpilogue, GemmInput, MatRef, PackedA, sgemm};
use lithe_kernels_x86::available_f32_gemm;
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let shapes: &[(&str, usize, usize, usize)] = &[
        ("sq256", 256, 256, 256),
        ("sq512", 512, 512, 512),
        ("sq1024", 1024, 1024, 1024),
        ("sq2048", 2048, 2048, 2048),
        ("conv_m64_k576_n3136", 64, 3136, 576),
        ("conv_m1280_k320_n49", 1280, 49, 320),
        ("conv_m512_k4608_n49", 512, 49, 4608),
    ];
    let threads: usize = std::env::var("GEMM_THREADS").ok().and_then(|t| t.parse().ok()).unwrap_or(1);
    let mut kernels: Vec<&dyn F32GemmMicrokernel> = available_f32_gemm();
    kernels.push(&F32Gemm4x8Generic);
    let mut g = c.benchmark_group(format!("sgemm_t{threads}"));
    g.sample_size(10);
    for &(label, m, n, k) in shapes {
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.01).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 11) as f32 - 5.0) * 0.01).collect();
        let mut out = vec![0f32; m * n];
        g.throughput(Throughput::Elements((2 * m * n * k) as u64));
        for &kern in &kernels {
            if kern.name().contains("generic") && m * n * k > 512 * 512 * 512 {
                continue;
            }
            let av = MatRef::row_major(&a, m, k).expect("A view");
            let bv = MatRef::row_major(&b, k, n).expect("B view");
            let ep = GemmEpilogue::default();
            g.bench_function(BenchmarkId::new(kern.name(), label), |bch| {
                bch.iter(|| {
                    sgemm(kern, m, n, k, GemmInput::Strided(av), GemmInput::Strided(bv), &mut out, n, &ep, threads)
                        .expect("sgemm");
                    black_box(&mut out);
                })
            });
            if label.starts_with("conv") {
                // Conv weights (A) packed once at load time.
                let pa = PackedA::pack(kern, av).expect("pack A");
                g.bench_function(BenchmarkId::new(format!("{}/packed_a", kern.name()), label), |bch| {
                    bch.iter(|| {
                        sgemm(kern, m, n, k, GemmInput::Packed(&pa), GemmInput::Strided(bv), &mut out, n, &ep, threads)
                            .expect("sgemm");
                        black_box(&mut out);
                    })
                });
            }
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
