//! Environment knobs read once per process.

use std::sync::OnceLock;

/// True when the environment variable `LITHE_KERNELS` is `generic` (any case): every kernel
/// family then uses its portable implementation, for debugging and for comparing paths. Read
/// on first use only.
pub fn force_generic() -> bool {
    static FORCED: OnceLock<bool> = OnceLock::new();
    *FORCED.get_or_init(|| std::env::var("LITHE_KERNELS").is_ok_and(|v| v.eq_ignore_ascii_case("generic")))
}
