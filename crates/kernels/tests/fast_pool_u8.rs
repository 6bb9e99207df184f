//! The u8 max pool (`u8_maxpool2d`, AVX-512BW kernel where detected, else the portable plane
//! code) against a direct window maximum, exactly: 2x2 and 3x3 stride 2, every padding below
//! the window, odd and wide planes (several 32-output blocks and their edges), batches.

use lithe_kernels::fast::{DwPads, PoolParams, u8_maxpool2d};
use proptest::prelude::*;

/// The maximum over each window, padded taps ignored (0 for a window entirely in padding).
fn naive(x: &[u8], planes: usize, h: usize, w: usize, p: &PoolParams) -> Vec<u8> {
    let (oh, ow) = p.output_size(h, w).unwrap();
    let mut out = vec![0u8; planes * oh * ow];
    for pl in 0..planes {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut m = 0u8;
                for ky in 0..p.kernel {
                    for kx in 0..p.kernel {
                        let (iy, ix) = (
                            (oy * 2 + ky) as isize - p.pads.top as isize,
                            (ox * 2 + kx) as isize - p.pads.left as isize,
                        );
                        if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                            m = m.max(x[pl * h * w + iy as usize * w + ix as usize]);
                        }
                    }
                }
                out[(pl * oh + oy) * ow + ox] = m;
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn u8_maxpool_equals_the_window_maximum(
        k in 2usize..4,
        n in 1usize..3,
        c in 1usize..4,
        h in 1usize..20,
        w in prop_oneof![1usize..40, 60usize..140],
        pads in proptest::array::uniform4(0usize..3),
        seed in any::<u64>(),
    ) {
        let p = PoolParams {
            kernel: k,
            stride: 2,
            pads: DwPads { top: pads[0] % k, left: pads[1] % k, bottom: pads[2] % k, right: pads[3] % k },
        };
        let Ok((oh, ow)) = p.output_size(h, w) else { return Ok(()) };
        let mut s = seed | 1;
        let x: Vec<u8> = (0..n * c * h * w)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                s as u8
            })
            .collect();
        let mut y = vec![0u8; n * c * oh * ow];
        u8_maxpool2d(&x, n, c, h, w, &p, &mut y).unwrap();
        prop_assert_eq!(y, naive(&x, n * c, h, w, &p));
    }
}
