#include "borders.hpp"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <vector>

namespace hashmatch {
namespace borders {
namespace {

using Colour = std::array<int, 3>;

constexpr int kRingingLines = 8;

inline Colour pixel(const pdq::PixelView& v, int r, int c) {
  const std::uint8_t* p = v.data + r * v.row_stride + c * v.col_stride;
  if (v.channels == 1) return {p[0], p[0], p[0]};
  return {p[0], p[v.channel_stride], p[2 * v.channel_stride]};
}

// A line is `count` pixels from (r0, c0) stepping (dr, dc).
struct Line {
  int r0, c0, dr, dc, count;
};

Colour median_colour(const pdq::PixelView& v, const Line& line) {
  Colour out{};
  std::vector<int> values(static_cast<std::size_t>(line.count));
  for (int ch = 0; ch < 3; ++ch) {
    for (int i = 0; i < line.count; ++i) values[i] = pixel(v, line.r0 + i * line.dr, line.c0 + i * line.dc)[ch];
    auto mid = values.begin() + line.count / 2;
    std::nth_element(values.begin(), mid, values.end());
    out[ch] = *mid;
  }
  return out;
}

bool is_border(const pdq::PixelView& v, const Line& line, const Colour& colour, const Options& o) {
  const int allowed = static_cast<int>(o.max_outliers * line.count);
  int outliers = 0;
  for (int i = 0; i < line.count; ++i) {
    const Colour p = pixel(v, line.r0 + i * line.dr, line.c0 + i * line.dc);
    if (std::abs(p[0] - colour[0]) > o.tolerance || std::abs(p[1] - colour[1]) > o.tolerance ||
        std::abs(p[2] - colour[2]) > o.tolerance) {
      if (++outliers > allowed) return false;
    }
  }
  return true;
}

// How many lines, starting at `first` and moving by `step` lines, match the first one's colour;
// at most `limit`. `line_at(k)` gives the k-th line.
template <typename LineAt>
int border_depth(const pdq::PixelView& v, LineAt line_at, int limit, const Options& o) {
  const Colour colour = median_colour(v, line_at(0));
  int depth = 0;
  while (depth < limit && is_border(v, line_at(depth), colour, o)) ++depth;
  if (depth == 0) return 0;
  // Lossy codecs ring next to the bar's edge, within one 8x8 (JPEG) or 16x16 (H.264) block: a
  // few lines further that are still close to the bar's colour are ringing, not picture.
  Options loose = o;
  loose.tolerance = 2 * o.tolerance;
  for (int extra = 0; extra < kRingingLines && depth < limit && is_border(v, line_at(depth), colour, loose); ++extra)
    ++depth;
  return depth;
}

}  // namespace

Box content_box(const pdq::PixelView& v, const Options& o) {
  const Box whole{0, v.rows, 0, v.cols};
  Box b = whole;
  // Rows across the columns still in, then columns across the rows still in. A side that found
  // no border may find one in a later round, once the perpendicular bars are gone (a pillarbox
  // inside a letterbox of another colour); a side that trimmed is final, or a flat band along
  // the picture's own edge would be taken for a second border.
  bool top_done = false, bottom_done = false, left_done = false, right_done = false;
  for (bool moved = true; moved;) {
    moved = false;
    const int w = b.right - b.left;
    if (!top_done) {
      const int d = border_depth(v, [&](int k) { return Line{b.top + k, b.left, 0, 1, w}; }, b.bottom - b.top, o);
      b.top += d;
      top_done = moved = d > 0;
    }
    if (b.top == b.bottom) return whole;  // one colour throughout
    if (!bottom_done) {
      const int d =
          border_depth(v, [&](int k) { return Line{b.bottom - 1 - k, b.left, 0, 1, w}; }, b.bottom - b.top, o);
      b.bottom -= d;
      bottom_done = d > 0;
      moved = moved || bottom_done;
    }
    const int h = b.bottom - b.top;
    if (h == 0) return whole;
    if (!left_done) {
      const int d = border_depth(v, [&](int k) { return Line{b.top, b.left + k, 1, 0, h}; }, b.right - b.left, o);
      b.left += d;
      left_done = d > 0;
      moved = moved || left_done;
    }
    if (b.left == b.right) return whole;
    if (!right_done) {
      const int d =
          border_depth(v, [&](int k) { return Line{b.top, b.right - 1 - k, 1, 0, h}; }, b.right - b.left, o);
      b.right -= d;
      right_done = d > 0;
      moved = moved || right_done;
    }
    if (b.left == b.right) return whole;
  }
  const int h = b.bottom - b.top, w = b.right - b.left;
  if (h < pdq::kMinDimension || w < pdq::kMinDimension || h < o.min_keep * v.rows || w < o.min_keep * v.cols)
    return whole;
  return b;
}

}  // namespace borders
}  // namespace hashmatch
