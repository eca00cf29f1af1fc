#!/usr/bin/env bash
# Installs the Debian bookworm packages quantkit needs to build, test and fuzz (run as root).
# Only packages that are missing are installed, so a second run is quick and needs no network.
set -euo pipefail
packages=(
  build-essential cmake pkg-config
  libeigen3-dev libcli11-dev libfmt-dev nlohmann-json3-dev libzip-dev
  zipcmp zipmerge ziptool  # libzip-dev's CMake package checks that these tools exist (Debian bookworm)
  libgtest-dev libgmock-dev libbenchmark-dev
  liburing-dev  # io_uring for the embedding row store's direct reads (a pread pool runs without it)
  clang libclang-rt-14-dev python3 python3-numpy
  libonnx-dev libprotobuf-dev protobuf-compiler python3-onnx  # ONNX models (issue 22); python3-onnx's checker in tests
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# ONNX Runtime's CPU library for the ONNX tests (tests/onnx): the npm package onnxruntime-node ships it, so it
# goes into the repository-local, gitignored .deps/ort (no install scripts run: the library is in the tarball).
# node and npm come from Debian unless some node is already installed (e.g. nodesource's, which bundles npm).
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ort_dir="$repo/.deps/ort"
if [ ! -f "$ort_dir/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1" ]; then
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "install-deps: installing nodejs npm" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  fi
  echo "install-deps: installing onnxruntime-node 1.30.0 into $ort_dir" >&2
  mkdir -p "$ort_dir"
  npm install --prefix "$ort_dir" --ignore-scripts --no-audit --no-fund onnxruntime-node@1.30.0 >/dev/null
fi
echo "install-deps: all dependencies present" >&2
