// quantkit's side of check_gguf.c: reads a GGUF file with qk::io::GgufFile, dequantizes every tensor with
// qk::ggml::dequantize_row and prints the same "tensor ..." lines as check_gguf.c (name, type, ne, offset,
// sum and sum of squares in double, first 4 values), so that
//   diff <(/tmp/check_gguf F | grep ^tensor) <(/tmp/quantkit_sums F)
// is empty when ggml and quantkit read the same tensors with the same values. Build from the repository
// root after building the library in build/:
//
//   g++ -O2 -std=c++20 -Iinclude tests/data/ggml/quantkit_sums.cpp build/src/libquantkit.a
//       -o /tmp/quantkit_sums   (one line; add the libraries libquantkit.a links, if any)
#include <cinttypes>
#include <cstdio>
#include <exception>
#include <vector>

#include "quantkit/core/ggml_blocks.hpp"
#include "quantkit/io/gguf.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s FILE.gguf\n", argv[0]);
    return 2;
  }
  try {
    const auto file = qk::io::GgufFile::open(argv[1]);
    for (const auto& tensor : file.tensors()) {
      const auto type = static_cast<qk::ggml::Type>(tensor.type);
      std::vector<float> values(static_cast<std::size_t>(tensor.numel()));
      const std::int64_t row = tensor.ne.empty() ? 1 : tensor.ne[0];
      const std::int64_t bytes_per_row = qk::ggml::row_bytes(type, row);
      for (std::int64_t r = 0; row > 0 && r < tensor.numel() / row; ++r) {
        qk::ggml::dequantize_row(type, tensor.data.data() + r * bytes_per_row, row, values.data() + r * row);
      }
      double sum = 0.0, sum_squares = 0.0;
      for (const float v : values) {
        sum += v;
        sum_squares += static_cast<double>(v) * v;
      }
      std::int64_t ne[4] = {1, 1, 1, 1};
      for (std::size_t d = 0; d < tensor.ne.size() && d < 4; ++d) ne[d] = tensor.ne[d];
      std::printf("tensor %s %s ne [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 "] offset %" PRIu64
                  " sum %.17g sumsq %.17g first",
                  tensor.name.c_str(), qk::io::ggml_type_info(tensor.type)->name, ne[0], ne[1], ne[2], ne[3],
                  tensor.offset, sum, sum_squares);
      for (std::size_t j = 0; j < values.size() && j < 4; ++j) std::printf(" %.9g", values[j]);
      std::printf("\n");
    }
  } catch (const std::exception& e) {
    std::printf("quantkit refused %s: %s\n", argv[1], e.what());
    return 1;
  }
  return 0;
}
