//! Splitting an output buffer into per-thread runs of whole units (planes, panels, row blocks).

use rayon::prelude::*;

/// Call `run(first_unit, part)` over `out`, which holds `units` consecutive units of
/// `unit_len` elements, split into at most `threads` parts of whole `granule`-unit steps (the
/// last part may be short). With one thread, one step or empty units, `run` gets all of `out`
/// on the calling thread; otherwise the parts run on the rayon pool.
pub(crate) fn for_unit_runs<T: Send>(
    out: &mut [T],
    units: usize,
    unit_len: usize,
    granule: usize,
    threads: usize,
    run: impl Fn(usize, &mut [T]) + Sync,
) {
    let granule = granule.max(1);
    let steps = units.div_ceil(granule);
    let tasks = threads.min(steps);
    if tasks <= 1 || unit_len == 0 {
        run(0, out);
        return;
    }
    let per = steps.div_ceil(tasks) * granule;
    out.par_chunks_mut(per * unit_len).enumerate().for_each(|(t, part)| run(t * per, part));
}

#[cfg(test)]
mod tests {
    use super::for_unit_runs;
    use std::sync::Mutex;

    #[test]
    fn parts_cover_every_unit_once_in_whole_steps() {
        for (units, unit_len, granule, threads) in
            [(7, 3, 1, 2), (10, 1, 4, 2), (1, 5, 1, 8), (9, 2, 2, 3), (0, 4, 1, 2), (5, 0, 1, 2)]
        {
            let mut out = vec![0usize; units * unit_len];
            let seen = Mutex::new(Vec::new());
            for_unit_runs(&mut out, units, unit_len, granule, threads, |first, part| {
                assert!(first % granule == 0 || part.len() == units * unit_len);
                seen.lock().unwrap().push((first, part.len()));
                for (i, v) in part.iter_mut().enumerate() {
                    *v += first * unit_len.max(1) + i + 1;
                }
            });
            let parts = seen.into_inner().unwrap();
            assert!(parts.len() <= threads.max(1), "{parts:?}");
            for (i, v) in out.iter().enumerate() {
                assert_eq!(*v, i + 1, "units {units} len {unit_len} granule {granule}");
            }
        }
    }
}
