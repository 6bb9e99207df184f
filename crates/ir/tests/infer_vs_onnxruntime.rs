//! Shape rules against output shapes recorded from onnxruntime (tests/data/ort_shapes.txt:
//! random Conv, ConvTranspose, pooling, Slice and Resize configurations, one per line).

mod common;
use common::*;
use lithe_ir::op::{AutoPad, AvgPoolAttrs, ConvAttrs, ConvTransposeAttrs, PoolAttrs, ResizeAttrs};
use lithe_ir::{Op, Shape};
use std::collections::HashMap;

fn nums<T: std::str::FromStr>(s: &str) -> Vec<T> {
    s.split(',').filter(|x| !x.is_empty()).map(|x| x.parse().ok().expect("number")).collect()
}

fn auto_pad(s: &str) -> AutoPad {
    match s {
        "VALID" => AutoPad::Valid,
        "SAME_UPPER" => AutoPad::SameUpper,
        "SAME_LOWER" => AutoPad::SameLower,
        _ => AutoPad::NotSet,
    }
}

#[test]
fn matches_onnxruntime() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/ort_shapes.txt")).unwrap();
    let mut count = HashMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (lhs, expected) = line.split_once(" -> ").unwrap();
        let mut words = lhs.split(' ');
        let op_name = words.next().unwrap();
        let kv: HashMap<&str, &str> = words.map(|w| w.split_once('=').unwrap()).collect();
        let x = || f32s(kv["x"]);
        let conv = || ConvAttrs {
            strides: nums(kv["strides"]),
            dilations: nums(kv["dilations"]),
            pads: nums(kv.get("pads").copied().unwrap_or("")),
            auto_pad: auto_pad(kv["auto_pad"]),
            group: kv["group"].parse().unwrap(),
            epilogue: Default::default(),
            kernel_shape: None,
        };
        let pool = || PoolAttrs {
            kernel_shape: nums(kv["kernel"]),
            strides: nums(kv["strides"]),
            dilations: nums(kv["dilations"]),
            pads: nums(kv["pads"]),
            auto_pad: auto_pad(kv["auto_pad"]),
            ceil_mode: kv["ceil"] == "1",
        };
        let (op, args) = match op_name {
            "Conv" => (Op::Conv(conv()), vec![x(), f32s(kv["w"])]),
            "ConvTranspose" => {
                let a = ConvTransposeAttrs {
                    conv: conv(),
                    output_padding: nums(kv.get("output_padding").copied().unwrap_or("")),
                    output_shape: kv.get("output_shape").map(|s| nums(s)),
                };
                (Op::ConvTranspose(a), vec![x(), f32s(kv["w"])])
            }
            "MaxPool" => (Op::MaxPool(pool()), vec![x()]),
            "AveragePool" => (Op::AveragePool(AvgPoolAttrs { pool: pool(), count_include_pad: false }), vec![x()]),
            "Slice" => (
                Op::Slice,
                vec![
                    x(),
                    i64c(&nums(kv["starts"])),
                    i64c(&nums(kv["ends"])),
                    i64c(&nums(kv["axes"])),
                    i64c(&nums(kv["steps"])),
                ],
            ),
            "Resize" => (Op::Resize(ResizeAttrs::default()), vec![x(), Arg::None, f32c(&nums(kv["scales"]))]),
            other => panic!("unknown op {other}"),
        };
        let got = match run(&op, &args) {
            Ok(v) => v[0].shape.clone().unwrap(),
            Err(e) => panic!("{line}: {e}"),
        };
        assert_eq!(got, Shape::known(&nums::<usize>(expected)), "{line}");
        *count.entry(op_name).or_insert(0) += 1;
    }
    for op in ["Conv", "ConvTranspose", "MaxPool", "AveragePool", "Slice", "Resize"] {
        assert!(count.get(op).copied().unwrap_or(0) >= 10, "{op}: {count:?}");
    }
}
