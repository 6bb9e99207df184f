//! `kl`: entropy calibration (the clip of the |x| histogram that loses the least information).

use super::histogram::AbsHistogram;
use super::{CalibOptions, Observer, QuantSpec};
use crate::QuantError;

/// Entropy calibration (`kl`), as TensorRT describes it and PaddleSlim implements it.
///
/// Over the 2048-bin (by default) histogram of |x| on `[0, max |x|]`, each candidate `i` (the
/// number of bins kept, from [`CalibOptions::kl_start_bin`] to all bins) defines
/// - P: the first `i` bins, the clipped tail's count added to bin `i - 1`;
/// - Q: the first `i` bins (without the tail) merged into `n + 1` levels, i.e. 128 for signed
///   8 bits (the magnitudes 0..=127) and 256 for unsigned 8 bits, each level's count then spread
///   evenly over the bins of that level that are non-zero in P.
///
/// The threshold is `(i + 0.5) * bin_width` (capped at max |x|) for the `i` with the least
/// KL(P||Q); see [`kl_best_bins`] for the merging and the zero handling (Q is smoothed). PaddleSlim merges into
/// `n` (127) levels; we use the `n + 1` distinct magnitudes a symmetric quantizer can output.
/// When no candidate qualifies (fewer bins than levels, or only zeros) the threshold is max |x|.
#[derive(Debug, Clone)]
pub struct KlObserver {
    hist: AbsHistogram,
    start_bin: usize,
    /// Exact zeros counted into the histogram since it last started counting.
    zeros: u64,
}

impl KlObserver {
    /// An observer with `options`' bins, passes and first candidate.
    pub fn new(options: &CalibOptions) -> Result<Self, QuantError> {
        options.check()?;
        Ok(KlObserver { hist: AbsHistogram::new(options, false), start_bin: options.kl_start_bin, zeros: 0 })
    }
}

impl Observer for KlObserver {
    /// Exact zeros are counted apart and left out of the divergence: zero is exactly
    /// representable at every threshold, and after a ReLU its spike in bin 0 would otherwise
    /// dominate the divergence of every candidate that merges bin 0 with its neighbours,
    /// driving the choice to the smallest candidate whatever the rest of the data.
    fn observe(&mut self, batch: &[f32]) {
        self.hist.observe(batch);
        self.zeros += batch.iter().filter(|&&x| x == 0.0).count() as u64;
    }

    fn needs_second_pass(&self) -> bool {
        self.hist.needs_second_pass()
    }

    fn begin_second_pass(&mut self) {
        self.hist.begin_second_pass();
        self.zeros = 0;
    }

    fn threshold(&self, spec: QuantSpec) -> Option<f32> {
        if !self.hist.ready() {
            return None;
        }
        let max = self.hist.max()?;
        let levels = spec.max_level() as usize + 1;
        let mut counts = self.hist.counts().to_vec();
        if let Some(first) = counts.first_mut() {
            *first = first.saturating_sub(self.zeros);
        }
        Some(match kl_best_bins(&counts, self.start_bin, levels) {
            Some(i) => (((i as f64 + 0.5) * self.hist.bin_width()) as f32).min(max),
            None => max,
        })
    }

    fn name(&self) -> &'static str {
        "kl"
    }
}

/// Weight of the uniform distribution mixed into Q (see [`kl_best_bins`]).
pub const KL_SMOOTHING: f64 = 1e-4;

/// The number of leading bins of `counts` whose clip minimizes KL(P||Q) (see [`KlObserver`]),
/// trying `max(start_bin, levels) ..= counts.len()`.
///
/// Q merges the first `i` bins into `levels` groups of `i / levels` bins (integer division), the
/// last group also taking the remaining bins up to `i`; each group's count is spread evenly over
/// its bins that are non-zero in P. Bins where P is zero add nothing to KL(P||Q). Where P is
/// non-zero Q can still be zero: the clipped tail lands in bin `i - 1` and its group may hold no
/// count (a clip in the empty gap between the bulk and far outliers). Q is therefore smoothed as
/// TensorRT-style calibrators do, here as the mixture `(1 - ε) Q + ε U` with `U` uniform over
/// the `i` bins and `ε` = [`KL_SMOOTHING`]: KL stays finite, and clipping a tail of mass `t`
/// into an empty group costs about `t ln(t i / ε)`. (PaddleSlim instead skips the candidates
/// whose bin `i - 1` is empty, which leaves no clip between the bulk and isolated outliers.)
/// Ties go to the smallest `i`. `None` when no candidate qualifies or every count is zero.
///
/// Runs in `O(bins + candidates * levels)` with prefix sums (no allocation per candidate): Q is
/// constant over the non-zero bins of a group.
pub fn kl_best_bins(counts: &[u64], start_bin: usize, levels: usize) -> Option<usize> {
    let bins = counts.len();
    let levels = levels.max(1);
    let first = start_bin.max(levels).max(1);
    if first > bins {
        return None;
    }
    // Prefix sums: counts, non-zero bins, and c * ln(c).
    let mut sum = Vec::with_capacity(bins + 1);
    let mut nonzero = Vec::with_capacity(bins + 1);
    let mut c_ln_c = Vec::with_capacity(bins + 1);
    let (mut s, mut nz, mut cl) = (0.0f64, 0usize, 0.0f64);
    sum.push(s);
    nonzero.push(nz);
    c_ln_c.push(cl);
    for &c in counts {
        let c = c as f64;
        s += c;
        if c > 0.0 {
            nz += 1;
            cl += c * c.ln();
        }
        sum.push(s);
        nonzero.push(nz);
        c_ln_c.push(cl);
    }
    let total = s;
    if total <= 0.0 {
        return None;
    }
    let mut best: Option<(usize, f64)> = None;
    for i in first..=bins {
        let last = counts[i - 1] as f64;
        let tail = total - sum[i];
        let kept = sum[i];
        let per_level = i / levels;
        let uniform = KL_SMOOTHING / i as f64;
        let mix = if kept > 0.0 { (1.0 - KL_SMOOTHING) / kept } else { 0.0 };
        let uniform = if kept > 0.0 { uniform } else { 1.0 / i as f64 };
        // KL = Σ_k (p_k/Ps) ln((p_k/Ps) / q_k), q normalized and smoothed:
        //    = (Σ_k p_k ln p_k − Σ_groups (Σ_{k in group} p_k) ln q_group) / Ps − ln Ps.
        let mut acc = 0.0f64;
        for l in 0..levels {
            let a = l * per_level;
            let b = if l + 1 == levels { i } else { a + per_level };
            let (mut p_ln_p, mut p_sum) = (c_ln_c[b] - c_ln_c[a], sum[b] - sum[a]);
            let mut nnz = nonzero[b] - nonzero[a];
            if b == i && tail > 0.0 {
                let p_last = last + tail;
                p_ln_p += p_last * p_last.ln() - if last > 0.0 { last * last.ln() } else { 0.0 };
                p_sum += tail;
                if last == 0.0 {
                    nnz += 1;
                }
            }
            if nnz == 0 {
                continue;
            }
            let q = mix * (sum[b] - sum[a]) / nnz as f64 + uniform;
            acc += p_ln_p - p_sum * q.ln();
        }
        let kl = acc / total - total.ln();
        if best.is_none_or(|(_, b)| kl < b) {
            best = Some((i, kl));
        }
    }
    best.map(|(i, _)| i)
}
