//! `AttributeProto` builders and the ONNX spellings of the IR's attribute enums.

use crate::proto::AttributeProto;
use crate::proto::attribute_proto::AttributeType;
use lithe_ir::op::{AutoPad, CoordTransform, NearestMode, PadMode, ResizeMode};

/// An INT attribute.
pub(super) fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Int as i32, i: Some(v), ..Default::default() }
}

/// An INT attribute holding a flag.
pub(super) fn flag(name: &str, v: bool) -> AttributeProto {
    int(name, i64::from(v))
}

/// A FLOAT attribute.
pub(super) fn float(name: &str, v: f32) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Float as i32, f: Some(v), ..Default::default() }
}

/// An INTS attribute.
pub(super) fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Ints as i32, ints: v.to_vec(), ..Default::default() }
}

/// An INTS attribute from sizes.
pub(super) fn usizes(name: &str, v: &[usize]) -> AttributeProto {
    ints(name, &v.iter().map(|&x| x as i64).collect::<Vec<_>>())
}

/// A STRING attribute.
pub(super) fn string(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::String as i32,
        s: Some(v.as_bytes().to_vec()),
        ..Default::default()
    }
}

/// A TENSOR attribute.
pub(super) fn tensor(name: &str, t: crate::proto::TensorProto) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Tensor as i32, t: Some(t), ..Default::default() }
}

/// Push `usizes(name, v)` unless `v` is empty (the ONNX default).
pub(super) fn push_usizes(out: &mut Vec<AttributeProto>, name: &str, v: &[usize]) {
    if !v.is_empty() {
        out.push(usizes(name, v));
    }
}

/// The `auto_pad` string, `None` for `NOTSET` (the default).
pub(super) fn auto_pad(p: AutoPad) -> Option<&'static str> {
    match p {
        AutoPad::NotSet => None,
        AutoPad::Valid => Some("VALID"),
        AutoPad::SameUpper => Some("SAME_UPPER"),
        AutoPad::SameLower => Some("SAME_LOWER"),
    }
}

/// The Pad `mode` string.
pub(super) fn pad_mode(m: PadMode) -> &'static str {
    match m {
        PadMode::Constant => "constant",
        PadMode::Reflect => "reflect",
        PadMode::Edge => "edge",
        PadMode::Wrap => "wrap",
    }
}

/// The Resize `mode` string.
pub(super) fn resize_mode(m: ResizeMode) -> &'static str {
    match m {
        ResizeMode::Nearest => "nearest",
        ResizeMode::Linear => "linear",
        ResizeMode::Cubic => "cubic",
    }
}

/// The Resize `coordinate_transformation_mode` string.
pub(super) fn coord_transform(c: CoordTransform) -> &'static str {
    match c {
        CoordTransform::HalfPixel => "half_pixel",
        CoordTransform::PytorchHalfPixel => "pytorch_half_pixel",
        CoordTransform::AlignCorners => "align_corners",
        CoordTransform::Asymmetric => "asymmetric",
        CoordTransform::TfCropAndResize => "tf_crop_and_resize",
        CoordTransform::HalfPixelSymmetric => "half_pixel_symmetric",
    }
}

/// The Resize `nearest_mode` string.
pub(super) fn nearest_mode(n: NearestMode) -> &'static str {
    match n {
        NearestMode::RoundPreferFloor => "round_prefer_floor",
        NearestMode::RoundPreferCeil => "round_prefer_ceil",
        NearestMode::Floor => "floor",
        NearestMode::Ceil => "ceil",
    }
}
