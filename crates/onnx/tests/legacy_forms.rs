//! Old attribute forms of operators become the IR's input forms.

mod common;
use common::*;
use lithe_ir::op::{CoordTransform, NearestMode, ResizeMode, SoftmaxAttrs};
use lithe_ir::{Op, Shape};

fn out_shape(g: &lithe_ir::Graph) -> Shape {
    g.value(g.outputs()[0]).ty.shape.clone().unwrap()
}

#[test]
fn clip_attribute_form_before_11_and_input_form_after() {
    let g = Model::new(10)
        .input("x", &[D::V(2), D::V(3)])
        .node("Clip", &["x"], &["y"], vec![a_float("min", -1.0), a_float("max", 6.0)])
        .output("y")
        .load()
        .unwrap();
    let c = only(&g, "Clip");
    assert_eq!(const_in(&g, c, 1).unwrap().to_f32_vec(), vec![-1.0]);
    assert_eq!(const_in(&g, c, 2).unwrap().to_f32_vec(), vec![6.0]);

    // Only max given: min stays absent.
    let g = Model::new(6)
        .input("x", &[D::V(2)])
        .node("Clip", &["x"], &["y"], vec![a_float("max", 6.0)])
        .output("y")
        .load()
        .unwrap();
    let c = only(&g, "Clip");
    assert!(absent(&g, c, 1));
    assert_eq!(const_in(&g, c, 2).unwrap().to_f32_vec(), vec![6.0]);

    // Opset 11: inputs; attributes (not part of the schema any more) are not read.
    let g = Model::new(11)
        .input("x", &[D::V(2), D::V(3)])
        .init(tensor_f32("lo", &[], &[0.0]))
        .node("Clip", &["x", "lo", ""], &["y"], vec![a_float("min", -5.0)])
        .output("y")
        .load()
        .unwrap();
    let c = only(&g, "Clip");
    assert_eq!(const_in(&g, c, 1).unwrap().to_f32_vec(), vec![0.0]);
    assert!(absent(&g, c, 2));
}

#[test]
fn slice_attributes_before_10_and_inputs_after() {
    let g = Model::new(9)
        .input("x", &[D::V(2), D::V(5)])
        .node("Slice", &["x"], &["y"], vec![a_ints("starts", &[1]), a_ints("ends", &[4]), a_ints("axes", &[1])])
        .output("y")
        .load()
        .unwrap();
    let s = only(&g, "Slice");
    assert_eq!(const_in(&g, s, 1).unwrap().to_i64_vec(), vec![1]);
    assert_eq!(const_in(&g, s, 2).unwrap().to_i64_vec(), vec![4]);
    assert_eq!(const_in(&g, s, 3).unwrap().to_i64_vec(), vec![1]);
    assert!(absent(&g, s, 4));
    assert_eq!(out_shape(&g), Shape::known(&[2, 3]));

    let g = Model::new(13)
        .input("x", &[D::V(2), D::V(5)])
        .init(tensor_i64("s", &[1], &[0]))
        .init(tensor_i64("e", &[1], &[-1]))
        .init(tensor_i64("a", &[1], &[1]))
        .init(tensor_i64("st", &[1], &[2]))
        .node("Slice", &["x", "s", "e", "a", "st"], &["y"], vec![])
        .output("y")
        .load()
        .unwrap();
    let s = only(&g, "Slice");
    assert_eq!(const_in(&g, s, 4).unwrap().to_i64_vec(), vec![2]);
    assert_eq!(out_shape(&g), Shape::known(&[2, 2]));
}

#[test]
fn pad_attributes_before_11_and_inputs_after() {
    let g = Model::new(2)
        .input("x", &[D::V(2), D::V(4)])
        .node("Pad", &["x"], &["y"], vec![a_ints("pads", &[0, 1, 0, 2]), a_float("value", 2.5)])
        .output("y")
        .load()
        .unwrap();
    let p = only(&g, "Pad");
    assert_eq!(const_in(&g, p, 1).unwrap().to_i64_vec(), vec![0, 1, 0, 2]);
    assert_eq!(const_in(&g, p, 2).unwrap().to_f32_vec(), vec![2.5]);
    assert_eq!(out_shape(&g), Shape::known(&[2, 7]));

    let g = Model::new(11)
        .input("x", &[D::V(2), D::V(4)])
        .init(tensor_i64("pads", &[4], &[1, 0, 1, 0]))
        .node("Pad", &["x", "pads"], &["y"], vec![a_str("mode", "reflect")])
        .output("y")
        .load()
        .unwrap();
    let p = only(&g, "Pad");
    assert!(matches!(op(&g, p), Op::Pad { mode: lithe_ir::op::PadMode::Reflect }));
    assert!(absent(&g, p, 2));
    assert_eq!(out_shape(&g), Shape::known(&[4, 4]));

    let e = Model::new(11)
        .input("x", &[D::V(2)])
        .init(tensor_i64("pads", &[2], &[1, 1]))
        .node("Pad", &["x", "pads"], &["y"], vec![a_str("mode", "mirror")])
        .output("y")
        .load()
        .unwrap_err();
    assert!(e.to_string().contains("unknown mode 'mirror'"), "{e}");
}

#[test]
fn squeeze_and_unsqueeze_axes_attribute_before_13() {
    let g = Model::new(11)
        .input("x", &[D::V(1), D::V(3), D::V(1)])
        .node("Squeeze", &["x"], &["y"], vec![a_ints("axes", &[0])])
        .output("y")
        .load()
        .unwrap();
    let s = only(&g, "Squeeze");
    assert_eq!(const_in(&g, s, 1).unwrap().to_i64_vec(), vec![0]);
    assert_eq!(out_shape(&g), Shape::known(&[3, 1]));

    // No axes: every size-1 axis goes.
    let g = Model::new(11)
        .input("x", &[D::V(1), D::V(3), D::V(1)])
        .node("Squeeze", &["x"], &["y"], vec![])
        .output("y")
        .load()
        .unwrap();
    assert!(absent(&g, only(&g, "Squeeze"), 1));
    assert_eq!(out_shape(&g), Shape::known(&[3]));

    let g = Model::new(13)
        .input("x", &[D::V(1), D::V(3), D::V(1)])
        .init(tensor_i64("axes", &[1], &[-1]))
        .node("Squeeze", &["x", "axes"], &["y"], vec![])
        .output("y")
        .load()
        .unwrap();
    assert_eq!(out_shape(&g), Shape::known(&[1, 3]));

    let g = Model::new(11)
        .input("x", &[D::V(3)])
        .node("Unsqueeze", &["x"], &["y"], vec![a_ints("axes", &[0, 2])])
        .output("y")
        .load()
        .unwrap();
    assert_eq!(const_in(&g, only(&g, "Unsqueeze"), 1).unwrap().to_i64_vec(), vec![0, 2]);
    assert_eq!(out_shape(&g), Shape::known(&[1, 3, 1]));

    let e =
        Model::new(11).input("x", &[D::V(3)]).node("Unsqueeze", &["x"], &["y"], vec![]).output("y").load().unwrap_err();
    assert!(e.to_string().contains("'axes' is required"), "{e}");
}

#[test]
fn upsample_becomes_asymmetric_resize() {
    let g = Model::new(9)
        .input("x", &[D::V(1), D::V(1), D::V(2), D::V(2)])
        .init(tensor_f32("scales", &[4], &[1.0, 1.0, 2.0, 3.0]))
        .node("Upsample", &["x", "scales"], &["y"], vec![])
        .output("y")
        .load()
        .unwrap();
    let r = only(&g, "Resize");
    let Op::Resize(a) = op(&g, r) else { unreachable!() };
    assert_eq!(a.mode, ResizeMode::Nearest);
    assert_eq!(a.coord, CoordTransform::Asymmetric);
    assert_eq!(a.nearest, NearestMode::Floor);
    assert!(absent(&g, r, 1));
    assert_eq!(const_in(&g, r, 2).unwrap().to_f32_vec(), vec![1.0, 1.0, 2.0, 3.0]);
    assert!(absent(&g, r, 3));
    assert_eq!(out_shape(&g), Shape::known(&[1, 1, 4, 6]));

    let g = Model::new(7)
        .input("x", &[D::V(1), D::V(1), D::V(2), D::V(2)])
        .node("Upsample", &["x"], &["y"], vec![a_floats("scales", &[1.0, 1.0, 2.0, 2.0]), a_str("mode", "linear")])
        .output("y")
        .load()
        .unwrap();
    let r = only(&g, "Resize");
    let Op::Resize(a) = op(&g, r) else { unreachable!() };
    assert_eq!(a.mode, ResizeMode::Linear);
    assert_eq!(a.coord, CoordTransform::Asymmetric);
    assert_eq!(const_in(&g, r, 2).unwrap().to_f32_vec(), vec![1.0, 1.0, 2.0, 2.0]);
    assert_eq!(out_shape(&g), Shape::known(&[1, 1, 4, 4]));
}

#[test]
fn resize_10_vs_13() {
    let g = Model::new(10)
        .input("x", &[D::V(1), D::V(1), D::V(4), D::V(4)])
        .init(tensor_f32("scales", &[4], &[1.0, 1.0, 0.5, 0.5]))
        .node("Resize", &["x", "scales"], &["y"], vec![])
        .output("y")
        .load()
        .unwrap();
    let r = only(&g, "Resize");
    let Op::Resize(a) = op(&g, r) else { unreachable!() };
    assert_eq!(a.coord, CoordTransform::Asymmetric);
    // onnxruntime rounds up on downsampled axes in opset-10 nearest mode.
    assert_eq!(a.nearest, NearestMode::Ceil);
    assert_eq!(const_in(&g, r, 2).unwrap().to_f32_vec(), vec![1.0, 1.0, 0.5, 0.5]);
    assert_eq!(out_shape(&g), Shape::known(&[1, 1, 2, 2]));

    let g = Model::new(13)
        .input("x", &[D::V(1), D::V(1), D::V(4), D::V(4)])
        .init(tensor_f32("scales", &[4], &[1.0, 1.0, 2.0, 2.0]))
        .node("Resize", &["x", "", "scales"], &["y"], vec![a_str("mode", "linear")])
        .output("y")
        .load()
        .unwrap();
    let r = only(&g, "Resize");
    let Op::Resize(a) = op(&g, r) else { unreachable!() };
    assert_eq!(a.mode, ResizeMode::Linear);
    assert_eq!(a.coord, CoordTransform::HalfPixel);
    assert_eq!(a.nearest, NearestMode::RoundPreferFloor);
    assert_eq!(a.cubic_coeff_a, -0.75);
    assert!(!a.exclude_outside);
    assert_eq!(out_shape(&g), Shape::known(&[1, 1, 8, 8]));

    // Opset 11 style: empty roi and scales constants, sizes given.
    let g = Model::new(11)
        .input("x", &[D::V(1), D::V(1), D::V(4), D::V(4)])
        .init(tensor_f32("roi", &[0], &[]))
        .init(tensor_f32("scales", &[0], &[]))
        .init(tensor_i64("sizes", &[4], &[1, 1, 3, 5]))
        .node(
            "Resize",
            &["x", "roi", "scales", "sizes"],
            &["y"],
            vec![a_str("coordinate_transformation_mode", "align_corners"), a_str("nearest_mode", "floor")],
        )
        .output("y")
        .load()
        .unwrap();
    let r = only(&g, "Resize");
    let Op::Resize(a) = op(&g, r) else { unreachable!() };
    assert_eq!(a.coord, CoordTransform::AlignCorners);
    assert_eq!(a.nearest, NearestMode::Floor);
    assert!(absent(&g, r, 1) && absent(&g, r, 2));
    assert_eq!(const_in(&g, r, 3).unwrap().to_i64_vec(), vec![1, 1, 3, 5]);
    assert_eq!(out_shape(&g), Shape::known(&[1, 1, 3, 5]));

    let e = Model::new(11)
        .input("x", &[D::V(1), D::V(1), D::V(4), D::V(4)])
        .init(tensor_f32("roi", &[0], &[]))
        .init(tensor_f32("scales", &[4], &[1.0, 1.0, 2.0, 2.0]))
        .node(
            "Resize",
            &["x", "roi", "scales"],
            &["y"],
            vec![a_str("coordinate_transformation_mode", "tf_half_pixel_for_nn")],
        )
        .output("y")
        .load()
        .unwrap_err();
    assert!(e.to_string().contains("tf_half_pixel_for_nn"), "{e}");
}

#[test]
fn resize_18_axes_and_aspect_ratio() {
    let g = Model::new(18)
        .input("x", &[D::V(1), D::V(2), D::V(4), D::V(6)])
        .init(tensor_f32("scales", &[2], &[2.0, 0.5]))
        .node("Resize", &["x", "", "scales"], &["y"], vec![a_ints("axes", &[2, 3])])
        .output("y")
        .load()
        .unwrap();
    let r = only(&g, "Resize");
    assert_eq!(const_in(&g, r, 2).unwrap().to_f32_vec(), vec![1.0, 1.0, 2.0, 0.5]);
    assert_eq!(out_shape(&g), Shape::known(&[1, 2, 8, 3]));

    let g = Model::new(19)
        .input("x", &[D::V(1), D::V(1), D::V(4), D::V(8)])
        .init(tensor_i64("sizes", &[2], &[8, 8]))
        .node(
            "Resize",
            &["x", "", "", "sizes"],
            &["y"],
            vec![a_ints("axes", &[2, 3]), a_str("keep_aspect_ratio_policy", "not_larger")],
        )
        .output("y")
        .load()
        .unwrap();
    let r = only(&g, "Resize");
    assert_eq!(const_in(&g, r, 3).unwrap().to_i64_vec(), vec![1, 1, 4, 8]);

    let e = Model::new(18)
        .input("x", &[D::V(1), D::V(1), D::V(4), D::V(4)])
        .init(tensor_f32("scales", &[4], &[1.0, 1.0, 0.5, 0.5]))
        .node("Resize", &["x", "", "scales"], &["y"], vec![a_int("antialias", 1)])
        .output("y")
        .load()
        .unwrap_err();
    assert!(e.to_string().contains("antialias"), "{e}");
}

#[test]
fn split_attribute_before_13_and_input_after() {
    let g = Model::new(11)
        .input("x", &[D::V(2), D::V(6)])
        .node("Split", &["x"], &["a", "b"], vec![a_int("axis", 1), a_ints("split", &[2, 4])])
        .output("a")
        .output("b")
        .load()
        .unwrap();
    let s = only(&g, "Split");
    assert_eq!(op(&g, s), &Op::Split { axis: 1, num_outputs: 2 });
    assert_eq!(const_in(&g, s, 1).unwrap().to_i64_vec(), vec![2, 4]);
    assert_eq!(g.value(g.outputs()[1]).ty.shape, Some(Shape::known(&[2, 4])));
    assert_eq!(g.value(g.outputs()[0]).name, "a");

    let g = Model::new(13)
        .input("x", &[D::V(6)])
        .init(tensor_i64("split", &[3], &[1, 2, 3]))
        .node("Split", &["x", "split"], &["a", "b", "c"], vec![])
        .output("c")
        .load()
        .unwrap();
    let s = only(&g, "Split");
    assert_eq!(op(&g, s), &Op::Split { axis: 0, num_outputs: 3 });
    assert_eq!(g.value(g.outputs()[0]).ty.shape, Some(Shape::known(&[3])));

    // Equal split, count from the outputs (opset 18 num_outputs must agree).
    let g = Model::new(18)
        .input("x", &[D::V(6)])
        .node("Split", &["x"], &["a", "b"], vec![a_int("num_outputs", 2)])
        .output("a")
        .output("b")
        .load()
        .unwrap();
    assert!(absent(&g, only(&g, "Split"), 1));
    assert_eq!(g.value(g.outputs()[1]).ty.shape, Some(Shape::known(&[3])));
    let e = Model::new(18)
        .input("x", &[D::V(6)])
        .node("Split", &["x"], &["a", "b"], vec![a_int("num_outputs", 3)])
        .output("a")
        .load()
        .unwrap_err();
    assert!(e.to_string().contains("num_outputs is 3"), "{e}");
}

#[test]
fn softmax_11_vs_13() {
    let m = |opset| {
        Model::new(opset)
            .input("x", &[D::V(2), D::V(3), D::V(4)])
            .node("Softmax", &["x"], &["y"], vec![])
            .output("y")
            .load()
            .unwrap()
    };
    let g = m(11);
    assert_eq!(op(&g, only(&g, "Softmax")), &Op::Softmax(SoftmaxAttrs { axis: 1, coerce_2d: true }));
    let g = m(13);
    assert_eq!(op(&g, only(&g, "Softmax")), &Op::Softmax(SoftmaxAttrs { axis: -1, coerce_2d: false }));
    // Coercing at the last axis equals a plain softmax.
    let g = Model::new(11)
        .input("x", &[D::V(2), D::V(3)])
        .node("Softmax", &["x"], &["y"], vec![])
        .output("y")
        .load()
        .unwrap();
    assert_eq!(op(&g, only(&g, "Softmax")), &Op::Softmax(SoftmaxAttrs { axis: 1, coerce_2d: false }));
}

#[test]
fn reduce_axes_attribute_vs_input() {
    let g = Model::new(17)
        .input("x", &[D::V(2), D::V(3), D::V(4)])
        .node("ReduceMean", &["x"], &["y"], vec![a_ints("axes", &[1]), a_int("keepdims", 0)])
        .output("y")
        .load()
        .unwrap();
    let r = only(&g, "ReduceMean");
    assert_eq!(const_in(&g, r, 1).unwrap().to_i64_vec(), vec![1]);
    assert_eq!(out_shape(&g), Shape::known(&[2, 4]));

    let g = Model::new(18)
        .input("x", &[D::V(2), D::V(3), D::V(4)])
        .init(tensor_i64("axes", &[1], &[2]))
        .node("ReduceMax", &["x", "axes"], &["y"], vec![])
        .output("y")
        .load()
        .unwrap();
    assert_eq!(out_shape(&g), Shape::known(&[2, 3, 1]));

    // ReduceSum moved at 13: the opset-12 attribute form and the opset-13 input form.
    let g = Model::new(12)
        .input("x", &[D::V(2), D::V(3)])
        .node("ReduceSum", &["x"], &["y"], vec![a_ints("axes", &[0])])
        .output("y")
        .load()
        .unwrap();
    assert_eq!(out_shape(&g), Shape::known(&[1, 3]));
    let g = Model::new(13)
        .input("x", &[D::V(2), D::V(3)])
        .node("ReduceSum", &["x"], &["y"], vec![a_int("keepdims", 0)])
        .output("y")
        .load()
        .unwrap();
    assert!(absent(&g, only(&g, "ReduceSum"), 1));
    assert_eq!(out_shape(&g), Shape::known(&[]));
}

#[test]
fn reshape_and_concat_before_opset_5() {
    let g = Model::new(4)
        .input("x", &[D::V(2), D::V(3)])
        .node("Reshape", &["x"], &["y"], vec![a_ints("shape", &[3, 2])])
        .output("y")
        .load()
        .unwrap();
    assert_eq!(const_in(&g, only(&g, "Reshape"), 1).unwrap().to_i64_vec(), vec![3, 2]);
    assert_eq!(out_shape(&g), Shape::known(&[3, 2]));
}

#[test]
fn legacy_broadcast_attribute_is_honoured() {
    // Opset 6: B of shape [3] broadcast on axis 1 of A [2, 3, 4].
    let g = Model::new(6)
        .input("a", &[D::V(2), D::V(3), D::V(4)])
        .input("b", &[D::V(3)])
        .node("Add", &["a", "b"], &["y"], vec![a_int("broadcast", 1), a_int("axis", 1)])
        .output("y")
        .load()
        .unwrap();
    let u = only(&g, "Unsqueeze");
    assert_eq!(const_in(&g, u, 1).unwrap().to_i64_vec(), vec![1]);
    assert_eq!(out_shape(&g), Shape::known(&[2, 3, 4]));
    // Trailing alignment needs no change.
    let g = Model::new(6)
        .input("a", &[D::V(2), D::V(3)])
        .input("b", &[D::V(3)])
        .node("Mul", &["a", "b"], &["y"], vec![a_int("broadcast", 1)])
        .output("y")
        .load()
        .unwrap();
    assert!(nodes_of(&g, "Unsqueeze").is_empty());
}

#[test]
fn resize_18_axes_with_runtime_scales_builds_the_full_vector() {
    let mut m = Model::new(18)
        .input("x", &[D::V(1), D::V(2), D::V(4), D::V(6)])
        .node("Resize", &["x", "", "s"], &["y"], vec![a_ints("axes", &[3, 2])])
        .output("y");
    m.graph.input.push(value_info("s", F32, Some(&[D::V(2)])));
    let g = m.load().unwrap();
    let r = only(&g, "Resize");
    let scales = g.node_inputs(r)[2].unwrap();
    let concat = scales.node;
    assert_eq!(op(&g, concat), &Op::Concat { axis: 0 });
    let parts = g.node_inputs(concat);
    assert_eq!(parts.len(), 4);
    // Axes 0 and 1 keep scale 1; axis 2 reads s[1], axis 3 reads s[0].
    assert_eq!(g.const_value(parts[0].unwrap()).unwrap().to_f32_vec(), vec![1.0]);
    assert_eq!(g.const_value(parts[1].unwrap()).unwrap().to_f32_vec(), vec![1.0]);
    let slice2 = parts[2].unwrap().node;
    assert_eq!(op(&g, slice2), &Op::Slice);
    assert_eq!(const_in(&g, slice2, 1).unwrap().to_i64_vec(), vec![1]);
    assert_eq!(const_in(&g, parts[3].unwrap().node, 1).unwrap().to_i64_vec(), vec![0]);
    assert_eq!(g.value(g.outputs()[0]).ty.shape.as_ref().unwrap().rank(), 4);
}

#[test]
fn newer_opsets_are_accepted() {
    let g = Model::new(23).input("x", &[D::V(2)]).node("Relu", &["x"], &["y"], vec![]).output("y").load().unwrap();
    assert_eq!(nodes_of(&g, "Relu").len(), 1);
}

#[test]
fn dropout_training_mode_input() {
    let m = |flag: bool| {
        Model::new(13)
            .input("x", &[D::V(2)])
            .init(lithe_onnx::proto::TensorProto {
                name: "t".into(),
                data_type: 9,
                int32_data: vec![flag as i32],
                ..Default::default()
            })
            .node("Dropout", &["x", "", "t"], &["y"], vec![])
            .output("y")
            .load()
    };
    let g = m(false).unwrap();
    assert_eq!(g.node_inputs(only(&g, "Dropout")).len(), 1);
    let e = m(true).unwrap_err();
    assert!(e.to_string().contains("training_mode=true is not supported"), "{e}");
}

#[test]
fn dropout_ratio_is_kept_for_training() {
    let ratio_of = |g: &lithe_ir::Graph| {
        let inputs = g.node_inputs(only(g, "Dropout"));
        let r = inputs.get(1).copied().flatten().expect("a ratio input");
        g.const_value(r).expect("a constant ratio").to_f32_vec()
    };
    // Opset 12 and later: the ratio is an input.
    let g = Model::new(13)
        .input("x", &[D::V(2)])
        .init(tensor_f32("r", &[], &[0.25]))
        .node("Dropout", &["x", "r"], &["y"], vec![])
        .output("y")
        .load()
        .unwrap();
    assert_eq!(ratio_of(&g), vec![0.25]);
    // Before opset 12: an attribute, which becomes a constant input.
    let g = Model::new(10)
        .input("x", &[D::V(2)])
        .node("Dropout", &["x"], &["y"], vec![a_float("ratio", 0.3)])
        .output("y")
        .load()
        .unwrap();
    assert_eq!(ratio_of(&g), vec![0.3]);
    // No ratio given: no input (the op's default, 0.5, applies when training).
    let g = Model::new(10).input("x", &[D::V(2)]).node("Dropout", &["x"], &["y"], vec![]).output("y").load().unwrap();
    assert_eq!(g.node_inputs(only(&g, "Dropout")).len(), 1);
}
