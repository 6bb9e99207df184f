//! Time one 3x3 conv (best of 15 batches, 1 thread): `wino_cycles C_IN C_OUT HW TILE ITERS`
//! with TILE 0 for im2col + GEMM or 2/4/6 for Winograd F(m,3); prints ms and GFLOP/s of
//! direct-conv FLOPs. Less sensitive to a busy machine than the criterion bench.

use lithe_ir::Tensor;
use lithe_ir::op::ConvAttrs;
use lithe_kernels::conv2d_gemm::Conv2dGemm;
use lithe_kernels::conv2d_winograd::{Conv2dWinograd, WinogradTile};
use lithe_kernels::gemm::Residual;
use lithe_kernels_x86::available_f32_gemm;

fn main() {
    let a: Vec<usize> = std::env::args().skip(1).map(|v| v.parse().unwrap()).collect();
    let (ci, co, hw, tile, iters) = (a[0], a[1], a[2], a[3], a[4]);
    let kernel = available_f32_gemm()[0];
    let attrs = ConvAttrs { pads: vec![1, 1, 1, 1], ..ConvAttrs::default() };
    let w =
        Tensor::from_vec(&[co, ci, 3, 3], (0..co * ci * 9).map(|i| (i % 13) as f32 * 0.01 - 0.06).collect()).unwrap();
    let x: Vec<f32> = (0..ci * hw * hw).map(|i| (i % 7) as f32 * 0.1 - 0.3).collect();
    let shape = [1, ci, hw, hw];
    let mut y = vec![0.0; co * hw * hw];
    let mut scratch = Vec::new();
    let run: Box<dyn FnMut()> = if tile == 0 {
        let g = Conv2dGemm::prepare(kernel, &attrs, &w, None, None).unwrap();
        Box::new(move || g.run(&x, &shape, Residual::None, &mut y, &mut scratch, 1).unwrap())
    } else {
        let t = match tile {
            2 => WinogradTile::F2x3,
            4 => WinogradTile::F4x3,
            _ => WinogradTile::F6x3,
        };
        let g = Conv2dWinograd::prepare(kernel, &attrs, &w, None, None, t).unwrap();
        Box::new(move || g.run(&x, &shape, Residual::None, &mut y, &mut scratch, 1).unwrap())
    };
    let mut run = run;
    run();
    let mut dt = f64::MAX;
    for _ in 0..15 {
        let t = std::time::Instant::now();
        for _ in 0..iters {
            run();
        }
        dt = dt.min(t.elapsed().as_secs_f64() / iters as f64);
    }
    let flops = 2.0 * (ci * 9 * co * hw * hw) as f64;
    println!("{ci}->{co} {hw} tile {tile}: {:.3} ms {:.1} GFLOP/s", dt * 1e3, flops / dt / 1e9);
}
