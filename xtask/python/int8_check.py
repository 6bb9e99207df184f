"""Run Lithe's int8 models exported as QDQ ONNX with onnxruntime; compare with Lithe's int8 run.

Usage: int8_check.py ROOT. Each directory under ROOT (written by `cargo xtask onnx-export-check
--int8`) holds `model.onnx` (`lite-cli quant -o model.onnx`, QDQ), `input.npy` (the evaluation
rows), `lithe.npy` (Lithe's first output running `lite-cli quant -o int8.nb` on them),
`reference.npy` (labels, or fp32's top-1) and `case.json`. onnxruntime (CPU, one thread) runs
the rows in chunks twice: with its default graph optimizations (its QDQ fusion into int8
kernels, as deployed) and with none (each Q/DQ run as written around float ops). Per output:

- max |ort - lithe|;
- step: the scale of the last quantized activation feeding the output, i.e. of the
  DequantizeLinear (with a non-constant input) nearest the output walking the graph backwards
  (breadth first); the share of elements with |ort - lithe| > step, and the max difference in steps;
- top-1 agreement between the two, and each one's top-1 accuracy against the reference.

ROOT/results.json gets the figures and a markdown table is printed.
"""

from __future__ import annotations

import json
import sys
from collections import deque
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper
from ort_cases import run_cases, session


def last_step(model: onnx.ModelProto, output: str) -> tuple[float, str]:
    """Scale of the activation DequantizeLinear nearest `output` (backwards, breadth first)."""
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    seen, queue = set(), deque([output])
    while queue:
        v = queue.popleft()
        n = producer.get(v)
        if n is None or id(n) in seen:
            continue
        seen.add(id(n))
        if n.op_type == "DequantizeLinear" and n.input[0] not in inits:
            scale = inits.get(n.input[1])
            if scale is None:
                raise RuntimeError(f"{n.name}: scale {n.input[1]} is not a constant")
            return float(np.max(scale)), n.input[0]
        queue.extend(i for i in n.input if i)
    raise RuntimeError(f"no quantized activation feeds {output}")


def run_ort(path: Path, x: np.ndarray, chunk: int, level: ort.GraphOptimizationLevel) -> tuple[np.ndarray, str]:
    sess = session(path, level)
    name = sess.get_inputs()[0].name
    got = np.concatenate([sess.run(None, {name: x[i : i + chunk]})[0] for i in range(0, len(x), chunk)])
    return got, sess.get_outputs()[0].name


def compare(got: np.ndarray, want: np.ndarray, ref: np.ndarray, step: float) -> dict:
    if got.shape != want.shape:
        raise RuntimeError(f"onnxruntime {list(got.shape)}, Lithe {list(want.shape)}")
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    t_ort, t_lithe = got.reshape(len(got), -1).argmax(1), want.reshape(len(want), -1).argmax(1)
    return {
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "max_diff_steps": float(diff.max() / step),
        "over_one_step": float(np.mean(diff > step)),
        "top1_agreement": float(np.mean(t_ort == t_lithe)),
        "accuracy_onnxruntime": float(np.mean(t_ort == ref)),
        "accuracy_lithe": float(np.mean(t_lithe == ref)),
    }


def check(d: Path) -> dict:
    info = json.loads((d / "case.json").read_text())
    model = onnx.load(str(d / "model.onnx"))
    onnx.checker.check_model(model, full_check=True)
    x = np.load(d / "input.npy")
    want = np.load(d / "lithe.npy")
    ref = np.load(d / "reference.npy")
    chunk = int(info["chunk"])
    # onnxruntime as deployed (its QDQ fusion: int8 kernels), and with graph optimizations off
    # (each QuantizeLinear/DequantizeLinear run as written around float ops: the QDQ semantics).
    got, out_name = run_ort(d / "model.onnx", x, chunk, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    ref_got, _ = run_ort(d / "model.onnx", x, chunk, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    step, value = last_step(model, out_name)
    return {
        "output": out_name,
        "rows": int(len(x)),
        "elements": int(want.size),
        "max_abs_output": float(np.abs(want).max()),
        "step": step,
        "step_value": value,
        "ort": compare(got, want, ref, step),
        "ort_no_opt": compare(ref_got, want, ref, step),
        "reference": info["reference"],
        "roundtrip_max_abs": info["roundtrip_max_abs"],
        "nodes": len(model.graph.node),
        "qdq_nodes": sum(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node),
    }


def main() -> None:
    root = Path(sys.argv[1])
    results = run_cases(root, check)
    print(f"\nonnxruntime {ort.__version__}, onnx {onnx.__version__}")
    print(
        "\n| model | onnxruntime | rows | ONNX nodes (Q/DQ) | max abs diff | step (last activation) "
        "| max diff in steps | elements > 1 step | top-1 agreement | accuracy onnxruntime / Lithe | vs "
        "| ONNX re-imported vs .nb |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    for k, r in results.items():
        if "error" in r:
            print(f"| {k} | error: {r['error']} |")
            continue
        for how, key in (("optimized (int8 kernels)", "ort"), ("no graph optimization", "ort_no_opt")):
            c = r[key]
            print(
                f"| {k} | {how} | {r['rows']} | {r['nodes']} ({r['qdq_nodes']}) | {c['max_abs_diff']:.4g} "
                f"| {r['step']:.4g} | {c['max_diff_steps']:.2f} | {100 * c['over_one_step']:.2f}% of {r['elements']} "
                f"| {c['top1_agreement']:.4f} | {c['accuracy_onnxruntime']:.4f} / {c['accuracy_lithe']:.4f} "
                f"| {r['reference']} | {r['roundtrip_max_abs']:.3g} |"
            )


if __name__ == "__main__":
    main()
