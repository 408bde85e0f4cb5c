// PDQ perceptual image hashing (Meta's published algorithm), on raw pixel buffers.
//
// Every function here is pure: inputs are read-only views, outputs are caller-owned,
// scratch memory is local to the call. Floating-point operations happen in the same
// order as the reference implementation so that hashes are bit-identical to it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "cpu.hpp"

namespace hashmatch {
namespace pdq {

constexpr int kHashBytes = 32;
constexpr int kDihedralCount = 8;
constexpr int kFeatureCount = 256;
// The reference declines images smaller than this on either side: all-zero hash, quality 0.
constexpr int kMinDimension = 5;

// 8-bit pixels with arbitrary (possibly negative) strides, in bytes.
// channels: 1 (gray, treated as R=G=B), 3 (RGB) or 4 (RGBA, alpha ignored).
struct PixelView {
  const std::uint8_t* data;
  int rows;
  int cols;
  int channels;
  std::ptrdiff_t row_stride;
  std::ptrdiff_t col_stride;
  std::ptrdiff_t channel_stride;
};

// Blur (two Jarosz passes) and decimate to 64x64: a row-major float luma image, or pixels
// whose luma is taken as the reference pipeline takes it (0.299 R + 0.587 G + 0.114 B in
// double, rounded once to float). `isa` caps the blur clone (every clone gives the same floats).
void downsample64(const float* luma, int rows, int cols, float out64x64[64 * 64], cpu::Isa isa = cpu::kBest);
void downsample64(const PixelView& image, float out64x64[64 * 64], cpu::Isa isa = cpu::kBest);
// The blur clones this build contains, in increasing level, and the one a cap runs here.
std::vector<cpu::Isa> blur_clones();
cpu::Isa blur_clone(cpu::Isa cap);

// The quality metric (0-100) of a 64x64 downsampled image.
int quality(const float in64x64[64 * 64]);

// The 16x16 DCT (DC excluded) of a 64x64 image.
void dct16(const float in64x64[64 * 64], float out16x16[256]);

// Median-threshold 256 DCT coefficients into 32 bytes, most significant bit first,
// in the reference hash's bit order (its hex string is these bytes in hex).
void bits_from_dct(const float dct16x16[256], std::uint8_t out[kHashBytes]);

// The 8 dihedral variants of a 16x16 DCT, in the reference's order: original,
// rotate 90, rotate 180, rotate 270, flip X, flip Y, flip +1 diagonal, flip -1 diagonal.
void dihedral_dcts(const float dct16x16[256], float out[kDihedralCount][256]);

// Whole pipelines. Each returns the quality. Images of any size >= 1x1.
// `isa` caps the blur clone, as for downsample64.
int hash(const PixelView& image, std::uint8_t out[kHashBytes], cpu::Isa isa = cpu::kBest);
int hash_dihedral(const PixelView& image, std::uint8_t out[kDihedralCount][kHashBytes],
                  cpu::Isa isa = cpu::kBest);
// The float DCT features (PDQF, row-major 16x16) TMK+PDQF uses; returns the quality.
int features(const PixelView& image, float out[kFeatureCount], cpu::Isa isa = cpu::kBest);
int features_luma(const float* luma, int rows, int cols, float out[kFeatureCount], cpu::Isa isa = cpu::kBest);

}  // namespace pdq
}  // namespace hashmatch
