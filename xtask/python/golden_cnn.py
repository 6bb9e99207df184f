"""Reduced-size CNNs exported from torch with the TorchScript exporter (dynamo=False), so the graphs
look like the classic torch exports users have. Weights are random (seeded) and BatchNorm
statistics are re-estimated on random batches so activations keep a healthy range."""

from __future__ import annotations

import io
import warnings
import zlib

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn
import torchvision
import torchvision.models as tvm

from golden_util import Case, real_inputs

BN_BATCHES = 10
BN_BATCH_SIZE = 8
NUM_CLASSES = 10


# --- models written here ------------------------------------------------------------------------


class MobileNetV1(nn.Module):
    """MobileNetV1: a 3x3 stem and 13 depthwise-separable blocks (ReLU6), global pooling and a
    linear classifier; the flatten is `x.view(x.size(0), -1)` as in many hand-written exports."""

    BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]

    def __init__(self, width: float, num_classes: int):
        super().__init__()

        def ch(c: int) -> int:
            return max(8, int(c * width))

        layers = [nn.Conv2d(3, ch(32), 3, 2, 1, bias=False), nn.BatchNorm2d(ch(32)), nn.ReLU6(inplace=True)]
        cin = ch(32)
        for cout, stride in self.BLOCKS:
            cout = ch(cout)
            layers += [
                nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False),
                nn.BatchNorm2d(cin),
                nn.ReLU6(inplace=True),
                nn.Conv2d(cin, cout, 1, 1, 0, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU6(inplace=True),
            ]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.pool(self.features(x))
        x = x.view(x.size(0), -1)
        return self.fc(x)


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convs with BN, identity or 1x1-conv shortcut."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + identity)


class ResNet18(nn.Module):
    """ResNet18 (2-2-2-2 basic blocks) with base width `base` instead of 64."""

    def __init__(self, base: int, num_classes: int):
        super().__init__()
        self.conv1 = nn.Conv2d(3, base, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(base)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        layers = []
        cin = base
        for i, cout in enumerate([base, base * 2, base * 4, base * 8]):
            stride = 1 if i == 0 else 2
            layers.append(nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)))
            cin = cout
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


class TinyNet(nn.Module):
    """Two conv-BN-ReLU stages, max pooling, global pooling and a linear head."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, 1, 1, bias=False),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, 2, 1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x):
        return self.fc(self.body(x))


# --- export -------------------------------------------------------------------------------------


def reestimate_bn(model: nn.Module, size: int, gen: torch.Generator) -> None:
    """Recompute BatchNorm running statistics as plain averages over random batches."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with torch.no_grad():
        for _ in range(BN_BATCHES):
            model(torch.randn(BN_BATCH_SIZE, 3, size, size, generator=gen))
    model.eval()


def calibrate_head(model: nn.Module, size: int, gen: torch.Generator) -> None:
    """Scale the last Conv/Linear layer so the logits have std ~1 on random inputs (torchvision
    initialises some classifiers with std 0.01, which would make the outputs tiny). Every layer
    after it is positively homogeneous (ReLU, pooling), so this only rescales the output."""
    last = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))][-1]
    with torch.no_grad():
        std = float(model(torch.randn(BN_BATCH_SIZE, 3, size, size, generator=gen)).std())
        last.weight.mul_(1.0 / std)
        if last.bias is not None:
            last.bias.mul_(1.0 / std)


def export(
    name: str,
    model: nn.Module,
    *,
    ctor: str,
    size: int,
    opset: int,
    batch: int = 1,
    dynamic_batch: bool = False,
    fold: bool = True,
    inits_as_inputs: bool = False,
    external_data: bool = False,
    note: str = "",
) -> Case:
    """Seed, re-estimate BN, export with the TorchScript exporter, check ORT against torch and the
    output's spread, and return the case."""
    gen = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    reestimate_bn(model, size, gen)
    calibrate_head(model, size, gen)
    x = torch.randn(batch, 3, size, size, generator=gen)
    with torch.no_grad():
        want = model(x).numpy()
    kwargs = {}
    if dynamic_batch:
        kwargs["dynamic_axes"] = {"input": {0: "batch"}, "output": {0: "batch"}}
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (x,),
            buf,
            dynamo=False,
            opset_version=opset,
            input_names=["input"],
            output_names=["output"],
            do_constant_folding=fold,
            keep_initializers_as_inputs=inits_as_inputs,
            **kwargs,
        )
    m = onnx.load_from_string(buf.getvalue())
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(buf.getvalue(), so, providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x.numpy()})[0]
    diff = float(np.max(np.abs(got - want)))
    if not diff < 1e-4:
        raise RuntimeError(f"{name}: onnxruntime and torch differ by {diff}")
    std = float(np.std(got))
    if not np.isfinite(got).all() or not std > 0.1:
        raise RuntimeError(f"{name}: degenerate output (std {std})")
    if real_inputs(m) != ["input"]:
        raise RuntimeError(f"{name}: unexpected graph inputs {real_inputs(m)}")
    opts = [f"opset {opset}", f"input {batch}x3x{size}x{size}"]
    opts.append("dynamic batch axis" if dynamic_batch else "static shapes")
    opts.append("do_constant_folding=" + str(fold))
    if inits_as_inputs:
        opts.append("keep_initializers_as_inputs=True")
    if external_data:
        opts.append("every initializer saved as ONNX external data in weights.bin")
    source = f"torch {torch.__version__.split('+')[0]} torch.onnx.export(dynamo=False) of {ctor}"
    desc = (
        f"{ctor}: random weights (seeded), BN statistics re-estimated on {BN_BATCHES} random batches, last layer scaled for output std ~1; "
        + ", ".join(opts)
        + f"; torch vs onnxruntime max abs diff {diff:.1e}, output std {std:.2f}."
        + (f" {note}" if note else "")
    )
    print(f"  {name}: torch vs ort {diff:.1e}, output std {std:.3f}")
    return Case(name, m, [x.numpy()], source, desc, external_data=external_data)


def cases() -> list:
    """(name, thunk) pairs; each thunk builds one case."""
    tv = f"torchvision {torchvision.__version__.split('+')[0]}"

    def seeded(name, ctor):
        torch.manual_seed(zlib.crc32(name.encode()))
        return ctor()

    def mbv1():
        m = seeded("mobilenet_v1", lambda: MobileNetV1(0.25, NUM_CLASSES))
        return export(
            "mobilenet_v1",
            m,
            ctor=f"MobileNetV1(width=0.25, num_classes={NUM_CLASSES}) (written in golden_cnn.py, ReLU6)",
            size=112,
            opset=13,
            batch=2,
            dynamic_batch=True,
            fold=False,
            note="x.view(x.size(0), -1) exports as Shape->Gather->Unsqueeze->Concat->Reshape.",
        )

    def mbv2():
        m = seeded("mobilenet_v2", lambda: tvm.mobilenet_v2(width_mult=0.35, num_classes=NUM_CLASSES))
        return export(
            "mobilenet_v2",
            m,
            ctor=f"{tv} mobilenet_v2(width_mult=0.35, num_classes={NUM_CLASSES})",
            size=112,
            opset=13,
            fold=False,
        )

    def mbv3():
        m = seeded("mobilenet_v3_small", lambda: tvm.mobilenet_v3_small(width_mult=0.5, num_classes=NUM_CLASSES))
        return export(
            "mobilenet_v3_small",
            m,
            ctor=f"{tv} mobilenet_v3_small(width_mult=0.5, num_classes={NUM_CLASSES})",
            size=96,
            opset=17,
            note="HardSwish and HardSigmoid nodes (opset >= 14 form).",
        )

    def resnet():
        m = seeded("resnet18_w16", lambda: ResNet18(16, NUM_CLASSES))
        return export(
            "resnet18_w16",
            m,
            ctor=f"ResNet18(base=16, num_classes={NUM_CLASSES}) (written in golden_cnn.py)",
            size=96,
            opset=13,
            batch=2,
            dynamic_batch=True,
        )

    def shufflenet():
        m = seeded("shufflenet_v2_x0_5", lambda: tvm.shufflenet_v2_x0_5(num_classes=NUM_CLASSES))
        return export(
            "shufflenet_v2_x0_5",
            m,
            ctor=f"{tv} shufflenet_v2_x0_5(num_classes={NUM_CLASSES})",
            size=96,
            opset=11,
            batch=2,
            dynamic_batch=True,
            fold=False,
            note="Channel shuffle exports as shape arithmetic + Reshape/Transpose/Reshape; chunk as Slice.",
        )

    def squeezenet():
        m = seeded("squeezenet1_1", lambda: tvm.squeezenet1_1(num_classes=NUM_CLASSES))
        return export(
            "squeezenet1_1",
            m,
            ctor=f"{tv} squeezenet1_1(num_classes={NUM_CLASSES})",
            size=128,
            opset=11,
            inits_as_inputs=True,
            note="No BatchNorm; MaxPool with ceil_mode; initializers also listed as graph inputs (old-style export).",
        )

    def mnasnet():
        m = seeded("mnasnet0_5", lambda: tvm.mnasnet0_5(num_classes=NUM_CLASSES))
        return export(
            "mnasnet0_5",
            m,
            ctor=f"{tv} mnasnet0_5(num_classes={NUM_CLASSES})",
            size=112,
            opset=13,
            note="Global pooling as x.mean([2, 3]) (ReduceMean).",
        )

    def tiny_external():
        m = seeded("tiny_cnn_external_data", lambda: TinyNet(NUM_CLASSES))
        return export(
            "tiny_cnn_external_data",
            m,
            ctor=f"TinyNet(num_classes={NUM_CLASSES}) (written in golden_cnn.py)",
            size=32,
            opset=13,
            external_data=True,
        )

    return [
        ("mobilenet_v1", mbv1),
        ("mobilenet_v2", mbv2),
        ("mobilenet_v3_small", mbv3),
        ("resnet18_w16", resnet),
        ("shufflenet_v2_x0_5", shufflenet),
        ("squeezenet1_1", squeezenet),
        ("mnasnet0_5", mnasnet),
        ("tiny_cnn_external_data", tiny_external),
    ]
