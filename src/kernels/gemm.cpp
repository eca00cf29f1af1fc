// The public gemm() entry points: argument checks, padding of X to the weights' stride, activation
// quantization, the split of W's rows over threads, and the bias; the kernel is the registry's
// (registries.cpp) best variant for the active ISA, chosen once.
#include "quantkit/kernels/gemm.hpp"

#include <cstring>
#include <string>
#include <vector>

#include "quantkit/core/error.hpp"
#include "quantkit/kernels/gemm_kernels.hpp"
#include "quantkit/kernels/parallel.hpp"

namespace qk::kernels {

namespace {

// Rows of W per thread part: a multiple of every kernel's row tile.
constexpr std::int64_t kRowGrain = 48;

template <class Weights>
void check_args(std::span<const float> x, std::int64_t batch, const Weights& w, std::span<float> y,
                std::span<const float> bias, const char* what) {
  if (batch < 0) throw Error(std::string(what) + ": negative batch");
  if (static_cast<std::int64_t>(x.size()) != batch * w.cols) {
    throw Error(std::string(what) + ": x has " + std::to_string(x.size()) + " values, expected batch " +
                std::to_string(batch) + " x " + std::to_string(w.cols) + " columns");
  }
  if (static_cast<std::int64_t>(y.size()) != batch * w.rows) {
    throw Error(std::string(what) + ": y has " + std::to_string(y.size()) + " values, expected batch " +
                std::to_string(batch) + " x " + std::to_string(w.rows) + " rows");
  }
  if (!bias.empty() && static_cast<std::int64_t>(bias.size()) != w.rows) {
    throw Error(std::string(what) + ": bias has " + std::to_string(bias.size()) + " values, expected " +
                std::to_string(w.rows));
  }
}

// x [batch, cols] -> [batch, stride] with zero padding, or x itself when no padding is needed.
const float* padded(std::span<const float> x, std::int64_t batch, std::int64_t cols, std::int64_t stride,
                    std::vector<float>& buffer) {
  if (cols == stride) return x.data();
  buffer.assign(static_cast<std::size_t>(batch * stride), 0.0f);
  for (std::int64_t b = 0; b < batch; ++b)
    std::memcpy(buffer.data() + b * stride, x.data() + b * cols, sizeof(float) * cols);
  return buffer.data();
}

void add_bias(std::span<float> y, std::int64_t batch, std::span<const float> bias) {
  if (bias.empty()) return;
  const std::size_t n = bias.size();
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::size_t o = 0; o < n; ++o) y[static_cast<std::size_t>(b) * n + o] += bias[o];
}

template <class Fn>
void run_rows(std::int64_t rows, int threads, Fn&& fn) {
  parallel_for(rows, threads, kRowGrain, fn);
}

// FP16 and INT8 with float activations: X padded to the weights' stride, then the selected kernel over
// the rows of W. One padding buffer per thread and weight type.
template <class Weights, class Fn>
void gemm_padded(Fn fn, std::span<const float> x, std::int64_t batch, const Weights& w, std::span<float> y,
                 const GemmOptions& options, std::span<const float> bias) {
  thread_local std::vector<float> buffer;
  const float* xp = padded(x, batch, w.cols, w.stride, buffer);
  if (batch > 0)
    run_rows(w.rows, options.threads,
             [&](std::int64_t r0, std::int64_t r1) { fn(xp, batch, w, r0, r1, y.data()); });
  add_bias(y, batch, bias);
}

}  // namespace

void gemm(std::span<const float> x, std::int64_t batch, const Fp32Weights& w, std::span<float> y,
          const GemmOptions& options, std::span<const float> bias) {
  check_args(x, batch, w, y, bias, "gemm fp32");
  static const GemmFp32Fn fn = select(gemm_fp32_variants());
  if (batch > 0 && w.cols == 0) std::fill(y.begin(), y.end(), 0.0f);
  if (batch > 0 && w.cols > 0)
    run_rows(w.rows, options.threads,
             [&](std::int64_t r0, std::int64_t r1) { fn(x.data(), batch, w, r0, r1, y.data()); });
  add_bias(y, batch, bias);
}

void gemm(std::span<const float> x, std::int64_t batch, const Fp16Weights& w, std::span<float> y,
          const GemmOptions& options, std::span<const float> bias) {
  check_args(x, batch, w, y, bias, "gemm fp16");
  static const GemmFp16Fn fn = select(gemm_fp16_variants());
  gemm_padded(fn, x, batch, w, y, options, bias);
}

namespace {

// INT8 and INT4: quantize X (dynamic, or static when the options carry calibrated parameters), then run
// the selected kernel over the rows of W.
template <class Weights, class Fn>
void gemm_quantized(Fn fn, std::span<const float> x, std::int64_t batch, const Weights& w, std::span<float> y,
                    const GemmOptions& options, std::span<const float> bias) {
  // A reference, not the thread_local itself: inside the lambda the name would mean each worker's own copy.
  thread_local QuantizedActivations activations;
  QuantizedActivations& xq = activations;
  quantize_activations(x.data(), batch, w.cols, w.stride,
                       ActivationQuantOptions{options.activations, true, options.static_activations}, xq);
  if (batch > 0)
    run_rows(w.rows, options.threads, [&](std::int64_t r0, std::int64_t r1) { fn(xq, w, r0, r1, y.data()); });
  add_bias(y, batch, bias);
}

}  // namespace

void gemm(std::span<const float> x, std::int64_t batch, const Int8Weights& w, std::span<float> y,
          const GemmOptions& options, std::span<const float> bias) {
  check_args(x, batch, w, y, bias, "gemm int8");
  static const GemmInt8Fn fn = select(gemm_int8_variants());
  gemm_quantized(fn, x, batch, w, y, options, bias);
}

void gemm_float_activations(std::span<const float> x, std::int64_t batch, const Int8Weights& w,
                            std::span<float> y, const GemmOptions& options, std::span<const float> bias) {
  check_args(x, batch, w, y, bias, "gemm int8 (float activations)");
  static const GemmInt8FloatFn fn = select(gemm_int8_float_variants());
  gemm_padded(fn, x, batch, w, y, options, bias);
}

void gemm(std::span<const float> x, std::int64_t batch, const Int4Weights& w, std::span<float> y,
          const GemmOptions& options, std::span<const float> bias) {
  check_args(x, batch, w, y, bias, "gemm int4");
  static const GemmInt4Fn fn = select(gemm_int4_variants());
  gemm_quantized(fn, x, batch, w, y, options, bias);
}

}  // namespace qk::kernels
