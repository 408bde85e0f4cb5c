// Exact Hamming search over 256-bit codes: popcount kernels, brute force, and a multi-index
// hashing table (Norouzi, Punjani & Fleet, CVPR 2012). Plain C++17 on raw arrays: no
// Python types, no I/O, no global state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "cpu.hpp"

namespace hashmatch {
namespace hamming {

namespace detail {
void* allocate_large(std::size_t bytes);
void free_large(void* p);

// Allocates arrays of 2 MiB or more on huge pages where the OS allows it.
template <class T>
struct LargeAllocator {
  using value_type = T;
  LargeAllocator() = default;
  template <class U>
  LargeAllocator(const LargeAllocator<U>&) {}
  T* allocate(std::size_t n) { return static_cast<T*>(allocate_large(n * sizeof(T))); }
  void deallocate(T* p, std::size_t) { free_large(p); }
  template <class U>
  bool operator==(const LargeAllocator<U>&) const { return true; }
  template <class U>
  bool operator!=(const LargeAllocator<U>&) const { return false; }
};
}  // namespace detail

template <class T>
using LargeVector = std::vector<T, detail::LargeAllocator<T>>;

constexpr int kBits = 256;
constexpr int kBytes = 32;
constexpr int kWords = 4;  // a code is four little-endian uint64 words

// A brute-force distance kernel: out[i] = distance(query, code i) for n codes.
using FlatKernel = void (*)(const std::uint64_t* codes, std::size_t n, const std::uint64_t* query,
                            std::int32_t* out);
// The fastest kernel this CPU runs (AVX-512 VPOPCNTQ where present), or the scalar POPCNT one.
FlatKernel select_flat_kernel(bool portable);
// Candidate verification: the rows among cands[0..n) within radius of q and alive, with their
// distances, in candidate order; returns how many.
using VerifyKernel = std::size_t (*)(const std::uint64_t* codes, const std::uint8_t* alive,
                                     const std::uint32_t* cands, std::size_t n, const std::uint64_t* q,
                                     int radius, std::uint32_t* out_rows, std::int32_t* out_dist);
// The scan and verification clones this build contains (increasing level), and the clone a
// cap picks on this CPU.
// Verification of segment rows (segment.hpp): a dead-row bitmap, nullptr when none are dead.
using SegmentVerifyKernel = std::size_t (*)(const std::uint64_t* codes, const std::uint64_t* dead,
                                            const std::uint32_t* cands, std::size_t n, const std::uint64_t* q,
                                            int radius, std::uint32_t* out_rows, std::int32_t* out_dist);
// The scan and segment verification clones a cap picks on this CPU.
FlatKernel flat_kernel(cpu::Isa cap);
SegmentVerifyKernel segment_verify_kernel(cpu::Isa cap);

namespace detail {
// Bits [start, start + width) of a code, width <= 32.
inline std::uint32_t substring(const std::uint64_t* code, int start, int width) {
  const int word = start >> 6, shift = start & 63;
  std::uint64_t v = code[word] >> shift;
  if (shift + width > 64) v |= code[word + 1] << (64 - shift);
  return static_cast<std::uint32_t>(v & ((std::uint64_t{1} << width) - 1));
}

// Calls f(key') for every key' within Hamming distance `radius` of key over `width` bits,
// each exactly once (subsets of flipped bits in increasing bit order).
template <class F>
void for_each_within(std::uint32_t key, int first_bit, int width, int radius, F& f) {
  f(key);
  if (radius == 0) return;
  for (int b = first_bit; b < width; ++b) for_each_within(key ^ (std::uint32_t{1} << b), b + 1, width, radius - 1, f);
}

// Number of keys for_each_within visits: sum_{i <= radius} C(width, i).
inline double ball_size(int width, int radius) {
  double total = 0, term = 1;
  for (int i = 0; i <= radius && i <= width; ++i) {
    total += term;
    term = term * (width - i) / (i + 1);
  }
  return total;
}

// Cost model of one query (hamming.cpp explains the figures), in nanoseconds.
constexpr double kFlatNsPerRow = 1.9;
constexpr double kProbeNs = 18.0;
constexpr double kCandidateNs = 18.0;
// Forced probing (tests) still stops where enumerating keys would run away.
constexpr double kForcedProbeCap = 4e6;
// Substring count for n codes (hamming.cpp explains the choice).
int auto_substrings(std::size_t n);
}  // namespace detail

std::vector<cpu::Isa> scan_clones();
cpu::Isa scan_clone(cpu::Isa cap);
std::vector<cpu::Isa> verify_clones();
cpu::Isa verify_clone(cpu::Isa cap);

// Batch range-search results in FAISS's layout: query q's hits are [lims[q], lims[q + 1]),
// sorted by (distance, id).
struct RangeResult {
  std::vector<std::int64_t> lims;
  std::vector<std::int32_t> distances;
  std::vector<std::int64_t> ids;
};

struct Options {
  // Substring tables are built once this many live codes are held; below, brute force only.
  std::size_t mih_min_rows;
  // Unindexed rows (adds since the last build) and tombstones tolerated before a rebuild,
  // whatever the size; above it a rebuild happens once they pass a fraction of the built rows.
  std::size_t tail_min_rows;
  // Substring count (at least; raised where the bucket directories would get too large);
  // 0 chooses it from the number of codes at each build.
  int substrings;
  // For tests: probe the tables whenever they exist and probing is bounded, ignoring the
  // cost model that would pick brute force for small sets.
  bool force_mih;
  // For tests: the scalar kernel even where AVX-512 VPOPCNTQ is available.
  bool portable_kernels;
  // The highest kernel clone level to use (cpu.hpp); portable_kernels caps it at POPCNT.
  cpu::Isa isa;
};

Options default_options();

// A set of (code, id) pairs with unique ids, searched exactly at any radius 0..256.
// Const methods may run concurrently with each other, not with add/remove.
class Index {
 public:
  explicit Index(const Options& options = default_options());

  // Adds n codes (n * 32 bytes) with their ids. Throws std::invalid_argument, changing
  // nothing, when an id repeats within the batch or is already held.
  void add(const std::uint8_t* codes, const std::int64_t* ids, std::size_t n);
  // Removes the codes with these ids; unknown ids are ignored. Returns how many were removed.
  std::size_t remove(const std::int64_t* ids, std::size_t n);

  // All codes within `radius` (inclusive) of each of nq queries, on `threads` threads.
  RangeResult range_search(const std::uint8_t* queries, std::size_t nq, int radius, int threads) const;
  // The k nearest codes of each query, ties by id; rows padded with distance -1 / id -1.
  void knn(const std::uint8_t* queries, std::size_t nq, int k, int threads, std::int32_t* distances,
           std::int64_t* ids) const;

  std::size_t size() const { return live_; }
  bool has_tables() const { return !tables_.empty(); }
  int substrings() const { return static_cast<int>(tables_.size()); }
  // Whether a search at this radius probes the tables (else it is brute force).
  bool probes_at(int radius) const;
  // Live codes and ids, sorted by id, into caller buffers of size() * 32 and size().
  void export_rows(std::uint8_t* codes, std::int64_t* ids) const;
  // Bytes held by the index's arrays (codes, ids, flags, tables, tail map estimate).
  std::size_t memory_bytes() const;

 private:
  struct Table {
    int start = 0;                 // first bit of the substring
    int width = 0;                 // bits, <= 32
    LargeVector<std::uint32_t> offsets;  // 2^width + 1: bucket b is rows[offsets[b], offsets[b+1])
    LargeVector<std::uint32_t> rows;     // row numbers grouped by substring value
  };
  struct Hit {
    std::int32_t distance;
    std::int64_t id;
  };

  void rebuild();
  std::size_t tail_limit(std::size_t built) const;
  bool needs_rebuild() const;
  std::vector<std::uint32_t> live_rows_by_id() const;
  bool find_live(std::int64_t id, std::uint32_t* row) const;
  int table_radius(std::size_t t, int radius) const;
  double probe_count(int radius) const;
  void search_one(const std::uint64_t* q, int radius, bool use_tables, std::vector<std::uint32_t>& cands,
                  std::vector<Hit>& hits) const;
  static void sort_hits(std::vector<Hit>& hits);
  void flat_rows(const std::uint64_t* q, int radius, std::size_t begin, std::size_t end,
                 std::vector<Hit>& hits) const;
  void knn_one(const std::uint64_t* q, int k, std::vector<std::uint32_t>& cands, std::vector<Hit>& hits) const;

  Options options_;
  FlatKernel flat_;
  VerifyKernel verify_;
  LargeVector<std::uint64_t> codes_;  // rows * 4 words
  LargeVector<std::int64_t> ids_;
  LargeVector<std::uint8_t> alive_;
  std::size_t built_ = 0;   // rows [0, built_) are sorted by id and, with tables, indexed
  std::size_t live_ = 0;
  std::size_t dead_ = 0;
  std::unordered_map<std::int64_t, std::uint32_t> tail_rows_;  // live ids of rows >= built_
  std::vector<Table> tables_;
};

}  // namespace hamming
}  // namespace hashmatch
