//! The int8 matrix-vector kernel (`QGemv`, fully connected layers), portable and detected
//! builds, against the runtime's former row-by-row code (kept here as the oracle), bit for bit:
//! random shapes (depths around multiples of 64), weights with -128, zero points, per-row or
//! single scales, bias or none, clamps, f32 and u8 outputs, 1 to 3 images, 1 and 2 threads.

use lithe_kernels::int8::{QGemv, QGemvOut, Requant, dequant};
use proptest::prelude::*;

/// The former `dot_s8_u8` of `lithe-runtime`'s `Gemv`.
fn old_dot(w: &[i8], x: &[u8]) -> i32 {
    const L: usize = 16;
    let mut lanes = [0i32; L];
    let (wc, xc) = (w.chunks_exact(L), x.chunks_exact(L));
    let tail: i32 = wc.remainder().iter().zip(xc.remainder()).map(|(&w, &x)| i32::from(w) * i32::from(x)).sum();
    for (w, x) in wc.zip(xc) {
        for j in 0..L {
            lanes[j] += i32::from(i16::from(w[j]) * i16::from(x[j]));
        }
    }
    lanes.iter().sum::<i32>() + tail
}

/// The former `Gemv::run_row` (f32 results of one image).
#[allow(clippy::too_many_arguments)]
fn old_row(
    w: &[i8],
    k: usize,
    scale: &[f32],
    x: &[u8],
    x_zp: u8,
    bias: Option<&[f32]>,
    clamp: Option<(f32, f32)>,
    out: &mut [f32],
) {
    let row_sums: Vec<i32> = w.chunks_exact(k.max(1)).map(|r| r.iter().map(|&v| i32::from(v)).sum()).collect();
    for (m, (o, w)) in out.iter_mut().zip(w.chunks_exact(k.max(1))).enumerate() {
        let dot = old_dot(w, x);
        let acc = dot.wrapping_sub(i32::from(x_zp).wrapping_mul(row_sums[m]));
        *o = dequant(acc, scale[m], bias.map_or(0.0, |b| b[m]), clamp);
    }
}

/// The runtime's u8 requantization (`u8_requant`).
fn u8_requant(scale: f32, zero_point: u8) -> Requant {
    let zp = i32::from(zero_point);
    Requant::new(scale, -(zp as f32), (255 - zp) as f32, zp)
}

#[derive(Debug, Clone)]
struct Case {
    m: usize,
    k: usize,
    n: usize,
    w: Vec<i8>,
    x: Vec<u8>,
    w_scale: Vec<f32>,
    x_scale: f32,
    x_zp: u8,
    bias: Option<Vec<f32>>,
    clamp: Option<(f32, f32)>,
    y: (f32, u8),
}

fn arb_case() -> impl Strategy<Value = Case> {
    let k = prop_oneof![1usize..200, (1usize..5).prop_flat_map(|s| (s * 64 - 2)..(s * 64 + 3))];
    (1usize..40, k, 1usize..4).prop_flat_map(|(m, k, n)| {
        let byte_w = prop_oneof![3 => any::<i8>(), 1 => Just(-128i8), 1 => Just(127i8)];
        let byte_x = prop_oneof![3 => any::<u8>(), 1 => Just(0u8), 1 => Just(255u8)];
        (
            proptest::collection::vec(byte_w, m * k),
            proptest::collection::vec(byte_x, n * k),
            prop_oneof![proptest::collection::vec(1e-4f32..0.1, 1), proptest::collection::vec(1e-4f32..0.1, m)],
            1e-3f32..0.2,
            prop_oneof![any::<u8>(), Just(0u8), Just(128u8), Just(255u8)],
            proptest::option::of(proptest::collection::vec(-5.0f32..5.0, m)),
            prop_oneof![Just(None), Just(Some((0.0f32, f32::INFINITY))), Just(Some((0.0f32, 6.0)))],
            (1e-3f32..0.5, any::<u8>()),
        )
            .prop_map(move |(w, x, w_scale, x_scale, x_zp, bias, clamp, y)| Case {
                m,
                k,
                n,
                w,
                x,
                w_scale,
                x_scale,
                x_zp,
                bias,
                clamp,
                y,
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn qgemv_equals_the_former_row_code(c in arb_case(), threads in 1usize..3) {
        let scale: Vec<f32> = (0..c.m)
            .map(|i| c.x_scale * c.w_scale[if c.w_scale.len() == 1 { 0 } else { i }])
            .collect();
        let mut want_f = vec![0f32; c.n * c.m];
        for (xi, yi) in c.x.chunks_exact(c.k).zip(want_f.chunks_exact_mut(c.m)) {
            old_row(&c.w, c.k, &scale, xi, c.x_zp, c.bias.as_deref(), c.clamp, yi);
        }
        let rq = u8_requant(c.y.0, c.y.1);
        let want_q: Vec<u8> = want_f.iter().map(|&v| rq.apply(v) as u8).collect();
        for simd in [false, true] {
            let g = QGemv::prepare_with(&c.w, c.m, c.k, &c.w_scale, c.x_scale, simd).unwrap();
            let mut f = vec![0f32; c.n * c.m];
            g.run(&c.x, c.n, c.x_zp, c.bias.as_deref(), c.clamp, QGemvOut::F32(&mut f), threads).unwrap();
            let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&f), bits(&want_f), "{} f32", g.name());
            let mut q = vec![0u8; c.n * c.m];
            g.run(&c.x, c.n, c.x_zp, c.bias.as_deref(), c.clamp, QGemvOut::U8 { data: &mut q, requant: rq }, threads)
                .unwrap();
            prop_assert_eq!(&q, &want_q, "{} u8", g.name());
        }
    }
}

#[test]
fn qgemv_rejects_bad_lengths() {
    let w = vec![1i8; 6];
    assert!(QGemv::prepare(&w, 2, 4, &[1.0], 1.0).is_err());
    assert!(QGemv::prepare(&w, 2, 3, &[1.0; 3], 1.0).is_err());
    let g = QGemv::prepare(&w, 2, 3, &[1.0], 1.0).unwrap();
    let mut y = vec![0f32; 2];
    assert!(g.run(&[0u8; 4], 1, 0, None, None, QGemvOut::F32(&mut y), 1).is_err());
    assert!(g.run(&[0u8; 3], 1, 0, Some(&[0.0]), None, QGemvOut::F32(&mut y), 1).is_err());
    assert!(g.run(&[0u8; 3], 1, 0, None, None, QGemvOut::F32(&mut y), 1).is_ok());
}
