//! The committed MNIST split and models (`testdata/mnist/`), shared by the integration tests.

use lithe_ir::{Graph, Tensor};
use lithe_quant::QuantError;
use lithe_quant::data::{Batch, CalibSource, InputSpec};
use std::collections::HashMap;
use std::path::PathBuf;

pub fn mnist_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/mnist")
}

/// An IDX image file as `N x 1 x 28 x 28` f32 in `[0, 1]`, with its labels.
#[derive(Debug)]
pub struct Idx {
    spec: [InputSpec; 1],
    pixels: Vec<f32>,
    pub labels: Vec<usize>,
}

impl Idx {
    pub fn open(images: &str, labels: &str) -> Idx {
        let im = std::fs::read(mnist_dir().join(images)).unwrap();
        let lb = std::fs::read(mnist_dir().join(labels)).unwrap();
        let n = u32::from_be_bytes([im[4], im[5], im[6], im[7]]) as usize;
        let pixels = im[16..16 + n * 784].iter().map(|&p| f32::from(p) / 255.0).collect();
        let labels = lb[8..8 + n].iter().map(|&l| usize::from(l)).collect();
        Idx { spec: [InputSpec::new("input", &[None, Some(1), Some(28), Some(28)])], pixels, labels }
    }

    pub fn train() -> Idx {
        Idx::open("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
    }

    pub fn test() -> Idx {
        Idx::open("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    }
}

impl CalibSource for Idx {
    fn inputs(&self) -> &[InputSpec] {
        &self.spec
    }
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn load(&self, start: usize, count: usize) -> Result<Batch, QuantError> {
        let count = count.min(self.len().saturating_sub(start));
        let v = self.pixels[start * 784..(start + count) * 784].to_vec();
        Ok(Batch { inputs: vec![("input".into(), Tensor::from_vec(&[count, 1, 28, 28], v)?)] })
    }
}

/// A committed model, optimized like `lite-cli quant` does.
pub fn optimized(model: &str) -> Graph {
    let opts = lithe_onnx::ImportOptions { input_shapes: HashMap::new(), ..Default::default() };
    let mut g = lithe_onnx::load_model(&mnist_dir().join(model), &opts).unwrap();
    lithe_passes::PassManager::default_pipeline().run(&mut g).unwrap();
    g
}
