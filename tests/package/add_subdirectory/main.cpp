// Links quantkit through add_subdirectory and quantizes three values.
#include <cstdio>
#include <vector>

#include "quantkit/quantkit.hpp"

int main() {
  const std::vector<float> x{-1.0f, 0.0f, 1.0f};
  const qk::TensorView<const float> view(x.data(), {3});
  const qk::QuantSpec spec;  // 8-bit signed symmetric per tensor
  const qk::QuantParams p = qk::choose_qparams<float>(view, spec);
  std::vector<std::int8_t> q(3);
  qk::quantize<float, std::int8_t>(view, p, q);
  std::printf("codes: %d %d %d\n", q[0], q[1], q[2]);
  return 0;
}
