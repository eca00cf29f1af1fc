#!/usr/bin/env bash
# The whole test suite, as CI runs it: a release build and ctest (the dispatched SIMD path, the "large"
# label included), then the scalar path with QK_ISA=scalar; then one clang build under AddressSanitizer +
# UndefinedBehaviorSanitizer whose library is also instrumented for libFuzzer: a bounded fuzz run over
# every file reader (.npy, .npz, quantized files, safetensors, GGUF, row stores, ONNX), then the suite and the examples'
# quick runs; then the threaded code (the embedding cache, the GEMMs, parallel_for) under ThreadSanitizer.
# After each ctest run, the skipped tests are listed with their reasons. Run from anywhere; builds go to
# build/, build-asan/ and build-tsan/.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${QK_JOBS:-2}
fuzz_seconds=${QK_FUZZ_SECONDS:-45}
step() { printf '\n== %s  [%s]\n' "$*" "$(date +%T)"; }

step "release build"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"
step "tests (release; the \"large\" label included: a 1 GiB quantize and 4.3 GB zip64 archives)"
ctest --test-dir build --output-on-failure -j"$jobs"
python3 scripts/ctest-skips.py build

step "tests on the scalar path (QK_ISA=scalar: every SIMD kernel off)"
QK_ISA=scalar ctest --test-dir build --output-on-failure -j"$jobs" -LE 'package|large'
python3 scripts/ctest-skips.py build

# One clang build serves the sanitizers and the fuzzers: every target under AddressSanitizer +
# UndefinedBehaviorSanitizer, the library also instrumented for libFuzzer's coverage (fuzzer-no-link; the
# fuzz targets add libFuzzer's main). -O1 with line tables only: a third of gcc's -O2 -g build time, and
# stack traces still name the line.
step "sanitizer and fuzzer build (clang; address,undefined; fuzzer-no-link)"
CC=clang CXX=clang++ cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG" \
  -DQK_SANITIZE=fuzzer-no-link,address,undefined -DQK_BUILD_FUZZ=ON \
  -DQK_BUILD_BENCH=OFF -DQK_BUILD_EXAMPLES=ON -DQK_INSTALL=OFF >/dev/null
cmake --build build-asan -j"$jobs"
for target in npy npz qfile safetensors gguf rowstore onnx; do
  step "fuzz: fuzz_$target for ${fuzz_seconds}s"
  corpus=build-asan/corpus-$target
  mkdir -p "$corpus"
  build-asan/tests/fuzz/fuzz_$target -max_total_time="$fuzz_seconds" -print_final_stats=1 \
    "$corpus" tests/fuzz/corpus/$target 2>&1 | tail -n 12
done
step "tests (address,undefined; the examples' quick runs: QAT, GPTQ/AWQ and the kernels end to end)"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs" -LE 'package|large|full-run'
python3 scripts/ctest-skips.py build-asan

step "thread sanitizer build (the hot-row cache and its disk tier, the threaded GEMMs)"
CC=clang CXX=clang++ cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG" -DQK_SANITIZE=thread -DQK_BUILD_TOOLS=OFF \
  -DQK_BUILD_BENCH=OFF -DQK_BUILD_EXAMPLES=OFF -DQK_INSTALL=OFF >/dev/null
cmake --build build-tsan -j"$jobs" --target test_embed test_row_store test_gemm
step "tests (thread: the cache's readers, prefetch worker and stats monitor; threaded GEMMs and parallel_for)"
TSAN_OPTIONS=halt_on_error=1 build-tsan/tests/embed/test_embed --gtest_filter='HotRowCache.*:Prefetcher.*'
TSAN_OPTIONS=halt_on_error=1 build-tsan/tests/files/test_row_store \
  --gtest_filter='RowStoreCache.Concurrent*:RowStoreCache.Prefetch*:BlockReader.*'
TSAN_OPTIONS=halt_on_error=1 build-tsan/tests/kernels/test_gemm \
  --gtest_filter='Gemm.ResultsDoNotDependOnTheThreadCount:Parallel.*'
