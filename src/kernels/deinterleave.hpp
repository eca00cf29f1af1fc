// x split into its even and odd elements (x[2i] and x[2i+1]) for the SIMD block-format GEMVs: a code
// byte holds an even element's code in its low nibble and the next odd one's in its high nibble. Internal
// linkage on purpose (as simd_x86.hpp): files compiled with different ISA flags each get their own copy,
// never one merged by the linker.
#pragma once

#include <cstdint>
#include <vector>

namespace {

class DeinterleavedX {
 public:
  DeinterleavedX(const float* x, std::int64_t n) : v_(static_cast<std::size_t>(n)), half_(n / 2) {
    for (std::int64_t i = 0; i < half_; ++i) {
      v_[static_cast<std::size_t>(i)] = x[2 * i];
      v_[static_cast<std::size_t>(half_ + i)] = x[2 * i + 1];
    }
  }
  const float* even() const { return v_.data(); }
  const float* odd() const { return v_.data() + half_; }

 private:
  std::vector<float> v_;
  std::int64_t half_;
};

}  // namespace
