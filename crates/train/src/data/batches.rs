//! [`Batches`]: one epoch over a [`Dataset`], shuffled with a seed, augmented per sample.

use super::Dataset;
use super::augment::{Augment, augment_batch};
use crate::rng::Rng;
use lithe_ir::Tensor;

/// One epoch of batches over a dataset: the order shuffled with `seed` (or kept), the last
/// batch possibly short, each sample augmented with its own draw. Augmentation applies to
/// 3-D (`C x H x W`) samples only; other samples are passed through unchanged.
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
    /// Batches of `batch` samples; `shuffle` is the seed of this epoch's order and of its
    /// augmentation draws (`None` keeps the dataset order and draws with seed 0).
    pub fn new(data: &'a Dataset, batch: usize, shuffle: Option<u64>, augment: Augment) -> Self {
        let mut order: Vec<usize> = (0..data.len()).collect();
        let seed = shuffle.unwrap_or(0);
        if shuffle.is_some() {
            Rng::new(seed).shuffle(&mut order);
        }
        if augment != Augment::None && data.sample_shape.len() != 3 {
            tracing::warn!(shape = ?data.sample_shape, "augmentation needs C x H x W samples: not applied");
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
        let indices = &self.order[self.pos..end];
        self.pos = end;
        if self.augment == Augment::None || self.data.sample_shape.len() != 3 {
            return Some(self.data.gather(indices));
        }
        let per: usize = self.data.sample_shape.iter().product();
        let mut x = Vec::with_capacity(indices.len() * per);
        for &i in indices {
            x.extend_from_slice(&self.data.x[i * per..(i + 1) * per]);
        }
        let [c, h, w] = [self.data.sample_shape[0], self.data.sample_shape[1], self.data.sample_shape[2]];
        augment_batch(self.augment, &mut self.rng, &mut x, c, h, w);
        let mut shape = vec![indices.len()];
        shape.extend_from_slice(&self.data.sample_shape);
        let labels = indices.iter().map(|&i| self.data.labels[i]).collect();
        Some((Tensor::from_vec(&shape, x).expect("sizes agree"), labels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(Batches::new(&d, 4, None, Augment::None).num_batches(), 3);
        // Values follow their labels.
        for (x, l) in Batches::new(&d, 3, Some(5), Augment::None) {
            assert_eq!(x.to_f32_vec(), l.iter().map(|&v| v as f32).collect::<Vec<_>>());
        }
    }

    #[test]
    fn augmented_batches_repeat_for_a_seed_and_keep_labels() {
        // 20 samples of 1 x 2 x 2, sample i holding i + 1 in every pixel.
        let x: Vec<f32> = (0..20).flat_map(|i| [(i + 1) as f32; 4]).collect();
        let d = Dataset::new(x, vec![1, 2, 2], (0..20).collect()).unwrap();
        let epoch = |seed| -> Vec<(Vec<f32>, Vec<usize>)> {
            Batches::new(&d, 8, Some(seed), Augment::crop_flip(1)).map(|(x, l)| (x.to_f32_vec(), l)).collect()
        };
        let a = epoch(3);
        assert_eq!(a, epoch(3));
        assert_ne!(a, epoch(4));
        let mut any_zero = false;
        for (x, labels) in &a {
            for (s, &l) in x.chunks(4).zip(labels) {
                // Each pixel is either zero padding or the sample's own value.
                assert!(s.iter().all(|&v| v == 0.0 || v == (l + 1) as f32), "{s:?} for label {l}");
                any_zero |= s.contains(&0.0);
            }
        }
        assert!(any_zero, "padding 1 on 2x2 samples leaves zeros in 8 of 9 windows");
    }
}
