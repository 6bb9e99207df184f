"""Run Lithe-exported ONNX models with onnxruntime and compare with Lithe's outputs.

Usage: export_check.py ROOT. Each directory under ROOT holds `model.onnx` (written by
`lithe_onnx::export_model`), `input_<i>.npy` (graph input order) and `lithe_<i>.npy` (Lithe's
outputs in graph output order). The ONNX checker runs on each model (full check with shape
inference; where ONNX's shape inference disagrees with the declared shapes, the structural check
and a note), onnxruntime (CPU, one thread) computes the outputs, and ROOT/results.json gets, per
case, the max abs error and the max abs reference value per output, or the error text.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from ort_cases import run_cases, session


def numbered(d: Path, prefix: str) -> list[np.ndarray]:
    out = []
    i = 0
    while (d / f"{prefix}_{i}.npy").is_file():
        out.append(np.load(d / f"{prefix}_{i}.npy"))
        i += 1
    return out


def check(d: Path) -> dict:
    model_path = d / "model.onnx"
    note = None
    try:
        onnx.checker.check_model(str(model_path), full_check=True)
    except onnx.shape_inference.InferenceError as e:
        # ONNX's shape inference and onnxruntime (which Lithe follows) disagree on a few shapes
        # (a ceil_mode pool whose last window starts in the end padding): keep the structural
        # check, note the disagreement and let onnxruntime decide.
        onnx.checker.check_model(str(model_path), full_check=False)
        note = "ONNX shape inference: " + str(e).splitlines()[0][:160]
    sess = session(model_path)
    inputs = numbered(d, "input")
    feeds = {i.name: x for i, x in zip(sess.get_inputs(), inputs)}
    got = sess.run(None, feeds)
    want = numbered(d, "lithe")
    if len(got) != len(want):
        raise RuntimeError(f"{len(got)} onnxruntime outputs, {len(want)} Lithe outputs")
    outputs = []
    for i, (g, w) in enumerate(zip(got, want)):
        if g.shape != w.shape or g.dtype != w.dtype:
            raise RuntimeError(f"output {i}: onnxruntime {g.dtype}{list(g.shape)}, Lithe {w.dtype}{list(w.shape)}")
        if g.size == 0:
            err, scale = 0.0, 0.0
        else:
            diff = np.abs(g.astype(np.float64) - w.astype(np.float64))
            err = float(np.max(diff))
            scale = float(np.max(np.abs(w.astype(np.float64))))
        outputs.append({"name": sess.get_outputs()[i].name, "max_abs_err": err, "max_abs_value": scale})
    result = {"outputs": outputs, "nodes": len(onnx.load(str(model_path)).graph.node)}
    if note:
        result["note"] = note
    return result


def main() -> None:
    root = Path(sys.argv[1])
    results = run_cases(root, check)
    print(f"onnxruntime {ort.__version__}, onnx {onnx.__version__}: {len(results)} models checked")


if __name__ == "__main__":
    main()
