// CPU detection (once) and the QK_ISA override.
#include "quantkit/kernels/dispatch.hpp"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "quantkit/core/error.hpp"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#endif

namespace qk::kernels {

namespace {

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
// CPUID and XGETBV directly: __builtin_cpu_supports lacks "f16c" in clang 14, and the OS must also have
// enabled the YMM (and for AVX-512 the ZMM/opmask) state, which only XCR0 tells.
std::uint64_t xcr0() {
  std::uint32_t eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<std::uint64_t>(edx) << 32) | eax;
}

Isa probe() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return Isa::kScalar;
  const bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28), f16c = c & (1u << 29);
  if (!(fma && osxsave && avx && f16c) || (xcr0() & 0x6) != 0x6) return Isa::kScalar;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(b & (1u << 5))) return Isa::kScalar;  // AVX2
  const bool avx512 = (b & (1u << 16)) && (b & (1u << 30)) && (b & (1u << 31));           // F, BW, VL
  const bool vnni = c & (1u << 11);                                                       // AVX512_VNNI
  return avx512 && vnni && (xcr0() & 0xe6) == 0xe6 ? Isa::kAvx512Vnni : Isa::kAvx2;
}
#else
Isa probe() { return Isa::kScalar; }  // NEON and others: room left for them, not built yet
#endif

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

void check_isa_environment() {
  const char* forced = std::getenv("QK_ISA");
  if (forced == nullptr || *forced == '\0') return;
  for (const Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512Vnni})
    if (std::strcmp(forced, to_string(isa)) == 0) return;
  throw Error(std::string("QK_ISA=") + forced + ": unknown instruction set (scalar, avx2 or avx512vnni)");
}

}  // namespace qk::kernels
