#!/usr/bin/python3
"""Trains the example's small CNN on MNIST in plain numpy and exports it as an opset-13 ONNX model.

  train_mnist_cnn.py [--data DIR] [--out data/mnist_cnn.onnx] [--epochs 4] [--seed 0]

Data: DIR/mnist10k_X.npy (uint8 [10000, 784]) and mnist10k_y.npy (int64), default examples/data/mnist10k
(the same files as ../shared/data). Rows are grouped by class, so they are shuffled with the seed and
split 8000 train / 2000 test (split_indices below; run.sh's report.py uses the same split).
Network (NHWC inside, exported NCHW): conv3x3 1->32 pad 1, ReLU, maxpool 2 (14x14); conv3x3 32->32,
ReLU, maxpool 2 (7x7); conv3x3 32->64, ReLU; Flatten; Gemm 3136->10. Adam, batch 64, softmax
cross-entropy. ONNX: input `image` float32 [N, 1, 28, 28] in [0, 1], output `logits` [N, 10].
Needs numpy and onnx (Debian's /usr/bin/python3).
"""
import argparse
import os
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data", "mnist10k")
N_TRAIN = 8000
CONVS = [(1, 32, True), (32, 32, True), (32, 64, False)]  # (in, out, maxpool after)


def split_indices(n=10000, seed=0):
    """The shuffled train / test split (the file is grouped by class)."""
    p = np.random.default_rng(seed).permutation(n)
    return p[:N_TRAIN], p[N_TRAIN:]


def load(data_dir):
    x = np.load(os.path.join(data_dir, "mnist10k_X.npy")).astype(np.float32).reshape(-1, 28, 28, 1) / 255
    return x, np.load(os.path.join(data_dir, "mnist10k_y.npy"))


def im2col(x):
    """x [N, H, W, C] -> patches [N*H*W, 3*3*C] of the 3x3 'same' convolution (order kh, kw, c)."""
    n, h, w, c = x.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    cols = np.empty((n, h, w, 3, 3, c), np.float32)
    for i in range(3):
        for j in range(3):
            cols[:, :, :, i, j, :] = xp[:, i:i + h, j:j + w, :]
    return cols.reshape(n * h * w, 9 * c)


def col2im(dcols, shape):
    n, h, w, c = shape
    dcols = dcols.reshape(n, h, w, 3, 3, c)
    dxp = np.zeros((n, h + 2, w + 2, c), np.float32)
    for i in range(3):
        for j in range(3):
            dxp[:, i:i + h, j:j + w, :] += dcols[:, :, :, i, j, :]
    return dxp[:, 1:-1, 1:-1, :]


def init(rng):
    p = {}
    for k, (ci, co, _) in enumerate(CONVS):
        p[f"conv{k}.w"] = (rng.standard_normal((co, 9 * ci)) * np.sqrt(2 / (9 * ci))).astype(np.float32)
        p[f"conv{k}.b"] = np.zeros(co, np.float32)
    p["fc.w"] = (rng.standard_normal((10, 7 * 7 * 64)) * np.sqrt(1 / 3136)).astype(np.float32)
    p["fc.b"] = np.zeros(10, np.float32)
    return p


def forward(p, x):
    """Logits and the cache for backward."""
    cache = []
    for k, (_, co, pool) in enumerate(CONVS):
        n, h, w, _ = x.shape
        cols = im2col(x)
        y = np.maximum(cols @ p[f"conv{k}.w"].T + p[f"conv{k}.b"], 0).reshape(n, h, w, co)
        entry = [x.shape, cols, y]
        if pool:
            blocks = y.reshape(n, h // 2, 2, w // 2, 2, co)
            y = blocks.max(axis=(2, 4))
            entry.append(blocks == y[:, :, None, :, None, :])  # where the maxima were
        cache.append(entry)
        x = y
    flat = x.reshape(len(x), -1)
    return flat @ p["fc.w"].T + p["fc.b"], (cache, flat, x.shape)


def backward(p, cache, dlogits):
    convs, flat, shape = cache
    g = {"fc.w": dlogits.T @ flat, "fc.b": dlogits.sum(0)}
    dx = (dlogits @ p["fc.w"]).reshape(shape)
    for k in reversed(range(len(CONVS))):
        xshape, cols, y, *mask = convs[k]
        if mask:  # unpool: the gradient goes to the maxima
            n, h, w, c = y.shape
            dx = (mask[0] * dx[:, :, None, :, None, :]).reshape(n, h, w, c)
        dy = (dx * (y > 0)).reshape(-1, y.shape[-1])
        g[f"conv{k}.w"], g[f"conv{k}.b"] = dy.T @ cols, dy.sum(0)
        if k:
            dx = col2im(dy @ p[f"conv{k}.w"], xshape)
    return g


def accuracy(p, x, y, batch=500):
    return float(np.mean(np.concatenate([forward(p, x[i:i + batch])[0].argmax(1) for i in range(0, len(x), batch)]) == y))


def export(p, path):
    """NHWC weights -> ONNX NCHW: conv [O, 9*C] (kh, kw, c) -> [O, C, 3, 3]; fc columns (h, w, c) -> (c, h, w)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    inits, nodes, x = [], [], "image"
    for k, (ci, co, pool) in enumerate(CONVS):
        w = p[f"conv{k}.w"].reshape(co, 3, 3, ci).transpose(0, 3, 1, 2)
        inits += [numpy_helper.from_array(np.ascontiguousarray(w), f"conv{k}.weight"),
                  numpy_helper.from_array(p[f"conv{k}.b"], f"conv{k}.bias")]
        nodes += [helper.make_node("Conv", [x, f"conv{k}.weight", f"conv{k}.bias"], [f"conv{k}"], name=f"conv{k}",
                                   kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", [f"conv{k}"], [f"relu{k}"], name=f"relu{k}")]
        x = f"relu{k}"
        if pool:
            nodes.append(helper.make_node("MaxPool", [x], [f"pool{k}"], name=f"pool{k}", kernel_shape=[2, 2], strides=[2, 2]))
            x = f"pool{k}"
    fc = p["fc.w"].reshape(10, 7, 7, 64).transpose(0, 3, 1, 2).reshape(10, -1)
    inits += [numpy_helper.from_array(np.ascontiguousarray(fc), "fc.weight"), numpy_helper.from_array(p["fc.b"], "fc.bias")]
    nodes += [helper.make_node("Flatten", [x], ["flat"], name="flatten", axis=1),
              helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], name="fc", transB=1)]
    graph = helper.make_graph(nodes, "mnist_cnn",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 28, 28])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="quantkit train_mnist_cnn.py")
    model.ir_version = 7
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--out", default=os.path.join(HERE, "data", "mnist_cnn.onnx"))
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    x, y = load(a.data)
    tr, te = split_indices(len(x), a.seed)
    rng = np.random.default_rng(a.seed + 1)
    p = init(rng)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    step, lr, b1, b2, batch = 0, 1e-3, 0.9, 0.999, 64
    for epoch in range(a.epochs):
        t0 = time.time()
        order = rng.permutation(tr)
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            logits, cache = forward(p, x[idx])
            prob = np.exp(logits - logits.max(1, keepdims=True))
            prob /= prob.sum(1, keepdims=True)
            prob[np.arange(len(idx)), y[idx]] -= 1  # d(mean cross-entropy)/d(logits) * batch
            g = backward(p, cache, prob / len(idx))
            step += 1
            for k in p:  # Adam, with the learning rate halved for the last epoch
                m[k] = b1 * m[k] + (1 - b1) * g[k]
                v[k] = b2 * v[k] + (1 - b2) * g[k] ** 2
                rate = lr * (0.5 if epoch == a.epochs - 1 else 1) * np.sqrt(1 - b2 ** step) / (1 - b1 ** step)
                p[k] -= (rate * m[k] / (np.sqrt(v[k]) + 1e-8)).astype(np.float32)
        print(f"epoch {epoch + 1}: test accuracy {accuracy(p, x[te], y[te]):.4f} ({time.time() - t0:.0f} s)", flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    export(p, a.out)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
