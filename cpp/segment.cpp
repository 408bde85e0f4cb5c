#include "segment.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <queue>
#include <stdexcept>
#include <string>

#include "parallel.hpp"

namespace hashmatch {
namespace hamming {
namespace {

constexpr char kMagic[8] = {'H', 'M', 'S', 'E', 'G', '0', '0', '1'};
constexpr std::size_t kAhead = 16;  // prefetch distance, as in hamming.cpp
constexpr std::size_t kListPad = 8;  // a packed row number is read 8 bytes at a time

std::uint64_t align64(std::uint64_t x) { return (x + 63) / 64 * 64; }

cpu::Isa kernel_cap(const Options& o) {
  const bool lower = o.portable_kernels && static_cast<int>(o.isa) > static_cast<int>(cpu::Isa::kPopcnt);
  return lower ? cpu::Isa::kPopcnt : o.isa;
}

// Bytes of a packed list of n row numbers of `bits` bits, with its padding.
std::uint64_t list_bytes(std::uint64_t n, std::uint32_t bits) { return (n * bits + 7) / 8 + kListPad; }

// ORs row number i into a zeroed packed list (little-endian bit order).
void put_row(std::uint8_t* list, std::size_t i, std::uint32_t row, std::uint32_t bits) {
  const std::size_t bit = i * bits;
  std::uint64_t v;
  std::memcpy(&v, list + (bit >> 3), 8);
  v |= std::uint64_t{row} << (bit & 7);
  std::memcpy(list + (bit >> 3), &v, 8);
}

std::uint32_t bits_for(std::size_t n) {
  std::uint32_t bits = 1;
  while (bits < 32 && (std::uint64_t{1} << bits) < n) ++bits;
  return bits;
}

bool less_hit(const Hit& a, const Hit& b) { return a.distance != b.distance ? a.distance < b.distance : a.id < b.id; }

}  // namespace

constexpr std::uint32_t kWide = 0x80000000u;  // a block start with this bit: an overflow index
constexpr std::uint32_t kNarrowSpan = 255;    // the widest block uint8 offsets hold

// A block record: its start (uint32) and one uint8 offset per bucket, 20 bytes, so that a
// probe reads one cache line (sometimes two) rather than a start array and an offset array.
constexpr std::size_t kRecord = 4 + kDirBlock;

std::uint64_t dir_bytes(const SegmentTableInfo& tab) {
  const std::uint64_t buckets = std::uint64_t{1} << tab.width;
  if (tab.dir_kind == 0) return (buckets + 1) * 4;
  return (buckets / kDirBlock + 1) * kRecord + std::uint64_t{tab.wide_blocks} * kDirBlock * 4;
}

namespace {
// Bucket sizes of table tab over n codes (32-byte rows at stride bytes).
std::vector<std::uint32_t> bucket_counts(const std::uint8_t* codes, std::size_t n, const SegmentTableInfo& tab) {
  std::vector<std::uint32_t> counts(std::size_t{1} << tab.width, 0);
  std::uint64_t w[kWords];
  for (std::size_t i = 0; i < n; ++i) {
    std::memcpy(w, codes + i * kBytes, kBytes);
    ++counts[detail::substring(w, static_cast<int>(tab.start), tab.width)];
  }
  return counts;
}

// Blocks of 16 buckets spanning more rows than uint8 offsets hold.
std::uint32_t wide_blocks(const std::vector<std::uint32_t>& counts) {
  std::uint32_t wide = 0;
  for (std::size_t b = 0; b < counts.size(); b += kDirBlock) {
    std::uint64_t span = 0;
    for (std::size_t j = 0; j < kDirBlock; ++j) span += counts[b + j];
    wide += span > kNarrowSpan;
  }
  return wide;
}

// Bucket starts (buckets + 1 entries) encoded as the table's directory kind.
void write_dir(const std::vector<std::uint32_t>& starts, const SegmentTableInfo& tab, std::uint8_t* out) {
  const std::size_t buckets = std::size_t{1} << tab.width;
  if (tab.dir_kind == 0) {
    std::memcpy(out + tab.dir_off, starts.data(), (buckets + 1) * 4);
    return;
  }
  std::uint8_t* records = out + tab.dir_off;
  auto* over = reinterpret_cast<std::uint32_t*>(records + (buckets / kDirBlock + 1) * kRecord);
  std::uint32_t wide = 0;
  for (std::size_t b = 0; b < buckets; b += kDirBlock) {
    std::uint8_t* rec = records + b / kDirBlock * kRecord;
    std::uint32_t start = starts[b];
    if (starts[b + kDirBlock] - starts[b] > kNarrowSpan) {
      start = kWide | wide;
      std::memcpy(over + std::size_t{wide} * kDirBlock, starts.data() + b, kDirBlock * 4);
      ++wide;
    } else {
      for (std::size_t j = 0; j < kDirBlock; ++j) rec[4 + j] = static_cast<std::uint8_t>(starts[b + j] - starts[b]);
    }
    std::memcpy(rec, &start, 4);
  }
  std::memcpy(records + buckets / kDirBlock * kRecord, &starts[buckets], 4);
}

std::vector<std::uint32_t> starts_of(const std::vector<std::uint32_t>& counts) {
  std::vector<std::uint32_t> starts(counts.size() + 1, 0);
  for (std::size_t b = 0; b < counts.size(); ++b) starts[b + 1] = starts[b] + counts[b];
  return starts;
}
}  // namespace

SegmentHeader plan_segment(const std::uint8_t* codes, const std::int64_t* ids, std::size_t n, int substrings,
                           int threads) {
  if (n >= std::numeric_limits<std::uint32_t>::max()) throw std::length_error("a segment holds fewer than 2^32 codes");
  const std::int64_t id_min = n ? *std::min_element(ids, ids + n) : 0, id_max = n ? *std::max_element(ids, ids + n) : 0;
  SegmentHeader h;
  std::memset(&h, 0, sizeof h);
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.rows = n;
  h.row_bits = bits_for(n);
  const bool narrow_ids = n == 0 || static_cast<std::uint64_t>(id_max) - static_cast<std::uint64_t>(id_min) <
                                        (std::uint64_t{1} << 32);
  h.id_bytes = narrow_ids ? 4 : 8;
  h.id_base = narrow_ids && n ? id_min : 0;
  // As Index::rebuild: directories capped at 4x a row list, widths of at most 30 bits.
  const double nn = static_cast<double>(std::max<std::size_t>(n, 2));
  const int max_width = std::clamp(static_cast<int>(std::log2(nn)) + 2, 16, 30);
  int m = std::max(substrings ? substrings : detail::auto_substrings(n), (kBits + max_width - 1) / max_width);
  m = std::clamp(m, 8, kMaxSegmentTables);
  h.tables = static_cast<std::uint32_t>(m);
  const int narrow = kBits / m, wide_count = kBits % m;
  std::uint32_t start = 0;
  for (int t = 0; t < m; ++t) {
    h.table[t].start = static_cast<std::uint16_t>(start);
    h.table[t].width = static_cast<std::uint8_t>(narrow + (t < wide_count ? 1 : 0));
    start += h.table[t].width;
  }
  // Block starts must leave their top bit free for the overflow mark.
  const bool blocks = n < kWide;
  parallel_for(static_cast<std::size_t>(m), threads, [&](std::size_t t) {
    h.table[t].dir_kind = blocks ? 1 : 0;
    h.table[t].wide_blocks = blocks ? wide_blocks(bucket_counts(codes, n, h.table[t])) : 0;
  });
  std::uint64_t off = kSegmentHeaderBytes;
  h.codes_off = off;
  off = align64(off + n * kBytes);
  h.ids_off = off;
  off = align64(off + n * h.id_bytes);
  h.perm_off = off;
  off = align64(off + list_bytes(n, h.row_bits));
  for (int t = 0; t < m; ++t) {
    SegmentTableInfo& tab = h.table[t];
    tab.dir_off = off;
    off = align64(off + dir_bytes(tab));
    if (t > 0) {
      tab.rows_off = off;
      off = align64(off + list_bytes(n, h.row_bits));
    }
  }
  h.bytes = off;
  return h;
}

void build_segment(const std::uint8_t* codes, const std::int64_t* ids, std::size_t n, const SegmentHeader& plan,
                   std::uint8_t* out, int threads) {
  if (plan.rows != n) throw std::invalid_argument("segment plan is for another row count");
  std::memset(out, 0, plan.bytes);
  std::memcpy(out, &plan, sizeof plan);
  auto* out_codes = reinterpret_cast<std::uint64_t*>(out + plan.codes_off);
  const std::uint32_t rb = plan.row_bits;
  // Rows ordered by table 0's substring (a counting sort, stable): its directory is its index.
  const SegmentTableInfo& t0 = plan.table[0];
  std::vector<std::uint32_t> order(n);
  {
    std::vector<std::uint32_t> fill = starts_of(bucket_counts(codes, n, t0));
    write_dir(fill, t0, out);
    std::uint64_t w[kWords];
    for (std::size_t i = 0; i < n; ++i) {
      std::memcpy(w, codes + i * kBytes, kBytes);
      order[fill[detail::substring(w, static_cast<int>(t0.start), t0.width)]++] = static_cast<std::uint32_t>(i);
    }
  }
  std::vector<std::int64_t> new_ids(n);
  for (std::size_t r = 0; r < n; ++r) {
    std::memcpy(out_codes + r * kWords, codes + std::size_t{order[r]} * kBytes, kBytes);
    new_ids[r] = ids[order[r]];
  }
  std::vector<std::uint32_t>().swap(order);
  for (std::size_t r = 0; r < n; ++r) {
    if (plan.id_bytes == 4) {
      const auto v = static_cast<std::uint32_t>(static_cast<std::uint64_t>(new_ids[r]) -
                                                static_cast<std::uint64_t>(plan.id_base));
      std::memcpy(out + plan.ids_off + r * 4, &v, 4);
    } else {
      std::memcpy(out + plan.ids_off + r * 8, &new_ids[r], 8);
    }
  }
  {
    std::vector<std::uint32_t> perm(n);
    std::iota(perm.begin(), perm.end(), 0u);
    std::sort(perm.begin(), perm.end(), [&](std::uint32_t a, std::uint32_t b) { return new_ids[a] < new_ids[b]; });
    for (std::size_t k = 1; k < n; ++k)
      if (new_ids[perm[k]] == new_ids[perm[k - 1]])
        throw std::invalid_argument("id " + std::to_string(new_ids[perm[k]]) + " repeats");
    for (std::size_t k = 0; k < n; ++k) put_row(out + plan.perm_off, k, perm[k], rb);
  }
  parallel_for(plan.tables - 1, threads, [&](std::size_t i) {
    const SegmentTableInfo& tab = plan.table[i + 1];
    std::vector<std::uint32_t> fill =
        starts_of(bucket_counts(reinterpret_cast<const std::uint8_t*>(out_codes), n, tab));
    write_dir(fill, tab, out);
    for (std::size_t r = 0; r < n; ++r)
      put_row(out + tab.rows_off, fill[detail::substring(out_codes + r * kWords, static_cast<int>(tab.start), tab.width)]++,
              static_cast<std::uint32_t>(r), rb);
  });
}

void sort_unique_hits(std::vector<Hit>& hits) {
  std::sort(hits.begin(), hits.end(), less_hit);
  hits.erase(std::unique(hits.begin(), hits.end(), [](const Hit& a, const Hit& b) { return a.id == b.id; }),
             hits.end());
}

Segment::Segment(const std::uint8_t* data, std::size_t bytes, const Options& options)
    : data_(data),
      bytes_(bytes),
      force_mih_(options.force_mih),
      flat_(flat_kernel(kernel_cap(options))),
      verify_(segment_verify_kernel(kernel_cap(options))) {
  auto bad = [](const std::string& what) { throw std::runtime_error("index segment damaged: " + what); };
  if (bytes < kSegmentHeaderBytes) bad("shorter than its header");
  if (reinterpret_cast<std::uintptr_t>(data) % 8) throw std::invalid_argument("segment buffer must be 8-byte aligned");
  std::memcpy(&h_, data, sizeof h_);
  if (std::memcmp(h_.magic, kMagic, sizeof kMagic) != 0) bad("bad magic");
  if (h_.bytes != bytes) bad("size " + std::to_string(bytes) + " differs from its header's " + std::to_string(h_.bytes));
  if (h_.tables < 1 || h_.tables > kMaxSegmentTables) bad("table count");
  if (h_.row_bits < 1 || h_.row_bits > 32) bad("row width");
  if (h_.id_bytes != 4 && h_.id_bytes != 8) bad("id width");
  if (h_.rows >= std::numeric_limits<std::uint32_t>::max() || h_.rows > (std::uint64_t{1} << h_.row_bits))
    bad("row count");
  rows_ = static_cast<std::size_t>(h_.rows);
  auto fits = [&](std::uint64_t off, std::uint64_t len, std::uint64_t align) {
    if (off % align || off > bytes || len > bytes - off) bad("an array lies outside the segment");
  };
  fits(h_.codes_off, rows_ * kBytes, 8);
  fits(h_.ids_off, rows_ * h_.id_bytes, h_.id_bytes);
  fits(h_.perm_off, list_bytes(rows_, h_.row_bits), 1);
  std::uint32_t start = 0;
  for (std::uint32_t t = 0; t < h_.tables; ++t) {
    const SegmentTableInfo& tab = h_.table[t];
    if (tab.start != start || tab.width < 8 || tab.width > 30 || tab.dir_kind > 1) bad("table substrings");
    if (tab.dir_kind == 1 && (rows_ >= kWide || tab.wide_blocks > (1u << tab.width) / kDirBlock)) bad("directory");
    start += tab.width;
    fits(tab.dir_off, dir_bytes(tab), 4);
    if (t == 0 && tab.rows_off != 0) bad("table 0 has a row list");
    if (t > 0) fits(tab.rows_off, list_bytes(rows_, h_.row_bits), 1);
  }
  if (start != kBits) bad("substrings do not cover the 256 bits");
  codes_ = reinterpret_cast<const std::uint64_t*>(data + h_.codes_off);
}

std::int64_t Segment::id(std::uint32_t row) const {
  if (h_.id_bytes == 8) {
    std::int64_t v;
    std::memcpy(&v, data_ + h_.ids_off + std::size_t{row} * 8, 8);
    return v;
  }
  std::uint32_t v;
  std::memcpy(&v, data_ + h_.ids_off + std::size_t{row} * 4, 4);
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(h_.id_base) + v);
}

std::uint32_t Segment::row_at(const std::uint8_t* list, std::size_t i) const {
  const std::size_t bit = i * h_.row_bits;
  std::uint64_t v;
  std::memcpy(&v, list + (bit >> 3), 8);
  return static_cast<std::uint32_t>((v >> (bit & 7)) & ((std::uint64_t{1} << h_.row_bits) - 1));
}

bool Segment::find(std::int64_t id, std::uint32_t* row) const {
  const std::uint8_t* perm = data_ + h_.perm_off;
  std::size_t lo = 0, hi = rows_;
  while (lo < hi) {
    const std::size_t mid = lo + (hi - lo) / 2;
    const std::uint32_t r = row_at(perm, mid);
    if (r >= rows_) return false;  // damaged: the checksum will say so
    if (this->id(r) < id) lo = mid + 1; else hi = mid;
  }
  if (lo == rows_) return false;
  const std::uint32_t r = row_at(perm, lo);
  if (r >= rows_ || this->id(r) != id) return false;
  *row = r;
  return true;
}

std::uint32_t Segment::block_start(const SegmentTableInfo& tab, std::size_t block) const {
  const std::uint8_t* records = data_ + tab.dir_off;
  std::uint32_t v;
  std::memcpy(&v, records + block * kRecord, 4);
  if (!(v & kWide)) return v;
  const std::uint32_t w = v & ~kWide;
  if (w >= tab.wide_blocks) return 0;  // damaged: the checksum will say so
  const std::size_t buckets = std::size_t{1} << tab.width;
  std::uint32_t start;
  std::memcpy(&start, records + (buckets / kDirBlock + 1) * kRecord + std::size_t{w} * kDirBlock * 4, 4);
  return start;
}

void Segment::bucket(std::size_t t, std::uint32_t key, std::uint32_t* begin, std::uint32_t* end) const {
  const SegmentTableInfo& tab = h_.table[t];
  std::uint32_t b, e;
  if (tab.dir_kind == 0) {
    const auto* dir = reinterpret_cast<const std::uint32_t*>(data_ + tab.dir_off);
    b = dir[key];
    e = dir[key + 1];
  } else {
    const std::size_t buckets = std::size_t{1} << tab.width;
    const std::size_t block = key / kDirBlock, j = key % kDirBlock;
    const std::uint8_t* rec = data_ + tab.dir_off + block * kRecord;
    std::uint32_t v;
    std::memcpy(&v, rec, 4);
    if (v & kWide) {
      const std::uint32_t w = v & ~kWide;
      if (w >= tab.wide_blocks) {  // damaged: the checksum will say so
        *begin = *end = 0;
        return;
      }
      const auto* over = reinterpret_cast<const std::uint32_t*>(data_ + tab.dir_off + (buckets / kDirBlock + 1) * kRecord) +
                         std::size_t{w} * kDirBlock;
      b = over[j];
      e = j + 1 < kDirBlock ? over[j + 1] : block_start(tab, block + 1);
    } else {
      b = v + rec[4 + j];
      e = j + 1 < kDirBlock ? v + rec[4 + j + 1] : block_start(tab, block + 1);
    }
  }
  const std::uint32_t n = static_cast<std::uint32_t>(rows_);
  *end = std::min(e, n);
  *begin = std::min(b, *end);
}

int Segment::table_radius(std::size_t t, int radius) const {
  const int m = static_cast<int>(h_.tables);
  const int a = radius / m, b = radius % m;
  return static_cast<int>(t) <= b ? a : a - 1;
}

bool Segment::probes_at(int radius) const {
  if (rows_ == 0) return false;
  radius = std::clamp(radius, 0, kBits);
  double probes = 0, cost = 0;
  for (std::size_t t = 0; t < h_.tables; ++t) {
    const int r = table_radius(t, radius);
    if (r < 0) continue;
    const double keys = detail::ball_size(static_cast<int>(h_.table[t].width), r);
    const double per_bucket = static_cast<double>(rows_) / static_cast<double>(std::size_t{1} << h_.table[t].width);
    probes += keys;
    cost += keys * (detail::kProbeNs + per_bucket * detail::kCandidateNs);
  }
  if (force_mih_) return probes <= detail::kForcedProbeCap;
  return cost < static_cast<double>(rows_) * detail::kFlatNsPerRow;
}

void Segment::search(const std::uint64_t* q, int radius, const std::uint64_t* dead, std::vector<Hit>& hits) const {
  auto scan_all = [&] {
    scan(q, dead, [&](std::int32_t d, std::size_t r) {
      if (d <= radius) hits.push_back({d, id(static_cast<std::uint32_t>(r))});
    });
  };
  if (!probes_at(radius)) return scan_all();
  std::vector<std::uint64_t> keys;  // table << 32 | substring value
  for (std::size_t t = 0; t < h_.tables; ++t) {
    const int r = table_radius(t, radius);
    if (r < 0) continue;
    auto visit = [&](std::uint32_t key) { keys.push_back(std::uint64_t{t} << 32 | key); };
    const int width = static_cast<int>(h_.table[t].width);
    detail::for_each_within(detail::substring(q, static_cast<int>(h_.table[t].start), width), 0, width, r, visit);
  }
  struct Range {
    std::uint32_t table, begin, end;
  };
  std::vector<Range> ranges;
  ranges.reserve(keys.size());
  std::size_t candidates = 0;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (i + kAhead < keys.size()) {
      const std::uint64_t k = keys[i + kAhead];
      const SegmentTableInfo& tab = h_.table[k >> 32];
      const std::size_t key = k & 0xffffffffu;
      if (tab.dir_kind == 0) {
        __builtin_prefetch(data_ + tab.dir_off + key * 4);
      } else {  // the block's record: its start and the bucket's offset (the next one's too)
        const std::uint8_t* rec = data_ + tab.dir_off + key / kDirBlock * kRecord;
        __builtin_prefetch(rec);
        __builtin_prefetch(rec + 4 + key % kDirBlock + 1);
      }
    }
    std::uint32_t begin, end;
    const auto t = static_cast<std::uint32_t>(keys[i] >> 32);
    bucket(t, static_cast<std::uint32_t>(keys[i]), &begin, &end);
    if (begin != end) ranges.push_back({t, begin, end});
    candidates += end - begin;
  }
  // Near-duplicates pile up in a few buckets: where this query's buckets hold more candidates
  // than a scan would cost, scan (as Index::search_one).
  if (!force_mih_ && static_cast<double>(candidates) * detail::kCandidateNs >
                         static_cast<double>(rows_) * detail::kFlatNsPerRow)
    return scan_all();
  std::vector<std::uint32_t> cands;
  cands.reserve(candidates);
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    const Range& rg = ranges[i];
    if (rg.table == 0) {  // table 0's buckets are runs of the codes themselves
      for (std::uint32_t r = rg.begin; r < rg.end; ++r) cands.push_back(r);
      continue;
    }
    if (i + kAhead < ranges.size() && ranges[i + kAhead].table != 0)
      __builtin_prefetch(data_ + h_.table[ranges[i + kAhead].table].rows_off +
                         (std::size_t{ranges[i + kAhead].begin} * h_.row_bits >> 3));
    const std::uint8_t* list = data_ + h_.table[rg.table].rows_off;
    for (std::uint32_t j = rg.begin; j < rg.end; ++j) {
      const std::uint32_t r = row_at(list, j);
      if (r < rows_) cands.push_back(r);
    }
  }
  std::vector<std::uint32_t> rows(cands.size());
  std::vector<std::int32_t> dist(cands.size());
  const std::size_t found = verify_(codes_, dead, cands.data(), cands.size(), q, radius, rows.data(), dist.data());
  for (std::size_t i = 0; i < found; ++i) hits.push_back({dist[i], id(rows[i])});
}

namespace {
std::vector<std::vector<Hit>> hits_by_query(const RangeResult& r, std::size_t nq) {
  std::vector<std::vector<Hit>> out(nq);
  for (std::size_t i = 0; i < nq; ++i)
    for (auto j = r.lims[i]; j < r.lims[i + 1]; ++j) out[i].push_back({r.distances[j], r.ids[j]});
  return out;
}
}  // namespace

RangeResult range_search_all(const std::vector<SegmentRef>& segments, const Index& delta, const std::uint8_t* queries,
                             std::size_t nq, int radius, int threads) {
  radius = std::clamp(radius, 0, kBits);
  std::vector<std::vector<Hit>> per_query =
      delta.size() ? hits_by_query(delta.range_search(queries, nq, radius, threads), nq)
                   : std::vector<std::vector<Hit>>(nq);
  parallel_for(nq, threads, [&](std::size_t i) {
    std::uint64_t q[kWords];
    std::memcpy(q, queries + i * kBytes, kBytes);
    std::vector<Hit>& hits = per_query[i];
    for (const SegmentRef& s : segments) s.segment->search(q, radius, s.dead, hits);
    sort_unique_hits(hits);
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

// Range searches at growing radii are exact, so once one holds >= k codes its first k are the
// answer; the delta contributes its own k nearest. Past radius 63 one brute-force pass keeps
// the k best.
void knn_all(const std::vector<SegmentRef>& segments, const Index& delta, const std::uint8_t* queries, std::size_t nq,
             int k, int threads, std::int32_t* distances, std::int64_t* ids) {
  if (k <= 0) return;
  const std::size_t kk = static_cast<std::size_t>(k);
  std::vector<std::int32_t> dd(nq * kk, -1);
  std::vector<std::int64_t> di(nq * kk, -1);
  if (delta.size()) delta.knn(queries, nq, k, threads, dd.data(), di.data());
  parallel_for(nq, threads, [&](std::size_t i) {
    std::uint64_t q[kWords];
    std::memcpy(q, queries + i * kBytes, kBytes);
    std::vector<Hit> hits;
    bool done = false;
    for (int radius : {31, 63}) {
      hits.clear();
      for (const SegmentRef& s : segments) s.segment->search(q, radius, s.dead, hits);
      for (std::size_t j = 0; j < kk; ++j)
        if (di[i * kk + j] >= 0 && dd[i * kk + j] <= radius) hits.push_back({dd[i * kk + j], di[i * kk + j]});
      sort_unique_hits(hits);  // a code found through several tables counts once
      if (hits.size() >= kk) {
        done = true;
        break;
      }
    }
    if (!done) {
      std::priority_queue<Hit, std::vector<Hit>, decltype(&less_hit)> best(&less_hit);  // worst on top
      auto offer = [&](const Hit& h) {
        if (best.size() < kk) {
          best.push(h);
        } else if (less_hit(h, best.top())) {
          best.pop();
          best.push(h);
        }
      };
      for (const SegmentRef& s : segments)
        s.segment->scan(q, s.dead, [&](std::int32_t d, std::size_t r) {
          offer({d, s.segment->id(static_cast<std::uint32_t>(r))});
        });
      for (std::size_t j = 0; j < kk; ++j)
        if (di[i * kk + j] >= 0) offer({dd[i * kk + j], di[i * kk + j]});
      hits.resize(best.size());
      for (std::size_t j = best.size(); j-- > 0; best.pop()) hits[j] = best.top();
    }
    sort_unique_hits(hits);
    for (std::size_t j = 0; j < kk; ++j) {
      const bool have = j < hits.size();
      distances[i * kk + j] = have ? hits[j].distance : -1;
      ids[i * kk + j] = have ? hits[j].id : -1;
    }
  });
}

}  // namespace hamming
}  // namespace hashmatch
