//! Rules of the matrix operators (Gemm, MatMul) and BatchNormalization.

use super::common::{Args, broadcast_dim, check_unidirectional, dim_at, merge_dim, one, same_dtype, show};
use crate::op::GemmAttrs;
use crate::{Dim, IrError, Shape, TypeInfo};

/// BatchNormalization: X `[N, C, ...]`, scale/bias/mean/var `[C]` -> X.
pub(super) fn batch_norm(a: &Args) -> Result<Vec<TypeInfo>, IrError> {
    let x = a.req(0, "X")?;
    let params = [
        (a.req(1, "scale")?, "scale"),
        (a.req(2, "B")?, "B"),
        (a.req(3, "input_mean")?, "input_mean"),
        (a.req(4, "input_var")?, "input_var"),
    ];
    let xs = x.info.shape.as_ref();
    if let Some(s) = xs
        && s.rank() < 2
    {
        return Err(IrError::Shape(format!("BatchNormalization: X {s} must have rank >= 2 (N, C, ...)")));
    }
    let c = dim_at(xs, 1);
    for (p, what) in params {
        if let Some(ps) = &p.info.shape {
            let ok = ps.rank() == 1 && merge_dim(&ps.0[0], &c).is_ok();
            if !ok {
                return Err(IrError::Shape(format!(
                    "BatchNormalization: {what} {ps} must have shape [{c}] for X {}",
                    show(xs)
                )));
            }
        }
        if !p.info.dtype.is_float() && x.info.dtype.is_float() {
            same_dtype(a.op, "X", &x, what, &p)?;
        }
    }
    Ok(vec![x.info.clone()])
}

/// Gemm: `A' [M, K]`, `B' [K, N]`, C? broadcast to `[M, N]` -> `[M, N]`.
pub(super) fn gemm(a: &Args, g: &GemmAttrs) -> Result<Vec<TypeInfo>, IrError> {
    let ai = a.req(0, "A")?;
    let bi = a.req(1, "B")?;
    let ci = a.opt(2);
    same_dtype(a.op, "A", &ai, "B", &bi)?;
    if let Some(c) = &ci {
        same_dtype(a.op, "A", &ai, "C", c)?;
    }
    let (sa, sb) = (ai.info.shape.as_ref(), bi.info.shape.as_ref());
    for (s, what) in [(sa, "A"), (sb, "B")] {
        if let Some(s) = s
            && s.rank() != 2
        {
            return Err(IrError::Shape(format!("Gemm: {what} {s} must be 2-D")));
        }
    }
    let pick = |s: Option<&Shape>, t: bool| {
        let (r, c) = (dim_at(s, 0), dim_at(s, 1));
        if t { (c, r) } else { (r, c) }
    };
    let (m, ka) = pick(sa, g.trans_a);
    let (kb, n) = pick(sb, g.trans_b);
    if merge_dim(&ka, &kb).is_err() {
        return Err(IrError::Shape(format!(
            "Gemm: inner dims differ: A {} (trans_a {}) has K={ka}, B {} (trans_b {}) has K={kb}",
            show(sa),
            g.trans_a,
            show(sb),
            g.trans_b
        )));
    }
    let out = Shape(vec![m, n]);
    if let Some(cs) = ci.as_ref().and_then(|c| c.info.shape.as_ref()) {
        check_unidirectional(a.op, "C", cs, &out)?;
    }
    Ok(one(ai.info.dtype, Some(out)))
}

/// MatMul with numpy semantics: 1-D operands are promoted and the added axis removed; batch
/// dims broadcast.
pub(super) fn matmul(a: &Args) -> Result<Vec<TypeInfo>, IrError> {
    let ai = a.req(0, "A")?;
    let bi = a.req(1, "B")?;
    same_dtype(a.op, "A", &ai, "B", &bi)?;
    let dtype = ai.info.dtype;
    let (Some(sa), Some(sb)) = (ai.info.shape.as_ref(), bi.info.shape.as_ref()) else {
        return Ok(one(dtype, None));
    };
    if sa.rank() == 0 || sb.rank() == 0 {
        return Err(IrError::Shape(format!("MatMul: operands {sa} and {sb} must have rank >= 1")));
    }
    let mut da = sa.0.clone();
    let mut db = sb.0.clone();
    let a_vec = da.len() == 1;
    let b_vec = db.len() == 1;
    if a_vec {
        da.insert(0, Dim::Known(1));
    }
    if b_vec {
        db.push(Dim::Known(1));
    }
    let (ra, rb) = (da.len(), db.len());
    let ka = &da[ra - 1];
    let kb = &db[rb - 2];
    if merge_dim(ka, kb).is_err() {
        return Err(IrError::Shape(format!("MatMul: inner dims differ: A {sa} has K={ka}, B {sb} has K={kb}")));
    }
    let (ba, bb) = (&da[..ra - 2], &db[..rb - 2]);
    let r = ba.len().max(bb.len());
    let mut dims = Vec::with_capacity(r + 2);
    for i in 0..r {
        let x = (i + ba.len()).checked_sub(r).map_or(Dim::Known(1), |j| ba[j].clone());
        let y = (i + bb.len()).checked_sub(r).map_or(Dim::Known(1), |j| bb[j].clone());
        dims.push(
            broadcast_dim(&x, &y)
                .map_err(|()| IrError::Shape(format!("MatMul: batch dims of A {sa} and B {sb} cannot be broadcast")))?,
        );
    }
    if !a_vec {
        dims.push(da[ra - 2].clone());
    }
    if !b_vec {
        dims.push(db[rb - 1].clone());
    }
    Ok(one(dtype, Some(Shape(dims))))
}

/// FullyConnected: X `[..., K]`, W `[K, N]`, B? `[N]` -> `[..., N]`.
pub(super) fn fully_connected(a: &Args, f: &crate::op::FcAttrs) -> Result<Vec<TypeInfo>, IrError> {
    let x = a.req(0, "X")?;
    let w = a.req(1, "W")?;
    same_dtype(a.op, "X", &x, "W", &w)?;
    let dtype = x.info.dtype;
    if let Some(b) = a.opt(2) {
        same_dtype(a.op, "X", &x, "B", &b)?;
        if let Some(bs) = &b.info.shape {
            let n = dim_at(w.info.shape.as_ref(), 1);
            if bs.rank() != 1 || merge_dim(&bs.0[0], &n).is_err() {
                return Err(IrError::Shape(format!("FullyConnected: bias {bs} must be [{n}]")));
            }
        }
    }
    super::conv::check_slope(a, 3, &f.activation, dtype)?;
    let ws = w.info.shape.as_ref();
    if let Some(s) = ws
        && s.rank() != 2
    {
        return Err(IrError::Shape(format!("FullyConnected: W {s} must be 2-D")));
    }
    let Some(xs) = x.info.shape.as_ref() else { return Ok(one(dtype, None)) };
    if xs.rank() == 0 {
        return Err(IrError::Shape("FullyConnected: X must have rank >= 1".into()));
    }
    let k = &xs.0[xs.rank() - 1];
    if merge_dim(k, &dim_at(ws, 0)).is_err() {
        return Err(IrError::Shape(format!(
            "FullyConnected: X {xs} has K={k}, W {} has K={}",
            show(ws),
            dim_at(ws, 0)
        )));
    }
    let mut dims = xs.0[..xs.rank() - 1].to_vec();
    dims.push(dim_at(ws, 1));
    Ok(one(dtype, Some(Shape(dims))))
}
