#!/usr/bin/python3
"""onnx.checker on one model file: check_model.py MODEL.onnx

Exit 0 when the checker accepts the model (full check, with shape inference; by path, so external data is
found next to the model), 1 with the checker's message when it does not or the file does not parse.
Debian's onnx 1.12 knows opsets up to 17 (IR version 8): a model at a higher opset (blocked int4
DequantizeLinear is opset 21) cannot be checked here, and the script says "skipped: ..." and exits 0.
"""
import os
import sys
import tempfile

import onnx

CHECKER_MAX_OPSET = 17

if len(sys.argv) != 2:
    sys.exit("usage: check_model.py MODEL.onnx")
path = sys.argv[1]
try:
    model = onnx.load(path, load_external_data=False)
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset > CHECKER_MAX_OPSET:
        print(f"skipped: {path}: opset {opset} (IR version {model.ir_version}) is newer than onnx "
              f"{onnx.__version__}'s checker knows (opset {CHECKER_MAX_OPSET})")
        sys.exit(0)
    # check_model(path, full_check=True) would write the inferred shapes back into the model (onnx 1.12):
    # check by path (external data found beside it), then run the strict shape inference of the full
    # check into a scratch file.
    onnx.checker.check_model(path)
    with tempfile.TemporaryDirectory() as scratch:
        onnx.shape_inference.infer_shapes_path(path, os.path.join(scratch, "inferred.onnx"),
                                               check_type=True, strict_mode=True)
except Exception as e:  # DecodeError, ValidationError, shape inference errors, missing files
    msg = " ".join(str(e).split())
    print(f"check_model: {path}: {type(e).__name__}: {msg}", file=sys.stderr)
    sys.exit(1)
print(f"ok: {path} (opset {opset}, IR version {model.ir_version})")
