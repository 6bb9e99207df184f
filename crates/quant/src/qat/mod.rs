//! Quantization-aware training: fine-tune an fp32 model through fake quantization, then
//! convert it into the same int8 graph post-training quantization produces.
//!
//! 1. [`QatModel::prepare`]: batch normalization is folded into the convs (the other
//!    optimizer passes run too, but activations stay unfused so that every op has a backward
//!    rule); the quantizable nodes get the QDQ graph of [`crate::ptq::insert_qdq`]
//!    (u8 activations, zero point 0 when a first pass over calibration data never saw a
//!    negative value, else 128; s8 weights per channel or per layer), except that each
//!    weight is `QuantizeLinear(W) -> DequantizeLinear` of the trainable f32 weight.
//! 2. [`QatModel::train`]: a [`lithe_train::Trainer`] fine-tunes the graph; before every fake
//!    quantizer runs, [`FakeQuant`](fake_quant) writes the batch's scales over the scale
//!    constants: activations by the [`ActStrategy`], weights as `max|W_c| / 127` of the
//!    current weights. Gradients pass through each QuantizeLinear/DequantizeLinear pair
//!    unchanged inside the representable range and are 0 outside (the clipped
//!    straight-through estimator of `lithe_train`'s rules).
//! 3. [`QatModel::convert`]: the stored activation scales and the abs-max int8 weights of the
//!    final weights go into the same QDQ graph; [`QatModel::convert_int8`] runs the optimizer
//!    on it, which turns every quantized conv and fully connected layer into a `QConv` run by
//!    the int8 kernels.

mod convert;
mod data;
mod equalize;
mod fake_quant;
pub mod observer;
mod prepare;
mod train;

pub use data::LabelledSource;
pub use observer::{ActObserver, ActStrategy, DEFAULT_MOVING_RATE, DEFAULT_WINDOW_SIZE};
pub use train::{QatEpoch, QatTrainOptions};

use crate::QuantError;
use fake_quant::FakeQuant;
use lithe_ir::{Graph, Tensor};
use lithe_train::Tape;
use ndarray::ArrayD;
use std::fmt;
use std::str::FromStr;

/// A family of ops quantization-aware training can quantize.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuantOpType {
    /// Convolutions other than depthwise ones (grouped included).
    Conv,
    /// Depthwise convolutions (one input channel per group).
    DepthwiseConv,
    /// Gemm, MatMul and FullyConnected with a constant weight.
    Linear,
}

impl QuantOpType {
    /// The three families, the default.
    pub const ALL: [QuantOpType; 3] = [QuantOpType::Conv, QuantOpType::DepthwiseConv, QuantOpType::Linear];
}

impl fmt::Display for QuantOpType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QuantOpType::Conv => "conv",
            QuantOpType::DepthwiseConv => "depthwise_conv",
            QuantOpType::Linear => "linear",
        })
    }
}

impl FromStr for QuantOpType {
    type Err = QuantError;

    /// `conv`, `depthwise_conv`, or `linear` (also `gemm`, `matmul`, `fc`).
    fn from_str(s: &str) -> Result<Self, QuantError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "conv" => Ok(QuantOpType::Conv),
            "depthwise_conv" | "depthwise" => Ok(QuantOpType::DepthwiseConv),
            "linear" | "gemm" | "matmul" | "fc" => Ok(QuantOpType::Linear),
            other => Err(QuantError::Setting {
                field: "op_types",
                reason: format!("'{other}' (expected conv, depthwise_conv or linear)"),
            }),
        }
    }
}

/// Settings of quantization-aware training.
#[derive(Clone, Debug)]
pub struct QatConfig {
    /// How activation scales follow the batches (default `moving_average_abs_max`, 0.9).
    pub act_strategy: ActStrategy,
    /// Weights per output channel (`channel_wise_abs_max`, the default) or per layer (`abs_max`).
    pub per_channel: bool,
    /// Bits of weights and activations, 2 to 8 (8 by default; see [`QatConfig::validate`]).
    pub bits: u32,
    /// Node-name patterns (`*` wildcards) of nodes left in fp32.
    pub skip: Vec<String>,
    /// The op families quantized.
    pub op_types: Vec<QuantOpType>,
    /// Samples per batch of the calibration pass that picks each activation's zero point.
    pub calib_batch_size: usize,
    /// Use at most this many samples in that pass (all when `None`).
    pub calib_samples: Option<usize>,
    /// PACT: clip each quantized activation to `[-a, a]` with a trainable `a` starting at
    /// this value (PaddleSlim's default is 20) before its fake quantizer; `None`: no clip.
    pub pact: Option<f32>,
    /// Before training, equalize the per-channel ranges of each depthwise convolution's input
    /// by rescaling the convolution that produces it (fp32 function unchanged; with
    /// per-channel weights only, as only then is the weights' quantization unchanged too).
    /// On by default; see docs/quantization.md, "dwsep gap".
    pub equalize: bool,
}

impl Default for QatConfig {
    fn default() -> Self {
        QatConfig {
            act_strategy: ActStrategy::MovingAverageAbsMax { moving_rate: DEFAULT_MOVING_RATE },
            per_channel: true,
            bits: 8,
            skip: Vec::new(),
            op_types: QuantOpType::ALL.to_vec(),
            calib_batch_size: 64,
            calib_samples: Some(1024),
            pact: None,
            equalize: true,
        }
    }
}

impl QatConfig {
    /// Check the settings. Bits 2 to 8 train and convert; 9 to 16 are refused because the
    /// converted model runs on 8-bit kernels only (the QDQ graph has u8/s8 types).
    pub fn validate(&self) -> Result<(), QuantError> {
        self.act_strategy.validate()?;
        match self.bits {
            2..=8 => {}
            9..=16 => {
                return Err(QuantError::Setting {
                    field: "bits",
                    reason: format!(
                        "{} bits: the converted model runs on the int8 kernels, so quantization-aware \
                         training supports 2 to 8 bits",
                        self.bits
                    ),
                });
            }
            b => return Err(QuantError::Setting { field: "bits", reason: format!("{b} is not in 2..=16") }),
        }
        if let Some(a) = self.pact
            && !(a > 0.0 && a.is_finite())
        {
            return Err(QuantError::Setting { field: "pact", reason: format!("initial clip {a} must be positive") });
        }
        if self.op_types.is_empty() {
            return Err(QuantError::Setting { field: "op_types", reason: "no op type to quantize".into() });
        }
        if self.calib_batch_size == 0 {
            return Err(QuantError::Setting { field: "calib_batch_size", reason: "must be at least 1".into() });
        }
        Ok(())
    }
}

/// A model prepared for quantization-aware training: the fake-quantized graph and the state
/// of its quantizers.
#[derive(Clone, Debug)]
pub struct QatModel {
    graph: Graph,
    fake: FakeQuant,
    config: QatConfig,
    quantized: Vec<String>,
    skipped: Vec<String>,
}

impl QatModel {
    /// The fake-quantized graph: its constants are the current weights and the eval-mode
    /// scales (after [`QatModel::prepare`] and each [`QatModel::train`]).
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The settings it was prepared with.
    pub fn config(&self) -> &QatConfig {
        &self.config
    }

    /// Names of the quantized nodes.
    pub fn quantized(&self) -> &[String] {
        &self.quantized
    }

    /// Names of the nodes a skip pattern left in fp32.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// Each quantized activation by value name, with the threshold an eval-mode pass (and the
    /// converted model) uses; `None` for `abs_max` before any training batch.
    pub fn thresholds(&self) -> Vec<(String, Option<f32>)> {
        self.fake.acts.iter().map(|a| (a.value.clone(), a.observer.stored())).collect()
    }

    /// Each PACT clip by activation value name with its current `a` (empty without PACT).
    pub fn pact_alphas(&self) -> Vec<(String, f32)> {
        self.fake
            .acts
            .iter()
            .filter_map(|a| {
                let p = a.pact?;
                let v = self.graph.const_value(p.alpha)?.to_f32_vec().first().copied()?;
                Some((a.value.clone(), v))
            })
            .collect()
    }

    /// The first output of `x` (one tensor per graph input) through the fake-quantized
    /// graph in eval mode: static strategies use their stored scales.
    pub fn predict(&mut self, inputs: Vec<Tensor>) -> Result<ArrayD<f32>, QuantError> {
        let tape = Tape::new(&self.graph)?;
        let fwd = tape.forward_with(inputs, lithe_train::Mode::Eval, &mut self.fake)?;
        let out = *self
            .graph
            .outputs()
            .first()
            .ok_or_else(|| QuantError::Setting { field: "model", reason: "the graph has no output".into() })?;
        Ok(fwd.f32(out)?.clone())
    }
}
