//! Which inputs an operator's output may overwrite.
//!
//! An output may take the memory of an input when every output element depends only on the
//! input element at the same position (elementwise ops, activations, per-channel
//! normalization) or when the output is the input's data unchanged (`Reshape` and the other
//! view ops). The planner additionally requires the input to die at this step and to have
//! the output's dtype and byte size (so broadcasting inputs never qualify).

use lithe_ir::Op;

/// The input slots output `output` of `op` may be computed in place of, best first.
pub(crate) fn in_place_inputs(op: &Op, output: usize, num_inputs: usize) -> Vec<usize> {
    if output != 0 {
        return Vec::new();
    }
    if op.is_unary_elementwise() {
        return vec![0];
    }
    match op {
        // Activations and normalization with extra scalar or per-channel inputs.
        Op::Clip | Op::PRelu | Op::BatchNormalization { .. } => vec![0],
        // Views of the data.
        Op::Reshape { .. } | Op::Flatten { .. } | Op::Squeeze | Op::Unsqueeze | Op::Identity | Op::Dropout => vec![0],
        // A conv adding a residual adds it elementwise to its result.
        Op::Conv(attrs) if attrs.epilogue.residual => vec![3],
        // Binary (or variadic) elementwise ops: any same-shaped input.
        Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Pow | Op::Min | Op::Max => (0..num_inputs).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_output_of_elementwise_and_view_ops() {
        assert_eq!(in_place_inputs(&Op::Relu, 0, 1), vec![0]);
        assert_eq!(in_place_inputs(&Op::Dropout, 1, 1), Vec::<usize>::new());
        assert_eq!(in_place_inputs(&Op::Add, 0, 2), vec![0, 1]);
        assert_eq!(in_place_inputs(&Op::MatMul, 0, 2), Vec::<usize>::new());
        assert_eq!(in_place_inputs(&Op::Shape { start: 0, end: None }, 0, 1), Vec::<usize>::new());
    }
}
