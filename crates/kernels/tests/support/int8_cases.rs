//! Random int8 GEMM and conv cases, shared by the int8 tests of `lithe-kernels`,
//! `lithe-kernels-x86` and `lithe-kernels-arm` (each includes this file with `#[path]`).

use lithe_kernels::int8::QConvGeometry;
use lithe_kernels::int8::conformance::{ALL_OUTPUTS, I8GemmCase, QConvCase, all_activations};
use proptest::prelude::*;

/// Exclusive upper bounds of the random sizes.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    /// GEMM rows, columns and depth.
    pub mnk: (usize, usize, usize),
    /// Conv channels per group (input and output) and groups.
    pub channels: usize,
    /// Conv groups.
    pub groups: usize,
    /// Conv input height and width.
    pub hw: usize,
}

/// Sizes for the portable kernel (slow in debug builds).
#[allow(dead_code)]
pub const GENERIC_SIZES: Sizes = Sizes { mnk: (40, 60, 300), channels: 6, groups: 4, hw: 12 };

/// Larger sizes for the SIMD kernels (several register tiles, long depths).
#[allow(dead_code)]
pub const SIMD_SIZES: Sizes = Sizes { mnk: (70, 100, 700), channels: 9, groups: 3, hw: 14 };

/// Random GEMMs: zero points 0, 128, 255 or random, every epilogue and output type, padded
/// leading dimensions, dense or panel-source activations, 1 or 2 threads.
pub fn arb_gemm_case(s: Sizes) -> impl Strategy<Value = I8GemmCase> {
    (
        (1usize..s.mnk.0, 1usize..s.mnk.1, 0usize..s.mnk.2, any::<u8>()),
        (any::<bool>(), any::<bool>(), any::<bool>(), 0usize..4, 0usize..4),
        (0usize..3, any::<bool>(), 1usize..3, any::<u64>()),
    )
        .prop_map(|((m, n, k, zp), (pc, bias, bi, act, out), (pad, source, threads, seed))| I8GemmCase {
            m,
            n,
            k,
            x_zp: [0, 128, zp, 255][seed as usize % 4],
            per_channel: pc,
            bias,
            bias_i32: bi,
            activation: all_activations()[act],
            out: ALL_OUTPUTS[out],
            pad,
            source,
            threads,
            residual: false,
            seed,
        })
}

/// Random GEMMs with an f32 residual: f32, u8 and s8 outputs, every activation, padded
/// strides, tails, 1 or 2 threads.
#[allow(dead_code)]
pub fn arb_residual_gemm_case(s: Sizes) -> impl Strategy<Value = I8GemmCase> {
    (arb_gemm_case(s), 1usize..4).prop_map(|(case, out)| I8GemmCase { residual: true, out: ALL_OUTPUTS[out], ..case })
}

/// Random convs with an f32 residual (depthwise shapes run as per-group GEMMs).
#[allow(dead_code)]
pub fn arb_residual_conv_case(s: Sizes) -> impl Strategy<Value = QConvCase> {
    (arb_conv_case(s), 1usize..4).prop_map(|(case, out)| QConvCase {
        residual: true,
        out: ALL_OUTPUTS[out],
        allow_depthwise: false,
        ..case
    })
}

/// Random convs: kernels 1, 3 and 5, strides, asymmetric pads, dilations, groups, and
/// depthwise-shaped ones about half of the time.
pub fn arb_conv_case(s: Sizes) -> impl Strategy<Value = QConvCase> {
    (
        (1usize..3, 1usize..s.channels, 1usize..s.channels, 1usize..s.groups + 1, 3usize..s.hw, 3usize..s.hw),
        (prop_oneof![Just(1usize), Just(3), Just(5)], 1usize..3, 0usize..3, 0usize..3, 1usize..3, any::<bool>()),
        (0usize..4, 0usize..4, any::<bool>(), any::<bool>(), 1usize..3, any::<u64>()),
    )
        .prop_map(|((n, cg, cog, g, h, w), (k, s, p0, p1, d, dw), (act, out, bias, bi, threads, seed))| {
            let k = k.min(h).min(w);
            let (pad, d) = ([p0.min(k - 1), p1.min(k - 1), p1.min(k - 1), p0.min(k - 1)], if dw { 1 } else { d });
            let d = if (k - 1) * d + 1 > h.min(w) { 1 } else { d };
            let (c_in, c_out, groups) = if dw { (g * cg, g * cg, g * cg) } else { (g * cg, g * cog, g) };
            QConvCase {
                n,
                c_in,
                c_out,
                hw: [h, w],
                kernel_hw: [k, k],
                geom: QConvGeometry { strides: [s, s], pads: pad, dilations: [d, d], groups },
                x_zp: [0, 128, (seed >> 8) as u8, 255][seed as usize % 4],
                bias,
                bias_i32: bi,
                activation: all_activations()[act],
                out: ALL_OUTPUTS[out],
                allow_depthwise: true,
                threads,
                residual: false,
                seed,
            }
        })
}
