//! The `fold_pad` pass: an explicit constant Pad whose only reader is a Conv, AveragePool or
//! MaxPool becomes part of that op's own pads.
//!
//! The Pad must have constant, non-negative pads on the spatial axes only (axes `>= 2` of a
//! tensor of rank `>= 3`) and a constant fill value:
//! - Conv: the value is 0 (the conv's own pads read zeros).
//! - AveragePool: the value is 0 and the pool counts its pads in the divisor or has none, so
//!   the padded zeros keep being counted; the result has `count_include_pad`.
//! - MaxPool: the value is `-inf` (own pads are never the maximum), or `f32::MIN` when every
//!   window keeps at least one real element (dilation 1, pads per side below the kernel).
//!
//! With `ceil_mode`, end padding changes which partial windows exist: the fold is made only
//! when the spatial sizes are known and the output size provably stays the same.

use crate::identity::int_const;
use crate::util::{input_at, single_consumer};
use crate::{Pass, PassError};
use lithe_ir::op::{AutoPad, PadMode, PoolAttrs, normalize_axis};
use lithe_ir::{DType, Graph, IrError, NodeId, Op, Outlet, Tensor};

/// Fold an explicit constant Pad into the following Conv, AveragePool or MaxPool.
#[derive(Debug, Default)]
pub struct FoldPad;

impl Pass for FoldPad {
    fn name(&self) -> &'static str {
        "fold_pad"
    }
    fn description(&self) -> &'static str {
        "fold an explicit constant Pad into the following Conv, AveragePool or MaxPool"
    }
    fn run(&self, graph: &mut Graph) -> Result<usize, PassError> {
        fold_pads(graph).map_err(|e| PassError::graph(self.name(), e))
    }
}

/// Fold every foldable Pad; returns how many.
pub fn fold_pads(g: &mut Graph) -> Result<usize, IrError> {
    let mut folded = 0;
    for id in g.node_ids() {
        if !matches!(g.get_node(id).map(|n| &n.op), Some(Op::Pad { mode: PadMode::Constant })) {
            continue;
        }
        let Some(fold) = plan(g, id) else { continue };
        let pad_name = g.node(id).name.clone();
        let reader = fold.reader;
        g.node_mut(reader).op = fold.op;
        g.set_input(reader, 0, Some(fold.data))?;
        g.remove_node(id);
        tracing::debug!(pad = %pad_name, into = %g.node(reader).name, op = g.node(reader).op.name(), "folded a Pad");
        folded += 1;
    }
    Ok(folded)
}

/// A fold to make: `reader` gets `op` and reads `data` instead of the Pad's output.
struct Fold {
    reader: NodeId,
    op: Op,
    data: Outlet,
}

/// The explicit padding of a Pad node, resolved per spatial axis.
struct SpatialPads {
    /// Padding before each spatial axis.
    begin: Vec<usize>,
    /// Padding after each spatial axis.
    end: Vec<usize>,
    /// The fill value (`None`: zero).
    value: Option<Tensor>,
}

impl SpatialPads {
    /// True when the fill is zero.
    fn value_is_zero(&self) -> bool {
        self.value.as_ref().is_none_or(|t| t.to_f32_vec().iter().all(|&v| v == 0.0))
    }

    /// The f32 fill value, when the fill is one f32 element.
    fn value_f32(&self) -> Option<f32> {
        match &self.value {
            None => Some(0.0),
            Some(t) if t.dtype() == DType::F32 && t.len() == 1 => t.to_f32_vec().first().copied(),
            Some(_) => None,
        }
    }

    /// `own` (begins then ends, empty meaning zeros) plus this padding, or `None` when `own`
    /// has the wrong length.
    fn added_to(&self, own: &[usize]) -> Option<Vec<usize>> {
        let n = self.begin.len();
        if !own.is_empty() && own.len() != 2 * n {
            return None;
        }
        let own_at = |i: usize| if own.is_empty() { 0 } else { own[i] };
        let mut v = Vec::with_capacity(2 * n);
        for i in 0..n {
            v.push(own_at(i).checked_add(self.begin[i])?);
        }
        for i in 0..n {
            v.push(own_at(n + i).checked_add(self.end[i])?);
        }
        Some(v)
    }
}

/// What folding Pad `pad` would do, if it is allowed.
fn plan(g: &Graph, pad: NodeId) -> Option<Fold> {
    let node = g.node(pad);
    if node.outputs.len() != 1 {
        return None;
    }
    let data = input_at(g, pad, 0)?;
    let pads = spatial_pads(g, pad, data)?;
    let (reader, slot) = single_consumer(g, Outlet::new(pad, 0))?;
    if slot != 0 {
        return None;
    }
    let op = match &g.node(reader).op {
        Op::Conv(c) if pads.value_is_zero() => {
            let own: &[usize] = match c.auto_pad {
                AutoPad::NotSet => &c.pads,
                AutoPad::Valid => &[],
                AutoPad::SameUpper | AutoPad::SameLower => return None,
            };
            let mut c = c.clone();
            c.pads = pads.added_to(own)?;
            c.auto_pad = AutoPad::NotSet;
            Op::Conv(c)
        }
        Op::AveragePool(a) if pads.value_is_zero() => {
            let own = own_pool_pads(&a.pool)?;
            if !a.count_include_pad && own.iter().any(|&p| p != 0) {
                return None;
            }
            let mut a = a.clone();
            let pool = folded_pool(g, &a.pool, own, &pads, data, Outlet::new(pad, 0))?;
            a.pool = pool;
            a.count_include_pad = true;
            Op::AveragePool(a)
        }
        Op::MaxPool(p) if g.node(reader).outputs.len() == 1 => {
            let v = pads.value_f32()?;
            let own = own_pool_pads(p)?;
            let pool = folded_pool(g, p, own, &pads, data, Outlet::new(pad, 0))?;
            let safe = v == f32::NEG_INFINITY || (v == f32::MIN && max_windows_touch_input(&pool));
            if !safe {
                return None;
            }
            Op::MaxPool(pool)
        }
        _ => return None,
    };
    Some(Fold { reader, op, data })
}

/// The constant, non-negative padding of Pad `pad` (reading `data`) on the spatial axes, with a
/// constant fill; `None` for anything else (including pads that are all zero).
fn spatial_pads(g: &Graph, pad: NodeId, data: Outlet) -> Option<SpatialPads> {
    let rank = g.value(data).ty.shape.as_ref()?.rank();
    if rank < 3 {
        return None;
    }
    let raw = int_const(g, pad, 1)?;
    let axes: Vec<usize> = match input_at(g, pad, 3) {
        None => (0..rank).collect(),
        Some(_) => {
            let mut axes = Vec::new();
            for a in int_const(g, pad, 3)? {
                let a = normalize_axis(a, rank).ok()?;
                if axes.contains(&a) {
                    return None;
                }
                axes.push(a);
            }
            axes
        }
    };
    if raw.len() != 2 * axes.len() {
        return None;
    }
    let spatial = rank - 2;
    let (mut begin, mut end) = (vec![0usize; spatial], vec![0usize; spatial]);
    for (k, &ax) in axes.iter().enumerate() {
        let (b, e) = (usize::try_from(raw[k]).ok()?, usize::try_from(raw[k + axes.len()]).ok()?);
        if ax < 2 {
            if b != 0 || e != 0 {
                return None;
            }
            continue;
        }
        begin[ax - 2] = b;
        end[ax - 2] = e;
    }
    if begin.iter().chain(&end).all(|&p| p == 0) {
        return None;
    }
    let value = match input_at(g, pad, 2) {
        None => None,
        Some(o) => {
            let t = g.const_value(o)?;
            if t.is_empty() {
                None
            } else if t.len() == 1 && t.dtype() == g.value(data).ty.dtype {
                Some(t.clone())
            } else {
                return None;
            }
        }
    };
    Some(SpatialPads { begin, end, value })
}

/// A pool's own explicit pads (empty meaning zeros), `None` for `SAME` auto padding.
fn own_pool_pads(p: &PoolAttrs) -> Option<&[usize]> {
    match p.auto_pad {
        AutoPad::NotSet => Some(&p.pads),
        AutoPad::Valid => Some(&[]),
        AutoPad::SameUpper | AutoPad::SameLower => None,
    }
}

/// The pool attributes with `pads` added, when the output size provably stays the same: always
/// without `ceil_mode` or end padding; otherwise the spatial sizes must be known and the
/// resolved output sizes equal.
fn folded_pool(
    g: &Graph,
    p: &PoolAttrs,
    own: &[usize],
    pads: &SpatialPads,
    data: Outlet,
    padded: Outlet,
) -> Option<PoolAttrs> {
    let mut folded = p.clone();
    folded.pads = pads.added_to(own)?;
    folded.auto_pad = AutoPad::NotSet;
    if p.ceil_mode && pads.end.iter().any(|&e| e != 0) {
        let spatial = |o: Outlet| -> Option<Vec<usize>> {
            let s = g.value(o).ty.shape.as_ref()?;
            s.dims().get(2..)?.iter().map(lithe_ir::Dim::known).collect()
        };
        let (before, after) = (p.windows(&spatial(padded)?).ok()?, folded.windows(&spatial(data)?).ok()?);
        if before.len() != after.len() || before.iter().zip(&after).any(|(b, a)| b.output != a.output) {
            return None;
        }
    }
    Some(folded)
}

/// True when every window of a max pool with these attributes reads at least one input
/// element whatever the input size: dilation 1, pads on each side smaller than the kernel, and
/// no `ceil_mode` (whose extra partial window can lie wholly in the end padding).
fn max_windows_touch_input(p: &PoolAttrs) -> bool {
    if p.ceil_mode {
        return false;
    }
    let n = p.kernel_shape.len();
    let dilation_one = p.dilations.iter().all(|&d| d == 1);
    let pads_ok = p.pads.is_empty()
        || (p.pads.len() == 2 * n
            && (0..n).all(|i| p.pads[i] < p.kernel_shape[i] && p.pads[n + i] < p.kernel_shape[i]));
    dilation_one && pads_ok
}
