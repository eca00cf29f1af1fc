// The kernel variants this CPU can run (the scalar one always); the others are reported as skipped.
#pragma once

#include <cstdio>
#include <span>
#include <vector>

#include "quantkit/kernels/dispatch.hpp"

namespace qk::kernels::test {

template <class Fn>
std::vector<KernelVariant<Fn>> runnable_variants(std::span<const KernelVariant<Fn>> variants) {
  std::vector<KernelVariant<Fn>> out;
  for (const auto& v : variants) {
    if (cpu_supports(v.isa)) {
      out.push_back(v);
    } else {
      std::printf("[ SKIPPED  ] %s: this CPU lacks %s\n", v.name, to_string(v.isa));
    }
  }
  return out;
}

}  // namespace qk::kernels::test
