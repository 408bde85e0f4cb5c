#include "cpu.hpp"

#include <cstring>

#if defined(__GNUC__) && defined(__x86_64__)
#include <cpuid.h>
#define HM_X86 1
#else
#define HM_X86 0
#endif

namespace hashmatch {
namespace cpu {
namespace {

constexpr const char* kNames[kIsaCount] = {"default", "popcnt", "avx2", "avx512"};

#if HM_X86
// __builtin_cpu_supports has no name for VPOPCNTDQ in GCC 12 on every vendor, so this one
// reads CPUID itself, including the OS's consent to save the ZMM and opmask state.
bool cpu_has_avx512_vpopcnt() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return false;  // OSXSAVE
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const bool avx512 = (b & (1u << 16)) && (b & (1u << 30)) && (b & (1u << 31));  // F, BW, VL
  if (!avx512 || !(c & (1u << 14))) return false;                                  // VPOPCNTDQ
  unsigned lo, hi;
  __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (lo & 0xe6) == 0xe6;  // the OS saves SSE, AVX, opmask and all ZMM state
}
#endif

}  // namespace

const char* name(Isa isa) {
  const int i = static_cast<int>(isa);
  return i >= 0 && i < kIsaCount ? kNames[i] : "unknown";
}

bool parse(const char* text, Isa* out) {
  for (int i = 0; i < kIsaCount; ++i) {
    if (std::strcmp(text, kNames[i]) == 0) {
      *out = static_cast<Isa>(i);
      return true;
    }
  }
  return false;
}

namespace {
bool detect(Isa isa) {
  switch (isa) {
    case Isa::kDefault:
      return true;
#if HM_X86
    case Isa::kPopcnt:
      __builtin_cpu_init();
      return __builtin_cpu_supports("popcnt");
    case Isa::kAvx2:
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx2");  // libgcc also checks the OS saves YMM state
    case Isa::kAvx512:
      return cpu_has_avx512_vpopcnt();
#endif
    default:
      return false;
  }
}
}  // namespace

bool supported(Isa isa) {
  // CPUID traps to the hypervisor on many VMs (microseconds): read it once, then only look up.
  struct Table {
    bool ok[kIsaCount];
    Table() {
      for (int i = 0; i < kIsaCount; ++i) ok[i] = detect(static_cast<Isa>(i));
    }
  };
  static const Table table;
  const int i = static_cast<int>(isa);
  return i >= 0 && i < kIsaCount && table.ok[i];
}

}  // namespace cpu
}  // namespace hashmatch
