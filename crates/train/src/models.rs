//! The two MNIST architectures of `testdata/mnist` (see its README), built with
//! [`GraphBuilder`] and randomly initialized ([`Init`]); batch norm starts at `γ = 1, β = 0`,
//! running mean 0 and variance 1, linear biases uniform in `±1/sqrt(fan_in)`. Input `input`
//! (`batch x 1 x 28 x 28`), output the `batch x 10` logits.

use crate::init::{fan_in_uniform, filled, kaiming_normal};
use crate::rng::Rng;
use lithe_ir::builder::GraphBuilder;
use lithe_ir::op::{ConvAttrs, PoolAttrs};
use lithe_ir::{DType, Dim, Graph, IrError, Op, Outlet};

/// How conv and linear weights are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Init {
    /// Kaiming (He) normal, `N(0, 2 / fan_in)`.
    #[default]
    KaimingNormal,
    /// torch's default for `Conv2d`/`Linear`: Kaiming uniform with `a = sqrt(5)`, which is
    /// uniform in `±1/sqrt(fan_in)`.
    TorchDefault,
}

impl Init {
    fn draw(self, shape: &[usize], fan_in: usize, rng: &mut Rng) -> lithe_ir::Tensor {
        match self {
            Init::KaimingNormal => kaiming_normal(shape, fan_in, rng),
            Init::TorchDefault => fan_in_uniform(shape, fan_in, rng),
        }
    }
}

/// Conv (no bias) -> BatchNormalization -> ReLU.
#[allow(clippy::too_many_arguments)]
fn cbr(
    b: &mut GraphBuilder,
    rng: &mut Rng,
    init: Init,
    x: Outlet,
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    group: usize,
) -> Result<Outlet, IrError> {
    let pad = if k == 3 { 1 } else { 0 };
    let attrs = ConvAttrs { strides: vec![stride; 2], pads: vec![pad; 4], group, ..ConvAttrs::default() };
    let w = init.draw(&[cout, cin / group, k, k], cin / group * k * k, rng);
    let c = b.conv2d(x, w, None, attrs)?;
    let n =
        b.batch_norm(c, filled(&[cout], 1.0), filled(&[cout], 0.0), filled(&[cout], 0.0), filled(&[cout], 1.0), 1e-5)?;
    b.relu(n)
}

fn linear(
    b: &mut GraphBuilder,
    rng: &mut Rng,
    init: Init,
    x: Outlet,
    cin: usize,
    cout: usize,
) -> Result<Outlet, IrError> {
    b.linear(x, init.draw(&[cout, cin], cin, rng), Some(fan_in_uniform(&[cout], cin, rng)))
}

fn input(b: &mut GraphBuilder) -> Outlet {
    b.input("input", DType::F32, &[Dim::Sym("batch".into()), 1.into(), 28.into(), 28.into()])
}

/// `conv5x5(8)-BN-ReLU-maxpool2, conv5x5(16)-BN-ReLU-maxpool2, fc 256->128-ReLU, fc 128->10`
/// (37,634 parameters, as `testdata/mnist/lenet_bn.onnx`).
pub fn lenet_bn(seed: u64, init: Init) -> Result<Graph, IrError> {
    let mut rng = Rng::new(seed);
    let mut b = GraphBuilder::new("lenet_bn");
    let x = input(&mut b);
    let pool = PoolAttrs { kernel_shape: vec![2, 2], strides: vec![2, 2], ..PoolAttrs::default() };
    let c = cbr(&mut b, &mut rng, init, x, 1, 8, 5, 1, 1)?;
    let c = b.max_pool(c, pool.clone())?;
    let c = cbr(&mut b, &mut rng, init, c, 8, 16, 5, 1, 1)?;
    let c = b.max_pool(c, pool)?;
    let f = b.node(Op::Flatten { axis: 1 }, &[c])?;
    let h = linear(&mut b, &mut rng, init, f, 256, 128)?;
    let h = b.relu(h)?;
    let y = linear(&mut b, &mut rng, init, h, 128, 10)?;
    b.output(y);
    b.finish()
}

/// `conv3x3/2(16)-BN-ReLU`, three depthwise-separable blocks (`dw3x3-BN-ReLU, pw1x1-BN-ReLU`:
/// 16->32, 32->64 stride 2, 64->96), global average pool, `fc 96->10` (11,466 parameters, as
/// `testdata/mnist/dwsep.onnx`).
pub fn dwsep(seed: u64, init: Init) -> Result<Graph, IrError> {
    let mut rng = Rng::new(seed);
    let mut b = GraphBuilder::new("dwsep");
    let x = input(&mut b);
    let mut c = cbr(&mut b, &mut rng, init, x, 1, 16, 3, 2, 1)?;
    for (cin, cout, stride) in [(16, 32, 1), (32, 64, 2), (64, 96, 1)] {
        c = cbr(&mut b, &mut rng, init, c, cin, cin, 3, stride, cin)?;
        c = cbr(&mut b, &mut rng, init, c, cin, cout, 1, 1, 1)?;
    }
    let p = b.global_avg_pool(c)?;
    let f = b.node(Op::Flatten { axis: 1 }, &[p])?;
    let y = linear(&mut b, &mut rng, init, f, 96, 10)?;
    b.output(y);
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_counts_match_the_torch_models() {
        // torch counts BN's gamma and beta, not its running statistics.
        let count = |g: &Graph| crate::Params::select(g, &[]).num_scalars(g);
        assert_eq!(count(&lenet_bn(0, Init::default()).unwrap()), 37_634);
        assert_eq!(count(&dwsep(0, Init::TorchDefault).unwrap()), 11_466);
    }
}
