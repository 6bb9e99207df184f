//! Int8 convs with few output positions (ResNet50 layer4, MobileNet 7x7 and 14x14 layers): the
//! position-lane GEMM (`QLinearConv2d::prepare`, the VNNI 8x32 kernel) against the GEMM with
//! output channels along the lanes (`prepare_channel_lanes`). u8 output with per-channel
//! scales, bias and ReLU; 1 thread unless `GEMM_THREADS` says otherwise.
//!
//! Not a criterion bench: the two paths run alternately, `ROUNDS` rounds of `REPS` calls each,
//! and the best round of each is reported (GOPS = 2·c_out·c_in·kh·kw·oh·ow / s), which keeps
//! the comparison fair on a machine shared with other jobs. `cargo bench -p lithe-kernels-x86
//! --bench qconv_small_n [filter]`.

use lithe_kernels::int8::{QActivation, QConvGeometry, QLinearConv2d, QuantEpilogue, QuantOut};
use lithe_kernels_x86::best_i8_gemm;
use std::hint::black_box;
use std::time::Instant;

/// (label, c_in, h = w, c_out, kernel, stride, pad)
const SHAPES: &[(&str, usize, usize, usize, usize, usize, usize)] = &[
    ("resnet50_l4_512x7_512_k3", 512, 7, 512, 3, 1, 1),
    ("resnet50_l4_pw_512x7_2048", 512, 7, 2048, 1, 1, 0),
    ("resnet50_l4_pw_2048x7_512", 2048, 7, 512, 1, 1, 0),
    ("resnet50_l4_pw_1024x14_2048_s2", 1024, 14, 2048, 1, 2, 0),
    ("mbv1_pw_1024x7_1024", 1024, 7, 1024, 1, 1, 0),
    ("mbv2_pw_160x7_960", 160, 7, 960, 1, 1, 0),
    ("mbv2_pw_960x7_160", 960, 7, 160, 1, 1, 0),
    ("mbv2_pw_960x7_320", 960, 7, 320, 1, 1, 0),
    ("mbv2_pw_320x7_1280", 320, 7, 1280, 1, 1, 0),
    ("mbv1_pw_512x7_1024_s2", 512, 14, 1024, 1, 2, 0),
    ("resnet50_l3_256x14_256_k3", 256, 14, 256, 3, 1, 1),
    ("resnet50_l3_pw_1024x14_256", 1024, 14, 256, 1, 1, 0),
    ("resnet50_l3_pw_256x14_1024", 256, 14, 1024, 1, 1, 0),
    ("mbv1_pw_512x14_512", 512, 14, 512, 1, 1, 0),
    ("mbv2_pw_64x14_384", 64, 14, 384, 1, 1, 0),
    ("mbv2_pw_384x14_64", 384, 14, 64, 1, 1, 0),
    ("mbv2_pw_96x14_576", 96, 14, 576, 1, 1, 0),
    ("mbv2_pw_576x14_96", 576, 14, 96, 1, 1, 0),
    ("r50_l4_3x3_s2_256x14_256", 256, 14, 256, 3, 2, 1),
    ("pw_512x10_512", 512, 10, 512, 1, 1, 0),
    ("pw_512x9_512", 512, 9, 512, 1, 1, 0),
    ("pw_512x8_512", 512, 8, 512, 1, 1, 0),
    ("pw_64x7_64", 64, 7, 64, 1, 1, 0),
    ("pw_32x7_256", 32, 7, 256, 1, 1, 0),
];

const ROUNDS: usize = 7;

fn main() {
    let threads: usize = std::env::var("GEMM_THREADS").ok().and_then(|t| t.parse().ok()).unwrap_or(1);
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let kern = best_i8_gemm();
    println!(
        "{:<34} {:>9} {:>9} {:>7}   ({} threads, best of {ROUNDS} rounds)",
        "shape", "old GOPS", "new GOPS", "new/old", threads
    );
    for &(label, ci, hw, co, k, s, p) in SHAPES {
        if filter.as_deref().is_some_and(|f| !label.contains(f)) {
            continue;
        }
        let o = (hw + 2 * p - k) / s + 1;
        let ops = (2 * co * ci * k * k * o * o) as f64;
        let x: Vec<u8> = (0..ci * hw * hw).map(|i| (i * 5 % 253) as u8).collect();
        let w: Vec<i8> = (0..co * ci * k * k).map(|i| ((i * 7 % 251) as i32 - 125) as i8).collect();
        let w_scale: Vec<f32> = (0..co).map(|i| 0.001 + (i % 7) as f32 * 1e-4).collect();
        let bias: Vec<f32> = (0..co).map(|i| (i % 5) as f32 * 0.1).collect();
        let geom = QConvGeometry { strides: [s, s], pads: [p; 4], dilations: [1, 1], groups: 1 };
        let old = QLinearConv2d::prepare(kern, &w, [co, ci, k, k], &w_scale, geom).expect("prepare");
        let Some(new) =
            QLinearConv2d::prepare_channel_lanes(kern, &w, [co, ci, k, k], &w_scale, geom).expect("prepare")
        else {
            println!("no channel-lane kernel on this CPU");
            return;
        };
        let ep = QuantEpilogue { x_scale: 0.02, bias: Some(&bias), bias_i32: None, activation: QActivation::Relu };
        let mut out = vec![0u8; co * o * o];
        let reps = ((2e8 / ops) as usize).clamp(3, 2000);
        let mut time = |conv: &QLinearConv2d| {
            let t = Instant::now();
            for _ in 0..reps {
                let q = QuantOut::U8 { data: &mut out, scale: 0.05, zero_point: 0 };
                conv.run(black_box(&x), [1, ci, hw, hw], 128, &ep, q, threads).expect("run");
                black_box(&mut out);
            }
            t.elapsed().as_secs_f64() / reps as f64
        };
        time(&old);
        time(&new);
        let (mut best_old, mut best_new) = (f64::MAX, f64::MAX);
        for _ in 0..ROUNDS {
            best_old = best_old.min(time(&old));
            best_new = best_new.min(time(&new));
        }
        let (g_old, g_new) = (ops / best_old / 1e9, ops / best_new / 1e9);
        println!(
            "{label:<34} {g_old:>9.1} {g_new:>9.1} {:>7.2}   N={:<4} K={:<5} M={co}",
            g_new / g_old,
            o * o,
            ci * k * k
        );
    }
}
