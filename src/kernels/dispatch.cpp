// CPU detection (once) and the QK_ISA override.
#include "quantkit/kernels/dispatch.hpp"

#include <cstdlib>
#include <cstring>
#include <mutex>

namespace qk::kernels {

namespace {

Isa probe() {
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  const bool avx2 =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  if (!avx2) return Isa::kScalar;
  const bool vnni = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                    __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
  return vnni ? Isa::kAvx512Vnni : Isa::kAvx2;
#else
  return Isa::kScalar;  // NEON and others: room left for them, not built yet
#endif
}

Isa from_environment(Isa detected) {
  const char* forced = std::getenv("QK_ISA");
  if (forced == nullptr || *forced == '\0') return detected;
  Isa want = detected;
  if (std::strcmp(forced, "scalar") == 0)
    want = Isa::kScalar;
  else if (std::strcmp(forced, "avx2") == 0)
    want = Isa::kAvx2;
  else if (std::strcmp(forced, "avx512vnni") == 0)
    want = Isa::kAvx512Vnni;
  // An unknown name or an ISA this CPU lacks falls back to the detected one: never run what cannot run.
  return static_cast<int>(want) <= static_cast<int>(detected) ? want : detected;
}

std::once_flag g_once;
Isa g_detected = Isa::kScalar;
Isa g_active = Isa::kScalar;

void init() {
  std::call_once(g_once, [] {
    g_detected = probe();
    g_active = from_environment(g_detected);
  });
}

}  // namespace

const char* to_string(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512Vnni:
      return "avx512vnni";
  }
  return "?";
}

Isa detected_isa() {
  init();
  return g_detected;
}

Isa active_isa() {
  init();
  return g_active;
}

bool cpu_supports(Isa isa) { return static_cast<int>(isa) <= static_cast<int>(detected_isa()); }

}  // namespace qk::kernels
