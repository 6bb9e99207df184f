//! Elementwise f32 Add and Mul for the shapes CNNs use: equal shapes, and an NCHW tensor
//! with a per-channel `N x C x 1 x 1` (or `1 x C x 1 x 1`) operand (squeeze-excitation).

use crate::KernelError;

/// The binary operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    /// `a + b`.
    Add,
    /// `a * b`.
    Mul,
}

impl BinaryOp {
    #[inline(always)]
    fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            BinaryOp::Add => a + b,
            BinaryOp::Mul => a * b,
        }
    }

    fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "Add",
            BinaryOp::Mul => "Mul",
        }
    }
}

/// How the operands of a supported binary op line up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryLayout {
    /// Both operands have the output's shape.
    Same,
    /// Operand `full` (0 or 1) is `N x C x S...`; the other has one value per `(n, c)` (shape
    /// `N x C x 1...` or `1 x C x 1...`, `per_batch` telling which).
    PerChannel {
        /// Which operand has the output's shape.
        full: usize,
        /// Whether the per-channel operand has one set of channels per batch item.
        per_batch: bool,
        /// Batch items.
        n: usize,
        /// Channels.
        c: usize,
        /// Elements per channel plane.
        plane: usize,
    },
}

/// The layout of `a op b` with output shape `out`, when one of the supported ones.
pub fn binary_layout(a: &[usize], b: &[usize], out: &[usize]) -> Option<BinaryLayout> {
    if a == out && b == out {
        return Some(BinaryLayout::Same);
    }
    let (full, small) = if a == out {
        (0, b)
    } else if b == out {
        (1, a)
    } else {
        return None;
    };
    if out.len() < 2 || small.len() != out.len() || small[1] != out[1] || small[2..].iter().any(|&d| d != 1) {
        return None;
    }
    let per_batch = small[0] == out[0];
    if !per_batch && small[0] != 1 {
        return None;
    }
    Some(BinaryLayout::PerChannel { full, per_batch, n: out[0], c: out[1], plane: out[2..].iter().product() })
}

/// `y = a op b` for `layout`. Either operand may be `None`, meaning it is already in `y`
/// (computed in place); the other must then be given.
pub fn f32_binary(
    op: BinaryOp,
    layout: BinaryLayout,
    a: Option<&[f32]>,
    b: Option<&[f32]>,
    y: &mut [f32],
) -> Result<(), KernelError> {
    let bad = |detail: String| KernelError::Invalid { op: op.name(), detail };
    match layout {
        BinaryLayout::Same => {
            let check = |v: &[f32]| {
                if v.len() == y.len() { Ok(()) } else { Err(bad(format!("{} vs {} values", v.len(), y.len()))) }
            };
            match (a, b) {
                (Some(a), Some(b)) => {
                    check(a)?;
                    check(b)?;
                    for ((o, &x), &z) in y.iter_mut().zip(a).zip(b) {
                        *o = op.apply(x, z);
                    }
                }
                (None, Some(b)) => {
                    check(b)?;
                    for (o, &z) in y.iter_mut().zip(b) {
                        *o = op.apply(*o, z);
                    }
                }
                (Some(a), None) => {
                    check(a)?;
                    for (o, &x) in y.iter_mut().zip(a) {
                        *o = op.apply(x, *o);
                    }
                }
                (None, None) => return Err(bad("both operands in the output".into())),
            }
        }
        BinaryLayout::PerChannel { full, per_batch, n, c, plane } => {
            let (big, small) = if full == 0 { (a, b) } else { (b, a) };
            let small = small.ok_or_else(|| bad("the per-channel operand cannot be the output".into()))?;
            let planes = n * c;
            if y.len() != planes * plane || small.len() != if per_batch { planes } else { c } {
                return Err(bad(format!(
                    "{} output / {} per-channel values for {n} x {c} x {plane}",
                    y.len(),
                    small.len()
                )));
            }
            if let Some(big) = big {
                if big.len() != y.len() {
                    return Err(bad(format!("{} vs {} values", big.len(), y.len())));
                }
                y.copy_from_slice(big);
            }
            if plane == 0 {
                return Ok(());
            }
            // Add and Mul commute, so the operand order does not matter.
            for (p, row) in y.chunks_exact_mut(plane).enumerate() {
                let s = small[if per_batch { p } else { p % c }];
                for v in row.iter_mut() {
                    *v = op.apply(*v, s);
                }
            }
        }
    }
    Ok(())
}
