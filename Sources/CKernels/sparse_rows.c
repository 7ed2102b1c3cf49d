#include "isa.h"

// Outputs per register block: 64 floats are four AVX-512 or eight AVX2 registers; 16 for the rest.
#define WIDE 64
#define NARROW 16

// Runs of TILE outputs: within a tile, row by row, so a row's nonzeros stay in L1 across the
// tile's blocks and the tile's window of the source (all channels) stays in L2 across the rows.
#define TILE 256

// out[r][t + k] = b + sum_e values[e] * src[offsets[e] + t + k] for k in [0, width).
#define BLOCK(width)                                                   \
  do {                                                                 \
    float acc[width];                                                  \
    for (int k = 0; k < width; ++k) acc[k] = b;                        \
    for (int32_t e = first; e < last; ++e) {                           \
      const float w = values[e];                                       \
      const float *p = src + offsets[e] + t;                           \
      for (int k = 0; k < width; ++k) acc[k] += w * p[k];              \
    }                                                                  \
    for (int k = 0; k < width; ++k) row[t + k] = acc[k];               \
  } while (0)

static inline __attribute__((always_inline)) void advprune_sparse_rows_body(int64_t row_begin, int64_t row_end, const int32_t *start, const int64_t *offsets,
                          const float *values, const float *bias, const float *src, float *out, int64_t out_stride,
                          int64_t length) {
  for (int64_t tile = 0; tile < length; tile += TILE) {
    const int64_t end = tile + TILE < length ? tile + TILE : length;
    for (int64_t r = row_begin; r < row_end; ++r) {
      const float b = bias ? bias[r] : 0.0f;
      const int32_t first = start[r], last = start[r + 1];
      float *row = out + r * out_stride;
      int64_t t = tile;
      for (; t + WIDE <= end; t += WIDE) BLOCK(WIDE);
      for (; t + NARROW <= end; t += NARROW) BLOCK(NARROW);
      if (t < end && end >= NARROW) {
        // The last partial block overlaps the one before (possibly in the previous tile): its
        // outputs are written, not added to, so computing some twice gives the same values.
        t = end - NARROW;
        BLOCK(NARROW);
      } else {
        for (; t < end; ++t) {
          float acc = b;
          for (int32_t e = first; e < last; ++e) acc += values[e] * src[offsets[e] + t];
          row[t] = acc;
        }
      }
    }
  }
}

ADVPRUNE_CLONES(void, advprune_sparse_rows, (int64_t row_begin, int64_t row_end, const int32_t *start, const int64_t *offsets, const float *values, const float *bias, const float *src, float *out, int64_t out_stride, int64_t length), (row_begin, row_end, start, offsets, values, bias, src, out, out_stride, length), )
