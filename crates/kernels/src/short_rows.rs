//! Element-wise loops over short rows (a 7-, 14- or 28-wide feature-map row) written as a ladder
//! of fixed-size chunks (16, 8, 4, 2, 1 values), so that each chunk compiles to one vector
//! instruction of the width in force, with no scalar tail loop and no `memmove` call.

/// Copy `src` into `dst`, over their common length.
#[inline(always)]
pub(crate) fn copy_short<T: Copy>(dst: &mut [T], src: &[T]) {
    map_short(dst, src, |v| v);
}

/// `dst[i] = f(a[i])` over the common length.
#[inline(always)]
pub(crate) fn map_short<A: Copy, B>(dst: &mut [B], a: &[A], f: impl Fn(A) -> B) {
    let n = dst.len().min(a.len());
    let mut i = 0;
    while n - i >= 16 {
        map_fixed::<16, _, _>(&mut dst[i..], &a[i..], &f);
        i += 16;
    }
    for step in [8, 4, 2, 1] {
        if n - i >= step {
            match step {
                8 => map_fixed::<8, _, _>(&mut dst[i..], &a[i..], &f),
                4 => map_fixed::<4, _, _>(&mut dst[i..], &a[i..], &f),
                2 => map_fixed::<2, _, _>(&mut dst[i..], &a[i..], &f),
                _ => map_fixed::<1, _, _>(&mut dst[i..], &a[i..], &f),
            }
            i += step;
        }
    }
}

/// `dst[i] = f(a[i], b[i])` over the common length.
#[inline(always)]
pub(crate) fn zip_map_short(dst: &mut [f32], a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) {
    let n = dst.len().min(a.len()).min(b.len());
    let mut i = 0;
    while n - i >= 16 {
        zip_fixed::<16>(&mut dst[i..], &a[i..], &b[i..], &f);
        i += 16;
    }
    for step in [8, 4, 2, 1] {
        if n - i >= step {
            match step {
                8 => zip_fixed::<8>(&mut dst[i..], &a[i..], &b[i..], &f),
                4 => zip_fixed::<4>(&mut dst[i..], &a[i..], &b[i..], &f),
                2 => zip_fixed::<2>(&mut dst[i..], &a[i..], &b[i..], &f),
                _ => zip_fixed::<1>(&mut dst[i..], &a[i..], &b[i..], &f),
            }
            i += step;
        }
    }
}

/// Split `src` into its even- and odd-indexed values: `even[i] = src[2i]`, `odd[i] = src[2i + 1]`
/// for every complete pair that fits both destinations (a trailing odd value is left to the
/// caller).
#[inline(always)]
pub(crate) fn deinterleave_short(even: &mut [f32], odd: &mut [f32], src: &[f32]) {
    let n = (src.len() / 2).min(even.len()).min(odd.len());
    let mut i = 0;
    while n - i >= 16 {
        split_fixed::<16, 32>(&mut even[i..], &mut odd[i..], &src[2 * i..]);
        i += 16;
    }
    for step in [8, 4, 2, 1] {
        if n - i >= step {
            match step {
                8 => split_fixed::<8, 16>(&mut even[i..], &mut odd[i..], &src[2 * i..]),
                4 => split_fixed::<4, 8>(&mut even[i..], &mut odd[i..], &src[2 * i..]),
                2 => split_fixed::<2, 4>(&mut even[i..], &mut odd[i..], &src[2 * i..]),
                _ => split_fixed::<1, 2>(&mut even[i..], &mut odd[i..], &src[2 * i..]),
            }
            i += step;
        }
    }
}

/// The first `N` pairs (`P == 2 * N` source values); callers guarantee they are there.
#[inline(always)]
fn split_fixed<const N: usize, const P: usize>(even: &mut [f32], odd: &mut [f32], src: &[f32]) {
    if let (Some(e), Some(o), Some(s)) =
        (even.first_chunk_mut::<N>(), odd.first_chunk_mut::<N>(), src.first_chunk::<P>())
    {
        for l in 0..N {
            e[l] = s[2 * l];
            o[l] = s[2 * l + 1];
        }
    }
}

/// The first `N` values; callers guarantee `N` are there.
#[inline(always)]
fn map_fixed<const N: usize, A: Copy, B>(dst: &mut [B], a: &[A], f: &impl Fn(A) -> B) {
    if let (Some(d), Some(a)) = (dst.first_chunk_mut::<N>(), a.first_chunk::<N>()) {
        for l in 0..N {
            d[l] = f(a[l]);
        }
    }
}

/// The first `N` values; callers guarantee `N` are there.
#[inline(always)]
fn zip_fixed<const N: usize>(dst: &mut [f32], a: &[f32], b: &[f32], f: &impl Fn(f32, f32) -> f32) {
    if let (Some(d), Some(a), Some(b)) = (dst.first_chunk_mut::<N>(), a.first_chunk::<N>(), b.first_chunk::<N>()) {
        for l in 0..N {
            d[l] = f(a[l], b[l]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_length_is_covered_once() {
        for n in 0..70 {
            let a: Vec<f32> = (0..n).map(|i| i as f32).collect();
            let b: Vec<f32> = (0..n).map(|i| 100.0 * i as f32).collect();
            let mut d = vec![-1.0; n + 3];
            copy_short(&mut d[..n], &a);
            assert_eq!(&d[..n], &a[..], "copy {n}");
            assert!(d[n..].iter().all(|&v| v == -1.0));
            map_short(&mut d[..n], &a, |v| 2.0 * v);
            assert!(d[..n].iter().zip(&a).all(|(d, a)| *d == 2.0 * a), "map {n}");
            zip_map_short(&mut d[..n], &a, &b, |x, y| x + y);
            assert!(d[..n].iter().enumerate().all(|(i, d)| *d == 101.0 * i as f32), "zip {n}");
            let (mut e, mut o) = (vec![-1.0; n / 2 + 1], vec![-1.0; n / 2 + 1]);
            deinterleave_short(&mut e, &mut o, &a);
            for i in 0..n / 2 {
                assert_eq!((e[i], o[i]), (a[2 * i], a[2 * i + 1]), "split {n}");
            }
            assert_eq!((e[n / 2], o[n / 2]), (-1.0, -1.0), "split {n} wrote past the pairs");
        }
    }
}
