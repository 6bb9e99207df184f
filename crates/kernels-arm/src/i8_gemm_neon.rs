//! Int8 GEMM on AArch64:
//! - `qu8s8_gemm_8x12c4__neondot`: the `sdot` (Armv8.2 dotprod) kernel. `sdot` multiplies s8 by
//!   s8, so the activations are packed with the sign bit flipped (`x - 128`, the kernel's
//!   `b_offset`) and the driver's compensation uses `x_zp - 128`. Per group of 4 depth values:
//!   two q registers of weights (8 rows x 4), three of activations (12 columns x 4), 24
//!   accumulators, `sdot v.4s, b.16b, a.4b[row]`. Emitted with `asm!` because the dotprod
//!   intrinsics are not stable in Rust yet; chosen only when `dotprod` is detected.
//! - `qu8s8_gemm_8x8c1__neon`: the baseline NEON kernel: activations zero-extended and weights
//!   sign-extended to i16, `smlal`/`smlal2` by lane into 16 i32 accumulators.
//!
//! Both finish the fused epilogue in registers (`fcvtns` rounds half to even; `fmaxnm`/`fminnm`
//! keep `f32::max`/`min`'s NaN behaviour; with a residual, compare-and-select keeps ONNX
//! `Clip`'s) and copy partial tiles out of a stack row.

use lithe_kernels::int8::{I8GemmMicrokernel, I8TileEpilogue, I8TileOut, OutputKind, check_i8_microkernel_args};
use std::arch::aarch64::*;
use std::arch::asm;

/// `qu8s8_gemm_8x12c4__neondot`: an 8x12 register tile on `sdot` (needs the dotprod extension).
#[derive(Debug)]
pub struct I8Gemm8x12c4NeonDot {
    _detected: (),
}

impl I8Gemm8x12c4NeonDot {
    /// The kernel, when the CPU has the dotprod extension.
    pub fn get() -> Option<&'static Self> {
        static K: I8Gemm8x12c4NeonDot = I8Gemm8x12c4NeonDot { _detected: () };
        std::arch::is_aarch64_feature_detected!("dotprod").then_some(&K)
    }
}

impl I8GemmMicrokernel for I8Gemm8x12c4NeonDot {
    fn name(&self) -> &'static str {
        "qu8s8_gemm_8x12c4__neondot"
    }

    fn mr(&self) -> usize {
        8
    }

    fn nr(&self) -> usize {
        12
    }

    fn kr(&self) -> usize {
        4
    }

    fn b_offset(&self) -> u8 {
        128
    }

    fn run(&self, kg: usize, a: &[i8], b: &[u8], c: &mut I8TileOut<'_>, ep: &I8TileEpilogue<'_>) {
        check_i8_microkernel_args(8, 12, 4, kg, a, b, c, ep);
        // SAFETY: a value of this type exists only when dotprod was detected; the panels hold
        // `kg * 32` and `kg * 48` bytes, the tile fits 8 x 12 and `ep` fits it (checked).
        unsafe { kernel_dot(kg, a.as_ptr(), b.as_ptr(), c, ep) }
    }
}

/// `qu8s8_gemm_8x8c1__neon`: an 8x8 register tile on `smlal` (baseline NEON).
#[derive(Debug)]
pub struct I8Gemm8x8c1Neon {
    _private: (),
}

impl I8Gemm8x8c1Neon {
    /// The kernel (always available on AArch64).
    pub fn get() -> &'static Self {
        static K: I8Gemm8x8c1Neon = I8Gemm8x8c1Neon { _private: () };
        &K
    }
}

impl I8GemmMicrokernel for I8Gemm8x8c1Neon {
    fn name(&self) -> &'static str {
        "qu8s8_gemm_8x8c1__neon"
    }

    fn mr(&self) -> usize {
        8
    }

    fn nr(&self) -> usize {
        8
    }

    fn kr(&self) -> usize {
        1
    }

    fn run(&self, kg: usize, a: &[i8], b: &[u8], c: &mut I8TileOut<'_>, ep: &I8TileEpilogue<'_>) {
        check_i8_microkernel_args(8, 8, 1, kg, a, b, c, ep);
        // SAFETY: NEON is part of the aarch64 baseline; the panels hold `kg * 8` bytes each, the
        // tile fits 8 x 8 and `ep` fits it (checked).
        unsafe { kernel_mlal(kg, a.as_ptr(), b.as_ptr(), c, ep) }
    }
}

/// `$acc += dot(b.4b[col], a.4b[LANE])` per column lane.
macro_rules! sdot {
    ($acc:expr, $b:expr, $a:expr, $l:literal) => {
        asm!(
            concat!("sdot {acc:v}.4s, {b:v}.16b, {a:v}.4b[", stringify!($l), "]"),
            acc = inout(vreg) $acc,
            b = in(vreg) $b,
            a = in(vreg) $a,
            options(pure, nomem, nostack, preserves_flags)
        )
    };
}

/// # Safety
/// The CPU must have dotprod; `a` must hold `kg * 32` bytes, `b` `kg * 48`; `c` at most 8 x 12
/// and `ep` must fit it.
#[target_feature(enable = "neon,dotprod")]
unsafe fn kernel_dot(kg: usize, a: *const i8, b: *const u8, c: &mut I8TileOut<'_>, ep: &I8TileEpilogue<'_>) {
    let mut acc = [[vdupq_n_s32(0); 3]; 8];
    let (mut a, mut b) = (a, b);
    for _ in 0..kg {
        // SAFETY: each of the `kg` steps reads 32 bytes of `a` and 48 of `b`, inside the
        // panels; `sdot` only reads and writes registers.
        unsafe {
            let a0 = vld1q_s8(a);
            let a1 = vld1q_s8(a.add(16));
            let bv = [vld1q_s8(b as *const i8), vld1q_s8(b.add(16) as *const i8), vld1q_s8(b.add(32) as *const i8)];
            for v in 0..3 {
                sdot!(acc[0][v], bv[v], a0, 0);
                sdot!(acc[1][v], bv[v], a0, 1);
                sdot!(acc[2][v], bv[v], a0, 2);
                sdot!(acc[3][v], bv[v], a0, 3);
                sdot!(acc[4][v], bv[v], a1, 0);
                sdot!(acc[5][v], bv[v], a1, 1);
                sdot!(acc[6][v], bv[v], a1, 2);
                sdot!(acc[7][v], bv[v], a1, 3);
            }
            a = a.add(32);
            b = b.add(48);
        }
    }
    // SAFETY: `c` and `ep` are as the caller guarantees.
    unsafe { finish::<3>(&acc, c, ep) }
}

/// `acc[i] += b * a[lane i]` for rows `i` of one i16 vector of weights.
macro_rules! mlal_rows {
    ($acc:ident, $bl:ident, $bw:ident, $aw:ident, $($i:literal),*) => {
        $(
            $acc[$i][0] = vmlal_laneq_s16::<$i>($acc[$i][0], $bl, $aw);
            $acc[$i][1] = vmlal_high_laneq_s16::<$i>($acc[$i][1], $bw, $aw);
        )*
    };
}

/// # Safety
/// `a` and `b` must hold `kg * 8` bytes each; `c` at most 8 x 8 and `ep` must fit it.
#[target_feature(enable = "neon")]
unsafe fn kernel_mlal(kg: usize, a: *const i8, b: *const u8, c: &mut I8TileOut<'_>, ep: &I8TileEpilogue<'_>) {
    let mut acc = [[vdupq_n_s32(0); 2]; 8];
    let (mut a, mut b) = (a, b);
    for _ in 0..kg {
        // SAFETY: each of the `kg` steps reads 8 bytes of `a` and 8 of `b`, inside the panels.
        unsafe {
            let bw = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(b)));
            let bl = vget_low_s16(bw);
            let aw = vmovl_s8(vld1_s8(a));
            mlal_rows!(acc, bl, bw, aw, 0, 1, 2, 3, 4, 5, 6, 7);
            a = a.add(8);
            b = b.add(8);
        }
    }
    // SAFETY: `c` and `ep` are as the caller guarantees.
    unsafe { finish::<2>(&acc, c, ep) }
}

/// The fused epilogue for an 8 x `4 * NV` tile of raw accumulators.
///
/// # Safety
/// `c` must be at most 8 x `4 * NV` and `ep` must fit it.
#[target_feature(enable = "neon")]
unsafe fn finish<const NV: usize>(acc: &[[int32x4_t; NV]; 8], c: &mut I8TileOut<'_>, ep: &I8TileEpilogue<'_>) {
    let (rows, cols, ldc) = (c.rows(), c.cols(), c.ldc());
    let cp = c.as_mut_ptr();
    let (comp, scale, bias) = (ep.comp(), ep.scale(), ep.bias());
    let kind = ep.kind();
    let clamp = ep.clamp().map(|(lo, hi)| (vdupq_n_f32(lo), vdupq_n_f32(hi)));
    let rq =
        kind.requant().map(|r| (vdupq_n_f32(r.inv_scale), vdupq_n_f32(r.lo), vdupq_n_f32(r.hi), vdupq_n_s32(r.zp)));
    let residual = ep.residual();
    for (i, row) in acc.iter().enumerate().take(rows) {
        let (ci, si, bi) = (vdupq_n_s32(comp[i]), vdupq_n_f32(scale[i]), vdupq_n_f32(bias[i]));
        // The row's residual (zeros past `cols`): `ep.fits(c)` guarantees `cols` values at `i * ld`.
        let mut res = [0f32; 12];
        if let Some((r, ld)) = residual {
            res[..cols].copy_from_slice(&r[i * ld..][..cols]);
        }
        // The row's results as 32-bit values (i32, f32 bits, or the quantized value as i32).
        let mut tmp = [0u32; 12];
        for (v, &x) in row.iter().enumerate() {
            let accv = vsubq_s32(x, ci);
            let y = || {
                let y = vaddq_f32(vmulq_f32(vcvtq_f32_s32(accv), si), bi);
                if residual.is_some() {
                    // `(acc·scale + bias) + r`, then `y < lo ? lo : y` and `y > hi ? hi : y` by
                    // compare and select (NaN and -0.0 kept, as `dequant_residual`).
                    // SAFETY: `res` holds 12 >= 4 * NV values.
                    let y = vaddq_f32(y, unsafe { vld1q_f32(res.as_ptr().add(4 * v)) });
                    return match clamp {
                        Some((lo, hi)) => {
                            let y = vbslq_f32(vcltq_f32(y, lo), lo, y);
                            vbslq_f32(vcgtq_f32(y, hi), hi, y)
                        }
                        None => y,
                    };
                }
                match clamp {
                    Some((lo, hi)) => vminnmq_f32(vmaxnmq_f32(y, lo), hi),
                    None => y,
                }
            };
            let bits = match (kind, rq) {
                (OutputKind::I32, _) => vreinterpretq_u32_s32(accv),
                (OutputKind::F32, _) => vreinterpretq_u32_f32(y()),
                (_, Some((ys, lo, hi, zp))) => {
                    let t = vminnmq_f32(vmaxnmq_f32(vmulq_f32(y(), ys), lo), hi);
                    vreinterpretq_u32_s32(vaddq_s32(vcvtnq_s32_f32(t), zp))
                }
                (_, None) => unreachable!("quantized kinds have requant parameters"),
            };
            // SAFETY: `tmp` holds 12 >= 4 * NV values.
            unsafe { vst1q_u32(tmp.as_mut_ptr().add(4 * v), bits) };
        }
        // SAFETY: the writes are the `cols` elements of row `i` of the tile, of the kind's
        // element size, valid by the I8TileOut invariant and `ep.fits`.
        unsafe {
            match kind {
                OutputKind::I32 | OutputKind::F32 => {
                    std::ptr::copy_nonoverlapping(tmp.as_ptr(), (cp as *mut u32).add(i * ldc), cols)
                }
                OutputKind::U8 { .. } | OutputKind::S8 { .. } => {
                    for (j, &q) in tmp.iter().enumerate().take(cols) {
                        *cp.add(i * ldc + j) = q as u8;
                    }
                }
            }
        }
    }
}
