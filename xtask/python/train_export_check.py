"""Run Lithe-trained, Lithe-exported ONNX models with onnxruntime and compare with Lithe.

Usage: train_export_check.py ROOT. Each directory under ROOT holds `model.onnx`, `input.npy`
(the images), `labels.npy` (int64 labels) and one or more `lithe_<what>.npy` logits computed
by Lithe (the trainer's eval pass, the predictor on the re-imported ONNX, ...). The ONNX checker
runs on each model (full check), onnxruntime (CPU, one thread) computes the logits, saved as
`ort.npy`, and ROOT/results.json gets per case: onnxruntime's accuracy and, per Lithe file, the
max abs difference, the max abs onnxruntime logit, the argmax agreement and Lithe's accuracy.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from ort_cases import run_cases, session


def check(d: Path) -> dict:
    model_path = d / "model.onnx"
    onnx.checker.check_model(str(model_path), full_check=True)
    sess = session(model_path)
    x = np.load(d / "input.npy")
    labels = np.load(d / "labels.npy")
    (got,) = sess.run(None, {sess.get_inputs()[0].name: x})
    np.save(d / "ort.npy", got.astype(np.float32))
    result = {"ort_accuracy": float(np.mean(got.argmax(1) == labels)), "samples": int(len(labels)), "lithe": {}}
    for f in sorted(d.glob("lithe_*.npy")):
        want = np.load(f)
        if want.shape != got.shape:
            raise RuntimeError(f"{f.name}: Lithe {list(want.shape)}, onnxruntime {list(got.shape)}")
        diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
        result["lithe"][f.stem[len("lithe_"):]] = {
            "max_abs_err": float(diff.max()),
            "max_abs_value": float(np.abs(got).max()),
            "argmax_agreement": float(np.mean(got.argmax(1) == want.argmax(1))),
            "accuracy": float(np.mean(want.argmax(1) == labels)),
        }
    return result


def main() -> None:
    root = Path(sys.argv[1])
    results = run_cases(root, check)
    print(f"onnxruntime {ort.__version__}, onnx {onnx.__version__}: {len(results)} models checked")


if __name__ == "__main__":
    main()
