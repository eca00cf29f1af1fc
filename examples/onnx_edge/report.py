#!/usr/bin/python3
"""run.sh's helper: writes the inputs, turns ort_run.js dumps into .npz, and prints the measured table.

  report.py inputs WORKDIR [--quick]    calibration batches, test images, Silero chunks (.npy)
  report.py npz DUMPDIR IMAGE.npy OUT   ort_run.js --dump-all outputs + the graph input -> one .npz
  report.py table WORKDIR [--quick]     the table; exit 1 when an agreement bound fails

MNIST comes from $QK_MNIST_DIR, else examples/data/mnist10k (the same files as ../shared/data), with
train_mnist_cnn.py's seeded split: calibration images from the training part, metrics on the test part.
WORKDIR layout (run.sh): models/TAG.onnx, out/TAG/ (outputs on the test set), bench/TAG.bN.json.
"""
import glob
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path[:0] = [HERE, os.path.join(REPO, "tests", "onnx")]
from train_mnist_cnn import load, split_indices  # noqa: E402

# The CTest bounds: top-1 agreement with FP32 on the test images, and Silero's speech decisions.
MIN_AGREE = {"w8": 0.98, "qdq": 0.90, "qdq_edgetpu": 0.90, "qdq_ane": 0.90}
MIN_SILERO = 0.98
N_CHUNKS = 100  # Silero stream: 100 chunks of 512 samples (3.2 s at 16 kHz), state fed back


def inputs(work, quick):
    x, y = load(os.environ.get("QK_MNIST_DIR", os.path.join(HERE, "..", "data", "mnist10k")))
    x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # NHWC -> NCHW [N, 1, 28, 28]
    tr, te = split_indices(len(x))
    n_calib, n_test = (64, 500) if quick else (256, len(te))
    os.makedirs(os.path.join(work, "in"), exist_ok=True)
    for k in range(n_calib // 32):  # one .npy (and later one .npz) per batch of 32
        np.save(os.path.join(work, "in", f"calib{k}.npy"), x[tr[32 * k:32 * (k + 1)]])
    np.save(os.path.join(work, "in", "test.npy"), x[te[:n_test]])
    np.save(os.path.join(work, "in", "labels.npy"), y[te[:n_test]])
    np.save(os.path.join(work, "in", "b32.npy"), x[te[:32]])
    np.save(os.path.join(work, "in", "b1.npy"), x[te[:1]])
    # Silero: the e2e test's speech-like signal (three voiced segments) plus seeded noise.
    from run_onnx_e2e import E2E
    t = np.arange(N_CHUNKS * 512) / 16000
    sig = E2E.speech_like(t) + 0.003 * np.random.default_rng(2024).standard_normal(t.size)
    np.save(os.path.join(work, "in", "chunks.npy"), sig.astype(np.float32).reshape(N_CHUNKS, 1, 512))
    np.save(os.path.join(work, "in", "chunk1.npy"), sig[16000:16512].astype(np.float32).reshape(1, 512))
    np.save(os.path.join(work, "in", "state.npy"), np.zeros((2, 1, 128), np.float32))
    np.save(os.path.join(work, "in", "sr.npy"), np.array(16000, np.int64))


def npz(dump, image, out):
    with open(os.path.join(dump, "outputs.json")) as f:
        acts = {o["name"]: np.load(os.path.join(dump, o["file"])) for o in json.load(f)}
    acts["image"] = np.load(image)  # the graph input is an activation too
    np.savez(out, **acts)


def sqnr(ref, out):
    ref, err = ref.astype(np.float64), ref.astype(np.float64) - out.astype(np.float64)
    return float("inf") if not err.any() else 10 * np.log10(np.sum(ref * ref) / np.sum(err * err))


def size(work, tag):
    return sum(os.path.getsize(p) for p in glob.glob(os.path.join(work, "models", tag + ".onnx*")))


def ms(work, tag, b):
    path = os.path.join(work, "bench", f"{tag}.{b}.json")
    if not os.path.exists(path):
        return float("nan")
    return float(np.median([json.loads(line)["median_ms"] for line in open(path)]))  # median of the rounds


def zero_points(path):
    """'int8 zp 0' / 'uint8 zp 128..140': the activation QuantizeLinear zero points' type and values."""
    import onnx
    from onnx import numpy_helper
    m = onnx.load(path)
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    zps = [inits[n.input[2]] for n in m.graph.node if n.op_type == "QuantizeLinear" and len(n.input) > 2 and n.input[2] in inits]
    if not zps:
        return "no QuantizeLinear"
    vals = np.concatenate([z.ravel() for z in zps]).astype(int)
    kinds = sorted({str(z.dtype) for z in zps})
    rng = f"{vals.min()}" if vals.min() == vals.max() else f"{vals.min()}..{vals.max()}"
    return f"{len(zps)} QuantizeLinear, {'/'.join(kinds)} zero point {rng}"


def table(work, quick):
    labels = np.load(os.path.join(work, "in", "labels.npy"))
    logits = lambda tag: np.load(os.path.join(work, "out", tag, "logits.npy"))  # noqa: E731
    ref = logits("fp32")
    tags = [os.path.basename(p) for p in sorted(glob.glob(os.path.join(work, "out", "*"))) if os.path.basename(p) != "silero"]
    tags = ["fp32"] + sorted(t for t in tags if t != "fp32")
    fails = []
    print(f"\nMNIST CNN, {len(labels)} held-out test images; ONNX Runtime 1 thread, median latency")
    print(f"{'model':<22} {'size (B)':>9} {'ratio':>6} {'b32 ms':>7} {'b1 ms':>6} {'speedup':>7} {'accuracy':>8} "
          f"{'top-1 agr':>9} {'SQNR dB':>7}  activation zero points")
    for tag in tags:
        lg = logits(tag)
        agree = float(np.mean(lg.argmax(1) == ref.argmax(1)))
        zp = "" if tag == "fp32" else zero_points(os.path.join(work, "models", tag + ".onnx"))
        print(f"{tag:<22} {size(work, tag):>9} {size(work, tag) / size(work, 'fp32'):>6.3f} {ms(work, tag, 'b32'):>7.3f} "
              f"{ms(work, tag, 'b1'):>6.3f} {ms(work, 'fp32', 'b32') / ms(work, tag, 'b32'):>6.2f}x "
              f"{np.mean(lg.argmax(1) == labels):>8.2%} {agree:>9.2%} {sqnr(ref, lg):>7.1f}  {zp}")
        if tag in MIN_AGREE and agree < MIN_AGREE[tag]:
            fails.append(f"{tag}: top-1 agreement {agree:.2%} < {MIN_AGREE[tag]:.0%}")
    s = os.path.join(work, "out", "silero")
    silero = [t for t in ("fp32", "w8", "w8_mse") if os.path.isdir(os.path.join(s, t))]
    prob = {t: np.load(os.path.join(s, t, "output.npy")).ravel() for t in silero}
    p = prob["fp32"]
    print(f"\nSilero VAD v5, {len(p)} chunks of 512 samples (speech in {np.mean(p > 0.5):.0%}), state fed back")
    print(f"{'model':<22} {'size (B)':>9} {'ratio':>6} {'ms/chunk':>8} {'decisions agree':>15} {'max |dp|':>8}")
    for tag in silero:
        t, q = "silero_" + tag, prob[tag]
        agree = float(np.mean((p > 0.5) == (q > 0.5)))
        print(f"{tag:<22} {size(work, t):>9} {size(work, t) / size(work, 'silero_fp32'):>6.3f} {ms(work, t, 'b1'):>8.3f} "
              f"{agree:>15.2%} {np.abs(p - q).max():>8.4f}")
        if tag != "fp32" and agree < MIN_SILERO:
            fails.append(f"silero {tag}: decisions agree {agree:.2%} < {MIN_SILERO:.0%}")
    print("\n" + ("\n".join("FAIL " + f for f in fails) if fails else "all bounds hold"))
    return 1 if fails else 0


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    quick = "--quick" in args
    args = [a for a in args if a != "--quick"]
    if cmd == "inputs":
        inputs(args[0], quick)
    elif cmd == "npz":
        npz(*args)
    elif cmd == "table":
        sys.exit(table(args[0], quick))
    else:
        sys.exit(__doc__)
