//! A folder of images as calibration data (listing and decoding by [`lithe_train::data`]).

use super::{Batch, CalibSource, InputSpec, calib_error, from_train};
use super::{Layout, Preprocess};
use crate::QuantError;
use lithe_ir::Tensor;
use lithe_train::data::{ImageDecoder, list_images};
use std::path::{Path, PathBuf};

/// The `.jpg`, `.jpeg` and `.png` files under a folder (recursively, case-insensitive
/// extensions, sorted by path; symbolic links to folders are not followed), decoded and
/// preprocessed ([`Preprocess`]) into the model's one image input, a batch's images decoded in
/// parallel. The output height and width are the crop's, or the model input's when there is no
/// crop; the input's channel dimension must match the channel order (3, or 1 for gray).
#[derive(Debug, Clone)]
pub struct ImageFolderSource {
    spec: [InputSpec; 1],
    files: Vec<PathBuf>,
    decoder: ImageDecoder,
}

impl ImageFolderSource {
    /// List the images under `dir` and check `pre` against the input `spec` (rank 4, layout,
    /// channels, size). Images are decoded by [`CalibSource::load`].
    pub fn open(dir: &Path, spec: InputSpec, pre: Preprocess) -> Result<Self, QuantError> {
        pre.normalization().map_err(from_train)?;
        let bad = |reason: String| QuantError::Setting { field: "preprocess", reason };
        if spec.shape.len() != 4 {
            return Err(bad(format!("input {spec} is not 4-D, so it cannot take images")));
        }
        let (c_axis, h_axis, w_axis) = match pre.layout {
            Layout::Nchw => (1, 2, 3),
            Layout::Nhwc => (3, 1, 2),
        };
        let channels = pre.order.channels();
        if spec.shape[c_axis].is_some_and(|c| c != channels) {
            return Err(bad(format!(
                "input {spec} does not have {channels} channels on axis {c_axis} ({:?} layout, {:?} order)",
                pre.layout, pre.order
            )));
        }
        let (model_h, model_w) = (spec.shape[h_axis], spec.shape[w_axis]);
        let size = match pre.crop {
            Some((h, w)) => {
                let (h, w) = (h as usize, w as usize);
                if model_h.is_some_and(|m| m != h) || model_w.is_some_and(|m| m != w) {
                    return Err(bad(format!("crop {h}x{w} does not fit input {spec}")));
                }
                (h, w)
            }
            None => match (model_h, model_w) {
                (Some(h), Some(w)) if h > 0 && w > 0 => (h, w),
                _ => return Err(bad(format!("input {spec} has no fixed height and width: give crop=HxW"))),
            },
        };
        let files = list_images(dir).map_err(from_train)?;
        if files.is_empty() {
            return Err(calib_error(dir, "no .jpg, .jpeg or .png images in this folder".into()));
        }
        let decoder = ImageDecoder::new(pre, size).map_err(from_train)?;
        Ok(ImageFolderSource { spec: [spec], files, decoder })
    }

    /// The image files, in sample order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }
}

impl CalibSource for ImageFolderSource {
    fn inputs(&self) -> &[InputSpec] {
        &self.spec
    }

    fn len(&self) -> usize {
        self.files.len()
    }

    fn load(&self, start: usize, count: usize) -> Result<Batch, QuantError> {
        let start = start.min(self.files.len());
        let files = &self.files[start..start.saturating_add(count).min(self.files.len())];
        let data = self.decoder.decode_all(files).map_err(from_train)?;
        let mut shape = vec![files.len()];
        shape.extend_from_slice(&self.decoder.sample_shape());
        let tensor = Tensor::from_vec(&shape, data)?;
        Ok(Batch { inputs: vec![(self.spec[0].name.clone(), tensor)] })
    }
}
