"""Small hand-built models, one per operator family, covering old and new opset forms.

Each function returns a Case; inputs are random (seeded by the case name) and integer/bool
parameters come from Constant nodes. Nearest-neighbour resize cases use scales whose coordinate
arithmetic is exact in binary floating point, so ties (which the nearest modes differ on) are
real ties for every implementation."""

from __future__ import annotations

import numpy as np

from golden_util import Builder, Case

F32 = np.float32
I64 = np.int64
I32 = np.int32
INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min


def f(v) -> np.ndarray:
    return np.asarray(v, dtype=F32)


def i64(v) -> np.ndarray:
    return np.asarray(v, dtype=I64)


# --- convolution ------------------------------------------------------------------------------


def conv() -> Case:
    b = Builder("conv", 13)
    x = b.input("x", b.normal([1, 4, 11, 10]))
    x1 = b.input("x1d", b.normal([2, 4, 20]))
    # Grouped conv with dilation 2 and asymmetric pads.
    y1 = b.op("Conv", [x, b.init(b.normal([6, 2, 3, 3], 0.3)), b.init(b.normal([6], 0.1))],
              group=2, dilations=[2, 2], pads=[1, 0, 2, 1], kernel_shape=[3, 3])
    # Depthwise, stride 2, asymmetric pads, no bias, no kernel_shape attribute.
    y2 = b.op("Conv", [x, b.init(b.normal([4, 1, 3, 3], 0.3))], group=4, strides=[2, 2], pads=[0, 1, 1, 0])
    # Rectangular kernel, different strides and dilations per axis.
    y3 = b.op("Conv", [x, b.init(b.normal([5, 4, 2, 3], 0.3)), b.init(b.normal([5], 0.1))],
              strides=[2, 1], dilations=[1, 3], pads=[1, 2, 0, 2])
    # A chain: pointwise conv on the grouped output.
    y4 = b.op("Conv", [b.op("Relu", [y1]), b.init(b.normal([3, 6, 1, 1], 0.4))])
    # 1-D convs: grouped + dilated + strided with asymmetric pads, and a plain one.
    z1 = b.op("Conv", [x1, b.init(b.normal([6, 2, 5], 0.3)), b.init(b.normal([6], 0.1))],
              group=2, strides=[2], dilations=[2], pads=[2, 1], kernel_shape=[5])
    z2 = b.op("Conv", [x1, b.init(b.normal([3, 4, 3], 0.3))])
    b.output(y1, y2, y3, y4, z1, z2)
    return b.case("Conv: groups=2 with dilations and asymmetric pads, depthwise stride 2, per-axis "
                  "strides/dilations, 1x1 chain, 1-D conv (grouped, dilated, strided) and plain 1-D conv.")


def conv_auto_pad() -> Case:
    b = Builder("conv_auto_pad", 11)
    x = b.input("x", b.normal([1, 3, 9, 8]))
    w3 = b.init(b.normal([4, 3, 3, 3], 0.3))
    w4 = b.init(b.normal([4, 3, 4, 4], 0.3))
    bias = b.init(b.normal([4], 0.1))
    y1 = b.op("Conv", [x, w3, bias], auto_pad="SAME_UPPER", strides=[2, 2])
    y2 = b.op("Conv", [x, w4, bias], auto_pad="SAME_LOWER", strides=[2, 2])
    y3 = b.op("Conv", [x, w4], auto_pad="SAME_UPPER", strides=[1, 1])
    y4 = b.op("Conv", [x, w4], auto_pad="SAME_LOWER", strides=[1, 1])
    y5 = b.op("Conv", [x, w3, bias], auto_pad="VALID", strides=[2, 2], dilations=[2, 2])
    y6 = b.op("Conv", [x, b.init(b.normal([6, 1, 3, 2], 0.3))], auto_pad="SAME_LOWER", group=3,
              strides=[3, 2], kernel_shape=[3, 2])
    b.output(y1, y2, y3, y4, y5, y6)
    return b.case("Conv auto_pad: SAME_UPPER and SAME_LOWER with odd/even kernels and strides 1/2 "
                  "(odd total padding), VALID with dilations, depthwise (multiplier 2) SAME_LOWER with strides 3x2.")


def conv_transpose() -> Case:
    b = Builder("conv_transpose", 13)
    x = b.input("x", b.normal([1, 4, 5, 6]))
    x1 = b.input("x1d", b.normal([1, 2, 7]))
    y1 = b.op("ConvTranspose", [x, b.init(b.normal([4, 3, 3, 3], 0.3)), b.init(b.normal([3], 0.1))],
              strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1])
    y2 = b.op("ConvTranspose", [x, b.init(b.normal([4, 2, 3, 3], 0.3))],
              group=2, strides=[2, 2], dilations=[1, 2], pads=[0, 1, 1, 0])
    y3 = b.op("ConvTranspose", [x, b.init(b.normal([4, 2, 3, 3], 0.3)), b.init(b.normal([2], 0.1))],
              strides=[2, 2], output_shape=[10, 13])
    y4 = b.op("ConvTranspose", [x, b.init(b.normal([4, 4, 2, 2], 0.3))], strides=[2, 2])
    z1 = b.op("ConvTranspose", [x1, b.init(b.normal([2, 3, 4], 0.3))], strides=[3], output_padding=[2], pads=[1, 0])
    b.output(y1, y2, y3, y4, z1)
    return b.case("ConvTranspose: stride 2 with pads and output_padding; groups=2 with dilations and "
                  "asymmetric pads; output_shape (odd total padding on H); 2x2 stride-2 upsampler; "
                  "1-D with output_padding.")


def batchnorm() -> Case:
    b = Builder("batchnorm", 15)
    xs = [b.input("x4", b.normal([2, 3, 4, 5], 2.0) + 1.0),
          b.input("x3", b.normal([2, 3, 7])),
          b.input("x2", b.normal([4, 3]))]
    outs = []
    for i, x in enumerate(xs):
        scale = b.init(b.uniform([3], 0.5, 1.5))
        bias = b.init(b.normal([3], 0.2))
        mean = b.init(b.normal([3], 0.5))
        var = b.init(b.uniform([3], 0.5, 4.0))
        outs.append(b.op("BatchNormalization", [x, scale, bias, mean, var], epsilon=[1e-5, 1e-3, 0.1][i]))
    b.output(*outs)
    return b.case("BatchNormalization (opset 15) in inference mode on 4-D, 3-D and 2-D inputs with "
                  "different epsilons.")


# --- activations ------------------------------------------------------------------------------


def activations_opset14() -> Case:
    b = Builder("activations_opset14", 14)
    x = b.input("x", b.uniform([2, 3, 4, 5], -5.0, 5.0))
    lo = b.const(f(-1.0))
    hi = b.const(f(2.0))
    outs = [
        b.op("Relu", [x]),
        b.op("Clip", [x, lo, hi]),
        b.op("Clip", [x, "", b.const(f(1.5))]),
        b.op("Clip", [x, b.const(f(-0.5))]),
        b.op("LeakyRelu", [x], alpha=0.1),
        b.op("PRelu", [x, b.init(f([[[0.1]], [[0.25]], [[-0.5]]]))]),
        b.op("Sigmoid", [x]),
        b.op("HardSigmoid", [x], alpha=0.25, beta=0.4),
        b.op("HardSwish", [x]),
        b.op("Tanh", [x]),
        b.op("Softmax", [x], axis=-1),
        b.op("Softmax", [x], axis=1),
        b.op("Softmax", [x]),
    ]
    b.output(*outs)
    return b.case("Relu; Clip opset-13 input form (min and max, max only with empty min, min only); "
                  "LeakyRelu; PRelu with per-channel slope [3,1,1]; Sigmoid; HardSigmoid; HardSwish "
                  "(opset 14); Tanh; Softmax opset-13 form (axis -1, axis 1, default axis).")


def activations_opset10() -> Case:
    b = Builder("activations_opset10", 10)
    x = b.input("x", b.uniform([2, 3, 4, 5], -4.0, 4.0))
    d = b.op("Dropout", [x], ratio=0.25)
    outs = [
        b.op("Clip", [x], min=-0.5, max=0.8),
        b.op("Clip", [x], max=1.0),
        b.op("Clip", [x], min=0.2),
        b.op("LeakyRelu", [x]),
        b.op("HardSigmoid", [x]),
        b.op("PRelu", [x, b.init(f([0.3]))]),
        b.op("Relu", [b.op("Neg", [d])]),
    ]
    b.output(*outs)
    return b.case("Opset-10 forms: Clip with min/max attributes (opset 6 form, both, max only, min "
                  "only), LeakyRelu and HardSigmoid default attributes, PRelu with a one-element slope, "
                  "Dropout-10 with a ratio attribute (no mask output: onnxruntime fills an opset-10 "
                  "inference mask with false, opset 12+ with true).")


def softmax_opset11() -> Case:
    b = Builder("softmax_opset11", 11)
    x = b.input("x", b.normal([2, 3, 4, 5], 2.0))
    b.output(b.op("Softmax", [x], axis=1), b.op("Softmax", [x]), b.op("Softmax", [x], axis=-1),
             b.op("Softmax", [x], axis=2))
    return b.case("Softmax opset-11 coerce-to-2D form on a 4-D input: axis 1 (softmax over C*H*W), "
                  "default axis, axis -1, axis 2 (over H*W).")


# --- linear algebra and elementwise -------------------------------------------------------------


def gemm() -> Case:
    b = Builder("gemm", 13)
    a = b.input("a", b.normal([4, 6]))
    at = b.input("a_t", b.normal([6, 4]))
    bm = b.init(b.normal([6, 5], 0.5))
    bt = b.init(b.normal([5, 6], 0.5))
    outs = [
        b.op("Gemm", [a, bm, b.init(b.normal([5]))]),
        b.op("Gemm", [at, bm, b.init(b.normal([4, 1]))], transA=1, alpha=0.5, beta=2.0),
        b.op("Gemm", [a, bt, b.init(b.normal([1]))], transB=1),
        b.op("Gemm", [at, bt], transA=1, transB=1, alpha=1.5),
        b.op("Gemm", [a, bm, b.init(b.normal([4, 5]))], beta=-0.5),
        b.op("Gemm", [a, b.op("Transpose", [bt])]),
    ]
    b.output(*outs)
    return b.case("Gemm: C broadcast from [N], [M,1], [1] and full [M,N]; transA, transB, both; "
                  "alpha/beta; C absent; B computed (not an initializer).")


def matmul() -> Case:
    b = Builder("matmul", 13)
    x4 = b.input("x4", b.normal([2, 3, 4, 5]))
    x4b = b.input("x4b", b.normal([2, 1, 4, 5]))
    v = b.input("v", b.normal([5]))
    m = b.input("m", b.normal([4, 5]))
    x3 = b.input("x3", b.normal([2, 4, 5]))
    w = b.init(b.normal([5, 6], 0.5))
    w3 = b.init(b.normal([3, 5, 6], 0.5))
    outs = [
        b.op("MatMul", [x4, w]),
        b.op("MatMul", [x4b, w3]),
        b.op("MatMul", [v, w]),
        b.op("MatMul", [m, v]),
        b.op("MatMul", [v, w3]),
        b.op("MatMul", [x3, v]),
        b.op("MatMul", [v, v]),
        b.op("MatMul", [x3, b.op("Transpose", [x3], perm=[0, 2, 1])]),
    ]
    b.output(*outs)
    return b.case("MatMul: batched 4-D x 2-D, broadcast [2,1,4,5] x [3,5,6], 1-D x 2-D, 2-D x 1-D, "
                  "1-D x 3-D, 3-D x 1-D, 1-D x 1-D (scalar), batched x batched.")


def binary_broadcast() -> Case:
    b = Builder("binary_broadcast", 13)
    a = b.input("a", b.normal([2, 3, 4, 5]))
    c = b.input("c", b.normal([3, 1, 5]))
    r = b.input("r", b.normal([5]))
    pos = b.input("pos", b.uniform([2, 3, 4, 5], 0.2, 3.0))
    den = b.input("den", b.uniform([1, 4, 1], 0.5, 2.0) * np.where(b.rng.random([1, 4, 1]) < 0.5, -1, 1).astype(F32))
    e = b.input("e", b.uniform([5], -2.0, 2.0))
    outs = [
        b.op("Add", [a, c]),
        b.op("Sub", [r, a]),
        b.op("Mul", [a, b.const(f(0.75))]),
        b.op("Div", [a, den]),
        b.op("Div", [b.const(f(1.0)), den]),
        b.op("Pow", [pos, e]),
        b.op("Pow", [a, b.const(f(2.0))]),
        b.op("Pow", [a, b.const(f(3.0))]),
        b.op("Sqrt", [pos]),
        b.op("Add", [b.op("Mul", [a, c]), b.op("Sub", [c, r])]),
    ]
    b.output(*outs)
    return b.case("Add/Sub/Mul/Div/Pow/Sqrt with numpy broadcasting ([2,3,4,5] with [3,1,5], [5], "
                  "scalars, [1,4,1]); Pow with positive base and fractional/negative exponents and with "
                  "negative base and integral exponents.")


# --- pooling ------------------------------------------------------------------------------------


def pooling_max() -> Case:
    b = Builder("pooling_max", 12)
    x = b.input("x", b.normal([1, 3, 11, 12]))
    x1 = b.input("x1d", b.normal([1, 2, 20]))
    outs = [
        b.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        b.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
        b.op("MaxPool", [x], kernel_shape=[2, 3], strides=[1, 2], dilations=[2, 2], pads=[1, 0, 0, 1]),
        b.op("MaxPool", [x], kernel_shape=[3, 2], strides=[2, 3], pads=[1, 0, 1, 1], ceil_mode=1),
        b.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"),
        b.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2]),
        b.op("GlobalMaxPool", [x]),
        b.op("MaxPool", [x1], kernel_shape=[4], strides=[3], ceil_mode=1),
    ]
    b.output(*outs)
    return b.case("MaxPool: 3x3/2 padded; ceil_mode without pads; dilations with asymmetric pads; "
                  "ceil_mode with pads; auto_pad SAME_UPPER; 2x2/2; GlobalMaxPool; 1-D with ceil_mode.")


def pooling_avg() -> Case:
    b = Builder("pooling_avg", 11)
    x = b.input("x", b.normal([1, 3, 11, 12]))
    x1 = b.input("x1d", b.normal([1, 2, 20]))
    outs = [
        b.op("AveragePool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        b.op("AveragePool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1),
        b.op("AveragePool", [x], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
        b.op("AveragePool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1),
        b.op("AveragePool", [x], kernel_shape=[2, 4], strides=[2, 3], pads=[0, 1, 1, 2], count_include_pad=1),
        b.op("AveragePool", [x], kernel_shape=[2, 2], strides=[2, 2]),
        b.op("GlobalAveragePool", [x]),
        b.op("AveragePool", [x1], kernel_shape=[3], strides=[2], pads=[1, 1], count_include_pad=0),
    ]
    b.output(*outs)
    return b.case("AveragePool: padded with count_include_pad 0 and 1; ceil_mode without and with pads; "
                  "asymmetric pads with count_include_pad 1; 2x2/2; GlobalAveragePool; 1-D padded.")


# --- shape manipulation -------------------------------------------------------------------------


def shape_ops() -> Case:
    b = Builder("shape_ops", 13)
    x = b.input("x", b.normal([2, 3, 4, 5]))
    y = b.input("y", b.normal([2, 1, 4, 5]))
    z = b.input("z", b.normal([2, 3, 4, 2]))
    outs = [
        b.op("Reshape", [x, b.const(i64([0, -1]))]),
        b.op("Reshape", [x, b.const(i64([0, 3, -1, 2]))]),
        b.op("Reshape", [x, b.const(i64([-1, 5]))]),
        b.op("Flatten", [x], axis=0),
        b.op("Flatten", [x], axis=2),
        b.op("Flatten", [x], axis=-1),
        b.op("Flatten", [x]),
        b.op("Transpose", [x], perm=[0, 2, 3, 1]),
        b.op("Transpose", [x]),
        b.op("Concat", [x, y], axis=1),
        b.op("Concat", [x, z], axis=-1),
        b.op("Concat", [x, x, x], axis=0),
    ]
    b.output(*outs)
    return b.case("Reshape with 0 and -1; Flatten axis 0/2/-1/default; Transpose with perm and "
                  "default (reverse); Concat on axis 1, -1 and 0 with three inputs.")


def split_squeeze_opset11() -> Case:
    b = Builder("split_squeeze_opset11", 11)
    x = b.input("x", b.normal([2, 6, 7]))
    s = b.input("s", b.normal([1, 3, 1, 5]))
    a = b.op("Split", [x], n_out=3, axis=1, split=[1, 2, 3])
    c = b.op("Split", [x], n_out=3, axis=1)
    d = b.op("Split", [x], n_out=2, axis=-1, split=[4, 3])
    outs = a + c + d + [
        b.op("Squeeze", [s], axes=[0, 2]),
        b.op("Squeeze", [s]),
        b.op("Squeeze", [s], axes=[-2]),
        b.op("Unsqueeze", [x], axes=[0, 3]),
        b.op("Unsqueeze", [x], axes=[-1]),
    ]
    b.output(*outs)
    return b.case("Opset-11 attribute forms: Split with split attribute (axis 1, axis -1) and equal "
                  "split; Squeeze with axes, without axes, negative axes; Unsqueeze with axes and "
                  "negative axes.")


def split_squeeze_opset13() -> Case:
    b = Builder("split_squeeze_opset13", 13)
    x = b.input("x", b.normal([2, 6, 7]))
    s = b.input("s", b.normal([1, 3, 1, 5]))
    a = b.op("Split", [x, b.const(i64([4, 3]))], n_out=2, axis=2)
    c = b.op("Split", [x], n_out=2, axis=1)
    outs = a + c + [
        b.op("Squeeze", [s, b.const(i64([0, 2]))]),
        b.op("Squeeze", [s]),
        b.op("Squeeze", [s, b.const(i64([-2]))]),
        b.op("Unsqueeze", [x, b.const(i64([0, 3]))]),
        b.op("Unsqueeze", [x, b.const(i64([-1]))]),
    ]
    b.output(*outs)
    return b.case("Opset-13 input forms: Split with split sizes input and equal split; Squeeze with "
                  "axes input, without axes, negative axes; Unsqueeze with axes input.")


def opset18_forms() -> Case:
    b = Builder("opset18_forms", 18)
    x = b.input("x", b.normal([2, 6, 7]))
    r = b.input("r", b.normal([2, 3, 4, 5]))
    sp = b.op("Split", [x], n_out=3, axis=2, num_outputs=3)
    sq = b.op("Split", [x], n_out=2, axis=1, num_outputs=2)
    outs = sp + sq + [
        b.op("ReduceMean", [r, b.const(i64([1, -1]))]),
        b.op("ReduceSum", [r, b.const(i64([], ))], noop_with_empty_axes=1),
        b.op("ReduceSum", [r, b.const(i64([0, 2]))], keepdims=0),
        b.op("ReduceMax", [r, b.const(i64([2]))], keepdims=1),
        b.op("ReduceMean", [r], keepdims=0),
        b.op("Pad", [r, b.const(i64([1, 2, 3, 0])), b.const(f(0.25)), b.const(i64([1, -1]))]),
        b.op("Pad", [r, b.const(i64([1, 1, 0, 2])), "", b.const(i64([2, 3]))], mode="reflect"),
    ]
    b.output(*outs)
    return b.case("Opset-18 forms: Split with num_outputs (uneven 7 -> 3,3,1 and even); ReduceMean/"
                  "ReduceSum/ReduceMax with axes as input (negative axes, empty axes with "
                  "noop_with_empty_axes=1, keepdims 0/1, no axes -> scalar); Pad with axes input.")


def legacy_opset9() -> Case:
    b = Builder("legacy_opset9", 9)
    x = b.input("x", b.normal([3, 4, 5, 6]))
    p = b.input("p", b.normal([1, 2, 4, 5]))
    u = b.input("u", b.normal([1, 2, 3, 4]))
    outs = [
        b.op("Slice", [x], starts=[1, 0], ends=[3, -1], axes=[0, 3]),
        b.op("Slice", [x], starts=[0, 1, 1, 0], ends=[2, 3, 10000, 6]),
        b.op("Slice", [x], starts=[-3], ends=[-1], axes=[2]),
        b.op("Slice", [x], starts=[2], ends=[INT64_MAX], axes=[-1]),
        b.op("Pad", [p], pads=[0, 0, 1, 2, 0, 0, 2, 1], value=0.5),
        b.op("Pad", [p], pads=[0, 0, 2, 1, 0, 0, 1, 3], mode="reflect"),
        b.op("Pad", [p], pads=[0, 1, 1, 0, 0, 0, 2, 2], mode="edge"),
        b.op("Upsample", [u, b.const(f([1, 1, 2, 2]))], mode="nearest"),
        b.op("Upsample", [u, b.const(f([1, 1, 2, 3]))], mode="linear"),
        b.op("Upsample", [u, b.const(f([1, 1, 1, 4]))], mode="nearest"),
    ]
    b.output(*outs)
    return b.case("Opset-9 forms: Slice-1 with starts/ends/axes attributes (negative, clamped, "
                  "INT64_MAX ends, no axes); Pad-2 with pads/value attributes in constant, reflect and "
                  "edge modes; Upsample-9 with scales input, nearest and linear modes.")


def slice_opset13() -> Case:
    b = Builder("slice_opset13", 13)
    x = b.input("x", b.normal([3, 4, 5, 6]))
    outs = [
        b.op("Slice", [x, b.const(i64([-1])), b.const(i64([INT64_MIN])), b.const(i64([1])), b.const(i64([-1]))]),
        b.op("Slice", [x, b.const(i64([4, 1])), b.const(i64([0, 5])), b.const(i64([-1, -2])), b.const(i64([-2, 2]))]),
        b.op("Slice", [x, b.const(i64([1, 0])), b.const(i64([3, INT64_MAX]))]),
        b.op("Slice", [x, b.const(np.asarray([0], I32)), b.const(np.asarray([-1], I32)), b.const(np.asarray([2], I32))]),
        b.op("Slice", [x, b.const(i64([10])), b.const(i64([-100])), b.const(i64([3])), b.const(i64([-3]))]),
        b.op("Slice", [x, b.const(i64([0, 0])), b.const(i64([3, 6])), b.const(i64([0, 3])), b.const(i64([2, 4]))]),
    ]
    b.output(*outs)
    return b.case("Slice opset-13 input form: negative step reversing an axis (end INT64_MIN), negative "
                  "and positive steps on negative axes, no axes/steps with INT64_MAX end, int32 "
                  "parameters, out-of-range starts/ends clamped with step -3, steps > 1.")


def pad_opset11() -> Case:
    b = Builder("pad_opset11", 11)
    x = b.input("x", b.normal([1, 2, 4, 5]))
    outs = [
        b.op("Pad", [x, b.const(i64([0, 0, 1, 2, 0, 0, 2, 1])), b.const(f(0.5))]),
        b.op("Pad", [x, b.const(i64([0, 0, 2, 1, 0, 0, 1, 3]))], mode="reflect"),
        b.op("Pad", [x, b.const(i64([0, 1, 1, 0, 0, 0, 2, 4]))], mode="edge"),
        b.op("Pad", [x, b.const(i64([1, 0, 0, 3, 0, 1, 1, 0]))], mode="constant"),
    ]
    b.output(*outs)
    return b.case("Pad opset-11 input form: constant with constant_value input, reflect, edge (also "
                  "on the channel axis and wider than the input), constant without a value (zeros).")


# --- resize -------------------------------------------------------------------------------------


def resize_nearest() -> Case:
    b = Builder("resize_nearest", 13)
    x = b.input("x", b.normal([1, 2, 4, 5]))
    no_roi = ""
    outs = [
        b.op("Resize", [x, no_roi, b.const(f([1, 1, 2, 2]))], mode="nearest",
             coordinate_transformation_mode="asymmetric", nearest_mode="round_prefer_floor"),
        b.op("Resize", [x, no_roi, b.const(f([1, 1, 0.5, 0.5]))], mode="nearest",
             coordinate_transformation_mode="half_pixel", nearest_mode="round_prefer_ceil"),
        b.op("Resize", [x, no_roi, "", b.const(i64([1, 2, 7, 9]))], mode="nearest",
             coordinate_transformation_mode="align_corners", nearest_mode="floor"),
        b.op("Resize", [x, no_roi, "", b.const(i64([1, 2, 8, 10]))], mode="nearest",
             coordinate_transformation_mode="asymmetric", nearest_mode="ceil"),
        b.op("Resize", [x, no_roi, b.const(f([1, 1, 3, 2]))], mode="nearest"),
        b.op("Resize", [x, no_roi, b.const(f([1, 1, 2, 2]))], mode="nearest",
             coordinate_transformation_mode="asymmetric", nearest_mode="round_prefer_ceil"),
    ]
    b.output(*outs)
    return b.case("Resize nearest (opset 13): each nearest_mode (round_prefer_floor, round_prefer_ceil, "
                  "floor, ceil) with asymmetric / half_pixel / align_corners coordinates, scales and "
                  "sizes forms, upsampling and downsampling; default attributes. Scales are chosen so "
                  "coordinate ties are exact.")


def resize_linear() -> Case:
    b = Builder("resize_linear", 13)
    x = b.input("x", b.normal([1, 3, 6, 5]))
    no_roi = ""
    outs = [
        b.op("Resize", [x, no_roi, b.const(f([1, 1, 2, 2]))], mode="linear",
             coordinate_transformation_mode="half_pixel"),
        b.op("Resize", [x, no_roi, "", b.const(i64([1, 3, 9, 7]))], mode="linear",
             coordinate_transformation_mode="align_corners"),
        b.op("Resize", [x, no_roi, b.const(f([1, 1, 1.5, 2.5]))], mode="linear",
             coordinate_transformation_mode="asymmetric"),
        b.op("Resize", [x, no_roi, "", b.const(i64([1, 3, 1, 8]))], mode="linear",
             coordinate_transformation_mode="pytorch_half_pixel"),
        b.op("Resize", [x, no_roi, "", b.const(i64([1, 3, 4, 3]))], mode="linear",
             coordinate_transformation_mode="pytorch_half_pixel"),
        b.op("Resize", [x, no_roi, b.const(f([1, 1, 0.5, 0.6]))], mode="linear"),
    ]
    b.output(*outs)
    return b.case("Resize linear (opset 13): half_pixel, align_corners, asymmetric and "
                  "pytorch_half_pixel (including an output dim of 1); scales and sizes forms; "
                  "fractional scales; downsampling.")


def resize_opset11() -> Case:
    b = Builder("resize_opset11", 11)
    x = b.input("x", b.normal([1, 2, 4, 5]))
    roi = b.const(f([]))
    no_scales = b.const(f([]))
    outs = [
        b.op("Resize", [x, roi, b.const(f([1, 1, 2, 2]))], mode="nearest",
             coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
        b.op("Resize", [x, roi, b.const(f([1, 1, 2, 2]))], mode="linear",
             coordinate_transformation_mode="pytorch_half_pixel"),
        b.op("Resize", [x, roi, no_scales, b.const(i64([1, 2, 7, 3]))], mode="linear",
             coordinate_transformation_mode="align_corners"),
        b.op("Resize", [x, roi, no_scales, b.const(i64([1, 2, 8, 10]))], mode="nearest"),
    ]
    b.output(*outs)
    return b.case("Resize opset-11 form: roi input as an empty constant, scales given or empty with "
                  "sizes (as torch exports nn.Upsample / F.interpolate at opset 11).")


# --- indexing, reductions, casts ----------------------------------------------------------------


def gather() -> Case:
    b = Builder("gather", 13)
    x = b.input("x", b.normal([5, 4, 3]))
    shape = b.op("Shape", [x])
    outs = [
        b.op("Gather", [x, b.const(i64([2, -1, 0]))], axis=0),
        b.op("Gather", [x, b.const(np.asarray([[0, -1], [2, 1]], I32))], axis=1),
        b.op("Gather", [x, b.const(i64(-2))], axis=0),
        b.op("Gather", [x, b.const(i64([[1], [0]]))], axis=-1),
        b.op("Gather", [shape, b.const(i64(0))], axis=0),
        b.op("Gather", [shape, b.const(i64([-1, 1]))], axis=0),
    ]
    b.output(*outs)
    return b.case("Gather: axis 0 with negative indices, axis 1 with 2-D int32 indices, a scalar index "
                  "(rank drops), axis -1, and on an int64 shape (scalar and 1-D indices).")


def reduce_opset13() -> Case:
    b = Builder("reduce_opset13", 13)
    x = b.input("x", b.normal([2, 3, 4, 5]))
    outs = [
        b.op("ReduceMean", [x], axes=[1], keepdims=1),
        b.op("ReduceMean", [x], axes=[2, 3], keepdims=0),
        b.op("ReduceMean", [x], axes=[-1]),
        b.op("ReduceSum", [x, b.const(i64([-1]))], keepdims=0),
        b.op("ReduceSum", [x], keepdims=1),
        b.op("ReduceSum", [x, b.const(i64([0, 2]))]),
        b.op("ReduceMax", [x], axes=[0, 2], keepdims=0),
        b.op("ReduceMax", [x], keepdims=0),
        b.op("ReduceMax", [x], axes=[3]),
    ]
    b.output(*outs)
    return b.case("Opset-13 reductions: ReduceMean/ReduceMax with axes attribute, ReduceSum with axes "
                  "input; keepdims 0 and 1; negative axes; all axes (scalar output).")


def argmax_cast() -> Case:
    b = Builder("argmax_cast", 13)
    x = b.input("x", b.uniform([3, 4, 5], -2.0, 2.0))
    n = b.const(np.asarray(b.rng.integers(-50, 50, [3, 4]), dtype=I64))
    q = b.op("Cast", [b.op("Cast", [b.op("Mul", [x, b.const(f(2.0))])], to=6)], to=1)  # int32 then float
    outs = [
        b.op("ArgMax", [x], axis=1),
        b.op("ArgMax", [x], axis=-1, keepdims=0),
        b.op("ArgMax", [q], axis=2, keepdims=0, select_last_index=0),
        b.op("ArgMax", [q], axis=2, keepdims=0, select_last_index=1),
        b.op("ArgMax", [x]),
        q,
        b.op("Cast", [x], to=7),  # int64, truncation toward zero
        b.op("Cast", [q], to=9),  # bool (zeros exist)
        b.op("Cast", [b.op("Cast", [q], to=9)], to=1),
        b.op("Cast", [b.op("Cast", [x], to=10)], to=1),  # through float16
        b.op("Cast", [n], to=1),
        b.op("Cast", [n], to=6),
    ]
    b.output(*outs)
    return b.case("ArgMax: axis 1 keepdims 1, axis -1 keepdims 0, ties with select_last_index 0/1, "
                  "default axis. Cast float->int32->float (truncation), float->int64, float->bool, "
                  "bool->float, float->float16->float, int64->float, int64->int32.")


def layernorm_opset17() -> Case:
    b = Builder("layernorm_opset17", 17)
    x = b.input("x", b.normal([2, 4, 6], 2.0) + 0.5)
    x4 = b.input("x4", b.normal([2, 3, 4, 5]))
    outs = [
        b.op("LayerNormalization", [x, b.init(b.uniform([6], 0.5, 1.5)), b.init(b.normal([6], 0.2))]),
        b.op("LayerNormalization", [x, b.init(b.uniform([4, 6], 0.5, 1.5))], axis=1, epsilon=1e-3),
        b.op("LayerNormalization", [x4, b.init(b.uniform([4, 5], 0.5, 1.5)), b.init(b.normal([4, 5], 0.2))],
             axis=-2),
    ]
    b.output(*outs)
    return b.case("LayerNormalization (opset 17): last axis with scale and bias; axis 1 over [4,6] "
                  "without bias and epsilon 1e-3; axis -2 on a 4-D input.")


def constant_of_shape_expand_range_where() -> Case:
    b = Builder("constant_of_shape_expand_range_where", 13)
    from onnx import numpy_helper

    x = b.input("x", b.uniform([2, 3, 4], -1.0, 1.0))
    y = b.input("y", b.normal([3, 1]))
    z = b.input("z", b.normal([1, 4]))
    s = b.op("Shape", [x])
    k = b.op("Cast", [b.op("Mul", [x, b.const(f(3.0))])], to=7)  # values in -2..2
    mask = b.op("Equal", [k, b.const(i64([0]))])
    outs = [
        b.op("ConstantOfShape", [s], value=numpy_helper.from_array(f([1.5]), "value")),
        b.op("ConstantOfShape", [b.const(i64([2, 3]))], value=numpy_helper.from_array(i64([7]), "value")),
        b.op("ConstantOfShape", [b.const(i64([3]))]),
        b.op("Expand", [y, s]),
        b.op("Expand", [z, b.const(i64([3, 1]))]),
        b.op("Range", [b.const(i64(0)), b.const(i64(10)), b.const(i64(3))]),
        b.op("Range", [b.const(f(1.0)), b.const(f(-1.0)), b.const(f(-0.3))]),
        mask,
        b.op("Where", [mask, x, b.const(f(-1.0))]),
        b.op("Where", [b.op("Equal", [k, b.const(i64([[[1]], [[-1]]]))]), y, z]),
        b.op("Equal", [x, x]),
    ]
    b.output(*outs)
    return b.case("ConstantOfShape (float value from a Shape, int64 value, default zeros); Expand "
                  "to a computed shape and with a shape of smaller rank/ones; Range int64 and float "
                  "(negative delta); Equal on int64 (via Cast) and float; Where with broadcast "
                  "condition and operands.")


def shape_arith() -> Case:
    b = Builder("shape_arith", 13)
    x = b.input("x", b.normal([2, 6, 4, 4]), dims=["N", 6, 4, 4])
    s = b.op("Shape", [x])
    n = b.op("Gather", [s, b.const(i64(0))], axis=0)
    c = b.op("Gather", [s, b.const(i64(1))], axis=0)
    g = b.op("Div", [c, b.const(i64(2))])
    ax0 = b.const(i64([0]))
    shape1 = b.op("Concat", [b.op("Unsqueeze", [n, ax0]), b.const(i64([2])), b.op("Unsqueeze", [g, ax0]),
                             b.const(i64([-1]))], axis=0)
    r1 = b.op("Reshape", [x, shape1])
    t = b.op("Transpose", [r1], perm=[0, 2, 1, 3])
    shape2 = b.op("Concat", [b.op("Unsqueeze", [n, ax0]), b.const(i64([-1]))], axis=0)
    r2 = b.op("Reshape", [t, shape2])
    rng = b.op("Range", [b.const(i64(-7)), b.const(i64(8)), b.const(i64(1))])
    i32v = b.const(np.asarray([[3], [-4]], I32))
    outs = [
        r1, r2, shape1,
        b.op("Div", [rng, b.const(i64(2))]),
        b.op("Div", [rng, b.const(i64(-3))]),
        b.op("Mul", [rng, rng]),
        b.op("Sub", [b.op("Add", [rng, b.const(i64(5))]), b.op("Mul", [n, c])]),
        b.op("Add", [b.op("Cast", [rng], to=6), i32v]),
    ]
    b.output(*outs)
    return b.case("Torch-style dynamic shape arithmetic: Shape->Gather->Div->Unsqueeze->Concat->Reshape "
                  "(channel shuffle) with a symbolic batch dim; integer Add/Sub/Mul/Div (truncating "
                  "division of negative numbers) on int64 and broadcast int32.")


def unary_math() -> Case:
    b = Builder("unary_math", 13)
    x = b.input("x", b.uniform([3, 4, 5], -2.5, 2.5))
    p = b.input("p", b.uniform([3, 4, 5], 0.05, 20.0))
    y = b.input("y", b.normal([4, 5]))
    z = b.input("z", b.normal([5]))
    outs = [
        b.op("Erf", [x]),
        b.op("Exp", [x]),
        b.op("Log", [p]),
        b.op("Neg", [x]),
        b.op("Abs", [x]),
        b.op("Min", [x, y, z]),
        b.op("Max", [x, y, z]),
        b.op("Min", [x]),
        b.op("Max", [y, z]),
        b.op("Log", [b.op("Exp", [x])]),
    ]
    b.output(*outs)
    return b.case("Erf, Exp, Log (positive inputs), Neg, Abs; Min and Max variadic with three "
                  "broadcast inputs, one input and two inputs.")


def identity_dropout_shape() -> Case:
    b = Builder("identity_dropout_shape", 15)
    x = b.input("x", b.normal([2, 3, 4, 5]))
    d, mask = b.op("Dropout", [x, b.const(f(0.3))], n_out=2)
    outs = [
        b.op("Identity", [x]),
        d,
        mask,
        b.op("Dropout", [b.op("Identity", [d])]),
        b.op("Shape", [x]),
        b.op("Shape", [x], start=1),
        b.op("Shape", [x], start=-3, end=-1),
        b.op("Shape", [x], end=2),
        b.op("Shape", [x], start=-10, end=10),
    ]
    b.output(*outs)
    return b.case("Identity; Dropout (opset 13+ form) with ratio input and mask output, and without; "
                  "Shape (opset 15) with start/end, negative and out-of-range values (clamped).")


CASES = [
    conv,
    conv_auto_pad,
    conv_transpose,
    batchnorm,
    activations_opset14,
    activations_opset10,
    softmax_opset11,
    gemm,
    matmul,
    binary_broadcast,
    pooling_max,
    pooling_avg,
    shape_ops,
    split_squeeze_opset11,
    split_squeeze_opset13,
    opset18_forms,
    legacy_opset9,
    slice_opset13,
    pad_opset11,
    resize_nearest,
    resize_linear,
    resize_opset11,
    gather,
    reduce_opset13,
    argmax_cast,
    layernorm_opset17,
    constant_of_shape_expand_range_where,
    shape_arith,
    unary_math,
    identity_dropout_shape,
]


def cases() -> list:
    """(name, thunk) pairs; each thunk builds one case."""
    return [(fn.__name__, fn) for fn in CASES]
