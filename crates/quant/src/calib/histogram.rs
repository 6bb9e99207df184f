//! The |x| histogram shared by the `hist`, `kl` and `mse` observers.

use super::{CalibOptions, batch_abs_max};

/// Counts of |x| in `bins` equal bins over `[0, range]`, filled in one or two passes (see the
/// module docs of `calib`). Optionally keeps, per bin, the sum of |x| and of x² (for `mse`).
#[derive(Debug, Clone)]
pub(crate) struct AbsHistogram {
    counts: Vec<u64>,
    /// Per-bin sum of |x| and of x², when moments are kept.
    moments: Option<(Vec<f64>, Vec<f64>)>,
    /// Upper edge of the last bin; 0 until a nonzero value has been binned (every value binned
    /// so far is then 0, in bin 0).
    range: f32,
    /// Max |x| observed (in pass 1 for two-pass histograms).
    max: Option<f32>,
    two_pass: bool,
    /// Two-pass histograms: whether pass 2 has begun.
    filling: bool,
}

impl AbsHistogram {
    pub(crate) fn new(options: &CalibOptions, moments: bool) -> Self {
        let bins = options.bins;
        AbsHistogram {
            counts: vec![0; bins],
            moments: moments.then(|| (vec![0.0; bins], vec![0.0; bins])),
            range: 0.0,
            max: None,
            two_pass: options.two_pass,
            filling: !options.two_pass,
        }
    }

    pub(crate) fn observe(&mut self, batch: &[f32]) {
        if self.two_pass && !self.filling {
            if let Some(m) = batch_abs_max(batch) {
                self.max = Some(self.max.map_or(m, |old| old.max(m)));
            }
            return;
        }
        if !self.two_pass {
            let Some(m) = batch_abs_max(batch) else { return };
            self.max = Some(self.max.map_or(m, |old| old.max(m)));
            if m > self.range {
                self.grow(m);
            }
        }
        self.fill(batch);
    }

    pub(crate) fn needs_second_pass(&self) -> bool {
        self.two_pass && !self.filling
    }

    pub(crate) fn begin_second_pass(&mut self) {
        if self.two_pass && !self.filling {
            self.filling = true;
            self.range = self.max.unwrap_or(0.0);
        }
    }

    /// Whether [`AbsHistogram::counts`] describes the data (pass 2 has begun or one pass) and
    /// some finite value was seen.
    pub(crate) fn ready(&self) -> bool {
        self.filling && self.max.is_some() && self.counts.iter().any(|&c| c > 0)
    }

    pub(crate) fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// Per-bin sums of |x| and of x² (only when built with moments).
    pub(crate) fn moments(&self) -> Option<(&[f64], &[f64])> {
        self.moments.as_ref().map(|(s, q)| (s.as_slice(), q.as_slice()))
    }

    /// Width of one bin (0 while every value seen is 0).
    pub(crate) fn bin_width(&self) -> f64 {
        f64::from(self.range) / self.counts.len() as f64
    }

    /// The largest |x| observed.
    pub(crate) fn max(&self) -> Option<f32> {
        self.max
    }

    fn fill(&mut self, batch: &[f32]) {
        let bins = self.counts.len();
        let last = bins - 1;
        if self.range <= 0.0 {
            // Every finite value is 0 (pass 1's max, or the running max, is 0).
            let zeros = batch.iter().filter(|x| x.is_finite()).count() as u64;
            self.counts[0] += zeros;
            return;
        }
        let per_unit = bins as f64 / f64::from(self.range);
        match &mut self.moments {
            None => {
                for &x in batch {
                    let a = x.abs();
                    if a.is_finite() {
                        self.counts[((f64::from(a) * per_unit) as usize).min(last)] += 1;
                    }
                }
            }
            Some((sums, squares)) => {
                for &x in batch {
                    let a = x.abs();
                    if a.is_finite() {
                        let a = f64::from(a);
                        let i = ((a * per_unit) as usize).min(last);
                        self.counts[i] += 1;
                        sums[i] += a;
                        squares[i] += a * a;
                    }
                }
            }
        }
    }

    /// One pass: widen the range to cover `m` by doubling it, merging bins by the same factor
    /// (bin edges stay aligned, so no count moves to a wrong bin).
    fn grow(&mut self, m: f32) {
        if self.range <= 0.0 {
            // Only zeros so far, all in bin 0, which stays bin 0 for any range.
            self.range = m;
            return;
        }
        let mut factor: usize = 1;
        let mut range = f64::from(self.range);
        while range < f64::from(m) {
            range *= 2.0;
            factor = factor.saturating_mul(2);
        }
        // Rounded up to f32 so that `m` stays inside.
        let mut r32 = range as f32;
        if f64::from(r32) < range {
            r32 = f32::from_bits(r32.to_bits() + 1);
        }
        self.range = r32.max(m);
        let bins = self.counts.len();
        merge(&mut self.counts, factor);
        if let Some((s, q)) = &mut self.moments {
            merge(s, factor);
            merge(q, factor);
        }
        debug_assert_eq!(self.counts.len(), bins);
    }
}

/// New bin `j` gets old bins `j*factor .. (j+1)*factor`.
fn merge<T: Copy + Default + std::ops::AddAssign>(v: &mut [T], factor: usize) {
    let bins = v.len();
    for j in 0..bins {
        let start = j.saturating_mul(factor);
        if start >= bins {
            v[j] = T::default();
            continue;
        }
        let end = start.saturating_add(factor).min(bins);
        let mut acc = T::default();
        for &x in &v[start..end] {
            acc += x;
        }
        v[j] = acc;
    }
}
