//! Training data: an in-memory [`Dataset`] of f32 samples with class labels, read from IDX
//! files (MNIST) or `.npy` pairs, and [`Batches`]: seeded shuffling, batching and random-shift
//! augmentation.

use crate::TrainError;
use crate::error::invalid;
use crate::rng::Rng;
use lithe_ir::{DType, Tensor};
use std::path::Path;

/// Largest IDX payload read (bytes), against hostile headers.
const MAX_IDX_BYTES: usize = 1 << 31;

/// An IDX file: dims and the u8 payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Idx {
    /// The dimensions, first the sample count.
    pub dims: Vec<usize>,
    /// Row-major u8 values.
    pub data: Vec<u8>,
}

/// Parse IDX bytes: `00 00 08 rank`, one big-endian u32 per dimension, then u8 data. Only the
/// unsigned-byte type (0x08) is read; trailing bytes are an error.
pub fn parse_idx(what: &str, bytes: &[u8]) -> Result<Idx, TrainError> {
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(invalid(what, "not an IDX file (bad magic)"));
    }
    if bytes[2] != 0x08 {
        return Err(invalid(what, format!("IDX element type 0x{:02x} (only u8, 0x08, is read)", bytes[2])));
    }
    let rank = bytes[3] as usize;
    let header = 4 + 4 * rank;
    if rank == 0 || bytes.len() < header {
        return Err(invalid(what, format!("IDX header of rank {rank} is truncated")));
    }
    let dims: Vec<usize> = (0..rank)
        .map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes")) as usize)
        .collect();
    let len = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).filter(|&l| l <= MAX_IDX_BYTES);
    let Some(len) = len else {
        return Err(invalid(what, format!("IDX dims {dims:?} exceed {MAX_IDX_BYTES} bytes")));
    };
    if bytes.len() - header != len {
        return Err(invalid(
            what,
            format!("IDX dims {dims:?} need {len} data bytes, the file has {}", bytes.len() - header),
        ));
    }
    Ok(Idx { dims, data: bytes[header..].to_vec() })
}

/// Read and parse an IDX file.
pub fn read_idx(path: &Path) -> Result<Idx, TrainError> {
    let bytes = std::fs::read(path).map_err(|e| TrainError::Io { path: path.display().to_string(), source: e })?;
    parse_idx(&path.display().to_string(), &bytes)
}

/// Samples (f32, each of `sample_shape`) with one class label each.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Every sample's values, sample after sample.
    pub x: Vec<f32>,
    /// The shape of one sample (e.g. `[1, 28, 28]`).
    pub sample_shape: Vec<usize>,
    /// One label per sample.
    pub labels: Vec<usize>,
}

impl Dataset {
    /// Build from parts, checking the sizes agree.
    pub fn new(x: Vec<f32>, sample_shape: Vec<usize>, labels: Vec<usize>) -> Result<Self, TrainError> {
        let per: usize = sample_shape.iter().product();
        if per == 0 || x.len() != per * labels.len() {
            return Err(invalid(
                "dataset",
                format!("{} values for {} samples of shape {sample_shape:?}", x.len(), labels.len()),
            ));
        }
        Ok(Dataset { x, sample_shape, labels })
    }

    /// MNIST-style IDX pair: images `N x H x W` (u8) become `N x 1 x H x W` f32 `pixel / 255`,
    /// labels `N` (u8).
    pub fn from_idx(images: &Path, labels: &Path) -> Result<Self, TrainError> {
        let im = read_idx(images)?;
        let lb = read_idx(labels)?;
        if im.dims.len() != 3 || lb.dims.len() != 1 || im.dims[0] != lb.dims[0] {
            return Err(invalid(
                images.display().to_string(),
                format!("images {:?} and labels {:?} do not pair as N x H x W and N", im.dims, lb.dims),
            ));
        }
        let x = im.data.iter().map(|&v| v as f32 / 255.0).collect();
        Dataset::new(x, vec![1, im.dims[1], im.dims[2]], lb.data.iter().map(|&l| l as usize).collect())
    }

    /// A `.npy` of samples stacked on axis 0 (any float or integer dtype, cast to f32) and a
    /// `.npy` of integer labels.
    pub fn from_npy(x: &Path, labels: &Path) -> Result<Self, TrainError> {
        let read = |p: &Path| lithe_ir::npy::read_npy(p).map_err(|e| invalid(p.display().to_string(), e.to_string()));
        let xt = read(x)?;
        let lt = read(labels)?;
        if xt.shape().is_empty() || lt.shape().len() != 1 || matches!(lt.dtype(), DType::F32 | DType::F16) {
            return Err(invalid(
                x.display().to_string(),
                format!("samples {:?} and integer labels {:?} {:?} expected", xt.shape(), lt.dtype(), lt.shape()),
            ));
        }
        let ls = lt.to_i64_vec();
        if let Some(l) = ls.iter().find(|&&l| l < 0) {
            return Err(invalid(labels.display().to_string(), format!("negative label {l}")));
        }
        let x_vals = xt.cast(DType::F32).to_f32_vec();
        Dataset::new(x_vals, xt.shape()[1..].to_vec(), ls.into_iter().map(|l| l as usize).collect())
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The first `n` samples (all when fewer).
    pub fn take(&self, n: usize) -> Dataset {
        let n = n.min(self.len());
        let per: usize = self.sample_shape.iter().product();
        Dataset {
            x: self.x[..n * per].to_vec(),
            sample_shape: self.sample_shape.clone(),
            labels: self.labels[..n].to_vec(),
        }
    }

    /// The samples at `indices` as one `len x sample_shape` tensor, and their labels.
    pub fn gather(&self, indices: &[usize]) -> (Tensor, Vec<usize>) {
        let per: usize = self.sample_shape.iter().product();
        let mut x = Vec::with_capacity(indices.len() * per);
        for &i in indices {
            x.extend_from_slice(&self.x[i * per..(i + 1) * per]);
        }
        let mut shape = vec![indices.len()];
        shape.extend_from_slice(&self.sample_shape);
        let t = Tensor::from_vec(&shape, x).expect("sizes agree");
        (t, indices.iter().map(|&i| self.labels[i]).collect())
    }
}

/// Per-sample augmentation applied to `C x H x W` samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Augment {
    /// None.
    #[default]
    None,
    /// Shift each sample by a random offset in `-max..=max` pixels on each spatial axis,
    /// filling with zeros (torch's `RandomAffine(translate)` on a zero background).
    Shift {
        /// Largest shift in pixels.
        max: usize,
    },
    /// One random shift for the whole batch (what `xtask/python/quant_data.py` does to train
    /// the torch baselines: pad by `max`, crop at a random offset).
    ShiftBatch {
        /// Largest shift in pixels.
        max: usize,
    },
}

/// Shift one `C x H x W` sample by `(dy, dx)`, zero-filled.
pub fn shift_sample(src: &[f32], c: usize, h: usize, w: usize, dy: isize, dx: isize, dst: &mut [f32]) {
    dst.fill(0.0);
    for ch in 0..c {
        for y in 0..h {
            let sy = y as isize - dy;
            if sy < 0 || sy >= h as isize {
                continue;
            }
            for x in 0..w {
                let sx = x as isize - dx;
                if sx >= 0 && sx < w as isize {
                    dst[(ch * h + y) * w + x] = src[(ch * h + sy as usize) * w + sx as usize];
                }
            }
        }
    }
}

/// One epoch of batches over a dataset: the order shuffled with `seed` (or kept), the last
/// batch possibly short, each sample augmented with its own draw.
#[derive(Debug)]
pub struct Batches<'a> {
    data: &'a Dataset,
    order: Vec<usize>,
    batch: usize,
    pos: usize,
    augment: Augment,
    rng: Rng,
}

impl<'a> Batches<'a> {
    /// Batches of `batch` samples; `shuffle` is the seed of this epoch's order (`None` keeps
    /// the dataset order).
    pub fn new(data: &'a Dataset, batch: usize, shuffle: Option<u64>, augment: Augment) -> Self {
        let mut order: Vec<usize> = (0..data.len()).collect();
        let seed = shuffle.unwrap_or(0);
        if shuffle.is_some() {
            Rng::new(seed).shuffle(&mut order);
        }
        Batches { data, order, batch: batch.max(1), pos: 0, augment, rng: Rng::new(seed ^ 0xA076_1D64_78BD_642F) }
    }

    /// Number of batches in the epoch.
    pub fn num_batches(&self) -> usize {
        self.order.len().div_ceil(self.batch)
    }
}

impl Iterator for Batches<'_> {
    type Item = (Tensor, Vec<usize>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.order.len() {
            return None;
        }
        let end = (self.pos + self.batch).min(self.order.len());
        let (mut x, labels) = self.data.gather(&self.order[self.pos..end]);
        self.pos = end;
        let (max, per_sample) = match self.augment {
            Augment::None => (0, false),
            Augment::Shift { max } => (max, true),
            Augment::ShiftBatch { max } => (max, false),
        };
        if max > 0 && self.data.sample_shape.len() == 3 {
            let [c, h, w] = [self.data.sample_shape[0], self.data.sample_shape[1], self.data.sample_shape[2]];
            let per = c * h * w;
            let span = 2 * max as u64 + 1;
            if let Some(a) = x.view::<f32>().map(|a| a.as_slice().expect("fresh tensor").to_vec()) {
                let mut out = vec![0f32; a.len()];
                let draw = |rng: &mut Rng| {
                    let dy = rng.below(span) as isize - max as isize;
                    (dy, rng.below(span) as isize - max as isize)
                };
                let batch_shift = draw(&mut self.rng);
                for (src, dst) in a.chunks(per).zip(out.chunks_mut(per)) {
                    let (dy, dx) = if per_sample { draw(&mut self.rng) } else { batch_shift };
                    shift_sample(src, c, h, w, dy, dx, dst);
                }
                x = Tensor::from_vec(x.shape(), out).expect("same size");
            }
        }
        Some((x, labels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn idx_parses_and_rejects_malformed_files() {
        let ok = parse_idx("t", &idx(&[2, 3], &[1, 2, 3, 4, 5, 6])).unwrap();
        assert_eq!((ok.dims, ok.data), (vec![2, 3], vec![1, 2, 3, 4, 5, 6]));
        assert!(parse_idx("t", &idx(&[2, 3], &[1, 2, 3])).is_err(), "truncated");
        assert!(parse_idx("t", &idx(&[2, 3], &[0; 7])).is_err(), "trailing bytes");
        assert!(parse_idx("t", &[0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0]).is_err(), "float type");
        assert!(parse_idx("t", &[1, 0, 8, 1]).is_err(), "magic");
        assert!(parse_idx("t", &idx(&[u32::MAX, u32::MAX, u32::MAX], &[])).is_err(), "huge dims");
    }

    #[test]
    fn batches_cover_every_sample_once_and_repeat_for_a_seed() {
        let d = Dataset::new((0..10).map(|v| v as f32).collect(), vec![1], (0..10).collect()).unwrap();
        let epoch =
            |seed| -> Vec<usize> { Batches::new(&d, 4, Some(seed), Augment::None).flat_map(|(_, l)| l).collect() };
        let a = epoch(1);
        assert_eq!(a, epoch(1));
        assert_ne!(a, epoch(2));
        let mut s = a.clone();
        s.sort_unstable();
        assert_eq!(s, (0..10).collect::<Vec<_>>());
        let sizes: Vec<usize> = Batches::new(&d, 4, None, Augment::None).map(|(x, _)| x.shape()[0]).collect();
        assert_eq!(sizes, vec![4, 4, 2]);
        // Values follow their labels.
        for (x, l) in Batches::new(&d, 3, Some(5), Augment::None) {
            assert_eq!(x.to_f32_vec(), l.iter().map(|&v| v as f32).collect::<Vec<_>>());
        }
    }

    #[test]
    fn shift_moves_pixels_and_zero_fills() {
        let src: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let mut dst = vec![0f32; 9];
        shift_sample(&src, 1, 3, 3, 1, -1, &mut dst);
        assert_eq!(dst, vec![0., 0., 0., 2., 3., 0., 5., 6., 0.]);
    }

    #[test]
    fn mnist_split_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/mnist");
        let d = Dataset::from_idx(&dir.join("t10k-images-idx3-ubyte"), &dir.join("t10k-labels-idx1-ubyte")).unwrap();
        assert_eq!((d.len(), d.sample_shape.clone()), (1000, vec![1, 28, 28]));
        assert_eq!(&d.labels[..12], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
        assert!(d.x.iter().all(|&v| (0.0..=1.0).contains(&v)));
    }
}
