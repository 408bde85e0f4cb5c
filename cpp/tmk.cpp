#include "tmk.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace hashmatch {
namespace tmk {
namespace {

constexpr double kTwoPi = 6.283185307179586476925286766559;

double dot(const float* a, const float* b, int n) {
  double s = 0.0;
  for (int i = 0; i < n; ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

std::size_t block(const Shape& s, int period, int coefficient) {
  return (static_cast<std::size_t>(period) * s.num_coefficients + coefficient) * s.dim;
}

}  // namespace

void kernel_coefficients(int count, double beta, float* out) {
  if (count <= 0) return;
  const double sinh_beta = std::sinh(beta);
  out[0] = static_cast<float>((std::cyl_bessel_i(0.0, beta) - std::exp(-beta)) / (2.0 * sinh_beta));
  for (int j = 1; j < count; ++j) out[j] = static_cast<float>(std::cyl_bessel_i(static_cast<double>(j), beta) / sinh_beta);
}

void accumulate(const Shape& shape, const float* features, const std::int32_t* frame_index,
                const std::int64_t* times, int count, double* pure_sum, double* cos_sum, double* sin_sum) {
  const int d = shape.dim;
  const int m = shape.num_coefficients;
  std::vector<double> c(m), s(m), x(d);
  for (int i = 0; i < count; ++i) {
    const float* f = features + static_cast<std::size_t>(frame_index[i]) * d;
    for (int k = 0; k < d; ++k) pure_sum[k] += f[k];
    // The kernel sums take each frame at unit length, so no single high-contrast frame
    // dominates the temporal signature; the pure average keeps the raw features.
    const double norm = std::sqrt(dot(f, f, d));
    const double scale = norm > 0.0 ? 1.0 / norm : 0.0;
    for (int k = 0; k < d; ++k) x[k] = f[k] * scale;
    for (int p = 0; p < shape.num_periods; ++p) {
      const std::int64_t period = shape.periods[p];
      // Reduce the time modulo the period first: the angle stays small and exact for any length.
      const double phase = kTwoPi * static_cast<double>(times[i] % period) / static_cast<double>(period);
      for (int j = 0; j < m; ++j) {
        c[j] = std::cos(phase * j);
        s[j] = std::sin(phase * j);
      }
      for (int j = 0; j < m; ++j) {
        double* cj = cos_sum + block(shape, p, j);
        double* sj = sin_sum + block(shape, p, j);
        const double cw = c[j], sw = s[j];
        for (int k = 0; k < d; ++k) {
          cj[k] += cw * x[k];
          sj[k] += sw * x[k];
        }
      }
    }
  }
}

void finish(const Shape& shape, const float* coefficients, std::int64_t frame_count, const double* pure_sum,
            const double* cos_sum, const double* sin_sum, float* pure_average, float* cos_out, float* sin_out) {
  const int d = shape.dim;
  for (int k = 0; k < d; ++k)
    pure_average[k] = frame_count > 0 ? static_cast<float>(pure_sum[k] / static_cast<double>(frame_count)) : 0.0f;
  auto scaled_unit = [d](const double* in, double weight, float* out) {
    double norm = 0.0;
    for (int k = 0; k < d; ++k) norm += in[k] * in[k];
    norm = std::sqrt(norm);
    const double scale = norm > 0.0 ? weight / norm : 0.0;
    for (int k = 0; k < d; ++k) out[k] = static_cast<float>(in[k] * scale);
  };
  for (int p = 0; p < shape.num_periods; ++p) {
    for (int j = 0; j < shape.num_coefficients; ++j) {
      const std::size_t b = block(shape, p, j);
      const double weight = std::sqrt(static_cast<double>(coefficients[j]));
      scaled_unit(cos_sum + b, weight, cos_out + b);
      scaled_unit(sin_sum + b, weight, sin_out + b);
    }
  }
}

double level1(const float* a, const float* b, int dim) {
  const double na = dot(a, a, dim), nb = dot(b, b, dim);
  if (na <= 0.0 || nb <= 0.0) return 0.0;
  return dot(a, b, dim) / std::sqrt(na * nb);
}

double level2(const Shape& shape, const float* cos_a, const float* sin_a, const float* cos_b,
              const float* sin_b) {
  const int d = shape.dim;
  const int m = shape.num_coefficients;
  std::vector<double> same(m), cross(m), cos_table, sin_table;
  double best = 0.0;
  bool any = false;
  for (int p = 0; p < shape.num_periods; ++p) {
    // Per coefficient, the offset-independent parts of the kernel score: shifting one video
    // by delta rotates its (cos, sin) pair by 2 pi j delta / T.
    double norm_a = 0.0, norm_b = 0.0;
    for (int j = 0; j < m; ++j) {
      const std::size_t b = block(shape, p, j);
      const float *ca = cos_a + b, *sa = sin_a + b, *cb = cos_b + b, *sb = sin_b + b;
      same[j] = dot(ca, cb, d) + dot(sa, sb, d);
      cross[j] = dot(ca, sb, d) - dot(sa, cb, d);
      norm_a += dot(ca, ca, d) + dot(sa, sa, d);
      norm_b += dot(cb, cb, d) + dot(sb, sb, d);
    }
    if (norm_a <= 0.0 || norm_b <= 0.0) continue;
    const int period = shape.periods[p];
    cos_table.resize(period);
    sin_table.resize(period);
    for (int k = 0; k < period; ++k) {
      cos_table[k] = std::cos(kTwoPi * k / period);
      sin_table[k] = std::sin(kTwoPi * k / period);
    }
    const double norm = std::sqrt(norm_a * norm_b);
    for (int delta = 0; delta < period; ++delta) {
      double score = 0.0;
      int angle = 0;  // j * delta mod period, stepped without overflow
      for (int j = 0; j < m; ++j) {
        score += cos_table[angle] * same[j] + sin_table[angle] * cross[j];
        angle += delta;
        if (angle >= period) angle -= period;
      }
      score /= norm;
      if (!any || score > best) best = score;
      any = true;
    }
  }
  return best;
}

}  // namespace tmk
}  // namespace hashmatch
