//! Constant folding: nodes whose inputs are all constants, and `Shape` nodes whose input shape
//! is known, are evaluated with the reference kernels and replaced by constants, repeating
//! shape inference until nothing more folds.

use crate::{Pass, PassError};
use lithe_ir::{Dim, Graph, IrError, NodeId, Op, Outlet, Tensor, TypeInfo};
use lithe_kernels::reference;

/// Results larger than this many elements (all outputs of a node together) are not folded.
const MAX_FOLD_ELEMENTS: usize = 1 << 24;

/// Fold to a fixed point; returns how many nodes were replaced by constants.
pub fn fold_constants(g: &mut Graph) -> Result<usize, IrError> {
    let mut total = 0;
    loop {
        g.infer_shapes()?;
        let n = fold_pass(g)?;
        if n == 0 {
            return Ok(total);
        }
        total += n;
    }
}

/// The `fold_constants` pass: [`fold_constants`] inside the pass manager.
#[derive(Debug, Default)]
pub struct FoldConstants;

impl Pass for FoldConstants {
    fn name(&self) -> &'static str {
        "fold_constants"
    }
    fn description(&self) -> &'static str {
        "evaluate nodes whose inputs are all constant (and Shape of known shapes) into constants"
    }
    fn run(&self, graph: &mut Graph) -> Result<usize, PassError> {
        fold_constants(graph).map_err(|e| PassError::graph(self.name(), e))
    }
}

fn fold_pass(g: &mut Graph) -> Result<usize, IrError> {
    let mut folded = 0;
    for id in g.topo_order()? {
        match g.get_node(id) {
            None => continue,
            Some(n) if matches!(n.op, Op::Input | Op::Const(_)) => continue,
            Some(_) => {}
        }
        if let Some(values) = evaluate(g, id) {
            replace_with_consts(g, id, values)?;
            folded += 1;
        }
    }
    Ok(folded)
}

/// The fixed element count of a type, `None` when unknown or overflowing.
fn element_count(ty: &TypeInfo) -> Option<usize> {
    ty.shape.as_ref()?.dims().iter().try_fold(1usize, |acc, d| acc.checked_mul(d.known()?))
}

/// The value of `Shape` with ONNX's start/end clamping, when those dims are known.
fn shape_value(ty: &TypeInfo, start: i64, end: Option<i64>) -> Option<Tensor> {
    let shape = ty.shape.as_ref()?;
    let r = shape.rank() as i64;
    let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let (s, e) = (clamp(start), end.map_or(r as usize, clamp));
    let dims: Vec<i64> = if s >= e {
        Vec::new()
    } else {
        shape.dims().get(s..e)?.iter().map(|d| d.known().map(|k| k as i64)).collect::<Option<_>>()?
    };
    Tensor::from_vec(&[dims.len()], dims).ok()
}

fn matches_type(t: &Tensor, ty: &TypeInfo) -> bool {
    if t.dtype() != ty.dtype {
        return false;
    }
    match &ty.shape {
        None => true,
        Some(s) => {
            s.rank() == t.shape().len()
                && s.dims().iter().zip(t.shape()).all(|(d, &n)| !matches!(d, Dim::Known(k) if *k != n))
        }
    }
}

/// True for `DequantizeLinear` of a constant 8- or 16-bit integer tensor: a quantized weight
/// stays stored as integers (int8 kernels read it, and the predictor dequantizes the rest once
/// at load) instead of growing back to f32 in the model file.
fn keeps_quantized_weight(g: &Graph, op: &Op, x: Option<Outlet>) -> bool {
    matches!(op, Op::DequantizeLinear { .. })
        && x.and_then(|x| g.const_value(x))
            .is_some_and(|t| matches!(t.dtype(), lithe_ir::DType::I8 | lithe_ir::DType::U8 | lithe_ir::DType::I16))
}

/// The node's output values if it can be folded.
fn evaluate(g: &Graph, id: NodeId) -> Option<Vec<Tensor>> {
    let node = g.get_node(id)?;
    let inputs = g.node_inputs(id);
    if let Op::Shape { start, end } = &node.op {
        let x = inputs.first().copied().flatten()?;
        return shape_value(&g.value(x).ty, *start, *end).map(|t| vec![t]);
    }
    if inputs.iter().all(Option::is_none) {
        return None;
    }
    if keeps_quantized_weight(g, &node.op, inputs.first().copied().flatten()) {
        return None;
    }
    let consts: Vec<Option<&Tensor>> = inputs
        .iter()
        .map(|i| match i {
            None => Some(None),
            Some(o) => g.const_value(*o).map(Some),
        })
        .collect::<Option<_>>()?;
    let mut total = 0usize;
    for v in &node.outputs {
        let Some(n) = element_count(&v.ty).and_then(|n| total.checked_add(n)) else {
            tracing::debug!(node = %node.name, "not folded: output shape unknown");
            return None;
        };
        total = n;
    }
    if total > MAX_FOLD_ELEMENTS {
        tracing::debug!(node = %node.name, elements = total, "not folded: result too large");
        return None;
    }
    match reference::eval(&node.op, &consts, node.outputs.len()) {
        Err(e) => {
            tracing::debug!(node = %node.name, error = %e, "not folded: evaluation failed");
            None
        }
        Ok(values) => {
            let ok = values.len() == node.outputs.len()
                && values.iter().zip(&node.outputs).all(|(t, v)| matches_type(t, &v.ty));
            if ok {
                Some(values)
            } else {
                tracing::warn!(
                    node = %node.name,
                    "not folded: the reference kernel's result disagrees with shape inference"
                );
                None
            }
        }
    }
}

/// Replace node `id` by one constant per output, keeping the value names.
fn replace_with_consts(g: &mut Graph, id: NodeId, values: Vec<Tensor>) -> Result<(), IrError> {
    let names: Vec<String> = g.node(id).outputs.iter().map(|v| v.name.clone()).collect();
    let mut consts = Vec::with_capacity(values.len());
    for (name, t) in names.iter().zip(values) {
        // A temporary name: the folded node still holds the real one until it is removed.
        consts.push(g.add_const(format!("{name}\u{0}folded"), t));
    }
    for (slot, &c) in consts.iter().enumerate() {
        g.replace_uses(Outlet::new(id, slot), c)?;
    }
    g.remove_node(id);
    for (name, &c) in names.iter().zip(&consts) {
        g.node_mut(c.node).name = name.clone();
        g.value_mut(c).name = name.clone();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lithe_ir::{DType, Shape};

    #[test]
    fn shape_slices_follow_onnx_clamping() {
        let ty =
            TypeInfo::new(DType::F32, Shape(vec![Dim::Known(1), Dim::Known(3), Dim::Sym("h".into()), Dim::Known(5)]));
        assert_eq!(shape_value(&ty, 0, Some(2)).unwrap().to_i64_vec(), vec![1, 3]);
        assert_eq!(shape_value(&ty, -1, None).unwrap().to_i64_vec(), vec![5]);
        assert_eq!(shape_value(&ty, -10, Some(1)).unwrap().to_i64_vec(), vec![1]);
        assert!(shape_value(&ty, 3, Some(1)).unwrap().is_empty());
        assert!(shape_value(&ty, 0, None).is_none(), "symbolic dim must not fold");
        assert!(shape_value(&TypeInfo::unranked(DType::F32), 0, None).is_none());
    }

    #[test]
    fn type_matching() {
        let t = Tensor::from_vec(&[2, 3], vec![0f32; 6]).unwrap();
        assert!(matches_type(&t, &TypeInfo::new(DType::F32, [2, 3])));
        assert!(matches_type(&t, &TypeInfo::new(DType::F32, Shape(vec![Dim::Unknown, Dim::Known(3)]))));
        assert!(!matches_type(&t, &TypeInfo::new(DType::F32, [3, 2])));
        assert!(!matches_type(&t, &TypeInfo::new(DType::I64, [2, 3])));
        assert!(matches_type(&t, &TypeInfo::unranked(DType::F32)));
    }
}
