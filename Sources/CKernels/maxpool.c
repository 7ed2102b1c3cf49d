#include "isa.h"

#include <string.h>

// 2x2 max pooling over whole row pairs: the inputs of output row R (plane * OH + oy) are input
// rows 2 R and 2 R + 1 of the flattened [planes * H, W] tensor, so 16 outputs are two 32-float
// loads, a vertical and an even/odd maximum. SmallCNN's pooled rows have 12 and 4 outputs: one
// vector per row, where the Swift loop took a compare and a branch per input.

typedef float v16 __attribute__((vector_size(64)));
typedef int32_t i16 __attribute__((vector_size(64)));
#define LANES 16
#define LOAD(p) ({ v16 v_; memcpy(&v_, (p), sizeof v_); v_; })
#define STORE(p, v) do { v16 s_ = (v); memcpy((p), &s_, sizeof s_); } while (0)
#define EVENS(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
#define ODDS(a, b) __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31)
#define SELECT(mask, a, b) ((v16)(((i16)(a) & (mask)) | ((i16)(b) & ~(mask))))
// A 32-float load that may not read past `end`: through a zeroed buffer near it.
#define LOAD_BEFORE(p, end, count)                                  \
  ({                                                                \
    v16 v_;                                                         \
    if ((p) + LANES <= (end)) v_ = LOAD(p);                         \
    else {                                                          \
      float b_[LANES] = {0};                                        \
      memcpy(b_, (p), (size_t)(count) * sizeof(float));             \
      v_ = LOAD(b_);                                                \
    }                                                               \
    v_;                                                             \
  })
// Stores `count` lanes, or all 16 where `full` (the rest spills into what is written later).
#define STORE_UPTO(p, v, full, count)                               \
  do {                                                              \
    if (full) STORE(p, v);                                          \
    else {                                                          \
      float b_[LANES];                                              \
      STORE(b_, (v));                                               \
      memcpy((p), b_, (size_t)(count) * sizeof(float));             \
    }                                                               \
  } while (0)

// Stores the `valid` first lanes at p, all 16 where a spill may land past them (not past `end`).
#define PUT(p, v, valid, may_spill, end)                                                     \
  do {                                                                                       \
    if ((valid) > 0)                                                                         \
      STORE_UPTO(p, v, ((valid) >= LANES || (may_spill)) && (p) + LANES <= (end),            \
                 (valid) < LANES ? (valid) : LANES);                                         \
  } while (0)

// The four candidates of 16 windows, and which one wins: the first largest in the order
// (0, 0), (0, 1), (1, 0), (1, 1) by `>`, as the reference's argmax (so NaN and ties agree).
#define WINDOWS(x, w, end, count)                                                            \
  const float *r0_ = (x), *r1_ = (x) + (w);                                                  \
  const int64_t n_ = 2 * (count);                                                            \
  const v16 a0_ = LOAD_BEFORE(r0_, end, n_ < LANES ? n_ : LANES);                            \
  const v16 a1_ = LOAD_BEFORE(r0_ + LANES, end, n_ > LANES ? n_ - LANES : 0);                \
  const v16 b0_ = LOAD_BEFORE(r1_, end, n_ < LANES ? n_ : LANES);                            \
  const v16 b1_ = LOAD_BEFORE(r1_ + LANES, end, n_ > LANES ? n_ - LANES : 0);                \
  const v16 c0 = EVENS(a0_, a1_), c1 = ODDS(a0_, a1_), c2 = EVENS(b0_, b1_), c3 = ODDS(b0_, b1_); \
  const i16 take1 = c1 > c0;                                                                 \
  const v16 best1 = SELECT(take1, c1, c0);                                                   \
  const i16 take2 = c2 > best1;                                                              \
  const v16 best2 = SELECT(take2, c2, best1);                                                \
  const i16 take3 = c3 > best2;                                                              \
  const v16 best = SELECT(take3, c3, best2);

static inline __attribute__((always_inline)) void advprune_maxpool2x2_forward_body(const float *x, int64_t row_pairs, int64_t width, int64_t first, int64_t last,
                                 float *y) {
  const int64_t ow = width / 2;
  const float *x_end = x + row_pairs * 2 * width;
  float *y_end = y + last * ow;
  for (int64_t r = first; r < last; ++r) {
    for (int64_t ox = 0; ox < ow; ox += LANES) {
      const int64_t count = ow - ox < LANES ? ow - ox : LANES;
      WINDOWS(x + r * 2 * width + 2 * ox, width, x_end, count)
      (void)take3;
      float *out = y + r * ow + ox;
      STORE_UPTO(out, best, out + LANES <= y_end, count);
    }
  }
}

static inline __attribute__((always_inline)) void advprune_maxpool2x2_backward_body(const float *x, const float *dy, int64_t row_pairs, int64_t width, int64_t first,
                                  int64_t last, float *dx) {
  const int64_t ow = width / 2;
  const float *x_end = x + row_pairs * 2 * width, *dy_end = dy + row_pairs * ow;
  float *dx_end = dx + last * 2 * width;
  for (int64_t r = first; r < last; ++r) {
    for (int64_t ox = 0; ox < ow; ox += LANES) {
      const int64_t count = ow - ox < LANES ? ow - ox : LANES;
      WINDOWS(x + r * 2 * width + 2 * ox, width, x_end, count)
      (void)best;
      const v16 g = LOAD_BEFORE(dy + r * ow + ox, dy_end, count);
      // Winner k of each window: 3 if take3, else 2 if take2, else 1 if take1, else 0.
      const i16 is3 = take3, is2 = take2 & ~take3, is1 = take1 & ~take2 & ~take3;
      const i16 is0 = ~(take1 | take2 | take3);
      const v16 z = {};
      const v16 g0 = SELECT(is0, g, z), g1 = SELECT(is1, g, z), g2 = SELECT(is2, g, z), g3 = SELECT(is3, g, z);
      const v16 top0 = __builtin_shufflevector(g0, g1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
      const v16 top1 = __builtin_shufflevector(g0, g1, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
      const v16 bottom0 = __builtin_shufflevector(g2, g3, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
      const v16 bottom1 = __builtin_shufflevector(g2, g3, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
      // The top row's spill lands in the bottom row, stored next, when a row is one chunk (else
      // only the chunk's own columns are written); the bottom row's spill lands in the next
      // row pair or chunk, stored later; none goes past this range.
      float *d0 = dx + r * 2 * width + 2 * ox, *d1 = d0 + width;
      const int64_t n = 2 * count;
      const int one_chunk = ow <= LANES;
      PUT(d0, top0, n, one_chunk, dx_end);
      PUT(d0 + LANES, top1, n - LANES, one_chunk, dx_end);
      PUT(d1, bottom0, n, 1, dx_end);
      PUT(d1 + LANES, bottom1, n - LANES, 1, dx_end);
    }
  }
}

ADVPRUNE_CLONES(void, advprune_maxpool2x2_forward, (const float *x, int64_t row_pairs, int64_t width, int64_t first, int64_t last, float *y), (x, row_pairs, width, first, last, y), )
ADVPRUNE_CLONES(void, advprune_maxpool2x2_backward, (const float *x, const float *dy, int64_t row_pairs, int64_t width, int64_t first, int64_t last, float *dx), (x, dy, row_pairs, width, first, last, dx), )
