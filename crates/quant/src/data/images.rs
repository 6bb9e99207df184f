//! A folder of images as calibration data.

use super::preprocess::{ChannelOrder, Layout, Preprocess, Resize};
use super::{Batch, CalibSource, InputSpec, calib_error};
use crate::QuantError;
use image::imageops::FilterType;
use image::{DynamicImage, GenericImageView};
use lithe_ir::Tensor;
use rayon::prelude::*;
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
    pre: Preprocess,
    norm: Vec<(f32, f32)>,
    /// Output rows and columns.
    size: (usize, usize),
}

impl ImageFolderSource {
    /// List the images under `dir` and check `pre` against the input `spec` (rank 4, layout,
    /// channels, size). Images are decoded by [`CalibSource::load`].
    pub fn open(dir: &Path, spec: InputSpec, pre: Preprocess) -> Result<Self, QuantError> {
        let norm = pre.normalization()?;
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
        let mut files = Vec::new();
        collect_images(dir, &mut files)?;
        files.sort();
        if files.is_empty() {
            return Err(calib_error(dir, "no .jpg, .jpeg or .png images in this folder".into()));
        }
        Ok(ImageFolderSource { spec: [spec], files, pre, norm, size })
    }

    /// The image files, in sample order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Decode and preprocess one image into `out` (`C*H*W` values in the output layout).
    fn sample(&self, path: &Path, out: &mut [f32]) -> Result<(), QuantError> {
        let img = image::ImageReader::open(path)
            .map_err(|e| calib_error(path, format!("cannot read: {e}")))?
            .with_guessed_format()
            .map_err(|e| calib_error(path, format!("cannot read: {e}")))?
            .decode()
            .map_err(|e| calib_error(path, format!("cannot decode the image: {e}")))?;
        let img = match self.pre.order {
            ChannelOrder::Gray => DynamicImage::ImageLuma8(img.to_luma8()),
            _ => DynamicImage::ImageRgb8(img.to_rgb8()),
        };
        let (w0, h0) = img.dimensions();
        let img = match self.pre.resize {
            None => img,
            Some(r) => {
                let (h, w) = match r {
                    Resize::Exact { height, width } => (height, width),
                    Resize::ShorterSide(s) => {
                        // The longer side truncated, as torchvision's Resize(int).
                        if h0 <= w0 {
                            (s, ((u64::from(s) * u64::from(w0)) / u64::from(h0.max(1))).max(1) as u32)
                        } else {
                            (((u64::from(s) * u64::from(h0)) / u64::from(w0.max(1))).max(1) as u32, s)
                        }
                    }
                };
                if (w, h) == (w0, h0) { img } else { img.resize_exact(w, h, FilterType::Triangle) }
            }
        };
        let (w1, h1) = (img.width() as usize, img.height() as usize);
        let (ch, cw) = self.size;
        if h1 < ch || w1 < cw {
            return Err(calib_error(
                path,
                format!("image of {h1}x{w1} (HxW) after resizing is smaller than the {ch}x{cw} crop"),
            ));
        }
        // torchvision's centre crop offsets.
        let top = ((h1 - ch) as f64 / 2.0).round_ties_even() as usize;
        let left = ((w1 - cw) as f64 / 2.0).round_ties_even() as usize;
        let channels = self.pre.order.channels();
        let raw = img.as_bytes();
        let bgr = self.pre.order == ChannelOrder::Bgr;
        for y in 0..ch {
            for x in 0..cw {
                let px = &raw[((top + y) * w1 + left + x) * channels..][..channels];
                for c in 0..channels {
                    let src = if bgr { px[2 - c] } else { px[c] };
                    let (mean, std) = self.norm[c];
                    let v = (f32::from(src) * self.pre.scale - mean) / std;
                    let i = match self.pre.layout {
                        Layout::Nchw => (c * ch + y) * cw + x,
                        Layout::Nhwc => (y * cw + x) * channels + c,
                    };
                    out[i] = v;
                }
            }
        }
        Ok(())
    }
}

/// Append the image files under `dir` (not following symbolic links to folders).
fn collect_images(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), QuantError> {
    let entries = std::fs::read_dir(dir).map_err(|e| calib_error(dir, format!("cannot list the folder: {e}")))?;
    for entry in entries {
        let entry = entry.map_err(|e| calib_error(dir, format!("cannot list the folder: {e}")))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| calib_error(&path, format!("cannot stat: {e}")))?;
        if kind.is_dir() {
            collect_images(&path, out)?;
        } else {
            let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
            if matches!(ext.as_deref(), Some("jpg" | "jpeg" | "png")) {
                out.push(path);
            }
        }
    }
    Ok(())
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
        let (h, w) = self.size;
        let c = self.pre.order.channels();
        let per = c * h * w;
        let mut data = vec![0.0f32; files.len() * per];
        if per > 0 {
            data.par_chunks_mut(per).zip(files).try_for_each(|(out, path)| self.sample(path, out))?;
        }
        let shape = match self.pre.layout {
            Layout::Nchw => [files.len(), c, h, w],
            Layout::Nhwc => [files.len(), h, w, c],
        };
        let tensor = Tensor::from_vec(&shape, data)?;
        Ok(Batch { inputs: vec![(self.spec[0].name.clone(), tensor)] })
    }
}
