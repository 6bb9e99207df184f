//! Time of a 2-D transposed conv in the tape (GEMM forward, backward for input, weight and
//! bias) against the reference kernel's forward, on a decoder-sized layer: batch 8,
//! 64 -> 32 channels, 16x16 -> 32x32 (kernel 4, stride 2, pad 1).
//!
//! ```sh
//! cargo run --release -p lithe-train --example conv_transpose_time
//! ```

use lithe_ir::builder::GraphBuilder;
use lithe_ir::op::{ConvAttrs, ConvTransposeAttrs};
use lithe_ir::{DType, Op, Outlet, Tensor};
use lithe_train::rng::Rng;
use lithe_train::{Mode, Params, Tape};
use std::time::Instant;

fn random(shape: &[usize], rng: &mut Rng) -> Result<Tensor, lithe_ir::IrError> {
    let n: usize = shape.iter().product();
    Tensor::from_vec(shape, (0..n).map(|_| 2.0 * rng.uniform() as f32 - 1.0).collect())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const REPEATS: usize = 10;
    let (n, c, m, hw) = (8, 64, 32, 16);
    let mut rng = Rng::new(1);
    let mut b = GraphBuilder::new("up");
    let x = b.input("x", DType::F32, &[n, c, hw, hw]);
    let w = b.constant("w", random(&[c, m, 4, 4], &mut rng)?);
    let bias = b.constant("b", random(&[m], &mut rng)?);
    let conv = ConvAttrs { strides: vec![2, 2], pads: vec![1; 4], ..Default::default() };
    let attrs = ConvTransposeAttrs { conv, output_padding: vec![], output_shape: None };
    let op = Op::ConvTranspose(attrs);
    let y = b.node(op.clone(), &[x, w, bias])?;
    b.output(y);
    let g = b.finish()?;
    let xin = random(&[n, c, hw, hw], &mut rng)?;
    let tape = Tape::new(&g)?;
    let mut targets: Vec<Outlet> = Params::select(&g, &[]).outlets();
    targets.push(Outlet::new(g.inputs()[0], 0));
    let (mut tf, mut tb, mut tr) = (0f64, 0f64, 0f64);
    for i in 0..REPEATS + 1 {
        let t0 = Instant::now();
        let fwd = tape.forward(vec![xin.clone()], Mode::Train)?;
        let t1 = Instant::now();
        let seed = ndarray::ArrayD::from_elem(fwd.f32(y)?.raw_dim(), 1.0);
        tape.backward(&fwd, vec![(y, seed)], &targets)?;
        let t2 = Instant::now();
        let wv = g.const_value(g.node_inputs(y.node)[1].ok_or("no weight")?).ok_or("weight")?;
        let bv = g.const_value(g.node_inputs(y.node)[2].ok_or("no bias")?).ok_or("bias")?;
        lithe_kernels::reference::eval(&op, &[Some(&xin), Some(wv), Some(bv)], 1)?;
        let t3 = Instant::now();
        if i >= 1 {
            tf += (t1 - t0).as_secs_f64();
            tb += (t2 - t1).as_secs_f64();
            tr += (t3 - t2).as_secs_f64();
        }
    }
    let ms = |t: f64| 1e3 * t / REPEATS as f64;
    println!(
        "ConvTranspose {n}x{c}x{hw}x{hw} -> {n}x{m}x{}x{} (k4 s2 p1): tape forward {:.2} ms, backward (dx, dW, db) \
         {:.2} ms, reference forward {:.2} ms; {} threads",
        2 * hw,
        2 * hw,
        ms(tf),
        ms(tb),
        ms(tr),
        rayon::current_num_threads()
    );
    Ok(())
}
