#!/usr/bin/python3
"""Small hand-made float32 ONNX models for the ONNX integration test (run_onnx_e2e.py).

  onnx_models.py OUTDIR            the models: NAME.onnx, NAME.in.<input>.npy (the test inputs),
                                   NAME.calib<k>.<input>.npy (more inputs to calibrate with), manifest.json
  onnx_models.py --bad OUTDIR      invalid models that a reader must refuse, and bad.json describing them
  onnx_models.py --expose IN OUT   IN with every float value of its top-level graph added as a graph
                                   output (what ort_run.js --dump-all runs to dump calibration activations)

Runs with Debian's python3-onnx (1.12) and numpy (/usr/bin/python3). Weights are seeded random, He-scaled
so that activations stay near unit size; the same command writes the same bytes.
"""
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT


def he(rng, shape, fan_in):
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def model(graph, opset, ir_version=8):
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="quantkit-tests")
    m.ir_version = ir_version
    return m


def conv_stack(rng, x, cin, layers, h):
    """Conv(3x3, pad 1)+Relu per (channels, stride); returns nodes, initializers, last value, channels, size."""
    nodes, inits = [], []
    for i, (cout, stride) in enumerate(layers, 1):
        inits += [init(f"conv{i}.weight", he(rng, [cout, cin, 3, 3], cin * 9)),
                  init(f"conv{i}.bias", (rng.standard_normal(cout) * 0.05).astype(np.float32))]
        nodes += [helper.make_node("Conv", [x, f"conv{i}.weight", f"conv{i}.bias"], [f"conv{i}"],
                                   kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[stride, stride]),
                  helper.make_node("Relu", [f"conv{i}"], [f"relu{i}"])]
        x, cin, h = f"relu{i}", cout, (h + stride - 1) // stride
    return nodes, inits, x, cin, h


def classifier(rng, name, in_shape, layers, classes=10):
    """Conv+Relu layers, global average pool, Flatten, Gemm (transB=1): a tiny image classifier."""
    nodes, inits, x, c, _ = conv_stack(rng, "input", in_shape[1], layers, in_shape[2])
    inits += [init("fc.weight", he(rng, [classes, c], c)), init("fc.bias", np.zeros(classes, np.float32))]
    nodes += [helper.make_node("GlobalAveragePool", [x], ["pool"]),
              helper.make_node("Flatten", ["pool"], ["flat"], axis=1),
              helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], transB=1)]
    g = helper.make_graph(nodes, name, [vi("input", F, in_shape)], [vi("logits", F, [in_shape[0], classes])], inits)
    return model(g, 13)


def conv_classifier(rng):  # (a)
    return classifier(rng, "conv_classifier", [1, 3, 32, 32], [(16, 1), (32, 2)])


def gemm(rng):  # (b)
    g = helper.make_graph(
        [helper.make_node("Gemm", ["input", "fc.weight", "fc.bias"], ["output"], transB=1)], "gemm",
        [vi("input", F, [4, 64])], [vi("output", F, [4, 32])],
        [init("fc.weight", he(rng, [32, 64], 64)), init("fc.bias", (rng.standard_normal(32) * 0.1).astype(np.float32))])
    return model(g, 13)


def matmul(rng):  # (c)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["input", "proj.weight"], ["output"])], "matmul",
        [vi("input", F, [1, 16, 64])], [vi("output", F, [1, 16, 32])], [init("proj.weight", he(rng, [64, 32], 64))])
    return model(g, 13)


def conv_transpose(rng):  # (d): weight [C_in, C_out, kh, kw], output channels on axis 1
    g = helper.make_graph(
        [helper.make_node("ConvTranspose", ["input", "up.weight", "up.bias"], ["output"],
                          kernel_shape=[4, 4], strides=[2, 2], pads=[1, 1, 1, 1])], "conv_transpose",
        [vi("input", F, [1, 16, 8, 8])], [vi("output", F, [1, 8, 16, 16])],
        [init("up.weight", he(rng, [16, 8, 4, 4], 16 * 4)), init("up.bias", (rng.standard_normal(8) * 0.1).astype(np.float32))])
    return model(g, 13)


def if_subgraph(rng):  # (e): each branch holds its own Conv weight as a subgraph initializer
    def branch(tag):
        return helper.make_graph(
            [helper.make_node("Conv", ["input", f"{tag}.weight"], [f"{tag}_out"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])],
            f"{tag}_branch", [], [vi(f"{tag}_out", F, [1, 8, 8, 8])], [init(f"{tag}.weight", he(rng, [8, 4, 3, 3], 36))])
    g = helper.make_graph(
        [helper.make_node("If", ["cond"], ["output"], then_branch=branch("then"), else_branch=branch("else"))],
        "if_subgraph", [vi("input", F, [1, 4, 8, 8]), vi("cond", TensorProto.BOOL, [])], [vi("output", F, [1, 8, 8, 8])])
    return model(g, 13)


def old_opset11(rng):  # (g): a Paddle2ONNX/old-PyTorch-style export, Constant weights, opset 11
    def const(name, array):
        return helper.make_node("Constant", [], [name], value=init(name, array))
    nodes = [
        const("w1", he(rng, [64, 32], 64)), const("b1", (rng.standard_normal(32) * 0.1).astype(np.float32)),
        const("w2", he(rng, [32, 16], 32)),
        helper.make_node("Unsqueeze", ["input"], ["x3d"], axes=[1]),            # [1,1,64]; axes an input at 13
        helper.make_node("MatMul", ["x3d", "w1"], ["mm1"]),                     # [1,1,32]
        helper.make_node("Squeeze", ["mm1"], ["h"], axes=[1]),                  # [1,32]; axes an input at 13
        helper.make_node("Add", ["h", "b1"], ["hb"]),
        helper.make_node("Relu", ["hb"], ["hr"]),
        helper.make_node("ReduceSum", ["hr"], ["hsum"], axes=[1], keepdims=1),  # [1,1]; axes an input at 13
        helper.make_node("MatMul", ["hr", "w2"], ["mm2"]),                      # [1,16]
        helper.make_node("Sub", ["mm2", "hsum"], ["output"]),
    ]
    g = helper.make_graph(nodes, "old_opset11", [vi("input", F, [1, 64])], [vi("output", F, [1, 16])])
    return model(g, 11, ir_version=6)


def lstm(rng):  # (h): W [1, 4H, I], R [1, 4H, H], B [1, 8H]
    seq, inp, hid = 10, 32, 64
    s = 1.0 / np.sqrt(hid)
    g = helper.make_graph(
        [helper.make_node("LSTM", ["input", "lstm.W", "lstm.R", "lstm.B"], ["Y", "Y_h"], hidden_size=hid)], "lstm",
        [vi("input", F, [seq, 1, inp])], [vi("Y", F, [seq, 1, 1, hid]), vi("Y_h", F, [1, 1, hid])],
        [init("lstm.W", rng.uniform(-s, s, [1, 4 * hid, inp]).astype(np.float32)),
         init("lstm.R", rng.uniform(-s, s, [1, 4 * hid, hid]).astype(np.float32)),
         init("lstm.B", rng.uniform(-s, s, [1, 8 * hid]).astype(np.float32))])
    return model(g, 14)


def bench_convnet(rng):  # (i): big enough that integer kernels show in ONNX Runtime's latency
    return classifier(rng, "bench_convnet", [1, 3, 64, 64], [(32, 1), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1)])


# name -> (builder, seed, external data, calibration inputs to write, the weights a weight-only rewrite must
# quantize: inputs of Conv/ConvTranspose/Gemm/MatMul/LSTM with >= 256 values; biases and small tensors stay)
CONVS = ["conv1.weight", "conv2.weight", "fc.weight"]
MODELS = {
    "conv_classifier": (conv_classifier, 1, False, 8, CONVS),
    "gemm": (gemm, 2, False, 0, ["fc.weight"]),
    "matmul": (matmul, 3, False, 0, ["proj.weight"]),
    "conv_transpose": (conv_transpose, 4, False, 0, ["up.weight"]),
    "if_subgraph": (if_subgraph, 5, False, 0, ["then.weight", "else.weight"]),
    "conv_classifier_ext": (conv_classifier, 1, True, 0, CONVS),
    "old_opset11": (old_opset11, 7, False, 0, ["w1", "w2"]),
    "lstm": (lstm, 8, False, 0, ["lstm.W", "lstm.R"]),
    "bench_convnet": (bench_convnet, 9, False, 8, [f"conv{i}.weight" for i in range(1, 7)] + ["fc.weight"]),
}


def random_input(rng, value):
    t = value.type.tensor_type
    shape = [d.dim_value for d in t.shape.dim]
    if t.elem_type == TensorProto.BOOL:
        return np.array(True)  # the If model's cond: the then branch (the else branch gets its own case)
    return rng.standard_normal(shape).astype(np.float32)


def write_models(out):
    os.makedirs(out, exist_ok=True)
    manifest = []
    for name, (build, seed, external, n_calib, weights) in MODELS.items():
        rng = np.random.default_rng(seed)
        m = build(rng)
        path = os.path.join(out, name + ".onnx")
        if external:
            onnx.save(m, path, save_as_external_data=True, all_tensors_to_one_file=True,
                      location=name + ".onnx.data", size_threshold=0)
        else:
            onnx.save(m, path)
        # Test inputs (one case; two for the If model, one per branch) and calibration inputs.
        data_rng = np.random.default_rng(1000 + seed)
        cases, calib = [], []
        for kind, count in (("in", 2 if name == "if_subgraph" else 1), ("calib", n_calib)):
            for k in range(count):
                files = {}
                for v in m.graph.input:
                    a = random_input(data_rng, v)
                    if a.dtype == bool:
                        a = np.array(k == 0)
                    file = f"{name}.{kind}{k}.{v.name}.npy"
                    np.save(os.path.join(out, file), a)
                    files[v.name] = file
                (cases if kind == "in" else calib).append(files)
        manifest.append({
            "name": name, "file": name + ".onnx", "opset": m.opset_import[0].version, "external_data": external,
            "inputs": [{"name": v.name, "dtype": TensorProto.DataType.Name(v.type.tensor_type.elem_type).lower(),
                        "shape": [d.dim_value for d in v.type.tensor_type.shape.dim]} for v in m.graph.input],
            "outputs": [v.name for v in m.graph.output], "weights": weights, "cases": cases, "calib": calib,
        })
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    return manifest


def write_bad(out):
    """Models a reader must refuse: each fails onnx.checker or ONNX Runtime (and must fail qtool)."""
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(11)
    bad = {}

    def save(name, m, why):
        with open(os.path.join(out, name + ".onnx"), "wb") as f:
            f.write(m if isinstance(m, bytes) else m.SerializeToString())  # no checks on the way out
        bad[name] = why

    good = conv_classifier(rng).SerializeToString()
    save("truncated", good[: len(good) // 2], "a valid model cut in the middle of its protobuf")

    m = gemm(rng)
    m.graph.initializer[0].raw_data = m.graph.initializer[0].raw_data[:100]
    save("raw_data_size", m, "fc.weight: dims [32, 64] float32 but 100 bytes of raw_data")

    m = gemm(rng)
    m.graph.initializer[0].data_type = 99
    save("unknown_dtype", m, "fc.weight: data_type 99")

    m = gemm(rng)
    t = m.graph.initializer[0]
    nbytes = len(t.raw_data)
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "missing.onnx.data"), ("offset", "0"), ("length", str(nbytes))):
        t.external_data.add(key=k, value=v)
    save("missing_external", m, "fc.weight: external data in missing.onnx.data, which does not exist")

    g = helper.make_graph(  # each node needs the other's output
        [helper.make_node("Add", ["input", "b"], ["a"]), helper.make_node("MatMul", ["a", "w"], ["b"])], "cycle",
        [vi("input", F, [1, 32])], [vi("a", F, [1, 32])], [init("w", he(rng, [32, 32], 32))])
    save("cycle", model(g, 13), "two nodes feeding each other (a = Add(input, b), b = MatMul(a, w))")

    with open(os.path.join(out, "bad.json"), "w") as f:
        json.dump(bad, f, indent=1)
    return bad


def expose(src, dst):
    """Adds every float value computed by a top-level node as a graph output; writes one inline file."""
    m = onnx.load(src)  # external data loaded, relative to src
    inferred = onnx.shape_inference.infer_shapes(m)
    types = {v.name: v.type.tensor_type.elem_type for v in
             list(inferred.graph.value_info) + list(inferred.graph.output) + list(inferred.graph.input)}
    have = {o.name for o in m.graph.output}
    for node in m.graph.node:
        for name in node.output:
            if name and name not in have and types.get(name) == F:
                m.graph.output.append(helper.make_empty_tensor_value_info(name))
                m.graph.output[-1].type.tensor_type.elem_type = F
                have.add(name)
    onnx.save(m, dst)


if __name__ == "__main__":
    a = sys.argv[1:]
    if len(a) == 1 and not a[0].startswith("-"):
        print(json.dumps([m["name"] for m in write_models(a[0])]))
    elif len(a) == 2 and a[0] == "--bad":
        print(json.dumps(write_bad(a[1]), indent=1))
    elif len(a) == 3 and a[0] == "--expose":
        expose(a[1], a[2])
    else:
        sys.exit("usage: onnx_models.py OUTDIR | --bad OUTDIR | --expose IN.onnx OUT.onnx")
