#include "ckernels.h"
#include "short_copy.h"

#include <string.h>

// Square's windows are cut from and pasted into activations of the whole batch (megabytes),
// row by row, and the rows are short (1-28 floats on SmallCNN): `copy_short`, not memmove. What
// is left is waiting for memory: each row is a cache line the hardware's prefetcher does not
// foresee, so the crop asks for the rows it will read next. Window copies: 24 % of Square (Swift
// loops and memmove) -> 19-21 %.

static const float zeros[32];

static inline void zero_short(float *d, int64_t n) {
  if (n > 32) memset(d, 0, (size_t)n * sizeof(float));
  else copy_short(d, zeros, n);
}

void advprune_crop_window(float *out, int64_t out_height, int64_t out_width, const float *x, int64_t height,
                          int64_t width, int64_t top, int64_t left) {
  // Columns [lo, hi) of each row read the plane; the rest are zero.
  int64_t lo = left < 0 ? -left : 0, hi = width - left;
  if (lo > out_width) lo = out_width;
  if (hi > out_width) hi = out_width;
  if (hi < lo) hi = lo;
  for (int64_t i = 0; i < out_height; i++) {
    float *row = out + i * out_width;
    const int64_t y = top + i;
    if (y < 0 || y >= height || lo == hi) {
      zero_short(row, out_width);
      continue;
    }
    const float *from = x + y * width + left + lo;
    // The same row two planes on, the caller's call after next (past the tensor is harmless).
    __builtin_prefetch(from + 2 * height * width);
    __builtin_prefetch(from + 2 * height * width + hi - lo - 1);
    zero_short(row, lo);
    copy_short(row + lo, from, hi - lo);
    zero_short(row + hi, out_width - hi);
  }
}

void advprune_paste_window(float *into, int64_t into_height, int64_t into_width, int64_t into_top,
                           int64_t into_left, const float *window, int64_t window_height, int64_t window_width,
                           int64_t top, int64_t left, int64_t plane_height, int64_t plane_width) {
  // Window columns [first, end) land inside the plane and inside `into`.
  int64_t first = 0, end = window_width;
  if (-left > first) first = -left;
  if (into_left - left > first) first = into_left - left;
  if (plane_width - left < end) end = plane_width - left;
  if (into_width + into_left - left < end) end = into_width + into_left - left;
  if (first >= end) return;
  for (int64_t i = 0; i < window_height; i++) {
    const int64_t y = top + i, ty = top + i - into_top;
    if (y < 0 || y >= plane_height || ty < 0 || ty >= into_height) continue;
    copy_short(into + ty * into_width + left - into_left + first, window + i * window_width + first, end - first);
  }
}
