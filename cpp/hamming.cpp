#include "hamming.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <limits>
#include <numeric>
#include <queue>
#include <stdexcept>
#include <utility>

#include "parallel.hpp"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace hashmatch {
namespace hamming {
namespace {

// Popcount needs the POPCNT instruction to be fast: the baseline x86-64 build would call a
// bit-twiddling helper instead (14.7 ns a code against 1.4 for brute force, measured). Each
// kernel is compiled per level from one inline body, and the index picks a clone with a cap
// (cpu.hpp), as cpp/pdq.cpp does for the blur: named clones, not target_clones, so that
// every clone can be run and tested on one CPU.
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define HM_POPCNT __attribute__((target("popcnt")))
#define HM_VPOPCNT __attribute__((target("popcnt,avx2,avx512f,avx512vl,avx512bw,avx512vpopcntdq")))
#define HM_HAVE_CLONES 1
#define HM_INLINE inline __attribute__((always_inline))
#else
#define HM_HAVE_CLONES 0
#define HM_INLINE inline
#endif

inline void load_code(const std::uint8_t* bytes, std::uint64_t* words) { std::memcpy(words, bytes, kBytes); }

HM_INLINE int popcount4(const std::uint64_t* a, const std::uint64_t* b) {
  return __builtin_popcountll(a[0] ^ b[0]) + __builtin_popcountll(a[1] ^ b[1]) +
         __builtin_popcountll(a[2] ^ b[2]) + __builtin_popcountll(a[3] ^ b[3]);
}

HM_INLINE void flat_body(const std::uint64_t* codes, std::size_t n, const std::uint64_t* q, std::int32_t* out) {
  for (std::size_t i = 0; i < n; ++i) out[i] = popcount4(codes + i * kWords, q);
}

void flat_default(const std::uint64_t* codes, std::size_t n, const std::uint64_t* q, std::int32_t* out) {
  flat_body(codes, n, q, out);
}

#if HM_HAVE_CLONES
HM_POPCNT
void flat_popcnt(const std::uint64_t* codes, std::size_t n, const std::uint64_t* q, std::int32_t* out) {
  flat_body(codes, n, q, out);
}

// With AVX-512 VPOPCNTQ, GCC vectorises the scan: 0.75 ns a code against 1.35 with scalar
// POPCNT (and FAISS IndexBinaryFlat's 0.92), 200 queries on 100k codes, one thread.
HM_VPOPCNT
void flat_vpopcnt(const std::uint64_t* codes, std::size_t n, const std::uint64_t* q, std::int32_t* out) {
  flat_body(codes, n, q, out);
}
#endif

constexpr cpu::Clone<FlatKernel> kScanClones[] = {
    {cpu::Isa::kDefault, flat_default},
#if HM_HAVE_CLONES
    {cpu::Isa::kPopcnt, flat_popcnt},
    {cpu::Isa::kAvx512, flat_vpopcnt},
#endif
};

}  // namespace

FlatKernel select_flat_kernel(bool portable) {
  return cpu::pick(kScanClones, portable ? cpu::Isa::kPopcnt : cpu::kBest).fn;
}

namespace {

// Verifies candidate rows with prefetching: buckets scatter them over the code array, so each
// is a cache miss, and keeping several in flight hides most of the latency.
// How many items ahead the probing passes prefetch: at 10M codes, radius 31, one thread,
// 8 ahead took 165 us a query, 16 took 146 us and 32 took 147 us.
constexpr std::size_t kAhead = 16;

HM_INLINE std::size_t verify_body(const std::uint64_t* codes, const std::uint8_t* alive, const std::uint32_t* cands,
                                  std::size_t n, const std::uint64_t* q, int radius, std::uint32_t* out_rows,
                                  std::int32_t* out_dist) {
  std::size_t found = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (i + kAhead < n) __builtin_prefetch(codes + std::size_t{cands[i + kAhead]} * kWords);
    const std::uint32_t row = cands[i];
    const int d = popcount4(codes + std::size_t{row} * kWords, q);
    if (d <= radius && alive[row]) {
      out_rows[found] = row;
      out_dist[found] = d;
      ++found;
    }
  }
  return found;
}

std::size_t verify_default(const std::uint64_t* codes, const std::uint8_t* alive, const std::uint32_t* cands,
                           std::size_t n, const std::uint64_t* q, int radius, std::uint32_t* out_rows,
                           std::int32_t* out_dist) {
  return verify_body(codes, alive, cands, n, q, radius, out_rows, out_dist);
}

#if HM_HAVE_CLONES
HM_POPCNT
std::size_t verify_popcnt(const std::uint64_t* codes, const std::uint8_t* alive, const std::uint32_t* cands,
                          std::size_t n, const std::uint64_t* q, int radius, std::uint32_t* out_rows,
                          std::int32_t* out_dist) {
  return verify_body(codes, alive, cands, n, q, radius, out_rows, out_dist);
}
#endif

// Segment rows carry a dead-row bitmap (nullptr: none dead) instead of a byte per row.
HM_INLINE std::size_t segment_verify_body(const std::uint64_t* codes, const std::uint64_t* dead,
                                          const std::uint32_t* cands, std::size_t n, const std::uint64_t* q,
                                          int radius, std::uint32_t* out_rows, std::int32_t* out_dist) {
  std::size_t found = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (i + kAhead < n) __builtin_prefetch(codes + std::size_t{cands[i + kAhead]} * kWords);
    const std::uint32_t row = cands[i];
    const int d = popcount4(codes + std::size_t{row} * kWords, q);
    if (d <= radius && !(dead && (dead[row >> 6] >> (row & 63) & 1))) {
      out_rows[found] = row;
      out_dist[found] = d;
      ++found;
    }
  }
  return found;
}

std::size_t segment_verify_default(const std::uint64_t* codes, const std::uint64_t* dead, const std::uint32_t* cands,
                                   std::size_t n, const std::uint64_t* q, int radius, std::uint32_t* out_rows,
                                   std::int32_t* out_dist) {
  return segment_verify_body(codes, dead, cands, n, q, radius, out_rows, out_dist);
}

#if HM_HAVE_CLONES
HM_POPCNT
std::size_t segment_verify_popcnt(const std::uint64_t* codes, const std::uint64_t* dead, const std::uint32_t* cands,
                                  std::size_t n, const std::uint64_t* q, int radius, std::uint32_t* out_rows,
                                  std::int32_t* out_dist) {
  return segment_verify_body(codes, dead, cands, n, q, radius, out_rows, out_dist);
}
#endif

constexpr cpu::Clone<SegmentVerifyKernel> kSegmentVerifyClones[] = {
    {cpu::Isa::kDefault, segment_verify_default},
#if HM_HAVE_CLONES
    {cpu::Isa::kPopcnt, segment_verify_popcnt},
#endif
};

constexpr cpu::Clone<VerifyKernel> kVerifyClones[] = {
    {cpu::Isa::kDefault, verify_default},
#if HM_HAVE_CLONES
    {cpu::Isa::kPopcnt, verify_popcnt},
#endif
};

// Cost model of one query, in nanoseconds, fitted on this machine (2 vCPU AMD EPYC) at 10M
// random codes, one thread, m = 12. Brute force streams the codes at 1.9-2.5 ns a row. MIH
// pays a cache and TLB miss for each probed bucket and each candidate, about 18 ns apiece:
//   radius 23:  1.3k probes + candidates ->    27 us   (brute force ~19,000 us)
//   radius 31:  9.3k                     ->   165 us
//   radius 39:   35k                     ->   612 us
//   radius 63:  830k                     -> 13,000 us  (brute force 19,300 us)
//   radius 67:                           -> 19,300 us  (brute force 19,700 us: they meet)
//   radius 71:  1.8M                     -> 25,700 us  (brute force 18,600 us)
// so a search probes while 18 * (probes + expected candidates) < 1.9 * rows, which at 10M
// probes up to radius 64. Brute force is memory-bound there (the AVX-512 scan does not help).
// Smaller, cache-resident sets make both sides cheaper; the model then errs towards brute force.
using detail::kFlatNsPerRow;
using detail::kProbeNs;
using detail::kCandidateNs;
using detail::kForcedProbeCap;
using detail::substring;
using detail::for_each_within;
using detail::ball_size;

// Substring count for n codes. The paper's advice is substrings of about log2(n) bits (about
// one code per bucket). At 10M random codes, radius 31, one thread, this machine measured:
//   m = 11 (23-24 bits): 120 us/query, 1320 MB (4.1x the raw codes)
//   m = 12 (21-22 bits): 165 us/query, 1024 MB (3.2x)
//   m = 13 (19-20 bits): 235 us/query,  976 MB (3.0x)
// m = 11 is faster but its 2^24-entry bucket directories break the 4x memory budget, so
// widths are about log2(n) - 2 bits: the directories then cost a quarter of the row lists.
}  // namespace

int detail::auto_substrings(std::size_t n) {
  const double width = std::max(8.0, std::log2(static_cast<double>(std::max<std::size_t>(n, 2))) - 2.0);
  return std::clamp(static_cast<int>(kBits / width), 8, 32);
}

void* detail::allocate_large(std::size_t bytes) {
  constexpr std::size_t kHuge = std::size_t{2} << 20;
  if (bytes < kHuge) {
    void* p = std::malloc(bytes ? bytes : 1);
    if (!p) throw std::bad_alloc();
    return p;
  }
  const std::size_t rounded = (bytes + kHuge - 1) / kHuge * kHuge;
  void* p = std::aligned_alloc(kHuge, rounded);
  if (!p) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  // Probes hit random places in arrays of hundreds of MB: with 4 KiB pages nearly every one
  // is also a TLB miss. Transparent huge pages are often opt-in (madvise mode), so ask.
  madvise(p, rounded, MADV_HUGEPAGE);
#endif
  return p;
}

void detail::free_large(void* p) { std::free(p); }

Options default_options() {
  Options o;
  // Radius 31, one thread: 3,000 codes take 4.2 us a query by brute force and 3.0 us with
  // tables; 10,000 take 14 us and 4 us. Below ~4,000 a scan costs about what the Python call
  // around it does, so small sets skip the tables (and their rebuilds) entirely.
  o.mih_min_rows = 4096;
  // Scanning 4,096 tail rows costs ~6 us a query: cheap next to a rebuild, at any size.
  o.tail_min_rows = 4096;
  o.substrings = 0;
  o.force_mih = false;
  o.portable_kernels = false;
  o.isa = cpu::kBest;
  return o;
}

namespace {
cpu::Isa kernel_cap(const Options& o) {
  const bool lower = o.portable_kernels && static_cast<int>(o.isa) > static_cast<int>(cpu::Isa::kPopcnt);
  return lower ? cpu::Isa::kPopcnt : o.isa;
}

template <class Fn, std::size_t N>
std::vector<cpu::Isa> levels(const cpu::Clone<Fn> (&clones)[N]) {
  std::vector<cpu::Isa> out;
  for (const auto& c : clones) out.push_back(c.isa);
  return out;
}
}  // namespace

FlatKernel flat_kernel(cpu::Isa cap) { return cpu::pick(kScanClones, cap).fn; }
SegmentVerifyKernel segment_verify_kernel(cpu::Isa cap) { return cpu::pick(kSegmentVerifyClones, cap).fn; }

std::vector<cpu::Isa> scan_clones() { return levels(kScanClones); }
cpu::Isa scan_clone(cpu::Isa cap) { return cpu::pick(kScanClones, cap).isa; }
std::vector<cpu::Isa> verify_clones() { return levels(kVerifyClones); }
cpu::Isa verify_clone(cpu::Isa cap) { return cpu::pick(kVerifyClones, cap).isa; }

Index::Index(const Options& options)
    : options_(options),
      flat_(cpu::pick(kScanClones, kernel_cap(options)).fn),
      verify_(cpu::pick(kVerifyClones, kernel_cap(options)).fn) {
  if (options_.substrings != 0 && (options_.substrings < 8 || options_.substrings > kBits))
    throw std::invalid_argument("substrings must be 0 (automatic) or 8..256 (substrings of at most 32 bits)");
}

bool Index::find_live(std::int64_t id, std::uint32_t* row) const {
  const auto first = ids_.begin(), last = ids_.begin() + static_cast<std::ptrdiff_t>(built_);
  for (auto it = std::lower_bound(first, last, id); it != last && *it == id; ++it) {
    const auto r = static_cast<std::uint32_t>(it - first);
    if (alive_[r]) {
      *row = r;
      return true;
    }
  }
  const auto t = tail_rows_.find(id);
  if (t == tail_rows_.end()) return false;
  *row = t->second;
  return true;
}

void Index::add(const std::uint8_t* codes, const std::int64_t* ids, std::size_t n) {
  if (n == 0) return;
  if (codes_.size() / kWords + n >= std::numeric_limits<std::uint32_t>::max())
    throw std::length_error("a Hamming index holds fewer than 2^32 codes");
  std::vector<std::int64_t> sorted(ids, ids + n);
  if (!std::is_sorted(sorted.begin(), sorted.end())) std::sort(sorted.begin(), sorted.end());
  const auto dup = std::adjacent_find(sorted.begin(), sorted.end());
  if (dup != sorted.end()) throw std::invalid_argument("id " + std::to_string(*dup) + " repeats in the batch");
  std::uint32_t row;
  for (std::size_t i = 0; i < n; ++i)
    if (find_live(ids[i], &row)) throw std::invalid_argument("id " + std::to_string(ids[i]) + " is already in the index");
  const std::size_t base = ids_.size();
  if (base + n > ids_.capacity()) {
    // Grow to where the tail will be merged, not by doubling: the next rebuild reallocates
    // anyway, and doubling 10M rows would cost 320 MB of codes for a single add.
    const std::size_t cap = std::max(base + n, built_ + tail_limit(built_) + 1);
    codes_.reserve(cap * kWords);
    ids_.reserve(cap);
    alive_.reserve(cap);
  }
  codes_.resize((base + n) * kWords);
  std::memcpy(codes_.data() + base * kWords, codes, n * kBytes);
  ids_.insert(ids_.end(), ids, ids + n);
  alive_.resize(base + n, 1);
  live_ += n;
  // A batch that triggers a rebuild never enters the tail map: a bulk load of 10M codes would
  // otherwise allocate (and fragment the heap with) 10M map nodes only to drop them.
  if (needs_rebuild()) {
    rebuild();
  } else {
    for (std::size_t i = 0; i < n; ++i) tail_rows_.emplace(ids[i], static_cast<std::uint32_t>(base + i));
  }
}

std::size_t Index::remove(const std::int64_t* ids, std::size_t n) {
  std::size_t removed = 0;
  std::uint32_t row;
  for (std::size_t i = 0; i < n; ++i) {
    if (!find_live(ids[i], &row)) continue;
    alive_[row] = 0;
    if (row >= built_) tail_rows_.erase(ids[i]);
    ++removed;
  }
  live_ -= removed;
  dead_ += removed;
  if (needs_rebuild()) rebuild();
  return removed;
}

// The unindexed tail is brute-forced by every query, and a rebuild re-sorts everything: at 10M
// codes a rebuild takes ~3-5 s while a radius-31 query takes ~165 us, the time to scan ~87k rows.
// Merging once the tail passes 1/256 of the built rows (39k at 10M) bounds the tail's cost to
// ~75 us a query just before a merge, and spreads a rebuild over >= 39k adds (~0.1 ms an add).
// Tombstones only cost a wasted verification each, so compaction waits until they are 1/4.
std::size_t Index::tail_limit(std::size_t built) const { return std::max(options_.tail_min_rows, built / 256); }

bool Index::needs_rebuild() const {
  const std::size_t rows = ids_.size();
  const std::size_t tail = rows - built_;
  const bool grow_tables = tables_.empty() && live_ >= options_.mih_min_rows && live_ > 0;
  const bool tail_full = tail > tail_limit(built_);
  const bool too_dead = dead_ > std::max(options_.tail_min_rows, rows / 4);
  const bool shrink_tables = !tables_.empty() && live_ < options_.mih_min_rows / 2;
  return grow_tables || tail_full || too_dead || shrink_tables;
}

std::vector<std::uint32_t> Index::live_rows_by_id() const {
  std::vector<std::uint32_t> order;
  order.reserve(live_);
  for (std::size_t r = 0; r < ids_.size(); ++r)
    if (alive_[r]) order.push_back(static_cast<std::uint32_t>(r));
  // Ids usually arrive in increasing order (database row ids): then there is nothing to sort.
  auto by_id = [&](std::uint32_t a, std::uint32_t b) { return ids_[a] < ids_[b]; };
  if (!std::is_sorted(order.begin(), order.end(), by_id)) std::sort(order.begin(), order.end(), by_id);
  return order;
}

void Index::rebuild() {
  // Live rows, sorted by id: the built part doubles as the id -> row map (binary search).
  std::vector<std::uint32_t> order = live_rows_by_id();
  const std::size_t n = order.size();
  {
    // Room for the tail up front (1/256 more): otherwise the first single add after a bulk
    // load copies every code to grow the arrays (0.7 s at 10M, measured).
    const std::size_t cap = n + tail_limit(n) + 1;
    LargeVector<std::uint64_t> codes;
    LargeVector<std::int64_t> ids;
    codes.reserve(cap * kWords);
    ids.reserve(cap);
    codes.resize(n * kWords);
    ids.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      std::memcpy(codes.data() + i * kWords, codes_.data() + std::size_t{order[i]} * kWords, kBytes);
      ids[i] = ids_[order[i]];
    }
    codes_.swap(codes);
    ids_.swap(ids);
  }
  std::vector<std::uint32_t>().swap(order);
  LargeVector<std::uint8_t>().swap(alive_);
  alive_.reserve(ids_.capacity());
  alive_.assign(n, 1);
  built_ = n;
  live_ = n;
  dead_ = 0;
  tail_rows_.clear();
  tables_.clear();
  if (n == 0 || n < options_.mih_min_rows) return;

  // A requested count is a floor: directories of 2^width offsets are capped at 4x the size of
  // a row list (width <= log2(n) + 2, at least 16 and at most 30 bits), since 8 substrings of
  // 32 bits over a few thousand codes would ask for 128 GB of directories.
  const int max_width = std::clamp(static_cast<int>(std::log2(static_cast<double>(n))) + 2, 16, 30);
  const int m = std::max(options_.substrings ? options_.substrings : detail::auto_substrings(n),
                         (kBits + max_width - 1) / max_width);
  // Wider substrings first: searches give the first tables the larger radius (see
  // table_radius), and wider tables have fewer codes per bucket.
  const int narrow = kBits / m, wide_count = kBits % m;
  tables_.resize(static_cast<std::size_t>(m));
  int start = 0;
  for (int t = 0; t < m; ++t) {
    tables_[t].start = start;
    tables_[t].width = narrow + (t < wide_count ? 1 : 0);
    start += tables_[t].width;
  }
  // Counting sort per table; tables are independent, so two build at once.
  parallel_for(tables_.size(), 0, [&](std::size_t t) {
    Table& tab = tables_[t];
    const std::size_t buckets = std::size_t{1} << tab.width;
    tab.offsets.assign(buckets + 1, 0);
    for (std::size_t r = 0; r < n; ++r) ++tab.offsets[substring(codes_.data() + r * kWords, tab.start, tab.width) + 1];
    for (std::size_t b = 0; b < buckets; ++b) tab.offsets[b + 1] += tab.offsets[b];
    tab.rows.resize(n);
    std::vector<std::uint32_t> fill(tab.offsets.begin(), tab.offsets.end() - 1);
    for (std::size_t r = 0; r < n; ++r)
      tab.rows[fill[substring(codes_.data() + r * kWords, tab.start, tab.width)]++] = static_cast<std::uint32_t>(r);
  });
}

// Pigeonhole with remainders (Norouzi et al., section 4): with radius = a*m + b, a code
// within radius has one of the first b+1 substrings within a, or one of the others within
// a-1 (else the distance would be at least (b+1)(a+1) + (m-b-1)a = radius + 1).
int Index::table_radius(std::size_t t, int radius) const {
  const int m = static_cast<int>(tables_.size());
  const int a = radius / m, b = radius % m;
  return static_cast<int>(t) <= b ? a : a - 1;
}

double Index::probe_count(int radius) const {
  double probes = 0;
  for (std::size_t t = 0; t < tables_.size(); ++t) {
    const int r = table_radius(t, radius);
    if (r >= 0) probes += ball_size(tables_[t].width, r);
  }
  return probes;
}

bool Index::probes_at(int radius) const {
  if (tables_.empty()) return false;
  radius = std::clamp(radius, 0, kBits);
  if (options_.force_mih) return probe_count(radius) <= kForcedProbeCap;
  double mih = 0;
  for (std::size_t t = 0; t < tables_.size(); ++t) {
    const int r = table_radius(t, radius);
    if (r < 0) continue;
    const double per_bucket = static_cast<double>(built_) / static_cast<double>(std::size_t{1} << tables_[t].width);
    mih += ball_size(tables_[t].width, r) * (kProbeNs + per_bucket * kCandidateNs);
  }
  return mih < static_cast<double>(built_) * kFlatNsPerRow;
}

void Index::flat_rows(const std::uint64_t* q, int radius, std::size_t begin, std::size_t end,
                      std::vector<Hit>& hits) const {
  constexpr std::size_t kBlock = 4096;
  std::int32_t dist[kBlock];
  for (std::size_t s = begin; s < end; s += kBlock) {
    const std::size_t len = std::min(kBlock, end - s);
    flat_(codes_.data() + s * kWords, len, q, dist);
    for (std::size_t i = 0; i < len; ++i)
      if (dist[i] <= radius && alive_[s + i]) hits.push_back({dist[i], ids_[s + i]});
  }
}

void Index::search_one(const std::uint64_t* q, int radius, bool use_tables, std::vector<std::uint32_t>& cands,
                       std::vector<Hit>& hits) const {
  hits.clear();
  if (!use_tables) {
    flat_rows(q, radius, 0, ids_.size(), hits);
  } else {
    // Three passes, each prefetching a fixed distance ahead: bucket bounds, bucket rows, codes.
    // Every step is a cache (and TLB) miss into arrays of hundreds of MB; keeping several in
    // flight instead of chasing them one by one is most of MIH's speed at 10M codes.
    std::vector<std::uint64_t> keys;  // table << 32 | substring value
    for (std::size_t t = 0; t < tables_.size(); ++t) {
      const int r = table_radius(t, radius);
      if (r < 0) continue;
      auto visit = [&](std::uint32_t key) { keys.push_back(std::uint64_t{t} << 32 | key); };
      for_each_within(substring(q, tables_[t].start, tables_[t].width), 0, tables_[t].width, r, visit);
    }
    std::vector<std::pair<const std::uint32_t*, const std::uint32_t*>> buckets;
    buckets.reserve(keys.size());
    std::size_t candidates = 0;
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (i + kAhead < keys.size())
        __builtin_prefetch(tables_[keys[i + kAhead] >> 32].offsets.data() + (keys[i + kAhead] & 0xffffffffu));
      const Table& tab = tables_[keys[i] >> 32];
      const std::uint32_t key = static_cast<std::uint32_t>(keys[i]);
      const std::uint32_t begin = tab.offsets[key], end = tab.offsets[key + 1];
      if (begin != end) buckets.emplace_back(tab.rows.data() + begin, tab.rows.data() + end);
      candidates += end - begin;
    }
    // The cost model assumes codes spread evenly over buckets. Near-duplicates pile up in a
    // few (a list of one video's frames, one meme's copies); when this query's buckets hold
    // more candidates than a scan would cost, scan instead.
    if (!options_.force_mih &&
        static_cast<double>(candidates) * kCandidateNs > static_cast<double>(ids_.size()) * kFlatNsPerRow) {
      flat_rows(q, radius, 0, ids_.size(), hits);
      sort_hits(hits);
      return;
    }
    cands.clear();
    for (std::size_t i = 0; i < buckets.size(); ++i) {
      if (i + kAhead < buckets.size()) __builtin_prefetch(buckets[i + kAhead].first);
      cands.insert(cands.end(), buckets[i].first, buckets[i].second);
    }
    std::vector<std::uint32_t> rows(cands.size());
    std::vector<std::int32_t> dist(cands.size());
    const std::size_t found =
        verify_(codes_.data(), alive_.data(), cands.data(), cands.size(), q, radius, rows.data(), dist.data());
    for (std::size_t i = 0; i < found; ++i) hits.push_back({dist[i], ids_[rows[i]]});
    flat_rows(q, radius, built_, ids_.size(), hits);
  }
  sort_hits(hits);
}

void Index::sort_hits(std::vector<Hit>& hits) {
  auto less = [](const Hit& a, const Hit& b) { return a.distance != b.distance ? a.distance < b.distance : a.id < b.id; };
  std::sort(hits.begin(), hits.end(), less);
  // A code matching in several substrings was found once per table: same id, same distance.
  hits.erase(std::unique(hits.begin(), hits.end(), [](const Hit& a, const Hit& b) { return a.id == b.id; }),
             hits.end());
}

RangeResult Index::range_search(const std::uint8_t* queries, std::size_t nq, int radius, int threads) const {
  radius = std::clamp(radius, 0, kBits);
  const bool use_tables = probes_at(radius);
  std::vector<std::vector<Hit>> per_query(nq);
  parallel_for(nq, threads, [&](std::size_t i) {
    std::uint64_t q[kWords];
    load_code(queries + i * kBytes, q);
    std::vector<std::uint32_t> cands;
    search_one(q, radius, use_tables, cands, per_query[i]);
  });
  RangeResult out;
  out.lims.assign(nq + 1, 0);
  for (std::size_t i = 0; i < nq; ++i) out.lims[i + 1] = out.lims[i] + static_cast<std::int64_t>(per_query[i].size());
  out.distances.resize(static_cast<std::size_t>(out.lims[nq]));
  out.ids.resize(static_cast<std::size_t>(out.lims[nq]));
  for (std::size_t i = 0; i < nq; ++i) {
    std::size_t at = static_cast<std::size_t>(out.lims[i]);
    for (const Hit& h : per_query[i]) {
      out.distances[at] = h.distance;
      out.ids[at++] = h.id;
    }
  }
  return out;
}

// k nearest: range searches at growing radii are exact, so once one holds >= k codes its
// first k (by distance, id) are the answer. Each step adds one to every table's probe radius;
// where the tables would cost more than a scan, one brute-force pass keeps the k best.
void Index::knn_one(const std::uint64_t* q, int k, std::vector<std::uint32_t>& cands, std::vector<Hit>& hits) const {
  const int m = static_cast<int>(tables_.size());
  for (int radius = m - 1; m > 0; radius += m) {
    radius = std::min(radius, kBits);
    if (!probes_at(radius)) break;
    search_one(q, radius, true, cands, hits);
    if (hits.size() >= static_cast<std::size_t>(k) || radius == kBits) {
      if (hits.size() > static_cast<std::size_t>(k)) hits.resize(static_cast<std::size_t>(k));
      return;
    }
  }
  auto less = [](const Hit& a, const Hit& b) { return a.distance != b.distance ? a.distance < b.distance : a.id < b.id; };
  std::priority_queue<Hit, std::vector<Hit>, decltype(less)> best(less);  // worst of the k on top
  constexpr std::size_t kBlock = 4096;
  std::int32_t dist[kBlock];
  const std::size_t rows = ids_.size();
  for (std::size_t s = 0; s < rows; s += kBlock) {
    const std::size_t len = std::min(kBlock, rows - s);
    flat_(codes_.data() + s * kWords, len, q, dist);
    for (std::size_t i = 0; i < len; ++i) {
      if (!alive_[s + i]) continue;
      const Hit h{dist[i], ids_[s + i]};
      if (best.size() < static_cast<std::size_t>(k)) {
        best.push(h);
      } else if (less(h, best.top())) {
        best.pop();
        best.push(h);
      }
    }
  }
  hits.resize(best.size());
  for (std::size_t i = best.size(); i-- > 0; best.pop()) hits[i] = best.top();
}

void Index::knn(const std::uint8_t* queries, std::size_t nq, int k, int threads, std::int32_t* distances,
                std::int64_t* ids) const {
  if (k <= 0) return;
  parallel_for(nq, threads, [&](std::size_t i) {
    std::uint64_t q[kWords];
    load_code(queries + i * kBytes, q);
    std::vector<std::uint32_t> cands;
    std::vector<Hit> hits;
    knn_one(q, k, cands, hits);
    for (std::size_t j = 0; j < static_cast<std::size_t>(k); ++j) {
      const bool have = j < hits.size();
      distances[i * k + j] = have ? hits[j].distance : -1;
      ids[i * k + j] = have ? hits[j].id : -1;
    }
  });
}

void Index::export_rows(std::uint8_t* codes, std::int64_t* ids) const {
  const std::vector<std::uint32_t> order = live_rows_by_id();
  for (std::size_t i = 0; i < order.size(); ++i) {
    std::memcpy(codes + i * kBytes, codes_.data() + std::size_t{order[i]} * kWords, kBytes);
    ids[i] = ids_[order[i]];
  }
}

std::size_t Index::memory_bytes() const {
  std::size_t bytes = codes_.capacity() * sizeof(std::uint64_t) + ids_.capacity() * sizeof(std::int64_t) +
                      alive_.capacity();
  for (const Table& t : tables_) bytes += (t.offsets.capacity() + t.rows.capacity()) * sizeof(std::uint32_t);
  // An unordered_map node holds the pair and a next pointer, plus one bucket pointer each.
  bytes += tail_rows_.size() * (sizeof(std::pair<const std::int64_t, std::uint32_t>) + 2 * sizeof(void*));
  return bytes;
}

}  // namespace hamming
}  // namespace hashmatch
