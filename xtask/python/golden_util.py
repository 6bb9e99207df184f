"""Shared pieces of the golden-data generator: the Case record, a small graph builder on top of
onnx.helper, and writing a case directory (model, inputs, onnxruntime outputs, meta.json)."""

from __future__ import annotations

import json
import os
import shutil
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


@dataclass
class Case:
    """One golden case before it is written: an ONNX model and its inputs in graph order."""

    name: str
    model: onnx.ModelProto
    inputs: list[np.ndarray]
    source: str
    description: str
    # Save every initializer to `weights.bin` beside model.onnx (ONNX external data).
    external_data: bool = False
    # Names of the real (non-initializer) graph inputs, in order; filled by `real_inputs`.
    input_names: list[str] = field(default_factory=list)


def rng_for(name: str) -> np.random.Generator:
    """A numpy generator seeded from the case name (crc32, stable across runs and machines)."""
    return np.random.default_rng(zlib.crc32(name.encode()))


def real_inputs(model: onnx.ModelProto) -> list[str]:
    """Graph inputs that are not initializers, in graph order."""
    inits = {t.name for t in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in inits]


def ort_session(model_path: Path) -> ort.InferenceSession:
    """A single-threaded onnxruntime session without graph rewrites, so every node runs as the
    spec says and the numbers are reproducible."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(str(model_path), so, providers=["CPUExecutionProvider"])


def _fill_missing_output_shapes(case: Case) -> None:
    """Give graph outputs whose shape ONNX inference could not find (e.g. Reshape to a computed
    shape) a shape of the right rank with symbolic dims, as exporters do."""
    model = case.model
    if all(o.type.tensor_type.HasField("shape") for o in model.graph.output):
        return
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    ys = sess.run(None, dict(zip(real_inputs(model), case.inputs)))
    for o, y in zip(model.graph.output, ys):
        tt = o.type.tensor_type
        if not tt.HasField("shape"):
            for i in range(np.asarray(y).ndim):
                tt.shape.dim.add().dim_param = f"{o.name}_dim_{i}"


def run_ort(model_path: Path, names: list[str], inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Run the saved model on `inputs` (matched to `names`) and return every graph output."""
    sess = ort_session(model_path)
    got = [i.name for i in sess.get_inputs()]
    if got != names:
        raise RuntimeError(f"{model_path}: onnxruntime inputs {got} != expected {names}")
    return sess.run(None, dict(zip(names, inputs)))


def _check_output(case: str, name: str, a: np.ndarray) -> None:
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise RuntimeError(f"{case}: output {name} has non-finite values")


def write_case(out_dir: Path, case: Case) -> int:
    """Write one case directory and return its size in bytes."""
    _fill_missing_output_shapes(case)
    model = case.model
    onnx.checker.check_model(model, full_check=True)
    names = real_inputs(model)
    if len(names) != len(case.inputs):
        raise RuntimeError(f"{case.name}: {len(names)} graph inputs but {len(case.inputs)} arrays")
    d = out_dir / case.name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    path = d / "model.onnx"
    if case.external_data:
        onnx.save_model(
            model,
            str(path),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location="weights.bin",
            size_threshold=0,
        )
    else:
        onnx.save_model(model, str(path))
    inputs = [np.asarray(x, order="C") for x in case.inputs]
    outputs = run_ort(path, names, inputs)
    out_names = [o.name for o in model.graph.output]
    for i, x in enumerate(inputs):
        np.save(d / f"input_{i}.npy", x, allow_pickle=False)
    for i, (n, y) in enumerate(zip(out_names, outputs)):
        y = np.asarray(y, order="C")
        _check_output(case.name, n, y)
        np.save(d / f"output_{i}.npy", y, allow_pickle=False)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    meta = {
        "inputs": names,
        "outputs": out_names,
        "opset": opset,
        "source": case.source,
        "description": case.description,
    }
    (d / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return sum(f.stat().st_size for f in d.iterdir())


# ---------------------------------------------------------------------------------------------
# A small builder for hand-made graphs.

_NP_TO_ONNX = {
    np.dtype("float32"): TensorProto.FLOAT,
    np.dtype("float16"): TensorProto.FLOAT16,
    np.dtype("int64"): TensorProto.INT64,
    np.dtype("int32"): TensorProto.INT32,
    np.dtype("int8"): TensorProto.INT8,
    np.dtype("uint8"): TensorProto.UINT8,
    np.dtype("bool"): TensorProto.BOOL,
}


class Builder:
    """Builds an ONNX graph node by node; names are generated in a fixed order."""

    def __init__(self, name: str, opset: int):
        self.name = name
        self.opset = opset
        self.rng = rng_for(name)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.graph_inputs: list[onnx.ValueInfoProto] = []
        self.input_arrays: list[np.ndarray] = []
        self.output_names: list[str] = []
        self._count = 0

    def _fresh(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}_{self._count}"

    def input(self, name: str, arr: np.ndarray, dims: list | None = None) -> str:
        """A graph input with its golden value; `dims` overrides the declared shape (symbolic
        dims as strings)."""
        arr = np.asarray(arr, order="C")
        shape = list(arr.shape) if dims is None else dims
        self.graph_inputs.append(helper.make_tensor_value_info(name, _NP_TO_ONNX[arr.dtype], shape))
        self.input_arrays.append(arr)
        return name

    def normal(self, shape, scale=1.0) -> np.ndarray:
        return (self.rng.standard_normal(shape) * scale).astype(np.float32)

    def uniform(self, shape, lo=-1.0, hi=1.0) -> np.ndarray:
        return self.rng.uniform(lo, hi, shape).astype(np.float32)

    def init(self, arr: np.ndarray, name: str | None = None) -> str:
        """An initializer (weights)."""
        name = name or self._fresh("w")
        self.inits.append(numpy_helper.from_array(np.asarray(arr, order="C"), name))
        return name

    def const(self, arr, dtype=None) -> str:
        """A Constant node (how small integer parameters usually appear in exported graphs)."""
        arr = np.asarray(arr, dtype=dtype)
        out = self._fresh("c")
        self.nodes.append(
            helper.make_node("Constant", [], [out], name=out, value=numpy_helper.from_array(arr, out))
        )
        return out

    def op(self, op_type: str, inputs: list[str], n_out: int = 1, **attrs):
        """Add a node; returns its output name (or a list when `n_out` > 1)."""
        base = self._fresh(op_type)
        outs = [f"{base}_out{i}" if n_out > 1 else base for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=base, **attrs))
        return outs if n_out > 1 else outs[0]

    def output(self, *names: str) -> None:
        self.output_names.extend(names)

    def model(self) -> onnx.ModelProto:
        """The model, with output types and shapes from ONNX shape inference."""
        outs = [helper.make_empty_tensor_value_info(n) for n in self.output_names]
        graph = helper.make_graph(self.nodes, self.name, self.graph_inputs, outs, initializer=self.inits)
        opsets = [helper.make_opsetid("", self.opset)]
        ir = max(helper.find_min_ir_version_for(opsets), 7)
        m = helper.make_model(graph, opset_imports=opsets, ir_version=ir, producer_name="lithe-golden")
        inferred = onnx.shape_inference.infer_shapes(m, check_type=True, strict_mode=True, data_prop=True)
        known = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
        del m.graph.output[:]
        for n in self.output_names:
            v = known.get(n)
            if v is None or not v.type.HasField("tensor_type") or v.type.tensor_type.elem_type == 0:
                raise RuntimeError(f"{self.name}: shape inference gave no type for output {n}")
            m.graph.output.append(v)
        return m

    def case(self, description: str) -> Case:
        return Case(self.name, self.model(), self.input_arrays, "onnx.helper", description)


def total_size(path: Path) -> int:
    """Total bytes of every file under `path`."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def is_case_dir(p: Path) -> bool:
    return p.is_dir() and (p / "meta.json").exists()


def clean_cases(out_dir: Path) -> None:
    """Remove every previously generated case directory and the README."""
    if not out_dir.exists():
        return
    for p in sorted(out_dir.iterdir()):
        if is_case_dir(p):
            shutil.rmtree(p)
    readme = out_dir / "README.md"
    if readme.exists():
        os.remove(readme)
