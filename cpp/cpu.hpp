// Instruction-set levels of the core's per-ISA kernel clones, and which of them this CPU runs.
//
// Each kernel family (the PDQ blur, the Hamming scan and verification) is compiled once per
// level it benefits from, from one inline body, and a caller picks a clone by naming the
// highest level it may use. Nothing here holds state: the same request always picks the same
// clone on the same machine, so tests can run every clone side by side in one process.
#pragma once

#include <cstddef>

namespace hashmatch {
namespace cpu {

// In increasing order; a request means "at most this level".
enum class Isa : int {
  kDefault = 0,  // the baseline x86-64 (or non-x86) build
  kPopcnt = 1,   // POPCNT
  kAvx2 = 2,     // AVX2
  kAvx512 = 3,   // AVX-512 F/BW/VL with VPOPCNTDQ
};
constexpr Isa kBest = Isa::kAvx512;  // no cap: the best clone the CPU runs
constexpr int kIsaCount = 4;

const char* name(Isa isa);
// "default", "popcnt", "avx2" or "avx512"; false for anything else.
bool parse(const char* text, Isa* out);
// Whether this CPU and OS run code built for the level.
bool supported(Isa isa);

// One compiled variant of a kernel: its level and entry point.
template <class Fn>
struct Clone {
  Isa isa;
  Fn fn;
};

// The highest clone at or below `cap` that this CPU runs. Clones are listed in increasing
// level and the first is the default build, which every CPU runs.
template <class Fn, std::size_t N>
const Clone<Fn>& pick(const Clone<Fn> (&clones)[N], Isa cap) {
  std::size_t best = 0;
  for (std::size_t i = 1; i < N; ++i)
    if (static_cast<int>(clones[i].isa) <= static_cast<int>(cap) && supported(clones[i].isa)) best = i;
  return clones[best];
}

}  // namespace cpu
}  // namespace hashmatch
