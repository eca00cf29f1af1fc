#!/usr/bin/env bash
# The whole test suite, as CI runs it: a release build and ctest (the dispatched SIMD path, the "large"
# label included), then the scalar path with QK_ISA=scalar, a bounded libFuzzer run over the .npy/.npz
# readers, then the suite and the examples' quick runs again under AddressSanitizer +
# UndefinedBehaviorSanitizer, and the threaded code (the embedding cache, the GEMMs, parallel_for) under
# ThreadSanitizer. After each ctest run, the skipped tests are listed with their reasons. Run from
# anywhere; builds go to build/, build-fuzz/, build-asan/ and build-tsan/.
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

step "fuzz: build the libFuzzer targets with clang"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQK_BUILD_FUZZ=ON \
  -DQK_SANITIZE=fuzzer-no-link,address,undefined -DQK_BUILD_TESTS=OFF -DQK_BUILD_TOOLS=OFF \
  -DQK_BUILD_BENCH=OFF -DQK_BUILD_EXAMPLES=OFF -DQK_INSTALL=OFF >/dev/null
cmake --build build-fuzz -j"$jobs"
for target in npy npz qfile safetensors gguf; do
  step "fuzz: fuzz_$target for ${fuzz_seconds}s"
  corpus=build-fuzz/corpus-$target
  mkdir -p "$corpus"
  build-fuzz/tests/fuzz/fuzz_$target -max_total_time="$fuzz_seconds" -print_final_stats=1 \
    "$corpus" tests/fuzz/corpus/$target 2>&1 | tail -n 12
done

step "sanitizer build (address,undefined)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQK_SANITIZE=address,undefined \
  -DQK_BUILD_BENCH=OFF -DQK_BUILD_EXAMPLES=ON -DQK_INSTALL=OFF >/dev/null
cmake --build build-asan -j"$jobs"
step "tests (address,undefined; the examples' quick runs: QAT, GPTQ/AWQ and the kernels end to end)"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs" -LE 'package|large|full-run'
python3 scripts/ctest-skips.py build-asan

step "thread sanitizer build (the hot-row cache, the threaded GEMMs)"
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQK_SANITIZE=thread -DQK_BUILD_TOOLS=OFF \
  -DQK_BUILD_BENCH=OFF -DQK_BUILD_EXAMPLES=OFF -DQK_INSTALL=OFF >/dev/null
cmake --build build-tsan -j"$jobs" --target test_embed test_gemm
step "tests (thread: the cache's readers, prefetch worker and stats monitor; threaded GEMMs and parallel_for)"
TSAN_OPTIONS=halt_on_error=1 build-tsan/tests/embed/test_embed --gtest_filter='HotRowCache.*:Prefetcher.*'
TSAN_OPTIONS=halt_on_error=1 build-tsan/tests/kernels/test_gemm \
  --gtest_filter='Gemm.ResultsDoNotDependOnTheThreadCount:Parallel.*'
