//! Single-thread FMA peak of this core: 24 independent FMA chains of 512-bit vectors and 12 of
//! 256-bit vectors (what fits the 32 zmm / 16 ymm registers next to two constants) (criterion's elements/s = FLOP/s).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const ITERS: usize = 1 << 16;
const CHAINS512: usize = 24;
const CHAINS256: usize = 12;

#[cfg(target_arch = "x86_64")]
mod chains {
    use super::{CHAINS256, CHAINS512, ITERS};
    use std::arch::x86_64::*;

    /// # Safety
    /// AVX-512F must be available.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn fma512(x: f32) -> f32 {
        let m = _mm512_set1_ps(0.999_999);
        let a = _mm512_set1_ps(1e-7);
        let mut acc = [_mm512_set1_ps(x); CHAINS512];
        for _ in 0..ITERS {
            for v in acc.iter_mut() {
                *v = _mm512_fmadd_ps(*v, m, a);
            }
        }
        let s = acc.iter().fold(_mm512_setzero_ps(), |s, &v| _mm512_add_ps(s, v));
        _mm512_reduce_add_ps(s)
    }

    /// # Safety
    /// AVX2 and FMA must be available.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn fma256(x: f32) -> f32 {
        let m = _mm256_set1_ps(0.999_999);
        let a = _mm256_set1_ps(1e-7);
        let mut acc = [_mm256_set1_ps(x); CHAINS256];
        for _ in 0..ITERS {
            for v in acc.iter_mut() {
                *v = _mm256_fmadd_ps(*v, m, a);
            }
        }
        let s = acc.iter().fold(_mm256_setzero_ps(), |s, &v| _mm256_add_ps(s, v));
        let mut out = [0f32; 8];
        // SAFETY: `out` holds 8 values.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), s) };
        out.iter().sum()
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("fma_peak");
    g.sample_size(20);
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            g.throughput(Throughput::Elements((ITERS * CHAINS512 * 16 * 2) as u64));
            g.bench_function("zmm_512bit", |b| {
                // SAFETY: AVX-512F detected above.
                b.iter(|| unsafe { chains::fma512(std::hint::black_box(1.0)) })
            });
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            g.throughput(Throughput::Elements((ITERS * CHAINS256 * 8 * 2) as u64));
            g.bench_function("ymm_256bit", |b| {
                // SAFETY: AVX2 and FMA detected above.
                b.iter(|| unsafe { chains::fma256(std::hint::black_box(1.0)) })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
