// Value-parameterised tests over a kernel registry (XNNPACK's per-family testers are the model): one test
// instance per registered variant, named after it, skipped with GTEST_SKIP and the reason when this CPU
// lacks the variant's ISA, so skips are counted per variant. Sizes come from the variant's tile.
//
//   class QuantizeI8 : public VariantTest<QuantizeToI8Fn> {};
//   TEST_P(QuantizeI8, MatchesTheReference) { variant().fn(...); }
//   INSTANTIATE_TEST_SUITE_P(Variants, QuantizeI8, ::testing::ValuesIn(quantize_i8_variants()),
//   VariantName());
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "quantkit/kernels/dispatch.hpp"

namespace qk::kernels {

// gtest prints a parameter with this (found by argument-dependent lookup) instead of its raw bytes.
template <class Fn>
void PrintTo(const KernelVariant<Fn>& v, std::ostream* os) {
  *os << v.name << " (" << to_string(v.isa) << ")";
}

namespace test {

template <class Fn>
class VariantTest : public ::testing::TestWithParam<KernelVariant<Fn>> {
 protected:
  void SetUp() override {
    const KernelVariant<Fn>& v = this->GetParam();
    if (!cpu_supports(v.isa)) GTEST_SKIP() << v.name << ": this CPU lacks " << to_string(v.isa);
  }
  const KernelVariant<Fn>& variant() const { return this->GetParam(); }
};

// The test instance's name: the variant's, with what gtest does not allow in a name turned into '_'.
struct VariantName {
  template <class Fn>
  std::string operator()(const ::testing::TestParamInfo<KernelVariant<Fn>>& info) const {
    std::string name = info.param.name;
    for (char& c : name)
      if (std::isalnum(static_cast<unsigned char>(c)) == 0) c = '_';
    return name;
  }
};

// The sizes a step of `tile` makes awkward: 0, 1, tile - 1, tile, tile + 1 and three tiles plus one
// (several full steps and a remainder), those >= smallest, sorted, each once.
inline std::vector<std::int64_t> tile_sizes(std::int64_t tile, std::int64_t smallest = 0) {
  std::vector<std::int64_t> sizes = {0, 1, tile - 1, tile, tile + 1, 3 * tile + 1};
  std::erase_if(sizes, [&](std::int64_t n) { return n < smallest; });
  std::sort(sizes.begin(), sizes.end());
  sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
  return sizes;
}

// A family's fixed sizes followed by those of the variant's element tile (duplicates removed).
inline std::vector<std::int64_t> with_tile_sizes(std::vector<std::int64_t> fixed, const KernelTile& tile) {
  for (const std::int64_t n : tile_sizes(tile.elements))
    if (std::find(fixed.begin(), fixed.end(), n) == fixed.end()) fixed.push_back(n);
  return fixed;
}

inline std::uint32_t random_seed() {
  return static_cast<std::uint32_t>(::testing::UnitTest::GetInstance()->random_seed());
}

}  // namespace test
}  // namespace qk::kernels
