#include "pdq.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <vector>

namespace hashmatch {
namespace pdq {
namespace {

// The blur is compiled twice, for baseline x86-64 and for AVX2, from one inline body, and the
// caller names the highest level it may use (cpu.hpp): wider vectors, same IEEE operations
// in the same order (no FMA: -ffp-contract=off), so both clones give the same floats.
// Named clones rather than target_clones: an ifunc picks once per process, and tests must
// run the baseline clone on a CPU with AVX2 too.
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define HM_AVX2 __attribute__((target("avx2")))
#define HM_HAVE_AVX2 1
#define HM_INLINE inline __attribute__((always_inline))
#else
#define HM_HAVE_AVX2 0
#define HM_INLINE inline
#endif

constexpr int kStrip = 8;  // rows filtered together in a row pass: two SSE vectors per step

// The reference sizes each box window as ceil(dimension / 128).
int window_size(int dimension) { return (dimension + 127) / 128; }

// The reference samples the blurred image at floor((i + 0.5) * n / 64), in double.
int sample_index(int i, int n) { return static_cast<int>(((i + 0.5) * n) / 64); }

// One running box mean, as the reference's one-dimensional box filter computes it, run on
// `lanes` independent vectors at once (element t of lane l lives at in[t * lanes + l]).
// The reference's four phases (grow the window, emit with a growing window, slide, emit
// with a shrinking window) and its add-then-subtract order are kept, so every lane's floats
// are bit-identical to the scalar reference; vectorising across lanes changes no rounding.
// Outputs are written only where keep[t] is non-zero (all when keep is null): the second
// blur round only needs the 64 sampled positions, but every running sum.
template <int kLanes>
HM_INLINE void box_lanes(const float* in, float* out, int lanes_rt, int len, int window,
               const std::uint8_t* keep, float* sum) {
  const int lanes = kLanes > 0 ? kLanes : lanes_rt;
  const int half = (window + 2) / 2;
  std::fill(sum, sum + lanes, 0.0f);
  int ri = 0, li = 0, oi = 0, count = 0;
  auto emit = [&](int t, int n) {
    if (keep && !keep[t]) return;
    const float divisor = static_cast<float>(n);
    float* o = out + static_cast<std::ptrdiff_t>(t) * lanes;
    for (int l = 0; l < lanes; ++l) o[l] = sum[l] / divisor;
  };
  for (int i = 0; i < half - 1; ++i, ++ri) {
    const float* r = in + static_cast<std::ptrdiff_t>(ri) * lanes;
    for (int l = 0; l < lanes; ++l) sum[l] += r[l];
    ++count;
  }
  for (int i = 0; i < window - half + 1; ++i, ++ri, ++oi) {
    const float* r = in + static_cast<std::ptrdiff_t>(ri) * lanes;
    for (int l = 0; l < lanes; ++l) sum[l] += r[l];
    ++count;
    emit(oi, count);
  }
  for (int i = 0; i < len - window; ++i, ++ri, ++li, ++oi) {
    const float* r = in + static_cast<std::ptrdiff_t>(ri) * lanes;
    const float* x = in + static_cast<std::ptrdiff_t>(li) * lanes;
    for (int l = 0; l < lanes; ++l) {
      sum[l] += r[l];
      sum[l] -= x[l];
    }
    emit(oi, count);
  }
  for (int i = 0; i < half - 1; ++i, ++li, ++oi) {
    const float* x = in + static_cast<std::ptrdiff_t>(li) * lanes;
    for (int l = 0; l < lanes; ++l) sum[l] -= x[l];
    --count;
    emit(oi, count);
  }
}

// A running box mean down the rows of a (len x lanes) image whose rows arrive one at a
// time, so the column passes need only `window` rows of memory instead of the whole image.
// Same phases and operation order as box_lanes, per lane.
class ColumnBox {
 public:
  ColumnBox(int lanes, int len, int window)
      : lanes_(lanes), len_(len), window_(window), half_((window + 2) / 2),
        sum_(lanes, 0.0f), ring_(static_cast<std::size_t>(window) * lanes) {}

  const float* sum() const { return sum_.data(); }

  // Adds input row number `pushed_`; emit(output_row, count) may read sum().
  template <class Emit>
  HM_INLINE void push(const float* in, Emit&& emit) {
    const int ri = pushed_++;
    float* slot = ring_.data() + static_cast<std::size_t>(ri % window_) * lanes_;
    float* sum = sum_.data();
    if (ri < window_) {
      for (int l = 0; l < lanes_; ++l) sum[l] += in[l];
      ++count_;
      if (ri >= half_ - 1) emit(ri - (half_ - 1), count_);
    } else {
      // The slot still holds row ri - window, the one leaving the window.
      for (int l = 0; l < lanes_; ++l) {
        sum[l] += in[l];
        sum[l] -= slot[l];
      }
      emit(ri - half_ + 1, count_);
    }
    std::copy(in, in + lanes_, slot);
  }

  // After the last row: the shrinking-window outputs at the end.
  template <class Emit>
  HM_INLINE void finish(Emit&& emit) {
    float* sum = sum_.data();
    int li = len_ - window_;
    int oi = len_ - half_ + 1;
    for (int i = 0; i < half_ - 1; ++i, ++li, ++oi) {
      const float* x = ring_.data() + static_cast<std::size_t>(li % window_) * lanes_;
      for (int l = 0; l < lanes_; ++l) sum[l] -= x[l];
      --count_;
      emit(oi, count_);
    }
  }

 private:
  int lanes_, len_, window_, half_;
  int pushed_ = 0, count_ = 0;
  std::vector<float> sum_, ring_;
};

// Both Jarosz rounds (rows, columns, rows, columns) and the 64x64 decimation, streamed
// kStrip rows at a time: fill(r, dst, step) writes luma row r to dst[c * step]. Each pixel
// is touched once per pass while it is in cache, and no full-size intermediate is kept.
// Row passes run on transposed strips so their running sums vectorise across rows.
// Round 2 only divides at the 64 sampled columns and rows: the decimation reads nothing else.
template <class Fill>
HM_INLINE void downsample_stream(Fill&& fill, int rows, int cols, float out[64 * 64]) {
  const int window_along_rows = window_size(cols);
  const int window_along_cols = window_size(rows);
  int sample_rows[64], sample_cols[64];
  for (int i = 0; i < 64; ++i) {
    sample_rows[i] = sample_index(i, rows);
    sample_cols[i] = sample_index(i, cols);
  }
  std::vector<std::uint8_t> keep_cols(cols, 0), keep_rows(rows, 0);
  for (int i = 0; i < 64; ++i) {
    keep_cols[sample_cols[i]] = 1;
    keep_rows[sample_rows[i]] = 1;
  }

  const std::size_t strip_size = static_cast<std::size_t>(cols) * kStrip;
  std::vector<float> strip_in(strip_size, 0.0f), strip_out(strip_size), row(cols);
  // Round 2's strip has its own buffers: it is flushed from inside round 1's loop.
  std::vector<float> strip2(strip_size, 0.0f), strip2_out(strip_size), row2(cols);
  std::vector<float> round2(static_cast<std::size_t>(rows) * 64);
  float lane_sum[kStrip], lane_sum2[kStrip];
  int strip2_rows = 0, strip2_first = 0;

  // Round 2, rows: a strip of round-1 output rows, kept at the sampled columns only.
  auto flush_strip2 = [&]() {
    box_lanes<kStrip>(strip2.data(), strip2_out.data(), kStrip, cols, window_along_rows,
                      keep_cols.data(), lane_sum2);
    for (int r = 0; r < strip2_rows; ++r) {
      float* dst = round2.data() + static_cast<std::size_t>(strip2_first + r) * 64;
      for (int j = 0; j < 64; ++j) dst[j] = strip2_out[static_cast<std::size_t>(sample_cols[j]) * kStrip + r];
    }
    strip2_first += strip2_rows;
    strip2_rows = 0;
  };
  // Round 1, columns: each finished output row goes, transposed, into the round-2 strip.
  ColumnBox columns1(cols, rows, window_along_cols);
  auto emit1 = [&](int, int count) {
    const float divisor = static_cast<float>(count);
    const float* sum = columns1.sum();
    for (int c = 0; c < cols; ++c) row2[c] = sum[c] / divisor;
    for (int c = 0; c < cols; ++c) strip2[static_cast<std::size_t>(c) * kStrip + strip2_rows] = row2[c];
    if (++strip2_rows == kStrip) flush_strip2();
  };

  // Round 1, rows.
  for (int r0 = 0; r0 < rows; r0 += kStrip) {
    const int n = std::min(kStrip, rows - r0);
    for (int r = 0; r < n; ++r) fill(r0 + r, strip_in.data() + r, kStrip);
    box_lanes<kStrip>(strip_in.data(), strip_out.data(), kStrip, cols, window_along_rows, nullptr,
                      lane_sum);
    for (int r = 0; r < n; ++r) {
      for (int c = 0; c < cols; ++c) row[c] = strip_out[static_cast<std::size_t>(c) * kStrip + r];
      columns1.push(row.data(), emit1);
    }
  }
  columns1.finish(emit1);
  if (strip2_rows > 0) flush_strip2();

  // Round 2, columns, on the 64 sampled columns; keep the sampled rows.
  std::vector<float> kept(static_cast<std::size_t>(rows) * 64);
  ColumnBox columns2(64, rows, window_along_cols);
  auto emit2 = [&](int oi, int count) {
    if (!keep_rows[oi]) return;
    const float divisor = static_cast<float>(count);
    const float* sum = columns2.sum();
    float* dst = kept.data() + static_cast<std::size_t>(oi) * 64;
    for (int j = 0; j < 64; ++j) dst[j] = sum[j] / divisor;
  };
  for (int r = 0; r < rows; ++r) columns2.push(round2.data() + static_cast<std::size_t>(r) * 64, emit2);
  columns2.finish(emit2);
  for (int i = 0; i < 64; ++i)
    std::memcpy(out + i * 64, kept.data() + static_cast<std::size_t>(sample_rows[i]) * 64, 64 * sizeof(float));
}

// Per-channel luma terms, so that a pixel's luma is three loads and two adds in double:
// the same products and the same additions as the reference's (0.299 R + 0.587 G) + 0.114 B.
struct LumaTables {
  double r[256], g[256], b[256];
  LumaTables() {
    for (int v = 0; v < 256; ++v) {
      r[v] = v * 0.299;
      g[v] = v * 0.587;
      b[v] = v * 0.114;
    }
  }
};

// The DCT basis without the DC row, as the reference builds it: rows are frequencies 1..16.
// Computed once and never written again.
const float* dct_matrix() {
  static const std::array<float, 16 * 64> matrix = [] {
    std::array<float, 16 * 64> d{};
    // The reference rounds the scale to float before the double product: this matters for
    // flat images, whose hash bits are decided by the DCT's rounding noise alone.
    const float scale = static_cast<float>(std::sqrt(2.0 / 64.0));
    for (int i = 0; i < 16; ++i)
      for (int j = 0; j < 64; ++j)
        d[i * 64 + j] = static_cast<float>(scale * std::cos((M_PI / 2 / 64.0) * (i + 1) * (2 * j + 1)));
    return d;
  }();
  return matrix.data();
}

}  // namespace

namespace {

HM_INLINE void downsample_luma(const float* luma_in, int rows, int cols, float* out) {
  auto fill = [&](int r, float* dst, std::ptrdiff_t step) {
    const float* src = luma_in + static_cast<std::ptrdiff_t>(r) * cols;
    for (int c = 0; c < cols; ++c) dst[c * step] = src[c];
  };
  downsample_stream(fill, rows, cols, out);
}

HM_INLINE void downsample_pixels(const PixelView& im, float* out) {
  const LumaTables t;
  const std::ptrdiff_t cs = im.channels == 1 ? 0 : im.channel_stride;  // gray is R = G = B
  auto fill = [&](int r, float* dst, std::ptrdiff_t step) {
    const std::uint8_t* p = im.data + r * im.row_stride;
    for (int c = 0; c < im.cols; ++c, p += im.col_stride)
      dst[c * step] = static_cast<float>(t.r[p[0]] + t.g[p[cs]] + t.b[p[2 * cs]]);
  };
  downsample_stream(fill, im.rows, im.cols, out);
}

struct Blur {
  void (*luma)(const float*, int, int, float*);
  void (*pixels)(const PixelView&, float*);
};

void luma_default(const float* l, int rows, int cols, float* out) { downsample_luma(l, rows, cols, out); }
void pixels_default(const PixelView& im, float* out) { downsample_pixels(im, out); }
#if HM_HAVE_AVX2
HM_AVX2 void luma_avx2(const float* l, int rows, int cols, float* out) { downsample_luma(l, rows, cols, out); }
HM_AVX2 void pixels_avx2(const PixelView& im, float* out) { downsample_pixels(im, out); }
#endif

constexpr cpu::Clone<Blur> kBlurClones[] = {
    {cpu::Isa::kDefault, {luma_default, pixels_default}},
#if HM_HAVE_AVX2
    {cpu::Isa::kAvx2, {luma_avx2, pixels_avx2}},
#endif
};

}  // namespace

std::vector<cpu::Isa> blur_clones() {
  std::vector<cpu::Isa> out;
  for (const auto& c : kBlurClones) out.push_back(c.isa);
  return out;
}

cpu::Isa blur_clone(cpu::Isa cap) { return cpu::pick(kBlurClones, cap).isa; }

void downsample64(const float* luma_in, int rows, int cols, float out[64 * 64], cpu::Isa isa) {
  cpu::pick(kBlurClones, isa).fn.luma(luma_in, rows, cols, out);
}

void downsample64(const PixelView& im, float out[64 * 64], cpu::Isa isa) {
  cpu::pick(kBlurClones, isa).fn.pixels(im, out);
}

int quality(const float a[64 * 64]) {
  int gradient_sum = 0;
  for (int i = 0; i < 63; ++i)
    for (int j = 0; j < 64; ++j) {
      const float diff = a[i * 64 + j] - a[(i + 1) * 64 + j];
      gradient_sum += std::abs(static_cast<int>((diff * 100.0f) / 255.0f));
    }
  for (int i = 0; i < 64; ++i)
    for (int j = 0; j < 63; ++j) {
      const float diff = a[i * 64 + j] - a[i * 64 + j + 1];
      gradient_sum += std::abs(static_cast<int>((diff * 100.0f) / 255.0f));
    }
  return std::min(gradient_sum / 90, 100);
}

void dct16(const float a[64 * 64], float out[256]) {
  const float* d = dct_matrix();
  // T = D A, accumulated over k in ascending order per element, as the reference does.
  float t[16 * 64];
  for (int i = 0; i < 16; ++i) {
    float* ti = t + i * 64;
    for (int j = 0; j < 64; ++j) ti[j] = 0.0f;
    for (int k = 0; k < 64; ++k) {
      const float dik = d[i * 64 + k];
      const float* ak = a + k * 64;
      for (int j = 0; j < 64; ++j) ti[j] += dik * ak[j];
    }
  }
  // B = T D^T, again k ascending.
  float dt[64 * 16];
  for (int j = 0; j < 16; ++j)
    for (int k = 0; k < 64; ++k) dt[k * 16 + j] = d[j * 64 + k];
  for (int i = 0; i < 16; ++i) {
    float* bi = out + i * 16;
    for (int j = 0; j < 16; ++j) bi[j] = 0.0f;
    for (int k = 0; k < 64; ++k) {
      const float tik = t[i * 64 + k];
      const float* dk = dt + k * 16;
      for (int j = 0; j < 16; ++j) bi[j] += tik * dk[j];
    }
  }
}

void bits_from_dct(const float dct[256], std::uint8_t out[kHashBytes]) {
  // The reference's median is the lower median (Torben's method returns element 128 of 256).
  float sorted[256];
  std::copy(dct, dct + 256, sorted);
  std::nth_element(sorted, sorted + 127, sorted + 256);
  const float median = sorted[127];
  std::memset(out, 0, kHashBytes);
  for (int k = 0; k < 256; ++k) {
    if (dct[k] > median) {
      // Coefficient k is bit k of the reference's 256-bit number, printed most significant first.
      const int m = 255 - k;
      out[m >> 3] |= static_cast<std::uint8_t>(0x80u >> (m & 7));
    }
  }
}

void dihedral_dcts(const float b[256], float out[kDihedralCount][256]) {
  // Mirroring the 64x64 image negates the odd-frequency DCT terms along that axis; with the
  // DC row dropped, index u holds frequency u + 1, so even indices flip sign. Transposing the
  // image transposes the coefficients. Every variant is exact: only signs and positions change.
  struct Variant {
    bool transpose;
    bool mirror_rows;  // reverse rows (vertical flip) in the output
    bool mirror_cols;  // reverse columns (horizontal flip) in the output
  };
  static constexpr Variant variants[kDihedralCount] = {
      {false, false, false},  // original
      {true, true, false},    // rotate 90
      {false, true, true},    // rotate 180
      {true, false, true},    // rotate 270
      {false, true, false},   // flip X
      {false, false, true},   // flip Y
      {true, false, false},   // flip +1 diagonal (transpose)
      {true, true, true},     // flip -1 diagonal
  };
  for (int v = 0; v < kDihedralCount; ++v) {
    const Variant& var = variants[v];
    for (int u = 0; u < 16; ++u)
      for (int w = 0; w < 16; ++w) {
        float x = var.transpose ? b[w * 16 + u] : b[u * 16 + w];
        if (var.mirror_rows && (u % 2 == 0)) x = -x;
        if (var.mirror_cols && (w % 2 == 0)) x = -x;
        out[v][u * 16 + w] = x;
      }
  }
}

namespace {
// Shared tail of every pipeline: 64x64 -> DCT and quality, or the reference's refusal.
template <class Downsample>
int features_from(int rows, int cols, Downsample&& downsample, float out[kFeatureCount]) {
  if (rows < kMinDimension || cols < kMinDimension) {
    // All-zero features threshold to the all-zero hash, as the reference returns.
    std::fill(out, out + kFeatureCount, 0.0f);
    return 0;
  }
  float small[64 * 64];
  downsample(small);
  dct16(small, out);
  return quality(small);
}
}  // namespace

int features_luma(const float* luma_in, int rows, int cols, float out[kFeatureCount], cpu::Isa isa) {
  return features_from(rows, cols, [&](float* small) { downsample64(luma_in, rows, cols, small, isa); }, out);
}

int features(const PixelView& image, float out[kFeatureCount], cpu::Isa isa) {
  return features_from(image.rows, image.cols, [&](float* small) { downsample64(image, small, isa); }, out);
}

int hash(const PixelView& image, std::uint8_t out[kHashBytes], cpu::Isa isa) {
  float dct[kFeatureCount];
  const int q = features(image, dct, isa);
  bits_from_dct(dct, out);
  return q;
}

int hash_dihedral(const PixelView& image, std::uint8_t out[kDihedralCount][kHashBytes], cpu::Isa isa) {
  float dct[kFeatureCount];
  const int q = features(image, dct, isa);
  float variants[kDihedralCount][kFeatureCount];
  dihedral_dcts(dct, variants);
  for (int v = 0; v < kDihedralCount; ++v) bits_from_dct(variants[v], out[v]);
  return q;
}

}  // namespace pdq
}  // namespace hashmatch
