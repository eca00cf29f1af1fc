#!/usr/bin/env bash
# The ONNX edge example (issue 22): quantize a trained MNIST CNN and the Silero VAD model with qtool and
# measure them in ONNX Runtime against FP32.
#
#   examples/onnx_edge/run.sh [QTOOL] [WORKDIR] [--quick] [--skip-if-missing]
#
# QTOOL: default build/tools/qtool/qtool. WORKDIR: default a new folder under /tmp. --quick (the CTest
# run): 64 calibration images, 500 test images, one round of 20 timed runs, no --method sweep. Exit 0 when the
# agreement bounds of report.py hold, 1 otherwise, 77 when ONNX Runtime or python's onnx is missing and
# --skip-if-missing is given. Needs node, ONNX Runtime (scripts/install-deps.sh, or $QK_ORT_NODE_MODULES)
# and numpy + onnx ($QK_PYTHON3, default /usr/bin/python3).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
quick="" skip=0 pos=()
for a in "$@"; do
  case $a in --quick) quick=--quick ;; --skip-if-missing) skip=1 ;; *) pos+=("$a") ;; esac
done
qtool=${pos[0]:-$repo/build/tools/qtool/qtool}
work=${pos[1]:-$(mktemp -d /tmp/onnx_edge.XXXXXX)}
py=${QK_PYTHON3:-/usr/bin/python3}
export QK_ORT_NODE_MODULES=${QK_ORT_NODE_MODULES:-$repo/.deps/ort/node_modules}
export QK_PYTHON3=$py
ort="node $repo/tests/onnx/ort_run.js"
runs=200 rounds=5; [[ -n $quick ]] && runs=20 rounds=1

# Skip (77) or fail when the runtime is missing, as tests/onnx's e2e test does.
why=""
"$py" -c "import numpy, onnx" 2>/dev/null || why="$py cannot import numpy and onnx (apt-get install python3-onnx)"
[[ -z $why ]] && ! command -v node >/dev/null && why="no node"
[[ -z $why && ! -e $QK_ORT_NODE_MODULES/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1 ]] &&
  why="no ONNX Runtime in $QK_ORT_NODE_MODULES (run scripts/install-deps.sh)"
if [[ -n $why ]]; then
  if ((skip)); then echo "skipped: $why"; exit 77; fi
  echo "error: $why" >&2; exit 1
fi

rm -rf "$work"/{in,dump,models,out,bench}
mkdir -p "$work"/{dump,models,out,bench}
m=$work/models
cp "$here/data/mnist_cnn.onnx" "$m/fp32.onnx"
cp "$repo/tests/data/onnx/silero_vad_v5.onnx" "$m/silero_fp32.onnx"
"$py" "$here/report.py" inputs "$work" $quick  # in/calib*.npy (batches of 32), in/test.npy, Silero chunks

# (a) Calibration activations: every float value of the FP32 model on each training batch, one .npz per
# batch whose members are named by the ONNX values (plus the input `image`).
for x in "$work"/in/calib*.npy; do
  b=$(basename "$x" .npy)
  $ort "$m/fp32.onnx" "$work/dump/$b" image="$x" --dump-all
  "$py" "$here/report.py" npz "$work/dump/$b" "$x" "$work/dump/$b.npz"
done

# (b) Calibrate per preset: generic (int8 symmetric weights, uint8 affine activations), edgetpu, ane;
# and, in the full run, generic with each range --method.
methods=(); [[ -z $quick ]] && methods=(percentile entropy mse histogram)
for p in generic edgetpu ane; do
  "$qtool" calibrate "$work"/dump/calib*.npz -o "$work/calib_$p.json" --preset $p >/dev/null
done
for meth in "${methods[@]}"; do
  "$qtool" calibrate "$work"/dump/calib*.npz -o "$work/calib_$meth.json" --preset generic --method $meth >/dev/null
done

# (c) Quantize: weight-only int8 (DequantizeLinear per channel), static QDQ per calibration; Silero weight-only.
"$qtool" quantize "$m/fp32.onnx" -o "$m/w8.onnx" >/dev/null
"$qtool" quantize "$m/fp32.onnx" --calib "$work/calib_generic.json" -o "$m/qdq.onnx" >/dev/null
for c in edgetpu ane; do
  "$qtool" quantize "$m/fp32.onnx" --calib "$work/calib_$c.json" -o "$m/qdq_$c.onnx" >/dev/null
done
for c in "${methods[@]}"; do  # the sweep reports a method qtool cannot apply and goes on
  "$qtool" quantize "$m/fp32.onnx" --calib "$work/calib_$c.json" -o "$m/qdq_$c.onnx" >/dev/null ||
    echo "note: --method $c: qtool quantize failed (above); left out of the table"
done
"$qtool" quantize "$m/silero_fp32.onnx" -o "$m/silero_w8.onnx" >/dev/null
# Weight ranges by least squared error instead of min/max (--weight-range mse), on both models.
if [[ -z $quick ]]; then
  "$qtool" quantize "$m/fp32.onnx" --weight-range mse -o "$m/w8_mse.onnx" >/dev/null
  "$qtool" quantize "$m/silero_fp32.onnx" --weight-range mse -o "$m/silero_w8_mse.onnx" >/dev/null
fi

# (d) onnx.checker (full check, with strict shape inference) on every model.
for f in "$m"/*.onnx; do
  "$py" "$repo/tests/onnx/check_model.py" "$f" >/dev/null
done
echo "onnx.checker accepts all $(ls "$m"/*.onnx | wc -l) models"
# What static QDQ wrote: each quantized tensor with its scheme and its error against the FP32 model.
"$qtool" inspect "$m/qdq.onnx" --reference "$m/fp32.onnx"

# (e) ONNX Runtime, 1 thread: logits on the test images (and Silero's 100-chunk stream, state fed back);
# then median latency at batch 32 and batch 1 (Silero: one 512-sample chunk), in interleaved rounds so
# that load from other processes hits every model alike (report.py takes the median of the rounds).
for f in "$m"/*.onnx; do
  t=$(basename "$f" .onnx)
  [[ $t == silero_* ]] && continue
  $ort "$f" "$work/out/$t" image="$work/in/test.npy"
done
st=(state="$work/in/state.npy" sr="$work/in/sr.npy")
for t in fp32 w8 w8_mse; do
  [[ -f $m/silero_$t.onnx ]] || continue
  $ort "$m/silero_$t.onnx" "$work/out/silero/$t" input="$work/in/chunks.npy" "${st[@]}" \
    --steps 100 --split input --feedback stateN:state
done
for round in $(seq "$rounds"); do
  for f in "$m"/*.onnx; do
    t=$(basename "$f" .onnx)
    if [[ $t == silero_* ]]; then
      $ort "$f" "$work/dump/bench" input="$work/in/chunk1.npy" "${st[@]}" --bench $((runs * 5)) | tail -1 >>"$work/bench/$t.b1.json"
    else
      for b in b32 b1; do
        $ort "$f" "$work/dump/bench" image="$work/in/$b.npy" --bench $runs | tail -1 >>"$work/bench/$t.$b.json"
      done
    fi
  done
done
"$py" "$here/report.py" table "$work" $quick
