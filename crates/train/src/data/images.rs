//! Image files: listing the images under a folder, and decoding one into preprocessed f32 values.

use super::preprocess::{ChannelOrder, Layout, Preprocess, Resize, setting};
use super::{data_error, io_error};
use crate::TrainError;
use image::imageops::FilterType;
use image::{DynamicImage, GenericImageView};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// File extensions read as images (compared case-insensitively).
pub const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

/// The `.jpg`, `.jpeg` and `.png` files under `dir`, recursively, sorted by path (symbolic links
/// to folders are not followed). May be empty.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>, TrainError> {
    let mut files = Vec::new();
    collect_images(dir, &mut files)?;
    files.sort();
    Ok(files)
}

fn collect_images(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), TrainError> {
    let list_error = |e: std::io::Error| data_error(dir.display(), format!("cannot list the folder: {e}"));
    for entry in std::fs::read_dir(dir).map_err(list_error)? {
        let entry = entry.map_err(list_error)?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| data_error(path.display(), format!("cannot stat: {e}")))?;
        if kind.is_dir() {
            collect_images(&path, out)?;
        } else if is_image(&path) {
            out.push(path);
        }
    }
    Ok(())
}

/// Whether `path` has one of the [`IMAGE_EXTENSIONS`].
fn is_image(path: &Path) -> bool {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    ext.is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str()))
}

/// Decodes image files (PNG, JPEG) and preprocesses them ([`Preprocess`]) into samples of one
/// size: `C x H x W` or `H x W x C` f32 values after the spec's layout.
#[derive(Clone, Debug)]
pub struct ImageDecoder {
    pre: Preprocess,
    norm: Vec<(f32, f32)>,
    size: (usize, usize),
}

impl ImageDecoder {
    /// A decoder producing `size = (height, width)` samples (the spec's centre crop, when it has
    /// one, must be that size), after checking the spec's normalization.
    pub fn new(pre: Preprocess, size: (usize, usize)) -> Result<Self, TrainError> {
        let norm = pre.normalization()?;
        if size.0 == 0 || size.1 == 0 {
            return Err(setting("size", format!("{}x{} (must be positive)", size.0, size.1)));
        }
        if let Some((h, w)) = pre.crop
            && (h as usize, w as usize) != size
        {
            return Err(setting("crop", format!("{h}x{w} differs from the sample size {}x{}", size.0, size.1)));
        }
        Ok(ImageDecoder { pre, norm, size })
    }

    /// A decoder whose sample size comes from the spec alone: its crop, else its exact resize.
    pub fn from_spec(pre: Preprocess) -> Result<Self, TrainError> {
        let size = match (pre.crop, pre.resize) {
            (Some((h, w)), _) | (None, Some(Resize::Exact { height: h, width: w })) => (h as usize, w as usize),
            _ => return Err(setting("crop", "no sample size: give crop=HxW or resize=HxW".into())),
        };
        ImageDecoder::new(pre, size)
    }

    /// The preprocessing spec.
    pub fn preprocess(&self) -> &Preprocess {
        &self.pre
    }

    /// The shape of one sample: `[C, H, W]` (NCHW layout) or `[H, W, C]` (NHWC).
    pub fn sample_shape(&self) -> [usize; 3] {
        let (c, (h, w)) = (self.pre.order.channels(), self.size);
        match self.pre.layout {
            Layout::Nchw => [c, h, w],
            Layout::Nhwc => [h, w, c],
        }
    }

    /// The number of values of one sample.
    pub fn sample_len(&self) -> usize {
        self.sample_shape().iter().product()
    }

    /// Decode `files` in parallel into one buffer, sample after sample. The first failing file
    /// (in no set order when several fail) is the error.
    pub fn decode_all(&self, files: &[PathBuf]) -> Result<Vec<f32>, TrainError> {
        let per = self.sample_len();
        let mut data = vec![0f32; files.len() * per];
        data.par_chunks_mut(per).zip(files).try_for_each(|(out, path)| self.decode(path, out))?;
        Ok(data)
    }

    /// Decode and preprocess one image into `out` ([`ImageDecoder::sample_len`] values).
    pub fn decode(&self, path: &Path, out: &mut [f32]) -> Result<(), TrainError> {
        if out.len() != self.sample_len() {
            return Err(data_error(
                path.display(),
                format!("{} values asked for a {:?} sample", out.len(), self.sample_shape()),
            ));
        }
        let img = image::ImageReader::open(path)
            .map_err(|e| io_error(path, e))?
            .with_guessed_format()
            .map_err(|e| io_error(path, e))?
            .decode()
            .map_err(|e| data_error(path.display(), format!("cannot decode the image: {e}")))?;
        let img = match self.pre.order {
            ChannelOrder::Gray => DynamicImage::ImageLuma8(img.to_luma8()),
            _ => DynamicImage::ImageRgb8(img.to_rgb8()),
        };
        let img = self.resize(img);
        let (w1, h1) = (img.width() as usize, img.height() as usize);
        let (ch, cw) = self.size;
        if h1 < ch || w1 < cw {
            return Err(data_error(
                path.display(),
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
            let row = &raw[((top + y) * w1 + left) * channels..][..cw * channels];
            for (x, px) in row.chunks_exact(channels).enumerate() {
                for c in 0..channels {
                    let src = if bgr { px[2 - c] } else { px[c] };
                    let (mean, std) = self.norm[c];
                    let i = match self.pre.layout {
                        Layout::Nchw => (c * ch + y) * cw + x,
                        Layout::Nhwc => (y * cw + x) * channels + c,
                    };
                    out[i] = (f32::from(src) * self.pre.scale - mean) / std;
                }
            }
        }
        Ok(())
    }

    /// The spec's resize (bilinear), if any.
    fn resize(&self, img: DynamicImage) -> DynamicImage {
        let (w0, h0) = img.dimensions();
        let Some(r) = self.pre.resize else { return img };
        let (h, w) = match r {
            Resize::Exact { height, width } => (height, width),
            // The longer side truncated, as torchvision's Resize(int).
            Resize::ShorterSide(s) if h0 <= w0 => {
                (s, ((u64::from(s) * u64::from(w0)) / u64::from(h0.max(1))).max(1) as u32)
            }
            Resize::ShorterSide(s) => (((u64::from(s) * u64::from(h0)) / u64::from(w0.max(1))).max(1) as u32, s),
        };
        if (w, h) == (w0, h0) { img } else { img.resize_exact(w, h, FilterType::Triangle) }
    }
}
