"""Peer engines for `cargo xtask bench-peers`.

Three commands, each printing JSON lines on stdout (diagnostics go to stderr):

* `export --out DIR --models a,b`: full-size torchvision CNNs (1x3x224x224, random seeded weights,
  no downloads) to DIR/NAME.onnx with the TorchScript exporter (opset 13, constant folding, batch
  fixed at 1). One line per model: {"model", "ok", "reason"?}. A failing model is reported, not
  fatal.
* `run --engine E --onnx PATH --work DIR --threads N --warmup W --repeats R`: convert the ONNX
  model for engine E when it needs its own format (cached in DIR), time it inside its own API and
  print one line {"ok": true, "median_ms", "min_ms", "max_ms"} or {"ok": false, "reason"}.
  xtask runs one of these per engine, model and thread count so a crashing engine only loses its
  own cell.
* `versions`: {"package": "version" or null} for every engine's pip package.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SEED = 0
SHAPE = (1, 3, 224, 224)
OPSET = 13
PACKAGES = ["torch", "torchvision", "onnx", "onnxscript", "onnxruntime", "ai-edge-litert", "litert-torch", "ncnn", "pnnx", "MNN"]


def emit(obj: dict) -> None:
    print(json.dumps(obj), flush=True)


# --- export ----------------------------------------------------------------------------------------


def mobilenet_v1():
    """MobileNetV1 1.0 (torchvision has none): a 3x3 stride-2 stem, 13 depthwise-separable blocks
    (3x3 depthwise + 1x1 pointwise, each with BatchNorm and ReLU), global average pooling and a
    1000-way linear layer: 28 layers."""
    import torch.nn as nn

    def cbr(cin, cout, k, s, groups=1):
        return [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    plan = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
    layers, cin = cbr(3, 32, 3, 2), 32
    for cout, s in plan:
        layers += cbr(cin, cin, 3, s, groups=cin) + cbr(cin, cout, 1, 1)
        cin = cout
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(cin, 1000))


def build_model(name: str):
    import torch
    import torchvision.models as tvm

    torch.manual_seed(SEED)
    if name == "mobilenet_v1":
        return mobilenet_v1()
    ctors = {
        "mobilenet_v2": tvm.mobilenet_v2,
        "mobilenet_v3_large": tvm.mobilenet_v3_large,
        "mobilenet_v3_small": tvm.mobilenet_v3_small,
        "resnet18": tvm.resnet18,
        "resnet50": tvm.resnet50,
        "shufflenet_v2_x1_0": tvm.shufflenet_v2_x1_0,
        "squeezenet1_1": tvm.squeezenet1_1,
        "mnasnet1_0": tvm.mnasnet1_0,
    }
    if name not in ctors:
        raise ValueError(f"unknown model {name!r}")
    return ctors[name](weights=None)


def export_one(name: str, out: Path) -> None:
    import torch

    model = build_model(name).eval()
    x = torch.randn(*SHAPE, generator=torch.Generator().manual_seed(SEED))
    tmp = out / f"{name}.onnx.tmp"
    with torch.no_grad():
        torch.onnx.export(
            model,
            (x,),
            str(tmp),
            dynamo=False,
            opset_version=OPSET,
            input_names=["input"],
            output_names=["output"],
            do_constant_folding=True,
        )
    tmp.replace(out / f"{name}.onnx")


def cmd_export(a) -> None:
    import warnings

    import torch

    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in [m for m in a.models.split(",") if m]:
        try:
            export_one(name, out)
            emit({"model": name, "ok": True})
        except Exception as e:  # noqa: BLE001 - a failing model is reported, not fatal
            emit({"model": name, "ok": False, "reason": short(e)})


# --- timing ----------------------------------------------------------------------------------------


def short(e: BaseException) -> str:
    msg = f"{type(e).__name__}: {e}".strip().splitlines()
    return msg[0][:160] if msg else type(e).__name__


def time_runs(run, warmup: int, repeats: int) -> dict:
    for _ in range(warmup):
        run()
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        run()
        times.append((time.perf_counter() - t0) * 1e3)
    return {"ok": True, "median_ms": float(np.median(times)), "min_ms": min(times), "max_ms": max(times)}


def input_array() -> np.ndarray:
    return np.random.default_rng(SEED).standard_normal(SHAPE).astype(np.float32)


def run_onnxruntime(onnx_path: Path, work: Path, a) -> dict:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    feed = {name: input_array()}
    return time_runs(lambda: sess.run(None, feed), a.warmup, a.repeats)


def run_mnn(onnx_path: Path, work: Path, a) -> dict:
    import MNN

    mnn_path = work / "mnn" / (onnx_path.stem + ".mnn")
    if not mnn_path.exists():
        mnn_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = mnn_path.with_suffix(".mnn.tmp")
        exe = shutil.which("mnnconvert", path=str(Path(sys.executable).parent)) or "mnnconvert"
        cmd = [exe, "-f", "ONNX", "--modelFile", str(onnx_path), "--MNNModel", str(tmp), "--bizCode", "MNN"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0 or not tmp.exists():
            return {"ok": False, "reason": "mnnconvert failed: " + last_line(r.stdout + r.stderr)}
        tmp.replace(mnn_path)
    interp = MNN.Interpreter(str(mnn_path))
    session = interp.createSession({"numThread": a.threads, "backend": "CPU", "precision": "high"})
    inp = interp.getSessionInput(session)
    x = input_array()
    tmp_in = MNN.Tensor(SHAPE, MNN.Halide_Type_Float, x, MNN.Tensor_DimensionType_Caffe)
    inp.copyFrom(tmp_in)

    def run():
        interp.runSession(session)
        # Reading the output forces any deferred work to finish, as a user would.
        interp.getSessionOutput(session).getHost()

    return time_runs(run, a.warmup, a.repeats)


def run_ncnn(onnx_path: Path, work: Path, a) -> dict:
    import ncnn

    d = work / "ncnn" / onnx_path.stem
    param, binf = d / "model.ncnn.param", d / "model.ncnn.bin"
    if not (param.exists() and binf.exists()):
        d.mkdir(parents=True, exist_ok=True)
        src = d / "model.onnx"
        shutil.copyfile(onnx_path, src)  # pnnx writes its outputs beside its input
        exe = shutil.which("pnnx", path=str(Path(sys.executable).parent)) or "pnnx"
        # fp16=0: keep f32 weights, as every other engine here runs f32.
        r = subprocess.run([exe, src.name, "inputshape=[1,3,224,224]", "fp16=0"], capture_output=True, text=True, cwd=d)
        if r.returncode != 0 or not param.exists():
            return {"ok": False, "reason": "pnnx failed: " + last_line(r.stdout + r.stderr)}
    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.num_threads = a.threads
    # f32 throughout, like the other engines (ncnn may otherwise store or compute in fp16/bf16).
    net.opt.use_fp16_packed = False
    net.opt.use_fp16_storage = False
    net.opt.use_fp16_arithmetic = False
    net.opt.use_bf16_storage = False
    if net.load_param(str(param)) != 0 or net.load_model(str(binf)) != 0:
        return {"ok": False, "reason": "ncnn could not load the pnnx output"}
    in_names, out_names = net.input_names(), net.output_names()
    mat = ncnn.Mat(input_array()[0])

    def run():
        ex = net.create_extractor()
        ex.input(in_names[0], mat)
        _, out = ex.extract(out_names[0])
        return out

    return time_runs(run, a.warmup, a.repeats)


def run_litert(onnx_path: Path, work: Path, a) -> dict:
    name = onnx_path.stem
    tfl = work / "litert" / f"{name}.tflite"
    if not tfl.exists():
        try:
            import litert_torch  # noqa: F401
        except Exception as e:  # noqa: BLE001
            return {"ok": False, "reason": f"litert-torch not installable here ({short(e)})"}
        import torch

        tfl.parent.mkdir(parents=True, exist_ok=True)
        model = build_model(name).eval()
        x = torch.randn(*SHAPE, generator=torch.Generator().manual_seed(SEED))
        edge = litert_torch.convert(model, (x,))
        edge.export(str(tfl))
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(tfl), num_threads=a.threads)
    interp.allocate_tensors()
    idx = interp.get_input_details()[0]["index"]
    interp.set_tensor(idx, input_array())
    return time_runs(interp.invoke, a.warmup, a.repeats)


ENGINES = {"onnxruntime": run_onnxruntime, "mnn": run_mnn, "ncnn": run_ncnn, "litert": run_litert}


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:160] if lines else "no output"


def cmd_run(a) -> None:
    try:
        res = ENGINES[a.engine](Path(a.onnx), Path(a.work), a)
    except Exception as e:  # noqa: BLE001 - the reason goes into the table
        res = {"ok": False, "reason": short(e)}
    emit(res)


def cmd_versions(_a) -> None:
    out = {}
    for p in PACKAGES:
        try:
            out[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            out[p] = None
    out["python"] = sys.version.split()[0]
    emit(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export")
    e.add_argument("--out", required=True)
    e.add_argument("--models", required=True)
    r = sub.add_parser("run")
    r.add_argument("--engine", required=True, choices=sorted(ENGINES))
    r.add_argument("--onnx", required=True)
    r.add_argument("--work", required=True)
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--warmup", type=int, default=10)
    r.add_argument("--repeats", type=int, default=30)
    sub.add_parser("versions")
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(getattr(a, "threads", 1)))
    {"export": cmd_export, "run": cmd_run, "versions": cmd_versions}[a.cmd](a)


if __name__ == "__main__":
    main()
