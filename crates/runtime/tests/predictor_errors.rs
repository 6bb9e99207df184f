//! Predictor errors: input checks, symbol conflicts, shape resolution, kernels, invalid graphs.

use lithe_ir::{DType, Dim, Graph, Op, Outlet, Shape, Tensor, TypeInfo, ValueInfo};
use lithe_runtime::{Predictor, RuntimeError};

fn ty(dtype: DType, dims: &[&str]) -> TypeInfo {
    TypeInfo::new(
        dtype,
        Shape(
            dims.iter()
                .map(|d| match d.parse::<usize>() {
                    Ok(n) => Dim::Known(n),
                    Err(_) if *d == "?" => Dim::Unknown,
                    Err(_) => Dim::Sym((*d).to_string()),
                })
                .collect(),
        ),
    )
}

fn node(g: &mut Graph, name: &str, op: Op, inputs: &[Option<Outlet>], out: TypeInfo) -> Outlet {
    let id = g.add_node(name, op, inputs, vec![ValueInfo { name: name.to_string(), ty: out }]).unwrap();
    Outlet::new(id, 0)
}

/// y = relu(x), x: f32[batch, 4].
fn relu_graph() -> Graph {
    let mut g = Graph::new("relu");
    let x = g.add_input("x", ty(DType::F32, &["batch", "4"]));
    let y = node(&mut g, "y", Op::Relu, &[Some(x)], ty(DType::F32, &["batch", "4"]));
    g.set_outputs(vec![y]);
    g
}

/// out = a + b with a, b: f32[dims...].
fn add_graph(a_dims: &[&str], b_dims: &[&str], out_dims: &[&str]) -> Graph {
    let mut g = Graph::new("add");
    let a = g.add_input("a", ty(DType::F32, a_dims));
    let b = g.add_input("b", ty(DType::F32, b_dims));
    let y = node(&mut g, "add", Op::Add, &[Some(a), Some(b)], ty(DType::F32, out_dims));
    g.set_outputs(vec![y]);
    g
}

fn zeros(shape: &[usize]) -> Tensor {
    Tensor::zeros(DType::F32, shape)
}

fn run_err(p: &mut Predictor, inputs: Vec<Tensor>) -> RuntimeError {
    let e = p.run_with(inputs).unwrap_err();
    let msg = e.to_string();
    assert!(!msg.contains('\n'), "one-line message expected: {msg}");
    e
}

#[test]
fn wrong_rank() {
    let mut p = Predictor::new(relu_graph()).unwrap();
    let e = run_err(&mut p, vec![zeros(&[4])]);
    assert!(matches!(&e, RuntimeError::InputType { name, .. } if name == "x"), "{e:?}");
    assert_eq!(e.to_string(), "input 'x' expects f32[batch,4], got f32[4]: rank is 1, expected 2");
}

#[test]
fn wrong_dtype() {
    let mut p = Predictor::new(relu_graph()).unwrap();
    let e = run_err(&mut p, vec![Tensor::from_vec(&[1, 4], vec![1i64, 2, 3, 4]).unwrap()]);
    assert_eq!(e.to_string(), "input 'x' expects f32[batch,4], got i64[1,4]: dtype is i64, expected f32");
}

#[test]
fn wrong_known_dim() {
    let mut p = Predictor::new(relu_graph()).unwrap();
    let e = run_err(&mut p, vec![zeros(&[2, 5])]);
    assert_eq!(e.to_string(), "input 'x' expects f32[batch,4], got f32[2,5]: dim 1 is 5, expected 4");
    // A failed run leaves no outputs, and the predictor still works afterwards.
    assert!(p.output(0).is_none());
    let out = p.run_with(vec![Tensor::from_vec(&[1, 4], vec![-1.0f32, 1.0, -2.0, 2.0]).unwrap()]).unwrap();
    assert_eq!(out[0].to_f32_vec(), [0.0, 1.0, 0.0, 2.0]);
}

#[test]
fn symbol_conflict_names_both_inputs() {
    let mut p = Predictor::new(add_graph(&["n", "2"], &["n", "2"], &["n", "2"])).unwrap();
    let e = run_err(&mut p, vec![zeros(&[2, 2]), zeros(&[3, 2])]);
    assert!(
        matches!(
            &e,
            RuntimeError::SymbolConflict { symbol, first_input, first_size: 2, second_input, second_size: 3 }
                if symbol == "n" && first_input == "a" && second_input == "b"
        ),
        "{e:?}"
    );
    assert_eq!(e.to_string(), "symbolic dimension 'n' is 2 in input 'a' but 3 in input 'b'");
    // Agreeing sizes run.
    let out = p
        .run_with(vec![
            Tensor::from_vec(&[3, 2], vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap(),
            Tensor::from_vec(&[3, 2], vec![10.0f32, 20.0, 30.0, 40.0, 50.0, 60.0]).unwrap(),
        ])
        .unwrap();
    assert_eq!(out[0].to_f32_vec(), [11.0, 22.0, 33.0, 44.0, 55.0, 66.0]);
}

#[test]
fn symbol_bound_twice_in_one_input() {
    let mut g = Graph::new("square");
    let x = g.add_input("x", ty(DType::F32, &["n", "n"]));
    let y = node(&mut g, "t", Op::Transpose { perm: None }, &[Some(x)], ty(DType::F32, &["n", "n"]));
    g.set_outputs(vec![y]);
    let mut p = Predictor::new(g).unwrap();
    let e = run_err(&mut p, vec![zeros(&[2, 3])]);
    assert_eq!(
        e.to_string(),
        "input 'x' expects f32[n,n], got f32[2,3]: dim 1 is 3, but an earlier dim binds 'n' to 2"
    );
    let out = p.run_with(vec![Tensor::from_vec(&[2, 2], vec![1.0f32, 2.0, 3.0, 4.0]).unwrap()]).unwrap();
    assert_eq!(out[0].to_f32_vec(), [1.0, 3.0, 2.0, 4.0]);
}

#[test]
fn missing_unknown_and_out_of_range_inputs() {
    let mut p = Predictor::new(add_graph(&["2"], &["2"], &["2"])).unwrap();
    p.set_input(0, zeros(&[2])).unwrap();
    let e = p.run().unwrap_err();
    assert!(matches!(&e, RuntimeError::MissingInput { name } if name == "b"), "{e:?}");
    assert_eq!(e.to_string(), "input 'b' was not set");

    let e = p.set_input_by_name("c", zeros(&[2])).unwrap_err();
    assert_eq!(e.to_string(), "the model has no input named 'c' (inputs: a, b)");
    let e = p.set_input(2, zeros(&[2])).unwrap_err();
    assert_eq!(e.to_string(), "input index 2 is out of range: the model has 2 inputs");
    let e = p.run_with(vec![zeros(&[2])]).unwrap_err();
    assert_eq!(e.to_string(), "the model has 2 inputs, 1 were given");
}

#[test]
fn incompatible_shapes_fail_in_shape_resolution_before_kernels() {
    let mut p = Predictor::new(add_graph(&["?", "3"], &["?", "3"], &["?", "3"])).unwrap();
    let e = run_err(&mut p, vec![zeros(&[2, 3]), zeros(&[4, 3])]);
    assert!(matches!(e, RuntimeError::Resolve { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.starts_with("the graph does not accept inputs of shapes a: [2,3], b: [4,3]: node 'add' (Add)"),
        "{msg}"
    );
    // Broadcastable shapes are fine, also after the failure.
    let out = p.run_with(vec![zeros(&[2, 3]), Tensor::from_vec(&[1, 3], vec![1.0f32, 2.0, 3.0]).unwrap()]).unwrap();
    assert_eq!(out[0].shape(), [2, 3]);
    assert_eq!(out[0].to_f32_vec(), [1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
}

#[test]
fn kernel_error_names_the_node() {
    // The target shape is a runtime input, so only the kernel can see it does not fit.
    let mut g = Graph::new("reshape");
    let x = g.add_input("x", ty(DType::F32, &["2", "3"]));
    let s = g.add_input("s", ty(DType::I64, &["2"]));
    let y = node(&mut g, "reshape", Op::Reshape { allowzero: false }, &[Some(x), Some(s)], ty(DType::F32, &["?", "?"]));
    g.set_outputs(vec![y]);
    let mut p = Predictor::new(g).unwrap();
    let e = run_err(&mut p, vec![zeros(&[2, 3]), Tensor::from_vec(&[2], vec![4i64, 4]).unwrap()]);
    match &e {
        RuntimeError::Node { node, op, .. } => {
            assert_eq!(node, "reshape");
            assert_eq!(*op, "Reshape");
        }
        other => panic!("expected a node error, got {other:?}"),
    }
    assert!(e.to_string().starts_with("node 'reshape' (Reshape): "), "{e}");
    let out = p
        .run_with(vec![
            Tensor::from_vec(&[2, 3], vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap(),
            Tensor::from_vec(&[2], vec![3i64, -1]).unwrap(),
        ])
        .unwrap();
    assert_eq!(out[0].shape(), [3, 2]);
    assert_eq!(out[0].to_f32_vec(), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
}

#[test]
fn invalid_graph_is_rejected_at_construction() {
    // Relu of f32 declared as producing i64.
    let mut g = Graph::new("bad");
    let x = g.add_input("x", ty(DType::F32, &["2"]));
    let y = node(&mut g, "y", Op::Relu, &[Some(x)], ty(DType::I64, &["2"]));
    g.set_outputs(vec![y]);
    let e = Predictor::new(g).unwrap_err();
    assert!(matches!(e, RuntimeError::Graph(_)), "{e:?}");
    let msg = e.to_string();
    assert!(msg.starts_with("invalid graph: ") && msg.contains("'y'"), "{msg}");

    // Two values with one name.
    let mut g = Graph::new("dup");
    let x = g.add_input("x", ty(DType::F32, &["2"]));
    let y = node(&mut g, "x", Op::Relu, &[Some(x)], ty(DType::F32, &["2"]));
    g.set_outputs(vec![y]);
    let e = Predictor::new(g).unwrap_err();
    assert!(e.to_string().contains("value name 'x' is used twice"), "{e}");
}
