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
  With `--int8 --calib NPY` the engine runs its own int8 model of the same network instead,
  quantized with its own tools on the calibration rows of NPY (cached in DIR/int8/ENGINE/;
  ncnn's int8 tools are not on PyPI, so `ncnn_int8_model` does what they do).
* `calib --out NPY [--photos NPY] --n N`: the calibration data of `--int8`, N x 3 x 224 x 224
  float32 normalized like ImageNet: the first N rows of PHOTOS (the scikit-image crops of
  `cargo xtask quant-data`) when given, else N deterministic pseudo-images. Prints {"ok", "source"}.
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
PACKAGES = ["torch", "torchvision", "onnx", "onnxscript", "onnxruntime", "ai-edge-litert", "litert-torch", "torchao", "ncnn", "pnnx", "MNN"]


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


# --- int8 ------------------------------------------------------------------------------------------

MEAN = np.array([0.485, 0.456, 0.406], np.float32).reshape(1, 3, 1, 1)
STD = np.array([0.229, 0.224, 0.225], np.float32).reshape(1, 3, 1, 1)


def pseudo_images(n: int) -> np.ndarray:
    """n smooth RGB pseudo-images in [0, 1] (a random 7x7 colour field upsampled bilinearly plus
    fine noise; fixed seed), normalized with ImageNet's mean and std, NCHW float32."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(SEED)
    coarse = torch.rand(n, 3, 7, 7, generator=g)
    img = F.interpolate(coarse, size=SHAPE[2:], mode="bilinear", align_corners=False)
    img = (img + 0.05 * torch.randn(n, 3, *SHAPE[2:], generator=g)).clamp(0.0, 1.0).numpy()
    return ((img - MEAN) / STD).astype(np.float32)


def cmd_calib(a) -> None:
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if a.photos and Path(a.photos).exists():
        rows = np.load(a.photos, mmap_mode="r")
        if rows.ndim != 4 or tuple(rows.shape[1:]) != SHAPE[1:] or rows.shape[0] < a.n:
            raise SystemExit(f"{a.photos}: shape {rows.shape}, want at least {a.n} x 3 x 224 x 224")
        data, source = np.ascontiguousarray(rows[: a.n], dtype=np.float32), f"first {a.n} rows of {a.photos}"
    else:
        data, source = pseudo_images(a.n), f"{a.n} pseudo-images (seed {SEED})"
    tmp = out.with_name(out.name + ".tmp.npy")
    np.save(tmp, data)
    tmp.replace(out)
    emit({"ok": True, "source": source})


def calib_rows(a) -> np.ndarray:
    return np.load(a.calib).astype(np.float32)


def ort_int8_model(onnx_path: Path, work: Path, a) -> Path:
    """onnxruntime's `quantize_static` QDQ model: activations QUInt8, weights QInt8 per channel,
    MinMax calibration on the calibration rows (cached). `quant_pre_process` runs first, as
    onnxruntime recommends: the torch export feeds conv biases through Identity nodes and Clip
    bounds through Constant nodes, which the quantizer does not take as initializers, so without
    it no Conv would become an int8 QLinearConv."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    q = work / "int8" / "onnxruntime" / (onnx_path.stem + "_qdq.onnx")
    if q.exists():
        return q
    q.parent.mkdir(parents=True, exist_ok=True)
    rows = calib_rows(a)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"input": rows[i : i + 1]} for i in range(len(rows))])

        def get_next(self):
            return next(self.it, None)

    pre = q.with_name(q.stem + ".pre.onnx")
    quant_pre_process(str(onnx_path), str(pre), skip_symbolic_shape=True)
    tmp = q.with_name(q.stem + ".tmp.onnx")
    quantize_static(
        str(pre),
        str(tmp),
        Reader(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
    )
    tmp.replace(q)
    pre.unlink()
    return q


def run_onnxruntime(onnx_path: Path, work: Path, a) -> dict:
    import onnxruntime as ort

    if a.int8:
        onnx_path = ort_int8_model(onnx_path, work, a)

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

    if a.int8:
        return {"ok": False, "reason": "no int8 path here"}

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


INT8_TAG = 0x000D4B38  # ncnn's tag of an int8 weight blob in a .bin
QUANT_LAYERS = {"Convolution": (0, 5, 6), "ConvolutionDepthWise": (0, 5, 6), "InnerProduct": (0, 1, 2)}


def ncnn_layers(param: Path) -> list[dict]:
    """The layers of an ncnn .param file: type, name, bottoms, tops, params (key -> text)."""
    lines = param.read_text().split("\n")
    if lines[0].strip() != "7767517":
        raise ValueError(f"{param}: not an ncnn param file")
    out = []
    for ln in lines[2:]:
        t = ln.split()
        if not t:
            continue
        nb, nt = int(t[2]), int(t[3])
        kv = dict(x.split("=", 1) for x in t[4 + nb + nt :])
        out.append({"type": t[0], "name": t[1], "bottoms": t[4 : 4 + nb], "tops": t[4 + nb : 4 + nb + nt], "kv": kv})
    return out


def ncnn_int8_model(param: Path, binf: Path, out_dir: Path, a) -> tuple[Path, Path]:
    """ncnn's int8 model, done in Python as `ncnn2table` + `ncnn2int8` do it (those C++ tools are
    not in the PyPI wheels): per-output-channel weight scales 127/max|w| (per group for depthwise
    convs), per-tensor input scales 127/max|x| of each Convolution/ConvolutionDepthWise/
    InnerProduct input over the calibration rows (read from the fp32 net with the ncnn bindings),
    `int8_scale_term` 2 (1 for depthwise) in the .param, int8 weights (tag 0x000D4B38) and scales
    in the .bin, and requantization fused into a conv whose output feeds only another quantized
    conv (`int8_scale_term` + 100), as ncnn2int8's fuse_requantize does."""
    import ncnn

    layers = ncnn_layers(param)
    quant = [l for l in layers if l["type"] in QUANT_LAYERS]
    # Input scales from the fp32 net.
    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.num_threads = max(1, a.threads)
    net.opt.use_fp16_packed = net.opt.use_fp16_storage = net.opt.use_fp16_arithmetic = net.opt.use_bf16_storage = False
    if net.load_param(str(param)) != 0 or net.load_model(str(binf)) != 0:
        raise RuntimeError("ncnn could not load the fp32 model")
    in_name = net.input_names()[0]
    absmax = {l["bottoms"][0]: 0.0 for l in quant}
    for row in calib_rows(a):
        ex = net.create_extractor()
        ex.set_light_mode(False)
        ex.input(in_name, ncnn.Mat(np.ascontiguousarray(row)))
        for blob in absmax:
            ret, m = ex.extract(blob)
            if ret != 0:
                raise RuntimeError(f"ncnn could not extract blob {blob}")
            absmax[blob] = max(absmax[blob], float(np.abs(np.array(m)).max()))
    in_scale = {b: (127.0 / v if v > 0 else 1.0) for b, v in absmax.items()}
    # Fused requantization: a quantized conv whose top is the single bottom of the next quantized conv.
    consumer = {l["bottoms"][0]: l for l in layers if len(l["bottoms"]) == 1}
    raw = binf.read_bytes()
    pos, blobs = 0, []

    def take(nbytes: int) -> bytes:
        nonlocal pos
        if pos + nbytes > len(raw):
            raise ValueError("ncnn .bin shorter than its .param says")
        b = raw[pos : pos + nbytes]
        pos += nbytes
        return b

    new_lines = ["7767517", f"{len(layers)} {len({b for l in layers for b in l['tops']})}"]
    orig = [ln for ln in param.read_text().split("\n")[2:] if ln.split()]
    for l, ln in zip(layers, orig):
        if l["type"] not in QUANT_LAYERS:
            if l["type"] not in ("Input", "Split", "BinaryOp", "Pooling", "ReLU", "Clip", "Flatten", "Reshape", "Softmax", "Concat", "Eltwise", "Sigmoid", "HardSwish", "HardSigmoid", "ShuffleChannel", "Slice", "Crop", "Permute"):
                raise ValueError(f"layer type {l['type']} not handled by the int8 converter")
            new_lines.append(ln)
            continue
        k_out, k_bias, k_size = QUANT_LAYERS[l["type"]]
        n_out, bias, size = int(l["kv"].get(str(k_out), 0)), int(l["kv"].get(str(k_bias), 0)), int(l["kv"][str(k_size)])
        if int(l["kv"].get("8", 0)) != 0:
            raise ValueError(f"{l['name']} is already int8")
        tag = int.from_bytes(take(4), "little")
        if tag != 0:
            raise ValueError(f"{l['name']}: weights not stored as raw f32 (tag {tag:#x})")
        w = np.frombuffer(take(4 * size), np.float32)
        b = take(4 * n_out) if bias else b""
        dw = l["type"] == "ConvolutionDepthWise"
        groups = int(l["kv"].get("7", 1)) if dw else n_out
        wg = w.reshape(groups, -1)
        m = np.abs(wg).max(axis=1)
        ws = np.where(m > 0, 127.0 / np.maximum(m, 1e-30), 1.0).astype(np.float32)
        q = np.clip(np.round(wg * ws[:, None]), -127, 127).astype(np.int8).tobytes()
        term = 1 if dw else 2
        nxt = consumer.get(l["tops"][0])
        top = None
        if l["type"] != "InnerProduct" and nxt is not None and nxt["type"] in ("Convolution", "ConvolutionDepthWise"):
            top = in_scale[nxt["bottoms"][0]]
            term += 100
        data = INT8_TAG.to_bytes(4, "little") + q + b"\0" * ((-len(q)) % 4) + b + ws.tobytes()
        data += np.array([in_scale[l["bottoms"][0]]], np.float32).tobytes()
        if top is not None:
            data += np.array([top], np.float32).tobytes()
        blobs.append(data)
        new_lines.append(f"{ln} 8={term}")
    if pos != len(raw):
        raise ValueError(f"ncnn .bin has {len(raw) - pos} bytes the .param does not account for")
    # Data-free layers kept their place; the .bin holds only the quantized layers' data, in order.
    out_dir.mkdir(parents=True, exist_ok=True)
    p8, b8 = out_dir / "model_int8.param", out_dir / "model_int8.bin"
    (out_dir / "model_int8.param.tmp").write_text("\n".join(new_lines) + "\n")
    (out_dir / "model_int8.bin.tmp").write_bytes(b"".join(blobs))
    (out_dir / "model_int8.bin.tmp").replace(b8)
    (out_dir / "model_int8.param.tmp").replace(p8)
    return p8, b8


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
    if a.int8:
        d8 = work / "int8" / "ncnn" / onnx_path.stem
        p8, b8 = d8 / "model_int8.param", d8 / "model_int8.bin"
        if not (p8.exists() and b8.exists()):
            p8, b8 = ncnn_int8_model(param, binf, d8, a)
        param, binf = p8, b8
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


def litert_int8(name: str, tfl: Path, a) -> None:
    """Full-int8 LiteRT model: torch.export, PT2E with litert-torch's quantizer (int8 activations
    per tensor with histogram observers, int8 weights per channel, symmetric), calibrated on the
    calibration rows, then `litert_torch.convert`."""
    import litert_torch
    import torch
    from litert_torch.quantize import pt2e_quantizer
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e import quantize_pt2e

    torch.set_num_threads(max(1, a.threads))
    x = torch.randn(*SHAPE, generator=torch.Generator().manual_seed(SEED))
    m = torch.export.export(build_model(name).eval(), (x,)).module()
    quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
        pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False)
    )
    m = quantize_pt2e.prepare_pt2e(m, quantizer)
    rows = calib_rows(a)
    with torch.no_grad():
        for i in range(len(rows)):
            m(torch.from_numpy(rows[i : i + 1]))
    m = quantize_pt2e.convert_pt2e(m, fold_quantize=False)
    edge = litert_torch.convert(m, (x,), quant_config=QuantConfig(pt2e_quantizer=quantizer))
    tmp = tfl.with_name(tfl.stem + ".tmp.tflite")
    edge.export(str(tmp))
    tmp.replace(tfl)


def run_litert(onnx_path: Path, work: Path, a) -> dict:
    name = onnx_path.stem
    tfl = work / "litert" / f"{name}.tflite"
    if a.int8:
        tfl = work / "int8" / "litert" / f"{name}_int8.tflite"
        if not tfl.exists():
            try:
                import litert_torch  # noqa: F401
            except Exception as e:  # noqa: BLE001
                return {"ok": False, "reason": f"litert-torch not installable here ({short(e)})"}
            tfl.parent.mkdir(parents=True, exist_ok=True)
            litert_int8(name, tfl, a)
    elif not tfl.exists():
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
    det = interp.get_input_details()[0]
    x = input_array()
    if det["dtype"] != np.float32:
        # A full-int8 model takes its input quantized (int8, the scale and zero point it reports).
        scale, zp = det["quantization"]
        info = np.iinfo(det["dtype"])
        x = np.clip(np.round(x / scale) + zp, info.min, info.max).astype(det["dtype"])
    interp.set_tensor(det["index"], x)
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
    r.add_argument("--int8", action="store_true")
    r.add_argument("--calib")
    c = sub.add_parser("calib")
    c.add_argument("--out", required=True)
    c.add_argument("--photos")
    c.add_argument("--n", type=int, default=32)
    sub.add_parser("versions")
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(getattr(a, "threads", 1)))
    if a.cmd == "run" and a.int8 and not a.calib:
        ap.error("run --int8 needs --calib")
    {"export": cmd_export, "run": cmd_run, "calib": cmd_calib, "versions": cmd_versions}[a.cmd](a)


if __name__ == "__main__":
    main()
