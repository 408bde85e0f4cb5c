// The only file that knows about Python. Validates buffers, releases the GIL around
// every kernel, and converts results to bytes/lists.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "parallel.hpp"
#include "pdq.hpp"

namespace py = pybind11;
namespace hp = hashmatch::pdq;

namespace {

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

py::tuple pdq_hash(const py::array& image) {
  const hp::PixelView v = pixel_view(image);
  std::uint8_t out[hp::kHashBytes];
  int q;
  {
    py::gil_scoped_release release;
    q = hp::hash(v, out);
  }
  return py::make_tuple(to_bytes(out, hp::kHashBytes), q);
}

py::tuple pdq_hash_dihedral(const py::array& image) {
  const hp::PixelView v = pixel_view(image);
  std::uint8_t out[hp::kDihedralCount][hp::kHashBytes];
  int q;
  {
    py::gil_scoped_release release;
    q = hp::hash_dihedral(v, out);
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
  {
    py::gil_scoped_release release;
    hashmatch::parallel_for(n, threads, [&](std::size_t i) {
      std::uint8_t* out = bits.data() + i * per_image * hp::kHashBytes;
      if (dihedral) {
        qualities[i] = hp::hash_dihedral(views[i], reinterpret_cast<std::uint8_t(*)[hp::kHashBytes]>(out));
      } else {
        qualities[i] = hp::hash(views[i], out);
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

py::tuple pdq_features(const py::array_t<float, py::array::c_style>& luma) {
  if (luma.ndim() != 2 || luma.shape(0) < 1 || luma.shape(1) < 1)
    throw py::value_error("luma must be a non-empty 2-D float32 array");
  py::array_t<float> out(hp::kFeatureCount);
  int q;
  {
    py::gil_scoped_release release;
    q = hp::features_luma(luma.data(), static_cast<int>(luma.shape(0)), static_cast<int>(luma.shape(1)),
                          out.mutable_data());
  }
  return py::make_tuple(out, q);
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "hashmatch native core";
  m.def("pdq_hash", &pdq_hash, py::arg("image"),
        "PDQ hash of a uint8 HxW/HxWx3/HxWx4 array: (32 bytes, quality).");
  m.def("pdq_hash_dihedral", &pdq_hash_dihedral, py::arg("image"),
        "The 8 dihedral PDQ hashes of a uint8 image: ([32 bytes] * 8, quality).");
  m.def("pdq_hash_many", &pdq_hash_many, py::arg("images"), py::arg("threads"), py::arg("dihedral") = false,
        "PDQ hashes of a list of uint8 arrays on native threads: ([bytes or [bytes] * 8], [quality]).");
  m.def("pdq_features", &pdq_features, py::arg("luma"),
        "PDQF float features (16x16 DCT, row-major) of a float32 luma image: (array, quality).");
}
