#!/usr/bin/env python3
"""Kroma's own ncnn (.param + .bin) -> ONNX converter for Real-ESRGAN-style models.

Usage: python3 ncnn2onnx.py MODEL.param MODEL.bin OUT.onnx [--expect-scale N]

Needs `onnx` and `numpy` (the installer runs it in a venv with pinned versions).

Supported ncnn layers (enough for realesr-general-x4v3 / RealESRGAN_x4plus):
  Input, Split (alias), Convolution (+ activation 0 none, 1 ReLU, 2 LeakyReLU,
  3 Clip, 4 Sigmoid), ReLU, PReLU, Concat, Eltwise (prod/sum with coefficients/max),
  BinaryOp (add/sub/mul/div/max/min/pow/rsub/rdiv, tensor or scalar), Interp
  (nearest, by scale factor) and PixelShuffle (mode 0 = DepthToSpace CRD,
  mode 1 = DCR). Anything else is rejected with an error naming the layer.

The ONNX graph has one input `data` f32 [1,C,height,width] (dynamic H/W) and one
output `output`. Weights stored as fp16 in the .bin are widened to fp32 exactly.
The output is deterministic: the same inputs and the same onnx/protobuf versions
give the same bytes (names come from the .param, nothing depends on time or
dict/set order, serialisation is deterministic).
"""

import argparse
import hashlib
import os
import struct
import sys
from fractions import Fraction

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

CONVERTER_VERSION = "1"
OPSET = 17
IR_VERSION = 8  # ONNX 1.10+ readers; ORT >= 1.10 loads it

NCNN_MAGIC = 7767517
TAG_FP16 = 0x01306B47
TAG_INT8 = 0x000D4B38
TAG_FP32_EXTRA = 0x0002C056


class ConvertError(Exception):
    pass


# --------------------------------------------------------------------------- .param
def _parse_scalar(text):
    # ncnn decides float vs int by the presence of '.', 'e' or 'E'
    if any(ch in text for ch in ".eE"):
        return float(text)
    return int(text)


class Layer:
    __slots__ = ("type", "name", "inputs", "outputs", "params", "line")

    def __init__(self, type_, name, inputs, outputs, params, line):
        self.type, self.name, self.inputs, self.outputs = type_, name, inputs, outputs
        self.params, self.line = params, line

    def p(self, key, default=None):
        return self.params.get(key, default)


def parse_param(text):
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines or lines[0] != str(NCNN_MAGIC):
        raise ConvertError(f"not an ncnn .param file (first line should be {NCNN_MAGIC})")
    counts = lines[1].split()
    layer_count, blob_count = int(counts[0]), int(counts[1])
    layers = []
    for lineno, ln in enumerate(lines[2:], start=3):
        tok = ln.split()
        type_, name, n_in, n_out = tok[0], tok[1], int(tok[2]), int(tok[3])
        inputs = tok[4:4 + n_in]
        outputs = tok[4 + n_in:4 + n_in + n_out]
        params = {}
        for kv in tok[4 + n_in + n_out:]:
            k, _, v = kv.partition("=")
            k = int(k)
            if k <= -23300:  # array: "count,v1,v2,..."
                parts = v.split(",")
                n = int(parts[0])
                vals = [_parse_scalar(x) for x in parts[1:]]
                if len(vals) != n:
                    raise ConvertError(f"line {lineno}: array {k} says {n} values, has {len(vals)}")
                params[-k - 23300] = vals
            else:
                params[k] = _parse_scalar(v)
        layers.append(Layer(type_, name, inputs, outputs, params, lineno))
    if len(layers) != layer_count:
        raise ConvertError(f"header says {layer_count} layers, file has {len(layers)}")
    blobs = {b for l in layers for b in l.outputs}
    if len(blobs) != blob_count:
        raise ConvertError(f"header says {blob_count} blobs, file has {len(blobs)}")
    return layers


# --------------------------------------------------------------------------- .bin
class WeightReader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def _take(self, n):
        if self.pos + n > len(self.data):
            raise ConvertError(f".bin too short: need {n} bytes at offset {self.pos}, size {len(self.data)}")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def raw_f32(self, count):
        """ncnn ModelBin::load(w, type=1): plain little-endian fp32, no tag."""
        return np.frombuffer(self._take(4 * count), dtype="<f4").astype(np.float32)

    def tagged(self, count):
        """ncnn ModelBin::load(w, type=0): 4-byte tag, then data."""
        tag_bytes = self._take(4)
        (tag,) = struct.unpack("<I", tag_bytes)
        if tag == TAG_FP16:
            nbytes = 2 * count
            arr = np.frombuffer(self._take(nbytes), dtype="<f2").astype(np.float32)
            self._take((4 - nbytes % 4) % 4)  # padded to 4 bytes
            return arr
        if tag == TAG_INT8:
            raise ConvertError("int8-quantised ncnn weights are not supported")
        if tag == TAG_FP32_EXTRA or tag == 0:
            return self.raw_f32(count)
        if sum(tag_bytes) != 0:  # 256-entry float table + uint8 indices
            table = np.frombuffer(self._take(256 * 4), dtype="<f4")
            idx = np.frombuffer(self._take(count), dtype=np.uint8)
            self._take((4 - count % 4) % 4)
            return table[idx].astype(np.float32)
        return self.raw_f32(count)

    def done(self):
        if self.pos != len(self.data):
            raise ConvertError(f".bin has {len(self.data) - self.pos} unused bytes after the last weight")


# --------------------------------------------------------------------------- graph
class Builder:
    def __init__(self, model_name):
        self.model_name = model_name
        self.nodes = []
        self.inits = []
        self.names = {}      # ncnn blob -> onnx tensor name
        self.info = {}       # onnx tensor -> (channels, scale Fraction)
        self.consumed = set()
        self.input_channels = None

    def tensor(self, blob):
        if blob not in self.names:
            raise ConvertError(f"blob {blob!r} used before it is produced")
        self.consumed.add(blob)
        return self.names[blob]

    def init(self, name, array):
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def scalar(self, name, value):
        return self.init(name, np.array([value], dtype=np.float32))

    def node(self, op, inputs, outputs, name, **attrs):
        self.nodes.append(helper.make_node(op, inputs, outputs, name=name, **attrs))


def _conv(b, l, w):
    num_output = l.p(0, 0)
    kw = l.p(1, 0)
    kh = l.p(11, kw)
    dw = l.p(2, 1)
    dh = l.p(12, dw)
    sw = l.p(3, 1)
    sh = l.p(13, sw)
    pl = l.p(4, 0)
    pt = l.p(14, pl)
    pr = l.p(15, pl)
    pb = l.p(16, pt)
    pad_value = l.p(18, 0.0)
    bias_term = l.p(5, 0)
    wsize = l.p(6, 0)
    if l.p(8, 0) or l.p(19, 0):
        raise ConvertError(f"{l.name}: int8 or dynamic-weight Convolution is not supported")
    if min(pl, pt, pr, pb) < 0:
        raise ConvertError(f"{l.name}: 'same' padding ({pl}) is not supported")
    if pad_value != 0:
        raise ConvertError(f"{l.name}: non-zero pad value is not supported")
    if wsize % (num_output * kh * kw):
        raise ConvertError(f"{l.name}: weight count {wsize} does not fit {num_output}x?x{kh}x{kw}")
    in_ch = wsize // (num_output * kh * kw)
    x = b.tensor(l.inputs[0])
    weight = w.tagged(wsize).reshape(num_output, in_ch, kh, kw)
    ins = [x, b.init(f"{l.name}.weight", weight)]
    if bias_term:
        ins.append(b.init(f"{l.name}.bias", w.raw_f32(num_output)))
    act = l.p(9, 0)
    act_params = l.p(10, [])
    out = l.outputs[0]
    conv_out = f"{out}_preact" if act else out
    b.node("Conv", ins, [conv_out], l.name, kernel_shape=[kh, kw], strides=[sh, sw],
           dilations=[dh, dw], pads=[pt, pl, pb, pr], group=1)
    if act == 1:
        b.node("Relu", [conv_out], [out], f"{l.name}_relu")
    elif act == 2:
        b.node("LeakyRelu", [conv_out], [out], f"{l.name}_leakyrelu", alpha=float(act_params[0]))
    elif act == 3:  # Clip takes scalar min/max inputs
        lo = b.init(f"{l.name}.clip_min", np.array(act_params[0], dtype=np.float32))
        hi = b.init(f"{l.name}.clip_max", np.array(act_params[1], dtype=np.float32))
        b.node("Clip", [conv_out, lo, hi], [out], f"{l.name}_clip")
    elif act == 4:
        b.node("Sigmoid", [conv_out], [out], f"{l.name}_sigmoid")
    elif act != 0:
        raise ConvertError(f"{l.name}: activation type {act} is not supported")
    if b.input_channels is None and x == "data":
        b.input_channels = in_ch
    _, scale = b.info[x]
    if sh != sw or (kh - 1) * dh != pt + pb or (kw - 1) * dw != pl + pr:
        raise ConvertError(f"{l.name}: only size-preserving (optionally strided) convolutions are tracked")
    b.info[out] = (num_output, scale / sh)
    b.names[out] = out


def convert(param_text, bin_data, model_name="model", expect_scale=None):
    layers = parse_param(param_text)
    b = Builder(model_name)
    w = WeightReader(bin_data)
    produced = []
    for l in layers:
        t = l.type
        if t == "Input":
            if b.names:
                raise ConvertError("only one Input layer is supported")
            b.names[l.outputs[0]] = "data"
            c = l.p(2, 0)
            b.info["data"] = (c if c > 0 else None, Fraction(1))
            produced.append(l.outputs[0])
            continue
        if t == "Split":
            src = b.tensor(l.inputs[0])
            for o in l.outputs:
                b.names[o] = src
                produced.append(o)
            continue
        produced.extend(l.outputs)
        if t == "Convolution":
            _conv(b, l, w)
            continue
        ins = [b.tensor(i) for i in l.inputs]
        out = l.outputs[0]
        b.names[out] = out
        if t == "ReLU":
            slope = l.p(0, 0.0)
            if slope:
                b.node("LeakyRelu", ins, [out], l.name, alpha=float(slope))
            else:
                b.node("Relu", ins, [out], l.name)
            b.info[out] = b.info[ins[0]]
        elif t == "PReLU":
            n = l.p(0, 0)
            slope = w.raw_f32(n)
            slope = slope.reshape(n, 1, 1) if n > 1 else slope.reshape(1)
            b.node("PRelu", [ins[0], b.init(f"{l.name}.slope", slope)], [out], l.name)
            b.info[out] = b.info[ins[0]]
        elif t == "Concat":
            axis = l.p(0, 0)
            if axis < 0:
                axis += 3
            if axis != 0:
                raise ConvertError(f"{l.name}: only channel concat (axis 0) is supported")
            b.node("Concat", ins, [out], l.name, axis=axis + 1)
            chans = [b.info[i][0] for i in ins]
            b.info[out] = (None if None in chans else sum(chans), b.info[ins[0]][1])
        elif t == "Eltwise":
            op = l.p(0, 1)
            coeffs = l.p(1, [])
            first_info = b.info[ins[0]]
            if op == 1 and coeffs and any(c != 1 for c in coeffs):
                if len(coeffs) != len(ins):
                    raise ConvertError(f"{l.name}: {len(coeffs)} coefficients for {len(ins)} inputs")
                scaled = []
                for k, (i, c) in enumerate(zip(ins, coeffs)):
                    if c == 1:
                        scaled.append(i)
                        continue
                    cname = b.scalar(f"{l.name}.coeff{k}", c)
                    b.node("Mul", [i, cname], [f"{out}_scaled{k}"], f"{l.name}_mul{k}")
                    scaled.append(f"{out}_scaled{k}")
                ins = scaled
            elif op != 1 and coeffs:
                raise ConvertError(f"{l.name}: coefficients only make sense for sum")
            if op == 1:
                b.node("Add" if len(ins) == 2 else "Sum", ins, [out], l.name)
            elif op == 2:
                b.node("Max", ins, [out], l.name)
            elif op == 0:
                acc = ins[0]
                for k, i in enumerate(ins[1:], start=1):
                    dst = out if k == len(ins) - 1 else f"{out}_prod{k}"
                    b.node("Mul", [acc, i], [dst], l.name if dst == out else f"{l.name}_mul{k}")
                    acc = dst
            else:
                raise ConvertError(f"{l.name}: Eltwise op {op} is not supported")
            b.info[out] = first_info
        elif t == "BinaryOp":
            op = l.p(0, 0)
            with_scalar = l.p(1, 0)
            if with_scalar:
                ins = [ins[0], b.scalar(f"{l.name}.b", l.p(2, 0.0))]
            elif len(ins) != 2:
                raise ConvertError(f"{l.name}: BinaryOp needs two inputs or a scalar")
            table = {0: ("Add", False), 1: ("Sub", False), 2: ("Mul", False), 3: ("Div", False),
                     4: ("Max", False), 5: ("Min", False), 6: ("Pow", False),
                     7: ("Sub", True), 8: ("Div", True)}
            if op not in table:
                raise ConvertError(f"{l.name}: BinaryOp type {op} is not supported")
            onnx_op, swap = table[op]
            b.node(onnx_op, ins[::-1] if swap else ins, [out], l.name)
            infos = [b.info[i] for i in ins if i in b.info]
            b.info[out] = max(infos, key=lambda ci: ci[1])
        elif t == "Interp":
            rtype = l.p(0, 0)
            hs, ws = float(l.p(1, 1.0)), float(l.p(2, 1.0))
            if rtype != 1:
                raise ConvertError(f"{l.name}: only nearest Interp (0=1) is supported, got {rtype}")
            if l.p(3, 0) or l.p(4, 0) or l.p(5, 0):
                raise ConvertError(f"{l.name}: only Interp by scale factor is supported")
            if hs != ws:
                raise ConvertError(f"{l.name}: only equal H/W scales are tracked")
            scales = b.init(f"{l.name}.scales", np.array([1.0, 1.0, hs, ws], dtype=np.float32))
            # ncnn nearest: src = min(int(dst / scale), in - 1) == asymmetric + floor
            b.node("Resize", [ins[0], "", scales], [out], l.name, mode="nearest",
                   coordinate_transformation_mode="asymmetric", nearest_mode="floor")
            c, s = b.info[ins[0]]
            b.info[out] = (c, s * Fraction(hs).limit_denominator(1000))
        elif t == "PixelShuffle":
            r = l.p(0, 1)
            mode = l.p(1, 0)
            b.node("DepthToSpace", ins, [out], l.name, blocksize=r, mode="CRD" if mode == 0 else "DCR")
            c, s = b.info[ins[0]]
            if c is not None and c % (r * r):
                raise ConvertError(f"{l.name}: {c} channels not divisible by {r}x{r}")
            b.info[out] = (None if c is None else c // (r * r), s * r)
        else:
            raise ConvertError(f"layer {l.name} (line {l.line}): ncnn layer type {t} is not supported")
    w.done()

    finals = [blob for blob in produced if blob not in b.consumed]
    if len(finals) != 1:
        raise ConvertError(f"expected one output blob, found {finals}")
    final = b.names[finals[0]]
    if final == "data":
        raise ConvertError("the graph does nothing")
    if final != "output":
        for n in b.nodes:
            for k, o in enumerate(n.output):
                if o == final:
                    n.output[k] = "output"
        b.info["output"] = b.info[final]
    out_c, out_scale = b.info["output"]
    in_c = b.info["data"][0] or b.input_channels
    if in_c is None or out_c is None:
        raise ConvertError("could not determine input/output channel counts")
    if out_scale.denominator != 1:
        raise ConvertError(f"non-integer overall scale {out_scale}")
    scale = int(out_scale)
    if expect_scale is not None and scale != expect_scale:
        raise ConvertError(f"model scales by {scale}, expected {expect_scale}")

    def dim(s, sym):
        return sym if s == 1 else f"{sym}*{s}"

    graph = helper.make_graph(
        b.nodes, model_name,
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, in_c, "height", "width"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT,
                                       [1, out_c, dim(scale, "height"), dim(scale, "width")])],
        initializer=b.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="kroma-ncnn2onnx", producer_version=CONVERTER_VERSION)
    model.ir_version = IR_VERSION
    model.doc_string = f"Converted from ncnn by kroma ncnn2onnx {CONVERTER_VERSION}"
    onnx.checker.check_model(model, full_check=True)
    return model, {"input_channels": in_c, "output_channels": out_c, "scale": scale,
                   "nodes": len(b.nodes), "initializers": len(b.inits)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("param")
    ap.add_argument("bin")
    ap.add_argument("out")
    ap.add_argument("--name", default=None, help="graph name (default: the .param file's stem)")
    ap.add_argument("--expect-scale", type=int, default=None)
    a = ap.parse_args(argv)
    with open(a.param, "r", encoding="utf-8") as f:
        param_text = f.read()
    with open(a.bin, "rb") as f:
        bin_data = f.read()
    name = a.name or os.path.splitext(os.path.basename(a.param))[0]
    try:
        model, info = convert(param_text, bin_data, name, a.expect_scale)
    except ConvertError as e:
        print(f"ncnn2onnx: {a.param}: {e}", file=sys.stderr)
        return 2
    for k, v in (("source_param_sha256", hashlib.sha256(param_text.encode()).hexdigest()),
                 ("source_bin_sha256", hashlib.sha256(bin_data).hexdigest()),
                 ("converter", f"kroma-ncnn2onnx {CONVERTER_VERSION}")):
        p = model.metadata_props.add()
        p.key, p.value = k, v
    data = model.SerializeToString(deterministic=True)
    tmp = f"{a.out}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, a.out)
    print(f"{a.out}: {len(data)} bytes sha256 {hashlib.sha256(data).hexdigest()} "
          f"in={info['input_channels']} out={info['output_channels']} x{info['scale']} "
          f"nodes={info['nodes']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
