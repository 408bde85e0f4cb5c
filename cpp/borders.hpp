// Uniform border detection (letterboxing, pillarboxing, frames) on raw pixel buffers.
//
// Query-side robustness only: a hash of the content inside the borders is an extra lookup,
// never what gets stored, so stored hashes stay those of the reference algorithm.
#pragma once

#include "pdq.hpp"

namespace hashmatch {
namespace borders {

// The content rectangle, half-open: rows [top, bottom), columns [left, right).
struct Box {
  int top;
  int bottom;
  int left;
  int right;
};

struct Options {
  // A pixel belongs to a border when every channel is within this of the border colour.
  int tolerance = 16;
  // A line (row or column) is border when at most this fraction of its pixels is not:
  // leaves room for a channel logo or a subtitle crossing a letterbox bar.
  double max_outliers = 0.02;
  // Trimming is abandoned (the whole image returned) when the content left would be
  // narrower or shorter than this fraction of the image: a blank image has no "content".
  double min_keep = 0.1;
};

// The content box of `image`: each side is walked inwards while its lines match the colour
// of the outermost line (its per-channel median). The whole image when nothing is trimmed.
Box content_box(const pdq::PixelView& image, const Options& options);

}  // namespace borders
}  // namespace hashmatch
