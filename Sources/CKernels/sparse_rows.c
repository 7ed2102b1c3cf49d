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

// With a residual, a ReLU or a keep pattern, the block just stored (still in L1) is finished in
// place: out = max(out + residual, 0), the residual at the same position of its own buffer, and 0
// where keep[t % keep_period] is 0.
#define FINISH(from, width)                                                                          \
  do {                                                                                               \
    float *o_ = row + (from);                                                                        \
    if (residual) {                                                                                  \
      const float *res = residual + r * out_stride + (from);                                        \
      for (int k = 0; k < (width); ++k) o_[k] += res[k];                                             \
    }                                                                                                \
    if (relu)                                                                                        \
      for (int k = 0; k < (width); ++k) o_[k] = o_[k] > 0.0f ? o_[k] : 0.0f;                         \
    if (keep) {                                                                                      \
      const float *kp = keep + (from) % keep_period;                                                 \
      for (int k = 0; k < (width); ++k) o_[k] = kp[k] != 0.0f ? o_[k] : 0.0f;                        \
    }                                                                                                \
  } while (0)

static inline __attribute__((always_inline)) void advprune_sparse_rows_body(int64_t row_begin, int64_t row_end, const int32_t *start, const int64_t *offsets,
                          const float *values, const float *bias, const float *src, float *out, int64_t out_stride,
                          int64_t t_begin, int64_t t_end, const float *residual, int32_t relu, const float *keep,
                          int64_t keep_period) {
  for (int64_t tile = t_begin; tile < t_end; tile += TILE) {
    const int64_t end = tile + TILE < t_end ? tile + TILE : t_end;
    for (int64_t r = row_begin; r < row_end; ++r) {
      const float b = bias ? bias[r] : 0.0f;
      const int32_t first = start[r], last = start[r + 1];
      float *row = out + r * out_stride;
      int64_t t = tile;
      const int64_t done = t;
      for (; t + WIDE <= end; t += WIDE) BLOCK(WIDE);
      for (; t + NARROW <= end; t += NARROW) BLOCK(NARROW);
      FINISH(done, t - done);
      if (t < end && end - NARROW >= t_begin) {
        // The last partial block overlaps the one before (possibly in the previous tile, never
        // before t_begin: another thread's): its outputs are written, not added to, so
        // computing some twice gives the same values, finished again from the raw sums.
        t = end - NARROW;
        BLOCK(NARROW);
        FINISH(t, NARROW);
      } else {
        for (; t < end; ++t) {
          float acc = b;
          for (int32_t e = first; e < last; ++e) acc += values[e] * src[offsets[e] + t];
          if (residual) acc += residual[r * out_stride + t];
          if ((relu && acc < 0.0f) || (keep && keep[t % keep_period] == 0.0f)) acc = 0.0f;
          row[t] = acc;
        }
      }
    }
  }
}

ADVPRUNE_CLONES(void, advprune_sparse_rows, (int64_t row_begin, int64_t row_end, const int32_t *start, const int64_t *offsets, const float *values, const float *bias, const float *src, float *out, int64_t out_stride, int64_t t_begin, int64_t t_end, const float *residual, int32_t relu, const float *keep, int64_t keep_period), (row_begin, row_end, start, offsets, values, bias, src, out, out_stride, t_begin, t_end, residual, relu, keep, keep_period), )
