//! Random augmentation of `C x H x W` samples: shifts, crops with zero padding, horizontal
//! flips; each a function on one sample, drawn per sample (or per batch) from a seeded [`Rng`].

use crate::rng::Rng;

/// Augmentation applied by [`super::Batches`] to `C x H x W` samples.
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
    /// Per sample, the enabled steps in order: random crop with zero padding, random
    /// horizontal flip, random shift.
    Steps(AugmentSteps),
}

/// The per-sample steps of [`Augment::Steps`], each drawn independently for every sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct AugmentSteps {
    /// Pad by this many zero pixels on every side, then crop back to `H x W` at a uniformly
    /// random offset (torchvision's `RandomCrop((H, W), padding)`); 0 skips the step.
    pub crop_padding: usize,
    /// Mirror left-right with probability 1/2 (torchvision's `RandomHorizontalFlip()`).
    pub flip: bool,
    /// Shift by up to this many pixels on each axis, zero-filled; 0 skips the step.
    pub shift: usize,
}

impl Augment {
    /// Random crop with `padding` zero pixels per sample.
    pub fn crop(padding: usize) -> Self {
        Augment::Steps(AugmentSteps { crop_padding: padding, ..AugmentSteps::default() })
    }

    /// Random horizontal flip per sample.
    pub fn flip() -> Self {
        Augment::Steps(AugmentSteps { flip: true, ..AugmentSteps::default() })
    }

    /// Random crop with `padding` then random horizontal flip per sample (the usual CIFAR recipe).
    pub fn crop_flip(padding: usize) -> Self {
        Augment::Steps(AugmentSteps { crop_padding: padding, flip: true, shift: 0 })
    }
}

/// Shift one `C x H x W` sample by `(dy, dx)`, zero-filled: `dst[y][x] = src[y - dy][x - dx]`.
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

/// Crop one `C x H x W` sample padded by `padding` zeros on every side back to `H x W`, the
/// window's top-left corner at `(top, left)` of the padded sample (each in `0..=2·padding`).
/// This is [`shift_sample`] by `(padding - top, padding - left)`.
#[allow(clippy::too_many_arguments)]
pub fn crop_sample(
    src: &[f32],
    c: usize,
    h: usize,
    w: usize,
    padding: usize,
    top: usize,
    left: usize,
    dst: &mut [f32],
) {
    shift_sample(src, c, h, w, padding as isize - top as isize, padding as isize - left as isize, dst);
}

/// Mirror one `C x H x W` sample left-right: `dst[y][x] = src[y][W - 1 - x]`.
pub fn flip_sample(src: &[f32], c: usize, h: usize, w: usize, dst: &mut [f32]) {
    for (s, d) in src[..c * h * w].chunks_exact(w).zip(dst.chunks_exact_mut(w)) {
        d.iter_mut().zip(s.iter().rev()).for_each(|(d, &s)| *d = s);
    }
}

impl AugmentSteps {
    /// Augment one `C x H x W` sample in place, drawing from `rng` for each enabled step in
    /// order (crop: top then left; flip: one draw; shift: dy then dx). `scratch` has the
    /// sample's length.
    #[allow(clippy::too_many_arguments)]
    pub fn apply(&self, rng: &mut Rng, sample: &mut [f32], scratch: &mut [f32], c: usize, h: usize, w: usize) {
        if self.crop_padding > 0 {
            let span = 2 * self.crop_padding as u64 + 1;
            let (top, left) = (rng.below(span) as usize, rng.below(span) as usize);
            crop_sample(sample, c, h, w, self.crop_padding, top, left, scratch);
            sample.copy_from_slice(scratch);
        }
        if self.flip && rng.next_u64() >> 63 == 1 {
            flip_sample(sample, c, h, w, scratch);
            sample.copy_from_slice(scratch);
        }
        if self.shift > 0 {
            let (dy, dx) = draw_shift(rng, self.shift);
            shift_sample(sample, c, h, w, dy, dx, scratch);
            sample.copy_from_slice(scratch);
        }
    }
}

/// A shift `(dy, dx)`, each uniform in `-max..=max`.
fn draw_shift(rng: &mut Rng, max: usize) -> (isize, isize) {
    let span = 2 * max as u64 + 1;
    let dy = rng.below(span) as isize - max as isize;
    (dy, rng.below(span) as isize - max as isize)
}

/// Augment a batch of `C x H x W` samples (`data`, sample after sample) in place.
pub(crate) fn augment_batch(augment: Augment, rng: &mut Rng, data: &mut [f32], c: usize, h: usize, w: usize) {
    let per = c * h * w;
    if per == 0 {
        return;
    }
    let mut scratch = vec![0f32; per];
    match augment {
        Augment::None => {}
        Augment::Shift { max } | Augment::ShiftBatch { max } if max > 0 => {
            // The batch shift is drawn first in both cases, so a seed gives the same draws as
            // before per-sample steps existed.
            let batch_shift = draw_shift(rng, max);
            for sample in data.chunks_exact_mut(per) {
                let (dy, dx) =
                    if matches!(augment, Augment::Shift { .. }) { draw_shift(rng, max) } else { batch_shift };
                shift_sample(sample, c, h, w, dy, dx, &mut scratch);
                sample.copy_from_slice(&scratch);
            }
        }
        Augment::Shift { .. } | Augment::ShiftBatch { .. } => {}
        Augment::Steps(steps) => {
            for sample in data.chunks_exact_mut(per) {
                steps.apply(rng, sample, &mut scratch, c, h, w);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2 channels of 3x3: channel k holds 10k + 1 ..= 10k + 9 row-major.
    fn sample() -> Vec<f32> {
        (0..2).flat_map(|k| (1..=9).map(move |v| (10 * k + v) as f32)).collect()
    }

    #[test]
    fn shift_moves_pixels_and_zero_fills() {
        let src: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let mut dst = vec![0f32; 9];
        shift_sample(&src, 1, 3, 3, 1, -1, &mut dst);
        assert_eq!(dst, vec![0., 0., 0., 2., 3., 0., 5., 6., 0.]);
    }

    #[test]
    fn crop_with_padding_takes_the_window_of_the_padded_sample() {
        let src = sample();
        let mut dst = vec![f32::NAN; 18];
        // Padding 1: the padded channel 0 is 5x5 with 1..=9 in the middle; the window at (0, 0)
        // is its top-left 3x3.
        crop_sample(&src, 2, 3, 3, 1, 0, 0, &mut dst);
        assert_eq!(dst, vec![0., 0., 0., 0., 1., 2., 0., 4., 5., 0., 0., 0., 0., 11., 12., 0., 14., 15.]);
        // Window at (2, 1): rows 2..5, columns 1..4 of the padded sample.
        crop_sample(&src, 2, 3, 3, 1, 2, 1, &mut dst);
        assert_eq!(dst, vec![4., 5., 6., 7., 8., 9., 0., 0., 0., 14., 15., 16., 17., 18., 19., 0., 0., 0.]);
        // The centre window is the sample itself; padding 2 at (4, 0) keeps only the bottom-left pixel.
        crop_sample(&src, 2, 3, 3, 1, 1, 1, &mut dst);
        assert_eq!(dst, src);
        crop_sample(&src, 1, 3, 3, 2, 4, 0, &mut dst[..9]);
        assert_eq!(&dst[..9], &[0., 0., 7., 0., 0., 0., 0., 0., 0.]);
    }

    #[test]
    fn flip_mirrors_each_row() {
        let mut dst = vec![0f32; 18];
        flip_sample(&sample(), 2, 3, 3, &mut dst);
        assert_eq!(dst, vec![3., 2., 1., 6., 5., 4., 9., 8., 7., 13., 12., 11., 16., 15., 14., 19., 18., 17.]);
        let mut twice = vec![0f32; 18];
        flip_sample(&dst, 2, 3, 3, &mut twice);
        assert_eq!(twice, sample());
    }

    /// Run `augment` over `n` copies of `sample()` with `seed`.
    fn run(augment: Augment, seed: u64, n: usize) -> Vec<f32> {
        let mut data: Vec<f32> = (0..n).flat_map(|_| sample()).collect();
        augment_batch(augment, &mut Rng::new(seed), &mut data, 2, 3, 3);
        data
    }

    #[test]
    fn steps_repeat_for_a_seed_and_produce_only_valid_windows() {
        let aug = Augment::Steps(AugmentSteps { crop_padding: 1, flip: true, shift: 1 });
        let a = run(aug, 7, 64);
        assert_eq!(a, run(aug, 7, 64));
        assert_ne!(a, run(aug, 8, 64));
        // Every crop-only output is one of the 9 windows.
        let windows: Vec<Vec<f32>> = (0..9)
            .map(|i| {
                let mut d = vec![0f32; 18];
                crop_sample(&sample(), 2, 3, 3, 1, i / 3, i % 3, &mut d);
                d
            })
            .collect();
        let crops = run(Augment::crop(1), 3, 200);
        let mut seen = [0usize; 9];
        for s in crops.chunks(18) {
            let i = windows.iter().position(|w| w == s).expect("a padded-crop window");
            seen[i] += 1;
        }
        // 200 draws over 9 equally likely windows: each expected 22.2 times; below 5 has
        // probability under 1e-5 per window.
        assert!(seen.iter().all(|&k| k >= 5), "{seen:?}");
    }

    #[test]
    fn flips_happen_about_half_the_time() {
        let original = sample();
        let mut flipped = vec![0f32; 18];
        flip_sample(&original, 2, 3, 3, &mut flipped);
        for seed in [1, 2, 3] {
            let out = run(Augment::flip(), seed, 10_000);
            let mut count = 0;
            for s in out.chunks(18) {
                if s == flipped.as_slice() {
                    count += 1;
                } else {
                    assert_eq!(s, original.as_slice());
                }
            }
            // Binomial(10000, 0.5): standard deviation 50, so 4750..=5250 is a 5-sigma band.
            assert!((4750..=5250).contains(&count), "seed {seed}: {count} flips of 10000");
        }
    }

    #[test]
    fn old_shift_variants_keep_their_draws() {
        // ShiftBatch: one shift for all samples; Shift: one per sample, after the batch draw.
        let batch = run(Augment::ShiftBatch { max: 1 }, 5, 8);
        assert!(batch.chunks(18).all(|s| s == &batch[..18]));
        let mut rng = Rng::new(5);
        let _batch_draw = draw_shift(&mut rng, 1);
        let per = run(Augment::Shift { max: 1 }, 5, 8);
        for s in per.chunks(18) {
            let (dy, dx) = draw_shift(&mut rng, 1);
            let mut want = vec![0f32; 18];
            shift_sample(&sample(), 2, 3, 3, dy, dx, &mut want);
            assert_eq!(s, want.as_slice());
        }
        assert_eq!(run(Augment::Shift { max: 0 }, 5, 2), run(Augment::None, 5, 2));
    }
}
