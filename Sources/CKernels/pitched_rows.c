#include "isa.h"
#include "short_copy.h"

#include <string.h>

// The sparse direct conv lays each image's planes on a wide grid (row pitch Wp) and takes them
// back, row by row, with a ReLU or the ReLU's gradient mask on the way for fused layers. The rows
// are short (8-26 floats on SmallCNN, 4-32 on ResNet18), so what cost was the per-row call and the
// scalar tail: at 99 % sparsity these copies were 60 % of a PGD step, the sparse products 7 %. One
// call per plane; a row of at least 8 floats is 8-wide vectors, the last one overlapping.

typedef float v8 __attribute__((vector_size(32)));
typedef int32_t i8 __attribute__((vector_size(32)));
#define LANES 8

// dst[0..8) = src[0..8) where keep[0..8) > 0, else 0 (macros, not functions: a v8 argument
// changes the calling convention between the clones' targets).
#define KEEP8(dst, src, keep)          \
  do {                                 \
    v8 v_, k_;                         \
    memcpy(&v_, (src), sizeof v_);     \
    memcpy(&k_, (keep), sizeof k_);    \
    v_ = (v8)((i8)v_ & (k_ > (v8){})); \
    memcpy((dst), &v_, sizeof v_);     \
  } while (0)

void advprune_copy_rows(float *dst, int64_t dst_pitch, const float *src, int64_t src_pitch, int64_t rows,
                        int64_t width) {
  for (int64_t r = 0; r < rows; r++) copy_short(dst + r * dst_pitch, src + r * src_pitch, width);
}

// Columns [0, width) of each row through `op(i)`, which reads and writes 8 floats at column i (or
// one, `one(i)`, on rows shorter than 8). Overlapping the last vector is harmless: op is a pure
// function of the source, and the source is never the destination.
#define EACH_ROW_COLUMN(op, one)                                  \
  for (int64_t r = 0; r < rows; r++) {                            \
    if (width < LANES) {                                          \
      for (int64_t i = 0; i < width; i++) one(i);                 \
      continue;                                                   \
    }                                                             \
    int64_t i = 0;                                                \
    for (; i + LANES <= width; i += LANES) op(i);                 \
    if (i < width) op(width - LANES);                             \
  }

static inline __attribute__((always_inline)) void advprune_copy_rows_relu_body(float *dst, int64_t dst_pitch,
                                                                               const float *src, int64_t src_pitch,
                                                                               int64_t rows, int64_t width) {
#define RELU8(i) KEEP8(dst + r * dst_pitch + (i), src + r * src_pitch + (i), src + r * src_pitch + (i))
#define RELU1(i) dst[r * dst_pitch + (i)] = src[r * src_pitch + (i)] > 0.0f ? src[r * src_pitch + (i)] : 0.0f
  EACH_ROW_COLUMN(RELU8, RELU1)
#undef RELU8
#undef RELU1
}

ADVPRUNE_CLONES(void, advprune_copy_rows_relu,
                (float *dst, int64_t dst_pitch, const float *src, int64_t src_pitch, int64_t rows, int64_t width),
                (dst, dst_pitch, src, src_pitch, rows, width), )

static inline __attribute__((always_inline)) void advprune_copy_rows_masked_body(float *dst, int64_t dst_pitch,
                                                                                 const float *src, const float *relu_output,
                                                                                 int64_t src_pitch, int64_t rows,
                                                                                 int64_t width) {
#define MASK8(i) KEEP8(dst + r * dst_pitch + (i), src + r * src_pitch + (i), relu_output + r * src_pitch + (i))
#define MASK1(i) dst[r * dst_pitch + (i)] = relu_output[r * src_pitch + (i)] > 0.0f ? src[r * src_pitch + (i)] : 0.0f
  EACH_ROW_COLUMN(MASK8, MASK1)
#undef MASK8
#undef MASK1
}

ADVPRUNE_CLONES(void, advprune_copy_rows_masked,
                (float *dst, int64_t dst_pitch, const float *src, const float *relu_output, int64_t src_pitch,
                 int64_t rows, int64_t width),
                (dst, dst_pitch, src, relu_output, src_pitch, rows, width), )

// Strided convs' phases: a row's every s-th pixel, 8 to 16 of them on ResNet18's strided layers.
// In Swift these per-pixel loops were 7 % of a 99 %-sparse ResNet18's PGD step.
void advprune_gather_runs(float *grid, const float *image, const advprune_phase_run *runs, int64_t count,
                          int64_t stride) {
  for (int64_t r = 0; r < count; r++) {
    if (!runs[r].laid) continue;
    float *to = grid + runs[r].grid;
    const float *from = image + runs[r].image;
    for (int64_t k = 0; k < runs[r].count; k++) to[k] = from[k * stride];
  }
}

void advprune_scatter_runs(float *image, const float *grid, const advprune_phase_run *runs, int64_t count,
                           int64_t stride) {
  for (int64_t r = 0; r < count; r++) {
    float *to = image + runs[r].image;
    const float *from = grid + runs[r].grid;
    if (runs[r].laid)
      for (int64_t k = 0; k < runs[r].count; k++) to[k * stride] = from[k];
    else
      for (int64_t k = 0; k < runs[r].count; k++) to[k * stride] = 0;
  }
}
