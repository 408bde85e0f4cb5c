#include "borders.hpp"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <vector>

namespace hashmatch {
namespace borders {
namespace {

using Colour = std::array<int, 3>;

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
  return depth;
}

}  // namespace

Box content_box(const pdq::PixelView& v, const Options& o) {
  const Box whole{0, v.rows, 0, v.cols};
  Box b = whole;
  // Rows across the columns still in, then columns across the rows still in, until nothing
  // moves: nested frames of different colours (a pillarbox inside a letterbox) need the rounds.
  for (bool moved = true; moved;) {
    const Box before = b;
    const int w = b.right - b.left;
    b.top += border_depth(v, [&](int k) { return Line{b.top + k, b.left, 0, 1, w}; }, b.bottom - b.top, o);
    if (b.top == b.bottom) return whole;  // one colour throughout
    b.bottom -= border_depth(v, [&](int k) { return Line{b.bottom - 1 - k, b.left, 0, 1, w}; }, b.bottom - b.top, o);
    const int h = b.bottom - b.top;
    if (h == 0) return whole;
    b.left += border_depth(v, [&](int k) { return Line{b.top, b.left + k, 1, 0, h}; }, b.right - b.left, o);
    if (b.left == b.right) return whole;
    b.right -= border_depth(v, [&](int k) { return Line{b.top, b.right - 1 - k, 1, 0, h}; }, b.right - b.left, o);
    if (b.left == b.right) return whole;
    moved = b.top != before.top || b.bottom != before.bottom || b.left != before.left || b.right != before.right;
  }
  const int h = b.bottom - b.top, w = b.right - b.left;
  if (h < pdq::kMinDimension || w < pdq::kMinDimension || h < o.min_keep * v.rows || w < o.min_keep * v.cols)
    return whole;
  return b;
}

}  // namespace borders
}  // namespace hashmatch
