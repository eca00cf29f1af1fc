// The dispatched GEMV on ggml's blocks (ggml_gemv.hpp): checks, the activation quantization, the variant.
#include "quantkit/kernels/ggml_gemv.hpp"

#include <string>
#include <vector>

#include "quantkit/core/error.hpp"
#include "quantkit/kernels/parallel.hpp"

namespace qk::kernels {

namespace {

// x -> Q8_0 blocks (ggml's quantize_row_q8_0_ref); refuses a block whose float16 scale overflowed.
std::vector<ggml::BlockQ8_0> quantize_q8_0(std::span<const float> x) {
  std::vector<ggml::BlockQ8_0> q(x.size() / ggml::kBlock);
  ggml::quantize_row(ggml::Type::kQ8_0, x.data(), static_cast<std::int64_t>(x.size()),
                     reinterpret_cast<std::byte*>(q.data()));
  for (std::size_t b = 0; b < q.size(); ++b)
    if ((q[b].d & 0x7C00u) == 0x7C00u)
      throw Error("ggml gemv: values " + std::to_string(b * ggml::kBlock) + ".." +
                  std::to_string((b + 1) * ggml::kBlock - 1) +
                  " of x reach 127 * 65520, past the float16 scale of a q8_0 block");
  return q;
}

// Runs fn over parts of the rows on `threads` threads (each part: its rows' blocks and outputs).
template <class Block, class Fn, class XBlock>
void split_rows(Fn fn, std::span<const std::byte> w, std::int64_t rows, std::int64_t cols,
                std::int64_t row_bytes, const XBlock* x_q, std::span<float> y, int threads) {
  const auto* blocks = reinterpret_cast<const Block*>(w.data());
  const std::int64_t per_row = row_bytes / static_cast<std::int64_t>(sizeof(Block));
  parallel_for(rows, threads, 16, [&](std::int64_t r0, std::int64_t r1) {
    fn(blocks + r0 * per_row, r1 - r0, cols, x_q, y.data() + r0);
  });
}

}  // namespace

bool has_ggml_gemv(ggml::Type type) {
  return type == ggml::Type::kQ8_0 || type == ggml::Type::kQ4_0 || type == ggml::Type::kQ4_K;
}

void gemv_ggml(ggml::Type type, std::span<const std::byte> w, std::int64_t rows, std::int64_t cols,
               std::span<const float> x, std::span<float> y, int threads) {
  if (!has_ggml_gemv(type))
    throw Error("ggml gemv: no kernel for " + std::string(ggml::traits(type).name) +
                " weights (q8_0, q4_0 and q4_K have one)");
  if (rows < 0) throw Error("ggml gemv: " + std::to_string(rows) + " rows");
  const std::int64_t row_bytes = ggml::row_bytes(type, cols);  // throws unless cols fits the block
  if (static_cast<std::int64_t>(w.size()) != rows * row_bytes)
    throw Error("ggml gemv: " + std::to_string(w.size()) + " bytes of " +
                std::string(ggml::traits(type).name) + " weights for a " + std::to_string(rows) + " x " +
                std::to_string(cols) + " matrix (" + std::to_string(rows * row_bytes) + " expected)");
  if (static_cast<std::int64_t>(x.size()) != cols || static_cast<std::int64_t>(y.size()) != rows)
    throw Error("ggml gemv: x has " + std::to_string(x.size()) + " and y " + std::to_string(y.size()) +
                " values for a " + std::to_string(rows) + " x " + std::to_string(cols) + " matrix");
  if (type == ggml::Type::kQ4_K) {
    std::vector<BlockQ8K> q(static_cast<std::size_t>(cols / ggml::kSuperBlock));
    quantize_row_q8_k(x.data(), cols, q.data());
    static const GemvQ4_KFn fn = select(gemv_q4_k_variants());
    split_rows<ggml::BlockQ4_K>(fn, w, rows, cols, row_bytes, q.data(), y, threads);
    return;
  }
  const std::vector<ggml::BlockQ8_0> q = quantize_q8_0(x);
  if (type == ggml::Type::kQ8_0) {
    static const GemvQ8_0Fn fn = select(gemv_q8_0_variants());
    split_rows<ggml::BlockQ8_0>(fn, w, rows, cols, row_bytes, q.data(), y, threads);
  } else {
    static const GemvQ4_0Fn fn = select(gemv_q4_0_variants());
    split_rows<ggml::BlockQ4_0>(fn, w, rows, cols, row_bytes, q.data(), y, threads);
  }
}

}  // namespace qk::kernels
