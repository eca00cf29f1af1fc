// Run-time CPU dispatch. The CPU is probed once; QK_ISA=scalar|avx2|avx512vnni in the environment (read
// once, at the first call) forces a path, capped to what the CPU supports, so CI can test every path.
// Each kernel family has a registry (a table of {isa, name, function, tile}, all in
// src/kernels/registries.cpp) that drives dispatch, tests and benchmarks. Only the registries and the
// scalar references are public: a per-ISA function is reached through its registry entry, which says
// which ISA it needs, so nothing outside the library can call it by name on a CPU that lacks it.
#pragma once

#include <cstdint>
#include <span>

namespace qk::kernels {

// Ordered from least to most capable; a variant may run when its ISA <= the active one.
// kAvx2 means AVX2 + FMA + F16C; kAvx512Vnni means AVX-512 F/BW/VL + VNNI on top of it.
enum class Isa { kScalar = 0, kAvx2 = 1, kAvx512Vnni = 2 };

const char* to_string(Isa isa);
// The best ISA this CPU supports (probed once).
Isa detected_isa();
// The ISA kernels use: detected_isa(), or QK_ISA when set (never above what the CPU supports).
Isa active_isa();
bool cpu_supports(Isa isa);
// Throws qk::Error naming the valid values when QK_ISA is set to something other than scalar, avx2 or
// avx512vnni (the kernels themselves ignore an unknown value and use the detected ISA; a program can call
// this at start-up to refuse a typo instead).
void check_isa_environment();

// The work a variant does per step, from which testers and benchmarks derive the awkward sizes (0, 1,
// tile - 1, tile, tile + 1, many tiles + a remainder). GEMM kernels: `rows` of W (outputs) and `batch`
// rows of X per register tile, `elements` columns per step along a row. Element-wise kernels: `elements`
// values per step (block formats: the weights of one block).
struct KernelTile {
  std::int64_t rows = 1;
  std::int64_t batch = 1;
  std::int64_t elements = 1;
};

template <class Fn>
struct KernelVariant {
  Isa isa;
  const char* name;
  Fn fn;
  KernelTile tile;
};

// The best variant of a registry that may run under active_isa(); registries list kScalar first.
template <class Fn>
Fn select(std::span<const KernelVariant<Fn>> variants) {
  Fn best = variants.front().fn;
  for (const auto& v : variants) {
    if (static_cast<int>(v.isa) <= static_cast<int>(active_isa())) best = v.fn;
  }
  return best;
}

}  // namespace qk::kernels
