//! sgemm throughput (criterion reports elements/s = FLOP/s): square sizes and conv-shaped
//! problems, for every available kernel plus the generic one on small sizes.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lithe_kernels::gemm::{
    Blocking, F32Gemm4x8Generic, F32GemmMicrokernel, GemmEpilogue, GemmInput, MatRef, PackedA, PackedB, TileEpilogue,
    TileOut, sgemm,
};
use lithe_kernels_x86::available_f32_gemm;
use std::hint::black_box;

/// A kernel with its blocking overridden by `GEMM_KC` / `GEMM_MC` / `GEMM_NC` (for tuning).
struct Tuned(&'static dyn F32GemmMicrokernel, Blocking);

impl F32GemmMicrokernel for Tuned {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn mr(&self) -> usize {
        self.0.mr()
    }
    fn nr(&self) -> usize {
        self.0.nr()
    }
    fn blocking(&self) -> Blocking {
        self.1
    }
    fn run(&self, k: usize, a: &[f32], b: &[f32], c: &mut TileOut<'_>, ep: &TileEpilogue<'_>) {
        self.0.run(k, a, b, c, ep)
    }
}

fn env(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn bench(c: &mut Criterion) {
    let shapes: &[(&str, usize, usize, usize)] = &[
        ("sq256", 256, 256, 256),
        ("sq512", 512, 512, 512),
        ("sq1024", 1024, 1024, 1024),
        ("sq2048", 2048, 2048, 2048),
        ("conv_m64_k576_n3136", 64, 3136, 576),
        ("conv_m1280_k320_n49", 1280, 49, 320),
        ("conv_m512_k4608_n49", 512, 49, 4608),
        ("conv_m1024_k1024_n49", 1024, 49, 1024),
        // Pointwise convs run spatial-major: A is the input seen transposed, B the weights.
        ("spatial_m49_k1024_n1024", 49, 1024, 1024),
        ("spatial_m196_k512_n512", 196, 512, 512),
    ];
    let threads: usize = std::env::var("GEMM_THREADS").ok().and_then(|t| t.parse().ok()).unwrap_or(1);
    let tuned: Vec<Tuned> = available_f32_gemm()
        .into_iter()
        .map(|k| {
            let d = k.blocking();
            Tuned(
                k,
                Blocking {
                    mc: env("GEMM_MC").unwrap_or(d.mc),
                    kc: env("GEMM_KC").unwrap_or(d.kc),
                    nc: env("GEMM_NC").unwrap_or(d.nc),
                },
            )
        })
        .collect();
    let mut kernels: Vec<&dyn F32GemmMicrokernel> = tuned.iter().map(|t| t as &dyn F32GemmMicrokernel).collect();
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
            if label.starts_with("spatial") {
                // Xᵀ read in place from the channel-major input; the weights packed once as B.
                let x: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.01).collect();
                let xt = MatRef::new(&x, m, k, 1, m).expect("Xᵀ view");
                let pb = PackedB::pack(kern, bv).expect("pack B");
                g.bench_function(BenchmarkId::new(format!("{}/packed_b", kern.name()), label), |bch| {
                    bch.iter(|| {
                        sgemm(kern, m, n, k, GemmInput::Strided(xt), GemmInput::Packed(&pb), &mut out, n, &ep, threads)
                            .expect("sgemm");
                        black_box(&mut out);
                    })
                });
            }
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

/// The microkernel alone on L1-resident panels (`k = 128`): the ceiling the driver's cache
/// blocking and packing can approach, to tell kernel limits from memory limits.
fn microkernel_ceiling(c: &mut Criterion) {
    let mut g = c.benchmark_group("microkernel_l1");
    g.sample_size(20);
    for kern in available_f32_gemm() {
        let (mr, nr, k) = (kern.mr(), kern.nr(), 128usize);
        let a: Vec<f32> = (0..k * mr).map(|i| ((i % 7) as f32 - 3.0) * 0.01).collect();
        let b: Vec<f32> = (0..k * nr).map(|i| ((i % 5) as f32 - 2.0) * 0.01).collect();
        let mut out = vec![0f32; mr * nr];
        let calls = 64u64;
        g.throughput(Throughput::Elements(2 * (mr * nr * k) as u64 * calls));
        g.bench_function(kern.name(), |bch| {
            bch.iter(|| {
                for _ in 0..calls {
                    let mut tile = TileOut::new(&mut out, nr, mr, nr).expect("tile");
                    kern.run(k, &a, &b, &mut tile, &TileEpilogue::plain(false));
                }
                black_box(&mut out);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench, microkernel_ceiling);
criterion_main!(benches);
