"""onnxruntime helpers shared by the export check scripts (export_check.py, int8_check.py,
train_export_check.py): a one-thread CPU session, and the per-case loop writing results.json."""

from __future__ import annotations

import json
import traceback
from pathlib import Path
from typing import Callable

import onnxruntime as ort


def session(path: Path, level: ort.GraphOptimizationLevel | None = None) -> ort.InferenceSession:
    """An onnxruntime CPU session on one thread (graph optimization `level` when given)."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    if level is not None:
        so.graph_optimization_level = level
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def run_cases(root: Path, check: Callable[[Path], dict]) -> dict:
    """`check` on each directory under `root` holding `model.onnx` (in name order), a failure
    reported per case; the results go to ROOT/results.json and are returned."""
    results = {}
    for d in sorted(p for p in root.iterdir() if (p / "model.onnx").is_file()):
        try:
            results[d.name] = check(d)
        except Exception as e:  # noqa: BLE001 - every failure is reported per case
            results[d.name] = {"error": f"{type(e).__name__}: {e}".splitlines()[0]}
            traceback.print_exc()
    (root / "results.json").write_text(json.dumps(results, indent=1))
    return results
