#!/usr/bin/python3
"""ONNX end to end: qtool quantizes ONNX models, onnx.checker accepts what it writes, ONNX Runtime runs it,
and the outputs agree with the FP32 model's (issue 22).

  run_onnx_e2e.py --qtool PATH --workdir DIR [--ort-modules DIR] [--node NODE] [--only NAME...]
                  [--skip-if-missing] [--min-speedup X]

Steps: the hand-made models of onnx_models.py (Conv classifier, Gemm, MatMul, ConvTranspose, If subgraph,
external data, an opset-11 export with Constant weights, LSTM, a bigger conv net) and the Silero VAD model
(tests/data/onnx) are quantized weight-only (int8 per channel); the conv nets also statically (activations
dumped with ort_run.js --dump-all, qtool calibrate --preset generic, qtool quantize --calib), MatMul also
as blocked int4 and --dynamic. Every written model goes through check_model.py and ONNX Runtime (1 thread),
whose outputs are compared with FP32's by SQNR against the bounds below. Silero runs 100 chunks of a
seeded test signal with its state fed back, and its speech decisions (p > 0.5) must agree on >= 98%.
Bad models (onnx_models.py --bad) must make qtool exit 1 with one stderr line and no output file.
Prints one line per check and a table; exit 0 when all pass, 1 otherwise, 77 (ctest's skip) when ONNX
Runtime or python's onnx is missing and --skip-if-missing is given. Needs numpy and onnx (Debian's
/usr/bin/python3); ONNX Runtime comes from scripts/install-deps.sh (.deps/ort).
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SILERO = os.path.join(REPO, "tests", "data", "onnx", "silero_vad_v5.onnx")
ORT_LIB = "onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1"

# Output SQNR bounds (dB) by rewrite; the measured values are printed (see the table at the end).
MIN_SQNR = {"int8": 30.0, "static": 15.0, "int4": 15.0, "dynamic": 20.0}
MAX_SIZE_RATIO = 0.3       # weight-only int8 file / FP32 file, for the conv net big enough to measure it
SILERO_AGREEMENT = 0.98    # share of chunks whose speech decision (p > 0.5) agrees with FP32
STATIC_MODELS = ("conv_classifier", "bench_convnet")
FLOAT, DQ_OPS = 1, ("DequantizeLinear",)


class E2E:
    def __init__(self, args):
        self.a = args
        self.failures, self.table = [], []
        self.env = dict(os.environ, QK_ORT_NODE_MODULES=args.ort_modules, QK_PYTHON3=sys.executable)

    # ---- bookkeeping ----
    def expect(self, ok, what):
        print(("ok    " if ok else "FAIL  ") + what, flush=True)
        if not ok:
            self.failures.append(what)
        return ok

    def rel(self, path):
        return os.path.relpath(path, self.a.workdir) if path.startswith(self.a.workdir) else path

    def run(self, cmd):
        return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=self.env)

    def qtool(self, *args):
        """qtool with args; a failure (any non-zero exit) is recorded and returns None."""
        r = self.run([self.a.qtool, *args])
        if not self.expect(r.returncode == 0, f"qtool {' '.join(map(str, args))}"
                           + ("" if r.returncode == 0 else f": exit {r.returncode}: {r.stderr.strip()[-600:]}")):
            return None
        return r

    def check_model(self, path):
        r = self.run([sys.executable, os.path.join(HERE, "check_model.py"), path])
        return self.expect(r.returncode == 0, f"check_model {self.rel(path)}: "
                           + (r.stdout.strip() or r.stderr.strip()))

    def ort(self, model, inputs, outdir, *extra):
        """Runs model on {name: .npy path} with ort_run.js; returns {output name: array}, or None on failure."""
        shutil.rmtree(outdir, ignore_errors=True)
        r = self.run([self.a.node, os.path.join(HERE, "ort_run.js"), model, outdir,
                      *[f"{k}={v}" for k, v in inputs.items()], *extra])
        if not self.expect(r.returncode == 0, f"ONNX Runtime runs {self.rel(model)}"
                           + ("" if r.returncode == 0 else f": {r.stderr.strip()}")):
            return None
        self.last_stdout = r.stdout
        with open(os.path.join(outdir, "outputs.json")) as f:
            return {o["name"]: np.load(os.path.join(outdir, o["file"])) for o in json.load(f)}

    # ---- helpers on models ----
    @staticmethod
    def sqnr(ref, out):
        ref, err = ref.astype(np.float64), ref.astype(np.float64) - out.astype(np.float64)
        return float("inf") if not err.any() else 10 * np.log10(np.sum(ref * ref) / np.sum(err * err))

    @staticmethod
    def dir_bytes(d):
        return sum(os.path.getsize(p) for p in glob.glob(os.path.join(d, "*")))

    @staticmethod
    def graphs(model):
        """Every graph of the model, subgraphs (If/Loop/Scan bodies) included."""
        import onnx
        todo = [model.graph]
        while todo:
            g = todo.pop()
            yield g
            for n in g.node:
                for at in n.attribute:
                    todo += [at.g] if at.type == onnx.AttributeProto.GRAPH else list(at.graphs)

    def tensors(self, path):
        """{name: TensorProto} of the initializers and Constant values of every graph (no external data read)."""
        import onnx
        m = onnx.load(path, load_external_data=False)
        out = {}
        for g in self.graphs(m):
            out.update({t.name: t for t in g.initializer})
            out.update({n.output[0]: at.t for n in g.node if n.op_type == "Constant" for at in n.attribute if at.name == "value"})
        return m, out

    def float_weights_left(self, path, names):
        """The names of `names` still held as float tensors in the model at path."""
        _, t = self.tensors(path)
        return [n for n in names if n in t and t[n].data_type == FLOAT]

    def op_counts(self, path):
        import onnx
        counts = {}
        for g in self.graphs(onnx.load(path, load_external_data=False)):
            for n in g.node:
                counts[n.op_type] = counts.get(n.op_type, 0) + 1
        return counts

    # ---- the checks ----
    def quantize(self, m, mode, *options, tag=None):
        """qtool quantize model m (a manifest entry) into its own folder (named by tag, else mode); checker;
        ONNX Runtime's outputs against FP32's (SQNR >= MIN_SQNR[mode]). Returns the output path or None."""
        src = os.path.join(self.models, m["file"])
        tag = tag or mode
        outdir = os.path.join(self.a.workdir, "quantized", f"{m['name']}.{tag}")
        shutil.rmtree(outdir, ignore_errors=True)
        os.makedirs(outdir)
        out = os.path.join(outdir, "model.onnx")
        r = self.qtool("quantize", src, "-o", out, "--json", *options)
        if r is None:
            return None
        try:
            json.loads(r.stdout)
            self.expect(True, f"{m['name']} {mode}: --json prints JSON")
        except ValueError:
            self.expect(False, f"{m['name']} {mode}: --json prints JSON, got {r.stdout[:200]!r}")
        self.check_model(out)
        worst = float("inf")
        for k, case in enumerate(m["cases"]):
            inputs = {n: os.path.join(self.models, f) for n, f in case.items()}
            ref = self.ort(src, inputs, os.path.join(self.a.workdir, "ort", f"{m['name']}.fp32.{k}"))
            got = self.ort(out, inputs, os.path.join(self.a.workdir, "ort", f"{m['name']}.{tag}.{k}"))
            if ref is None or got is None:
                return out
            for name in m["outputs"]:
                worst = min(worst, self.sqnr(ref[name], got[name]))
        ratio = self.dir_bytes(outdir) / self.fp32_bytes(m)
        self.table.append((m["name"], tag, worst, ratio))
        self.expect(worst >= MIN_SQNR[mode], f"{m['name']} {tag}: output SQNR {worst:.1f} dB >= {MIN_SQNR[mode]} dB "
                    f"(file {ratio:.3f}x FP32)")
        return out

    def plan(self, m):
        """qtool mixed MODEL.onnx plans a format per weight (layers = weight names); quantize --plan writes
        each weight as planned: int4 blocks where the plan says 4g32, int8 where it says 8."""
        import onnx
        src = os.path.join(self.models, m["file"])
        plan = os.path.join(self.a.workdir, f"{m['name']}.plan.json")
        if self.qtool("mixed", src, "--budget-bits", "6", "--candidates", "8,4g32", "-o", plan) is None:
            return
        with open(plan) as f:
            formats = {layer["name"]: layer["format"] for layer in json.load(f)["layers"]}
        self.expect(set(formats) == set(m["weights"]), f"{m['name']} plan: one layer per weight {sorted(formats)}")
        out = self.quantize(m, "int4", "--plan", plan, tag="plan")
        if out is None:
            return
        types = {t.name: t.data_type for g in self.graphs(onnx.load(out)) for t in g.initializer}
        for name, fmt in formats.items():
            want = onnx.TensorProto.INT8 if fmt == "8" else 22  # int4 (onnx 1.12 has no name for it)
            self.expect(types.get(name + "_quantized") == want,
                        f"{m['name']} plan: {name} planned {fmt}, written as type {types.get(name + '_quantized')}")

    def fp32_bytes(self, m):
        return sum(os.path.getsize(p) for p in glob.glob(os.path.join(self.models, m["file"] + "*")))

    def weight_only(self, m):
        out = self.quantize(m, "int8")
        if out is None:
            return
        left = self.float_weights_left(out, m["weights"])
        self.expect(not left, f"{m['name']} int8: every eligible weight quantized (float left: {left})")
        if m["name"] == "old_opset11":
            opset = max(o.version for o in self.tensors(out)[0].opset_import if o.domain in ("", "ai.onnx"))
            self.expect(opset >= 13, f"old_opset11 int8: opset raised to {opset} >= 13")
        if m["name"] == "bench_convnet":
            ratio = self.table[-1][3]
            self.expect(ratio <= MAX_SIZE_RATIO, f"bench_convnet int8: file {ratio:.3f}x FP32 <= {MAX_SIZE_RATIO}x")

    def static(self, m):
        """Dumps activations of the calibration inputs, calibrates (preset generic), quantizes with --calib."""
        src = os.path.join(self.models, m["file"])
        npzs = []
        for k, case in enumerate(m["calib"]):
            inputs = {n: os.path.join(self.models, f) for n, f in case.items()}
            acts = self.ort(src, inputs, os.path.join(self.a.workdir, "dump", f"{m['name']}.{k}"), "--dump-all")
            if acts is None:
                return
            acts.update({n: np.load(p) for n, p in inputs.items()})  # the graph inputs are activations too
            npzs.append(os.path.join(self.a.workdir, "dump", f"{m['name']}.acts{k}.npz"))
            np.savez(npzs[-1], **acts)
        calib = os.path.join(self.a.workdir, "dump", f"{m['name']}.calib.json")
        if self.qtool("calibrate", *npzs, "-o", calib, "--preset", "generic") is None:
            return
        out = self.quantize(m, "static", "--calib", calib)
        if out is None:
            return
        ops = self.op_counts(out)
        self.expect(ops.get("QuantizeLinear", 0) > 0, f"{m['name']} static: QuantizeLinear nodes on activations ({ops})")
        case = {n: os.path.join(self.models, f) for n, f in m["cases"][0].items()}
        ms = {}
        for tag, model in (("fp32", src), ("static", out)):
            if self.ort(model, case, os.path.join(self.a.workdir, "ort", f"{m['name']}.bench"), "--bench", 50) is None:
                return
            ms[tag] = json.loads(self.last_stdout.strip().splitlines()[-1])["median_ms"]
        speedup = ms["fp32"] / ms["static"]
        print(f"      {m['name']}: ONNX Runtime, 1 thread, median of 50: FP32 {ms['fp32']:.3f} ms, "
              f"static QDQ {ms['static']:.3f} ms, {speedup:.2f}x")
        if self.a.min_speedup:
            self.expect(speedup >= self.a.min_speedup, f"{m['name']} static: {speedup:.2f}x >= {self.a.min_speedup}x")

    def options(self):
        """--include/--exclude, --external-data on the conv classifier."""
        byname = {m["name"]: m for m in self.manifest}
        if "conv_classifier" in byname:
            m = byname["conv_classifier"]
            out = self.quantize(m, "int8", "--exclude", "fc.*", tag="exclude")
            if out:
                self.expect(self.float_weights_left(out, ["fc.weight", "conv2.weight"]) == ["fc.weight"],
                            "--exclude 'fc.*': fc.weight stays float, conv2.weight does not")
            out = self.quantize(m, "int8", "--include", "conv1.*", tag="include")
            if out:
                self.expect(self.float_weights_left(out, ["conv1.weight", "conv2.weight"]) == ["conv2.weight"],
                            "--include 'conv1.*': only conv1.weight quantized")
            out = self.quantize(m, "int8", "--external-data", "always", tag="ext-always")
            if out:
                _, t = self.tensors(out)
                ext = [n for n, x in t.items() if x.data_location == 1]
                self.expect(ext and len(os.listdir(os.path.dirname(out))) > 1,
                            f"--external-data always: tensors in an external file ({len(ext)})")
        if "conv_classifier_ext" in byname:
            out = self.quantize(byname["conv_classifier_ext"], "int8", "--external-data", "never", tag="ext-never")
            if out:
                _, t = self.tensors(out)
                ext = [n for n, x in t.items() if x.data_location == 1]
                self.expect(not ext and os.listdir(os.path.dirname(out)) == ["model.onnx"],
                            f"--external-data never on an external-data model: one self-contained file ({ext})")

    def inspect(self, m, quantized):
        src = os.path.join(self.models, m["file"])
        for args in ([src, "--json"], [quantized, "--reference", src, "--json"]):
            r = self.qtool("inspect", *args)
            if r is not None:
                try:
                    json.loads(r.stdout)
                    self.expect(True, f"qtool inspect {os.path.basename(args[0])}: JSON")
                except ValueError:
                    self.expect(False, f"qtool inspect {os.path.basename(args[0])}: JSON, got {r.stdout[:200]!r}")

    def bad_inputs(self):
        bad_dir = os.path.join(self.a.workdir, "bad")
        self.run([sys.executable, os.path.join(HERE, "onnx_models.py"), "--bad", bad_dir])
        with open(os.path.join(bad_dir, "bad.json")) as f:
            bad = json.load(f)
        for name, why in bad.items():
            src = os.path.join(bad_dir, name + ".onnx")
            outdir = os.path.join(self.a.workdir, "bad_out", name)
            shutil.rmtree(outdir, ignore_errors=True)
            os.makedirs(outdir)
            for args in (["quantize", src, "-o", os.path.join(outdir, "model.onnx")], ["inspect", src, "--json"]):
                r = self.run([self.a.qtool, *args])
                lines = r.stderr.strip().splitlines()
                self.expect(r.returncode == 1 and len(lines) == 1 and not os.listdir(outdir),
                            f"bad input {name} ({why}): qtool {args[0]} exits 1 (got {r.returncode}) with one line "
                            f"({len(lines)}: {r.stderr.strip()[:300]!r}) and no output ({os.listdir(outdir)})")

    @staticmethod
    def speech_like(t, sr=16000):
        """Three voiced segments (0.3-1.0 s, 1.5-2.1 s, 2.5-3.0 s) of a vowel-like sound, peak 0.5: a 105..160 Hz
        harmonic series with vibrato whose harmonics are shaped by two formants that change every 0.2 s."""
        f0 = 130 + 25 * np.sin(2 * np.pi * 0.7 * t) + 4 * np.sin(2 * np.pi * 5.5 * t)
        phase = 2 * np.pi * np.cumsum(f0) / sr
        vowels = np.array([(700, 1200), (300, 2300), (500, 1000), (400, 1900)])  # (F1, F2) in Hz
        f1, f2 = vowels[(t / 0.2).astype(int) % len(vowels)].T
        x = np.zeros_like(t)
        for k in range(1, 40):
            fk = k * f0
            x += (1 / (1 + ((fk - f1) / 150) ** 2) + 0.6 / (1 + ((fk - f2) / 200) ** 2) + 0.02) * np.sin(k * phase)
        envelope = np.zeros_like(t)
        for a, b in ((0.3, 1.0), (1.5, 2.1), (2.5, 3.0)):  # 30 ms fades, a slow 3 Hz swell
            m = (t >= a) & (t < b)
            envelope[m] = np.minimum(1, np.minimum(t[m] - a, b - t[m]) / 0.03) * (0.7 + 0.3 * np.sin(2 * np.pi * 3 * t[m]))
        x *= envelope
        return 0.5 * x / np.abs(x).max()

    def silero(self):
        """100 chunks (3.2 s) of a speech-like signal plus seeded noise through FP32 and weight-only INT8 Silero
        VAD, state fed back; the speech decisions (p > 0.5) must agree."""
        work = os.path.join(self.a.workdir, "silero")
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        sr, n = 16000, 100
        t = np.arange(n * 512) / sr
        x = self.speech_like(t) + 0.003 * np.random.default_rng(2024).standard_normal(t.size)
        np.save(os.path.join(work, "chunks.npy"), x.astype(np.float32).reshape(n, 1, 512))
        np.save(os.path.join(work, "state.npy"), np.zeros((2, 1, 128), np.float32))
        np.save(os.path.join(work, "sr.npy"), np.array(sr, np.int64))
        inputs = {k: os.path.join(work, f"{v}.npy") for k, v in (("input", "chunks"), ("state", "state"), ("sr", "sr"))}
        out = os.path.join(work, "int8", "model.onnx")
        os.makedirs(os.path.dirname(out))
        if self.qtool("quantize", SILERO, "-o", out) is None:
            return
        self.check_model(out)
        stream = ["--steps", n, "--split", "input", "--feedback", "stateN:state"]
        ref = self.ort(SILERO, inputs, os.path.join(work, "fp32.out"), *stream)
        got = self.ort(out, inputs, os.path.join(work, "int8.out"), *stream)
        if ref is None or got is None:
            return
        p, q = ref["output"].ravel(), got["output"].ravel()
        agree = np.mean((p > 0.5) == (q > 0.5))
        ratio = self.dir_bytes(os.path.dirname(out)) / os.path.getsize(SILERO)
        self.table.append(("silero_vad_v5", "int8", self.sqnr(p, q), ratio))
        self.expect(0.3 < np.mean(p > 0.5) < 0.9, "silero fp32: the test signal has speech and silence")
        print(f"      silero: speech in {np.mean(p > 0.5):.0%} of chunks (FP32); max |p_fp32 - p_int8| "
              f"{np.abs(p - q).max():.4f}")
        self.expect(agree >= SILERO_AGREEMENT, f"silero int8: decisions agree on {agree:.1%} >= {SILERO_AGREEMENT:.0%}")

    def main(self):
        a = self.a
        self.models = os.path.join(a.workdir, "models")
        r = self.run([sys.executable, os.path.join(HERE, "onnx_models.py"), self.models])
        if not self.expect(r.returncode == 0, f"onnx_models.py writes the test models {r.stderr.strip()}"):
            return 1
        with open(os.path.join(self.models, "manifest.json")) as f:
            self.manifest = [m for m in json.load(f) if not a.only or m["name"] in a.only]
        for m in self.manifest:
            self.check_model(os.path.join(self.models, m["file"]))
            self.weight_only(m)
            if m["name"] in STATIC_MODELS:
                self.static(m)
            if m["name"] == "matmul":
                out = self.quantize(m, "int4", "--bits", "4", "--group-size", "32")
                if out:
                    self.expect(self.op_counts(out).get("DequantizeLinear", 0) > 0, "matmul int4: DequantizeLinear")
                self.plan(m)
                out = self.quantize(m, "dynamic", "--dynamic")
                if out:
                    ops = self.op_counts(out)
                    self.expect(ops.get("MatMulInteger", 0) + ops.get("DynamicQuantizeMatMul", 0) > 0,
                                f"matmul dynamic: MatMulInteger or DynamicQuantizeMatMul ({ops})")
            if m["name"] == "conv_classifier":
                self.inspect(m, os.path.join(a.workdir, "quantized", "conv_classifier.int8", "model.onnx"))
        if not a.only:
            self.options()
            self.bad_inputs()
            self.silero()
        print("\nmodel                 rewrite   output SQNR (dB)  file / FP32")
        for name, mode, db, ratio in self.table:
            print(f"{name:<21} {mode:<9} {db:>16.1f}  {ratio:>10.3f}")
        print(f"\n{len(self.failures)} failure(s)" + "".join(f"\n  {f}" for f in self.failures))
        return 1 if self.failures else 0


def missing_runtime(args):
    """Why ONNX Runtime or python's onnx cannot be used, or None."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        return f"{sys.executable} cannot import onnx (apt-get install python3-onnx)"
    if shutil.which(args.node) is None:
        return f"no {args.node} (apt-get install nodejs npm)"
    if not os.path.exists(os.path.join(args.ort_modules, ORT_LIB)):
        return f"no ONNX Runtime in {args.ort_modules} (run scripts/install-deps.sh)"
    return None


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--qtool", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--ort-modules", default=os.environ.get("QK_ORT_NODE_MODULES",
                                                            os.path.join(REPO, ".deps", "ort", "node_modules")))
    ap.add_argument("--node", default="node")
    ap.add_argument("--only", nargs="*", help="only these hand-made models (no options, bad inputs or Silero)")
    ap.add_argument("--skip-if-missing", action="store_true", help="exit 77 when ONNX Runtime or onnx is missing")
    ap.add_argument("--min-speedup", type=float, default=0.0, help="require static QDQ this much faster than FP32")
    args = ap.parse_args()
    args.ort_modules = os.path.abspath(args.ort_modules)
    args.workdir = os.path.abspath(args.workdir)
    why = missing_runtime(args)
    if why:
        print(("skipped: " if args.skip_if_missing else "error: ") + why)
        sys.exit(77 if args.skip_if_missing else 1)
    os.makedirs(args.workdir, exist_ok=True)
    sys.exit(E2E(args).main())
