// The only file that knows about Python. Validates buffers, releases the GIL around
// every kernel, and converts results to bytes/lists.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "borders.hpp"
#include "cpu.hpp"
#include "hamming.hpp"
#include "segment.hpp"
#include "parallel.hpp"
#include "pdq.hpp"
#include "tmk.hpp"

namespace py = pybind11;
namespace hp = hashmatch::pdq;
namespace hc = hashmatch::cpu;

namespace {

// ---- CPU dispatch --------------------------------------------------------------------------
// The level every kernel call made through the public API may use: the best this CPU runs,
// or at most $HASHMATCH_CPU (default, popcnt, avx2, avx512), read once when the module loads
// so a whole process (a test run, a bug report) can be pinned to a lower clone. Private
// calls can also name a clone per call (the `isa` arguments below), for tests.
hc::Isa dispatch() {
  static const hc::Isa level = [] {
    const char* env = std::getenv("HASHMATCH_CPU");
    if (!env || !*env) return hc::kBest;
    hc::Isa isa;
    if (!hc::parse(env, &isa))
      throw std::invalid_argument(std::string("HASHMATCH_CPU must be default, popcnt, avx2 or avx512, got '") +
                                  env + "'");
    return isa;
  }();
  return level;
}

// A per-call clone cap: "" is the process's dispatch level.
hc::Isa isa_arg(const std::string& name) {
  if (name.empty()) return dispatch();
  hc::Isa isa;
  if (!hc::parse(name.c_str(), &isa)) throw py::value_error("isa must be default, popcnt, avx2 or avx512, got '" + name + "'");
  return isa;
}

py::list isa_names(const std::vector<hc::Isa>& levels) {
  py::list out;
  for (hc::Isa i : levels) out.append(hc::name(i));
  return out;
}

py::dict cpu_clones() {
  py::dict out;
  out["pdq_blur"] = isa_names(hp::blur_clones());
  out["hamming_scan"] = isa_names(hashmatch::hamming::scan_clones());
  out["hamming_verify"] = isa_names(hashmatch::hamming::verify_clones());
  return out;
}

std::string cpu_clone(const std::string& kernel, const std::string& isa) {
  const hc::Isa cap = isa_arg(isa);
  if (kernel == "pdq_blur") return hc::name(hp::blur_clone(cap));
  if (kernel == "hamming_scan") return hc::name(hashmatch::hamming::scan_clone(cap));
  if (kernel == "hamming_verify") return hc::name(hashmatch::hamming::verify_clone(cap));
  throw py::value_error("unknown kernel '" + kernel + "'");
}

bool cpu_supports(const std::string& isa) {
  hc::Isa level;
  if (!hc::parse(isa.c_str(), &level)) throw py::value_error("unknown isa '" + isa + "'");
  return hc::supported(level);
}
// ---- end CPU dispatch ----------------------------------------------------------------------

hp::PixelView pixel_view(const py::array& image) {
  if (!py::dtype::of<std::uint8_t>().is(image.dtype()))
    throw py::value_error("image must have dtype uint8, got " + std::string(py::str(image.dtype())));
  if (image.ndim() != 2 && image.ndim() != 3)
    throw py::value_error("image must be 2-D (HxW) or 3-D (HxWxC), got " + std::to_string(image.ndim()) + "-D");
  const int channels = image.ndim() == 2 ? 1 : static_cast<int>(image.shape(2));
  if (channels != 1 && channels != 3 && channels != 4)
    throw py::value_error("image must have 1, 3 or 4 channels, got " + std::to_string(channels));
  if (image.shape(0) < 1 || image.shape(1) < 1)
    throw py::value_error("image must be at least 1x1");
  if (image.shape(0) > (1 << 30) || image.shape(1) > (1 << 30))
    throw py::value_error("image dimensions too large");
  hp::PixelView v;
  v.data = static_cast<const std::uint8_t*>(image.data());
  v.rows = static_cast<int>(image.shape(0));
  v.cols = static_cast<int>(image.shape(1));
  v.channels = channels;
  v.row_stride = image.strides(0);
  v.col_stride = image.strides(1);
  v.channel_stride = image.ndim() == 3 ? image.strides(2) : 0;
  return v;
}

py::bytes to_bytes(const std::uint8_t* p, std::size_t n) {
  return py::bytes(reinterpret_cast<const char*>(p), n);
}

py::tuple pdq_hash(const py::array& image, const std::string& isa_name) {
  const hp::PixelView v = pixel_view(image);
  const hc::Isa isa = isa_arg(isa_name);
  std::uint8_t out[hp::kHashBytes];
  int q;
  {
    py::gil_scoped_release release;
    q = hp::hash(v, out, isa);
  }
  return py::make_tuple(to_bytes(out, hp::kHashBytes), q);
}

py::tuple pdq_hash_dihedral(const py::array& image, const std::string& isa_name) {
  const hp::PixelView v = pixel_view(image);
  const hc::Isa isa = isa_arg(isa_name);
  std::uint8_t out[hp::kDihedralCount][hp::kHashBytes];
  int q;
  {
    py::gil_scoped_release release;
    q = hp::hash_dihedral(v, out, isa);
  }
  py::list hashes;
  for (int i = 0; i < hp::kDihedralCount; ++i) hashes.append(to_bytes(out[i], hp::kHashBytes));
  return py::make_tuple(hashes, q);
}

// Many images on `threads` native threads with the GIL released once for the whole batch:
// per-image Python overhead would otherwise cap the scaling of ~1.5 ms hashes.
py::tuple pdq_hash_many(const py::list& images, int threads, bool dihedral) {
  std::vector<hp::PixelView> views;
  views.reserve(images.size());
  for (const py::handle& h : images) {
    // Borrowed views into arrays the caller's list keeps alive for the whole call.
    if (!py::isinstance<py::array>(h)) throw py::type_error("images must be a list of numpy arrays");
    views.push_back(pixel_view(py::reinterpret_borrow<py::array>(h)));
  }
  const std::size_t n = views.size();
  const int per_image = dihedral ? hp::kDihedralCount : 1;
  std::vector<std::uint8_t> bits(n * per_image * hp::kHashBytes);
  std::vector<int> qualities(n);
  const hc::Isa isa = dispatch();
  {
    py::gil_scoped_release release;
    hashmatch::parallel_for(n, threads, [&](std::size_t i) {
      std::uint8_t* out = bits.data() + i * per_image * hp::kHashBytes;
      if (dihedral) {
        qualities[i] = hp::hash_dihedral(views[i], reinterpret_cast<std::uint8_t(*)[hp::kHashBytes]>(out), isa);
      } else {
        qualities[i] = hp::hash(views[i], out, isa);
      }
    });
  }
  py::list hashes, quality;
  for (std::size_t i = 0; i < n; ++i) {
    if (dihedral) {
      py::list variants;
      for (int v = 0; v < per_image; ++v)
        variants.append(to_bytes(bits.data() + (i * per_image + v) * hp::kHashBytes, hp::kHashBytes));
      hashes.append(variants);
    } else {
      hashes.append(to_bytes(bits.data() + i * hp::kHashBytes, hp::kHashBytes));
    }
    quality.append(qualities[i]);
  }
  return py::make_tuple(hashes, quality);
}

py::tuple content_box(const py::array& image, int tolerance, double max_outliers, double min_keep) {
  const hp::PixelView v = pixel_view(image);
  hashmatch::borders::Options o;
  o.tolerance = tolerance;
  o.max_outliers = max_outliers;
  o.min_keep = min_keep;
  hashmatch::borders::Box b;
  {
    py::gil_scoped_release release;
    b = hashmatch::borders::content_box(v, o);
  }
  return py::make_tuple(b.top, b.bottom, b.left, b.right);
}

// Takes any array and checks its shape before converting: pybind11's implicit conversion would
// first copy a broadcast (zero-stride) array of any claimed size into float32.
py::tuple pdq_features(const py::array& luma_in, const std::string& isa_name) {
  const hc::Isa isa = isa_arg(isa_name);
  if (luma_in.ndim() != 2 || luma_in.shape(0) < 1 || luma_in.shape(1) < 1)
    throw py::value_error("luma must be a non-empty 2-D float32 array");
  if (luma_in.shape(0) > (1 << 30) || luma_in.shape(1) > (1 << 30))
    throw py::value_error("luma dimensions too large");
  const auto luma = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(luma_in);
  if (!luma) throw py::type_error("luma must be convertible to float32");
  py::array_t<float> out(hp::kFeatureCount);
  int q;
  {
    py::gil_scoped_release release;
    q = hp::features_luma(luma.data(), static_cast<int>(luma.shape(0)), static_cast<int>(luma.shape(1)),
                          out.mutable_data(), isa);
  }
  return py::make_tuple(out, q);
}


// ---- TMK+PDQF ---------------------------------------------------------------------------
namespace ht = hashmatch::tmk;

using F32 = py::array_t<float, py::array::c_style>;
using F64 = py::array_t<double, py::array::c_style>;
using I32 = py::array_t<std::int32_t, py::array::c_style>;
using I64 = py::array_t<std::int64_t, py::array::c_style>;

// Checked view of a TMK shape: periods > 0, and every feature array of matching size.
struct TmkShape {
  std::vector<int> periods;
  ht::Shape shape;
  std::size_t block_size() const {
    return periods.size() * static_cast<std::size_t>(shape.num_coefficients) * shape.dim;
  }
};

TmkShape tmk_shape(const I32& periods, int num_coefficients, int dim) {
  TmkShape s;
  s.periods.assign(periods.data(), periods.data() + periods.size());
  if (s.periods.empty() || s.periods.size() > static_cast<std::size_t>(ht::kMaxPeriods))
    throw py::value_error("TMK needs 1.." + std::to_string(ht::kMaxPeriods) + " periods");
  for (int p : s.periods)
    if (p <= 0) throw py::value_error("TMK periods must be positive, got " + std::to_string(p));
  if (num_coefficients <= 0 || num_coefficients > ht::kMaxCoefficients)
    throw py::value_error("TMK needs 1.." + std::to_string(ht::kMaxCoefficients) + " coefficients");
  if (dim <= 0 || dim > ht::kMaxDimension)
    throw py::value_error("TMK feature dimension must be in 1.." + std::to_string(ht::kMaxDimension));
  s.shape = ht::Shape{s.periods.data(), static_cast<int>(s.periods.size()), num_coefficients, dim};
  return s;
}

template <class A>
void check_size(const A& a, std::size_t n, const char* name) {
  if (static_cast<std::size_t>(a.size()) != n)
    throw py::value_error(std::string(name) + " must have " + std::to_string(n) + " values, got " +
                          std::to_string(a.size()));
}

// The running sums are updated in place, so they must be the caller's own float64 buffers:
// a converted copy would silently drop the update.
double* sums_buffer(py::array& a, std::size_t n, const char* name) {
  if (!py::dtype::of<double>().is(a.dtype()) || !(a.flags() & py::array::c_style) || !a.writeable())
    throw py::value_error(std::string(name) + " must be a writeable C-contiguous float64 array");
  check_size(a, n, name);
  return static_cast<double*>(a.mutable_data());
}

// Above this the Bessel functions overflow (libstdc++ throws a bare runtime_error).
constexpr double kMaxKernelBeta = 512.0;  // the error message below says so
// Level-2 scores cost sum(periods) * coefficients steps and a cos/sin table per period.
constexpr double kMaxLevel2Work = ht::kMaxLevel2Work;
constexpr int kMaxLevel2Period = ht::kMaxPeriod;

F32 tmk_kernel_coefficients(int count, double beta) {
  if (count <= 0 || count > ht::kMaxCoefficients)
    throw py::value_error("count must be in 1.." + std::to_string(ht::kMaxCoefficients));
  if (!(beta > 0.0 && beta <= kMaxKernelBeta))
    throw py::value_error("beta must be in (0, 512]");
  F32 out(count);
  {
    py::gil_scoped_release release;
    ht::kernel_coefficients(count, beta, out.mutable_data());
  }
  return out;
}

// PDQF of each frame (k x H x W x 3 uint8), then frame frame_index[i] added at times[i].
void tmk_ingest(const py::array_t<std::uint8_t, py::array::c_style>& frames, const I32& frame_index,
                const I64& times, const I32& periods, int num_coefficients, py::array pure_sum,
                py::array cos_sum, py::array sin_sum) {
  if (frames.ndim() != 4 || frames.shape(3) != 3 || frames.shape(1) < 1 || frames.shape(2) < 1)
    throw py::value_error("frames must be a (k, H, W, 3) uint8 array");
  const TmkShape s = tmk_shape(periods, num_coefficients, hp::kFeatureCount);
  const int k = static_cast<int>(frames.shape(0));
  check_size(times, static_cast<std::size_t>(frame_index.size()), "times");
  double* ps = sums_buffer(pure_sum, hp::kFeatureCount, "pure_sum");
  double* cs = sums_buffer(cos_sum, s.block_size(), "cos_sum");
  double* ss = sums_buffer(sin_sum, s.block_size(), "sin_sum");
  const std::int32_t* idx = frame_index.data();
  const std::int64_t* t = times.data();
  for (py::ssize_t i = 0; i < frame_index.size(); ++i) {
    if (idx[i] < 0 || idx[i] >= k) throw py::value_error("frame_index out of range");
    if (t[i] < 0) throw py::value_error("times must be >= 0");
  }
  const int rows = static_cast<int>(frames.shape(1)), cols = static_cast<int>(frames.shape(2));
  const std::uint8_t* base = frames.data();
  const hc::Isa isa = dispatch();
  {
    py::gil_scoped_release release;
    std::vector<float> features(static_cast<std::size_t>(k) * hp::kFeatureCount);
    for (int f = 0; f < k; ++f) {
      const hp::PixelView v{base + static_cast<std::size_t>(f) * rows * cols * 3, rows, cols, 3, cols * 3, 3, 1};
      hp::features(v, features.data() + static_cast<std::size_t>(f) * hp::kFeatureCount, isa);
    }
    ht::accumulate(s.shape, features.data(), idx, t, static_cast<int>(frame_index.size()), ps, cs, ss);
  }
}

py::tuple tmk_finish(const I32& periods, const F32& coefficients, std::int64_t frame_count, const F64& pure_sum,
                     const F64& cos_sum, const F64& sin_sum) {
  const TmkShape s = tmk_shape(periods, static_cast<int>(coefficients.size()), static_cast<int>(pure_sum.size()));
  check_size(cos_sum, s.block_size(), "cos_sum");
  check_size(sin_sum, s.block_size(), "sin_sum");
  F32 pure(s.shape.dim), cos_out(s.block_size()), sin_out(s.block_size());
  {
    py::gil_scoped_release release;
    ht::finish(s.shape, coefficients.data(), frame_count, pure_sum.data(), cos_sum.data(), sin_sum.data(),
               pure.mutable_data(), cos_out.mutable_data(), sin_out.mutable_data());
  }
  return py::make_tuple(pure, cos_out, sin_out);
}

double tmk_level1(const F32& a, const F32& b) {
  check_size(b, static_cast<std::size_t>(a.size()), "b");
  py::gil_scoped_release release;
  return ht::level1(a.data(), b.data(), static_cast<int>(a.size()));
}

double tmk_level2(const I32& periods, int num_coefficients, int dim, const F32& cos_a, const F32& sin_a,
                  const F32& cos_b, const F32& sin_b) {
  const TmkShape s = tmk_shape(periods, num_coefficients, dim);
  for (const F32* a : {&cos_a, &sin_a, &cos_b, &sin_b}) check_size(*a, s.block_size(), "cos/sin features");
  double work = 0.0;
  for (int p : s.periods) {
    // level2 keeps a cos and a sin table of `period` doubles each.
    if (p > kMaxLevel2Period) throw py::value_error("TMK period too large for a level-2 score");
    work += static_cast<double>(p) * num_coefficients;
  }
  if (work > kMaxLevel2Work) throw py::value_error("TMK periods x coefficients too large for a level-2 score");
  py::gil_scoped_release release;
  return ht::level2(s.shape, cos_a.data(), sin_a.data(), cos_b.data(), sin_b.data());
}
// ---- end TMK+PDQF -----------------------------------------------------------------------
// ---- Hamming index (cpp/hamming.hpp) -------------------------------------------------------
namespace hh = hashmatch::hamming;

using CodesArray = py::array_t<std::uint8_t, py::array::c_style>;
using IdsArray = py::array_t<std::int64_t, py::array::c_style>;

std::size_t code_rows(const CodesArray& codes, const char* name) {
  if (codes.ndim() != 2 || codes.shape(1) != hh::kBytes)
    throw py::value_error(std::string(name) + " must be a uint8 array of shape (n, 32)");
  return static_cast<std::size_t>(codes.shape(0));
}

template <class T>
py::array_t<T> to_array(const T* data, std::size_t n) {
  py::array_t<T> out(static_cast<py::ssize_t>(n));
  if (n) std::memcpy(out.mutable_data(), data, n * sizeof(T));
  return out;
}

constexpr double kMaxKnnResults = 1 << 27;

class PyHammingIndex {
 public:
  PyHammingIndex(std::size_t mih_min_rows, std::size_t tail_min_rows, int substrings, bool force_mih,
                 bool portable_kernels, const std::string& isa)
      : index_(options(mih_min_rows, tail_min_rows, substrings, force_mih, portable_kernels, isa_arg(isa))) {}

  void add(const CodesArray& codes, const IdsArray& ids) {
    const std::size_t n = code_rows(codes, "codes");
    if (ids.ndim() != 1 || static_cast<std::size_t>(ids.shape(0)) != n)
      throw py::value_error("ids must be a 1-D int64 array with one id per code");
    py::gil_scoped_release release;
    index_.add(codes.data(), ids.data(), n);
  }

  std::size_t remove(const IdsArray& ids) {
    if (ids.ndim() != 1) throw py::value_error("ids must be a 1-D int64 array");
    py::gil_scoped_release release;
    return index_.remove(ids.data(), static_cast<std::size_t>(ids.shape(0)));
  }

  py::tuple range_search(const CodesArray& queries, int radius, int threads) {
    const std::size_t nq = code_rows(queries, "queries");
    hh::RangeResult r;
    {
      py::gil_scoped_release release;
      r = index_.range_search(queries.data(), nq, radius, threads);
    }
    return py::make_tuple(to_array(r.lims.data(), r.lims.size()), to_array(r.distances.data(), r.distances.size()),
                          to_array(r.ids.data(), r.ids.size()));
  }

  py::tuple knn(const CodesArray& queries, int k, int threads) {
    const std::size_t nq = code_rows(queries, "queries");
    if (k < 1) throw py::value_error("k must be at least 1");
    // The result is (nq, k) however few codes are held: refuse sizes no caller can mean.
    if (static_cast<double>(nq) * k > kMaxKnnResults) throw py::value_error("queries x k too large");
    py::array_t<std::int32_t> distances({static_cast<py::ssize_t>(nq), static_cast<py::ssize_t>(k)});
    py::array_t<std::int64_t> ids({static_cast<py::ssize_t>(nq), static_cast<py::ssize_t>(k)});
    std::int32_t* d = distances.mutable_data();
    std::int64_t* i = ids.mutable_data();
    {
      py::gil_scoped_release release;
      index_.knn(queries.data(), nq, k, threads, d, i);
    }
    return py::make_tuple(distances, ids);
  }

  py::tuple export_rows() {
    const std::size_t n = index_.size();
    py::array_t<std::uint8_t> codes({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(hh::kBytes)});
    py::array_t<std::int64_t> ids(static_cast<py::ssize_t>(n));
    std::uint8_t* c = codes.mutable_data();
    std::int64_t* i = ids.mutable_data();
    {
      py::gil_scoped_release release;
      index_.export_rows(c, i);
    }
    return py::make_tuple(codes, ids);
  }

  std::size_t size() const { return index_.size(); }
  bool has_tables() const { return index_.has_tables(); }
  int substrings() const { return index_.substrings(); }
  bool probes_at(int radius) const { return index_.probes_at(radius); }
  std::size_t memory_bytes() const { return index_.memory_bytes(); }
  const hh::Index& core() const { return index_; }

  static hh::Options options(std::size_t mih_min_rows, std::size_t tail_min_rows, int substrings, bool force_mih,
                             bool portable_kernels, hc::Isa isa) {
    hh::Options o = hh::default_options();
    o.isa = isa;
    o.mih_min_rows = mih_min_rows;
    o.tail_min_rows = tail_min_rows;
    o.substrings = substrings;
    o.force_mih = force_mih;
    o.portable_kernels = portable_kernels;
    return o;
  }

 private:
  hh::Index index_;
};

// Immutable segments in buffers Python owns (an mmap of a saved index), each with an
// in-memory dead-row bitmap; searched together with a delta PyHammingIndex.
class PySegments {
 public:
  PySegments(bool force_mih, bool portable_kernels, const std::string& isa)
      : options_(PyHammingIndex::options(0, 0, 0, force_mih, portable_kernels, isa_arg(isa))) {}

  void append(const py::buffer& segment, const py::object& dead) {
    const py::buffer_info info = segment.request();
    if (info.ndim != 1 || info.itemsize != 1 || info.strides[0] != 1)
      throw py::value_error("segment must be a contiguous byte buffer");
    hh::Segment seg(static_cast<const std::uint8_t*>(info.ptr), static_cast<std::size_t>(info.size), options_);
    std::vector<std::uint64_t> words((seg.rows() + 63) / 64, 0);
    std::size_t dead_rows = 0;
    if (!dead.is_none()) {
      const py::buffer_info d = py::buffer(dead).request();
      if (static_cast<std::size_t>(d.size * d.itemsize) != words.size() * 8)
        throw std::runtime_error("index segment damaged: dead-row bitmap of the wrong size");
      if (!words.empty()) std::memcpy(words.data(), d.ptr, words.size() * 8);
      if (seg.rows() % 64 && !words.empty()) words.back() &= (std::uint64_t{1} << (seg.rows() % 64)) - 1;
      for (std::uint64_t w : words) dead_rows += static_cast<std::size_t>(__builtin_popcountll(w));
    }
    segments_.push_back(seg);
    dead_.push_back(std::move(words));
    dead_rows_ += dead_rows;
    rows_ += seg.rows();
    keep_.append(segment);
  }

  std::size_t rows() const { return rows_; }
  std::size_t live() const { return rows_ - dead_rows_; }
  std::size_t count() const { return segments_.size(); }
  std::size_t segment_rows(std::size_t i) const { return at(i).rows(); }

  py::array_t<bool> contains(const IdsArray& ids) const {
    const std::size_t n = static_cast<std::size_t>(ids.size());
    py::array_t<bool> out(static_cast<py::ssize_t>(n));
    bool* o = out.mutable_data();
    const std::int64_t* id = ids.data();
    py::gil_scoped_release release;
    for (std::size_t i = 0; i < n; ++i) {
      std::size_t s;
      std::uint32_t row;
      o[i] = find_live(id[i], &s, &row);
    }
    return out;
  }

  std::size_t remove(const IdsArray& ids) {
    const std::size_t n = static_cast<std::size_t>(ids.size());
    const std::int64_t* id = ids.data();
    py::gil_scoped_release release;
    std::size_t removed = 0;
    for (std::size_t i = 0; i < n; ++i) {
      std::size_t s;
      std::uint32_t row;
      if (!find_live(id[i], &s, &row)) continue;
      dead_[s][row >> 6] |= std::uint64_t{1} << (row & 63);
      ++removed;
    }
    dead_rows_ += removed;
    return removed;
  }

  py::tuple range_search(const CodesArray& queries, int radius, int threads, const PyHammingIndex& delta) const {
    const std::size_t nq = code_rows(queries, "queries");
    hh::RangeResult r;
    {
      py::gil_scoped_release release;
      r = hh::range_search_all(refs(), delta.core(), queries.data(), nq, radius, threads);
    }
    return py::make_tuple(to_array(r.lims.data(), r.lims.size()), to_array(r.distances.data(), r.distances.size()),
                          to_array(r.ids.data(), r.ids.size()));
  }

  py::tuple knn(const CodesArray& queries, int k, int threads, const PyHammingIndex& delta) const {
    const std::size_t nq = code_rows(queries, "queries");
    if (k < 1) throw py::value_error("k must be at least 1");
    if (static_cast<double>(nq) * k > kMaxKnnResults) throw py::value_error("queries x k too large");
    py::array_t<std::int32_t> distances({static_cast<py::ssize_t>(nq), static_cast<py::ssize_t>(k)});
    py::array_t<std::int64_t> ids({static_cast<py::ssize_t>(nq), static_cast<py::ssize_t>(k)});
    std::int32_t* d = distances.mutable_data();
    std::int64_t* i = ids.mutable_data();
    {
      py::gil_scoped_release release;
      hh::knn_all(refs(), delta.core(), queries.data(), nq, k, threads, d, i);
    }
    return py::make_tuple(distances, ids);
  }

  // (codes, ids) of the live rows of every segment, sorted by id.
  py::tuple export_rows() const {
    const std::size_t n = live();
    py::array_t<std::uint8_t> codes({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(hh::kBytes)});
    py::array_t<std::int64_t> ids(static_cast<py::ssize_t>(n));
    std::uint8_t* c = codes.mutable_data();
    std::int64_t* out_ids = ids.mutable_data();
    {
      py::gil_scoped_release release;
      std::vector<std::pair<std::int64_t, std::uint64_t>> order;  // id, segment << 32 | row
      order.reserve(n);
      for (std::size_t s = 0; s < segments_.size(); ++s)
        for (std::size_t r = 0; r < segments_[s].rows(); ++r)
          if (!(dead_[s][r >> 6] >> (r & 63) & 1))
            order.emplace_back(segments_[s].id(static_cast<std::uint32_t>(r)), std::uint64_t{s} << 32 | r);
      std::sort(order.begin(), order.end());
      for (std::size_t i = 0; i < order.size() && i < n; ++i) {
        const hh::Segment& seg = segments_[order[i].second >> 32];
        std::memcpy(c + i * hh::kBytes, seg.codes() + (order[i].second & 0xffffffffu) * hh::kWords, hh::kBytes);
        out_ids[i] = order[i].first;
      }
    }
    return py::make_tuple(codes, ids);
  }

  py::bytes dead_words(std::size_t i) const {
    at(i);
    return py::bytes(reinterpret_cast<const char*>(dead_[i].data()), dead_[i].size() * 8);
  }

  // Another set over the same segments with a copy of the dead-row bitmaps (a merge's snapshot).
  PySegments snapshot() const { return *this; }

  std::size_t memory_bytes() const {
    std::size_t bytes = 0;
    for (std::size_t s = 0; s < segments_.size(); ++s) bytes += segments_[s].memory_bytes() + dead_[s].size() * 8;
    return bytes;
  }

 private:
  const hh::Segment& at(std::size_t i) const {
    if (i >= segments_.size()) throw py::index_error("segment index out of range");
    return segments_[i];
  }
  bool find_live(std::int64_t id, std::size_t* s, std::uint32_t* row) const {
    for (std::size_t i = 0; i < segments_.size(); ++i)
      if (segments_[i].find(id, row)) {
        if (dead_[i][*row >> 6] >> (*row & 63) & 1) continue;
        *s = i;
        return true;
      }
    return false;
  }
  std::vector<hh::SegmentRef> refs() const {
    std::vector<hh::SegmentRef> out;
    for (std::size_t s = 0; s < segments_.size(); ++s) out.push_back({&segments_[s], dead_[s].data()});
    return out;
  }

  hh::Options options_;
  std::vector<hh::Segment> segments_;
  std::vector<std::vector<std::uint64_t>> dead_;
  std::size_t rows_ = 0;
  std::size_t dead_rows_ = 0;
  py::list keep_;  // the buffers the segments point into
};

std::size_t check_rows(const CodesArray& codes, const IdsArray& ids) {
  const std::size_t n = code_rows(codes, "codes");
  if (ids.ndim() != 1 || static_cast<std::size_t>(ids.shape(0)) != n)
    throw py::value_error("ids must be a 1-D int64 array with one id per code");
  return n;
}

std::size_t segment_bytes(const CodesArray& codes, const IdsArray& ids, int substrings, int threads) {
  const std::size_t n = check_rows(codes, ids);
  py::gil_scoped_release release;
  return static_cast<std::size_t>(hh::plan_segment(codes.data(), ids.data(), n, substrings, threads).bytes);
}

void build_segment(const CodesArray& codes, const IdsArray& ids, int substrings, const py::buffer& out, int threads) {
  const std::size_t n = check_rows(codes, ids);
  const py::buffer_info info = out.request(true);
  if (reinterpret_cast<std::uintptr_t>(info.ptr) % 8) throw py::value_error("out must be 8-byte aligned");
  const std::size_t out_bytes = static_cast<std::size_t>(info.size * info.itemsize);
  py::gil_scoped_release release;
  const hh::SegmentHeader plan = hh::plan_segment(codes.data(), ids.data(), n, substrings, threads);
  if (out_bytes != plan.bytes) throw std::invalid_argument("out must be segment_bytes(...) bytes");
  hh::build_segment(codes.data(), ids.data(), n, plan, static_cast<std::uint8_t*>(info.ptr), threads);
}

void bind_hamming(py::module_& m) {
  const hh::Options d = hh::default_options();
  m.attr("HAMMING_MIH_MIN_ROWS") = d.mih_min_rows;
  m.attr("HAMMING_TAIL_MIN_ROWS") = d.tail_min_rows;
  py::class_<PyHammingIndex>(m, "HammingIndex", "Exact Hamming search over 256-bit codes (brute force or MIH).")
      .def(py::init<std::size_t, std::size_t, int, bool, bool, const std::string&>(), py::arg("mih_min_rows"),
           py::arg("tail_min_rows"), py::arg("substrings") = 0, py::arg("force_mih") = false,
           py::arg("portable_kernels") = false, py::arg("isa") = "")
      .def("add", &PyHammingIndex::add, py::arg("codes"), py::arg("ids"), "Add (n, 32) uint8 codes with unique int64 ids.")
      .def("remove", &PyHammingIndex::remove, py::arg("ids"), "Remove codes by id; returns how many were removed.")
      .def("range_search", &PyHammingIndex::range_search, py::arg("queries"), py::arg("radius"), py::arg("threads"),
           "(lims, distances, ids) of codes within radius (inclusive), sorted by (distance, id).")
      .def("knn", &PyHammingIndex::knn, py::arg("queries"), py::arg("k"), py::arg("threads"),
           "(distances, ids), each (nq, k): k nearest, ties by id, padded with -1.")
      .def("export_rows", &PyHammingIndex::export_rows, "(codes, ids) of the live codes, sorted by id.")
      .def("__len__", &PyHammingIndex::size)
      .def_property_readonly("has_tables", &PyHammingIndex::has_tables)
      .def_property_readonly("substrings", &PyHammingIndex::substrings)
      .def("probes_at", &PyHammingIndex::probes_at, py::arg("radius"), "Whether a search at radius uses the tables.")
      .def("memory_bytes", &PyHammingIndex::memory_bytes, "Bytes held by the index's arrays.");
  m.def("segment_bytes", &segment_bytes, py::arg("codes"), py::arg("ids"), py::arg("substrings") = 0,
        py::arg("threads") = 0, "Bytes of the segment of these codes and ids.");
  m.def("build_segment", &build_segment, py::arg("codes"), py::arg("ids"), py::arg("substrings"), py::arg("out"),
        py::arg("threads") = 0, "Write a segment of these codes and unique ids into the writable buffer out.");
  py::class_<PySegments>(m, "HammingSegments", "Immutable index segments in caller buffers, with dead-row bitmaps.")
      .def(py::init<bool, bool, const std::string&>(), py::arg("force_mih") = false,
           py::arg("portable_kernels") = false, py::arg("isa") = "")
      .def("append", &PySegments::append, py::arg("segment"), py::arg("dead") = py::none(),
           "Add a segment (its header is checked; RuntimeError when damaged).")
      .def_property_readonly("rows", &PySegments::rows)
      .def_property_readonly("live", &PySegments::live)
      .def("__len__", &PySegments::count)
      .def("segment_rows", &PySegments::segment_rows, py::arg("i"))
      .def("contains", &PySegments::contains, py::arg("ids"), "Whether each id is live in some segment.")
      .def("remove", &PySegments::remove, py::arg("ids"), "Mark these ids dead; returns how many were live.")
      .def("range_search", &PySegments::range_search, py::arg("queries"), py::arg("radius"), py::arg("threads"),
           py::arg("delta"), "Range search over the segments and the delta index.")
      .def("knn", &PySegments::knn, py::arg("queries"), py::arg("k"), py::arg("threads"), py::arg("delta"))
      .def("export_rows", &PySegments::export_rows, "(codes, ids) of the live rows, sorted by id.")
      .def("dead_words", &PySegments::dead_words, py::arg("i"), "Segment i's dead-row bitmap (uint64 words).")
      .def("snapshot", &PySegments::snapshot)
      .def("memory_bytes", &PySegments::memory_bytes);
}
// ---- end Hamming index ---------------------------------------------------------------------

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "hashmatch native core";
  m.attr("CPU_DISPATCH") = hc::name(dispatch());  // an invalid $HASHMATCH_CPU fails the import here
  m.def("cpu_clones", &cpu_clones, "{kernel: [clone level, ...]}: the per-ISA clones this build contains.");
  m.def("cpu_clone", &cpu_clone, py::arg("kernel"), py::arg("isa") = "",
        "The clone of a kernel that a cap (default: CPU_DISPATCH) runs on this CPU.");
  m.def("cpu_supports", &cpu_supports, py::arg("isa"), "Whether this CPU runs code built for the level.");
  m.def("pdq_hash", &pdq_hash, py::arg("image"), py::arg("isa") = "",
        "PDQ hash of a uint8 HxW/HxWx3/HxWx4 array: (32 bytes, quality).");
  m.def("pdq_hash_dihedral", &pdq_hash_dihedral, py::arg("image"), py::arg("isa") = "",
        "The 8 dihedral PDQ hashes of a uint8 image: ([32 bytes] * 8, quality).");
  m.def("pdq_hash_many", &pdq_hash_many, py::arg("images"), py::arg("threads"), py::arg("dihedral") = false,
        "PDQ hashes of a list of uint8 arrays on native threads: ([bytes or [bytes] * 8], [quality]).");
  m.def("content_box", &content_box, py::arg("image"), py::arg("tolerance"), py::arg("max_outliers"),
        py::arg("min_keep"), "(top, bottom, left, right) of a uint8 image inside its uniform borders, half-open.");
  m.def("pdq_features", &pdq_features, py::arg("luma"), py::arg("isa") = "",
        "PDQF float features (16x16 DCT, row-major) of a float32 luma image: (array, quality).");
  // ---- TMK+PDQF ----
  m.def("tmk_kernel_coefficients", &tmk_kernel_coefficients, py::arg("count"), py::arg("beta"),
        "Fourier coefficients of the TMK periodic kernel (float32).");
  m.def("tmk_ingest", &tmk_ingest, py::arg("frames"), py::arg("frame_index"), py::arg("times"), py::arg("periods"),
        py::arg("num_coefficients"), py::arg("pure_sum"), py::arg("cos_sum"), py::arg("sin_sum"),
        "PDQF of (k, H, W, 3) uint8 frames, added in place to the TMK running sums at the given times.");
  m.def("tmk_finish", &tmk_finish, py::arg("periods"), py::arg("coefficients"), py::arg("frame_count"),
        py::arg("pure_sum"), py::arg("cos_sum"), py::arg("sin_sum"),
        "TMK feature vectors from running sums: (pure average, cos, sin) float32 arrays.");
  m.def("tmk_level1", &tmk_level1, py::arg("a"), py::arg("b"), "Cosine similarity of two pure averages.");
  m.def("tmk_level2", &tmk_level2, py::arg("periods"), py::arg("num_coefficients"), py::arg("dim"), py::arg("cos_a"),
        py::arg("sin_a"), py::arg("cos_b"), py::arg("sin_b"),
        "Best normalised TMK kernel score over periods and time offsets.");
  // The bounds every layer enforces, defined once here (hashmatch.config reads them).
  m.attr("TMK_MAX_PERIODS") = ht::kMaxPeriods;
  m.attr("TMK_MAX_COEFFICIENTS") = ht::kMaxCoefficients;
  m.attr("TMK_MAX_DIMENSION") = ht::kMaxDimension;
  m.attr("TMK_MAX_PERIOD") = ht::kMaxPeriod;
  m.attr("TMK_MAX_LEVEL2_WORK") = static_cast<long long>(ht::kMaxLevel2Work);
  m.attr("TMK_MAX_KERNEL_BETA") = kMaxKernelBeta;
  const hashmatch::borders::Options b;
  m.attr("BORDER_TOLERANCE") = b.tolerance;
  m.attr("BORDER_MAX_OUTLIERS") = b.max_outliers;
  m.attr("BORDER_MIN_KEEP") = b.min_keep;
  m.attr("MAX_KNN_RESULTS") = static_cast<long long>(kMaxKnnResults);
  // ---- end TMK+PDQF ----
  bind_hamming(m);  // Hamming index
}
