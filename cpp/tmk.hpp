// TMK+PDQF (Meta's temporal match kernel over PDQ float frame features), on raw arrays.
//
// After Poullot et al., "Temporal Matching Kernel with Explicit Feature Maps" (ACM MM 2015):
// a video is summarised by the mean of its frame features and, for each period T and each
// Fourier coefficient j, the sums of the features weighted by cos(2 pi j t / T) and
// sin(2 pi j t / T), t the frame's index in the time-resampled stream. Two such summaries
// give the kernel score for every relative time offset in closed form.
//
// Layouts: features are row-major (frames x dim); cos and sin arrays are
// (periods x coefficients x dim), period-major, as the .tmk file stores them.
// Every function is pure: caller-owned inputs and outputs, no global state.
#pragma once

#include <cstdint>

namespace hashmatch {
namespace tmk {

// Bounds on any TMK shape the core accepts, far above the reference's (4 periods, 32
// coefficients, 256-d, ~1M level-2 steps) so that a hostile .tmk header cannot ask for a huge
// allocation or hang a match. The bindings export them; Python reads them from there.
constexpr int kMaxPeriods = 64;
constexpr int kMaxCoefficients = 1024;
constexpr int kMaxDimension = 4096;
constexpr int kMaxPeriod = 1 << 20;              // frames: 19 hours at 15 fps; the reference's longest is 14653
constexpr double kMaxLevel2Work = 1 << 24;       // sum(periods) x coefficients

// The shape of a TMK: the periods (in frames) and the number of Fourier coefficients.
struct Shape {
  const int* periods;
  int num_periods;
  int num_coefficients;
  int dim;
};

// The Fourier coefficients of the periodic kernel exp(beta cos x) (modified Bessel
// functions of the first kind, normalised so that the kernel is 1 at 0): a_0 =
// (I_0(beta) - e^-beta) / (2 sinh beta), a_j = I_j(beta) / sinh beta.
void kernel_coefficients(int count, double beta, float* out);

// Add frames to the running sums: frame i (features + frame_index[i] * dim) at time times[i].
// A decoded frame may fill several time slots, so frame_index may repeat entries. The pure
// sum adds the raw features; the cos and sin sums add them scaled to unit length.
// pure_sum has dim entries; cos_sum and sin_sum are (periods x coefficients x dim).
void accumulate(const Shape& shape, const float* features, const std::int32_t* frame_index,
                const std::int64_t* times, int count, double* pure_sum, double* cos_sum, double* sin_sum);

// The final feature vectors from the sums of frame_count frames: the pure average is the
// mean; each (period, coefficient) cos and sin vector is scaled to unit length (left at
// zero if it is zero), then weighted by sqrt(a_j) so that dot products carry the kernel.
void finish(const Shape& shape, const float* coefficients, std::int64_t frame_count, const double* pure_sum,
            const double* cos_sum, const double* sin_sum, float* pure_average, float* cos_out, float* sin_out);

// Level 1: the cosine similarity of two pure averages (0 if either is zero).
double level1(const float* a, const float* b, int dim);

// Level 2: the best normalised kernel score over every period and every integer time
// offset in [0, period): how well the two videos line up at their best alignment.
double level2(const Shape& shape, const float* cos_a, const float* sin_a, const float* cos_b,
              const float* sin_b);

}  // namespace tmk
}  // namespace hashmatch
