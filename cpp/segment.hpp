// Immutable index segments: the codes, ids and multi-index hashing tables of a set of codes,
// laid out in one flat buffer that is searched in place (a saved file opened by mmap), with
// no parsing beyond a fixed header and no table rebuild. Plain C++17 on raw buffers: the
// caller owns the memory (and its I/O); no global state.
//
// Layout (little-endian; arrays 64-byte aligned from the segment start):
//   SegmentHeader (1024 bytes)
//   codes  rows * 32 bytes, rows ordered by table 0's substring value (ties by input order),
//          so table 0 needs no row list: its directory indexes the codes directly
//   ids    rows * id_bytes: int64, or uint32 offsets from id_base when the ids span < 2^32
//   perm   rows row numbers in increasing id order (id lookups by binary search)
//   per table: a directory of bucket starts; tables >= 1 also a row list of rows row numbers
//          grouped by substring value. A directory is (2^width + 1) uint32 (kind 0), or in
//          blocks of 16 buckets (kind 1): a 20-byte record per block, its uint32 start and a
//          uint8 offset within the block per bucket, and for the few blocks spanning 256 rows
//          or more (near-duplicates piled into one bucket) 16 uint32 starts in an overflow
//          array, which the block's start (top bit set) points to: 1.25 bytes a bucket against 4
// Row numbers (perm and row lists) are bit-packed, row_bits = bits of rows - 1: as narrow as
// the segment allows (24 bits at 10M codes, 27 at 100M), each list padded by 8 bytes.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "hamming.hpp"

namespace hashmatch {
namespace hamming {

constexpr int kMaxSegmentTables = 32;
constexpr std::size_t kSegmentHeaderBytes = 1024;

constexpr std::size_t kDirBlock = 16;

struct SegmentTableInfo {
  std::uint16_t start;
  std::uint8_t width;
  std::uint8_t dir_kind;       // 0: uint32 starts, 1: blocks of uint8 offsets
  std::uint32_t wide_blocks;   // kind 1: blocks in the overflow array
  std::uint64_t dir_off;
  std::uint64_t rows_off;  // 0 for table 0
};

struct SegmentHeader {
  char magic[8];
  std::uint64_t bytes;
  std::uint64_t rows;
  std::uint32_t tables;
  std::uint32_t row_bits;
  std::uint32_t id_bytes;
  std::uint32_t reserved;
  std::int64_t id_base;
  std::uint64_t codes_off;
  std::uint64_t ids_off;
  std::uint64_t perm_off;
  SegmentTableInfo table[kMaxSegmentTables];
};
static_assert(sizeof(SegmentHeader) <= kSegmentHeaderBytes, "segment header must fit its reserved bytes");

// The layout of a segment of these n codes and ids; substrings as in Options.
SegmentHeader plan_segment(const std::uint8_t* codes, const std::int64_t* ids, std::size_t n, int substrings,
                           int threads);
// Writes a segment of n codes and unique ids into out (plan.bytes bytes, 8-byte aligned).
// Throws std::invalid_argument when an id repeats.
void build_segment(const std::uint8_t* codes, const std::int64_t* ids, std::size_t n, const SegmentHeader& plan,
                   std::uint8_t* out, int threads);

struct Hit {
  std::int32_t distance;
  std::int64_t id;
};
// Sorts by (distance, id) and drops repeats of an id (a code found through several tables).
void sort_unique_hits(std::vector<Hit>& hits);

// A read-only view of a segment in caller-owned memory. The header is validated on
// construction (std::runtime_error when inconsistent); the arrays are not read until
// searched, and a search stays within the buffer whatever the arrays hold, so a damaged
// segment gives wrong answers (caught by the caller's checksum), never a crash.
class Segment {
 public:
  Segment(const std::uint8_t* data, std::size_t bytes, const Options& options);

  std::size_t rows() const { return rows_; }
  int tables() const { return static_cast<int>(h_.tables); }
  std::int64_t id(std::uint32_t row) const;
  const std::uint64_t* codes() const { return codes_; }
  // The row holding id, if any (dead or not).
  bool find(std::int64_t id, std::uint32_t* row) const;
  // Whether a search at this radius probes the tables (else it scans).
  bool probes_at(int radius) const;
  // Appends the live rows within radius of q (dead: bitmap of rows(), nullptr when none).
  void search(const std::uint64_t* q, int radius, const std::uint64_t* dead, std::vector<Hit>& hits) const;
  // Appends every live row's (distance, id) for which keep(distance, id) holds (brute force).
  template <class Keep>
  void scan(const std::uint64_t* q, const std::uint64_t* dead, Keep&& keep) const;
  std::size_t memory_bytes() const { return bytes_; }

 private:
  std::uint32_t row_at(const std::uint8_t* list, std::size_t i) const;
  void bucket(std::size_t t, std::uint32_t key, std::uint32_t* begin, std::uint32_t* end) const;
  std::uint32_t block_start(const SegmentTableInfo& tab, std::size_t block) const;
  int table_radius(std::size_t t, int radius) const;

  const std::uint8_t* data_;
  std::size_t bytes_;
  SegmentHeader h_;
  std::size_t rows_;
  const std::uint64_t* codes_;
  bool force_mih_;
  FlatKernel flat_;
  SegmentVerifyKernel verify_;
};

template <class Keep>
void Segment::scan(const std::uint64_t* q, const std::uint64_t* dead, Keep&& keep) const {
  constexpr std::size_t kBlock = 4096;
  std::int32_t dist[kBlock];
  for (std::size_t s = 0; s < rows_; s += kBlock) {
    const std::size_t len = std::min(kBlock, rows_ - s);
    flat_(codes_ + s * kWords, len, q, dist);
    for (std::size_t i = 0; i < len; ++i) {
      const std::size_t r = s + i;
      if (dead && (dead[r >> 6] >> (r & 63) & 1)) continue;
      keep(dist[i], r);
    }
  }
}

// A segment and its dead-row bitmap (nullptr when none are dead).
struct SegmentRef {
  const Segment* segment;
  const std::uint64_t* dead;
};

// Range search over segments plus an in-memory delta index (adds since the segments).
RangeResult range_search_all(const std::vector<SegmentRef>& segments, const Index& delta, const std::uint8_t* queries,
                             std::size_t nq, int radius, int threads);
// k nearest over segments plus delta, ties by id; padded with -1 / -1.
void knn_all(const std::vector<SegmentRef>& segments, const Index& delta, const std::uint8_t* queries, std::size_t nq,
             int k, int threads, std::int32_t* distances, std::int64_t* ids);

}  // namespace hamming
}  // namespace hashmatch
