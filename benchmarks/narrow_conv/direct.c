#include "isa.h"
#include "winograd_lanes.h"

// A direct 3x3 stride-1 convolution built to run at the FMA peak: for 16 output columns and a
// block of 8 output channels, each input channel and tap is one vector load of a zero-padded
// input row and 8 multiply-adds with broadcast weights, accumulators in registers. It does 4x
// the multiplies of F(4x4, 3x3) and no transforms: the yardstick for what a narrow layer's
// Winograd pass could save (bench.c). Not used by advprune.

#define BLOCK 8

static inline AI void direct3x3_body(const float *x, int64_t images, int64_t in_channels, int64_t height, int64_t width,
                                     int64_t padding, const float *blocked, int64_t out_channels, const float *bias, int relu,
                                     float *y, float *padded) {
  const int64_t out_h = height + 2 * padding - 2, out_w = width + 2 * padding - 2, rows = height + 2 * padding;
  const int64_t pitch = (out_w + 2 + LANES - 1) / LANES * LANES + LANES, blocks = (out_channels + BLOCK - 1) / BLOCK;
  for (int64_t n = 0; n < images; ++n) {
    memset(padded, 0, sizeof(float) * (size_t)(in_channels * rows * pitch));
    for (int64_t c = 0; c < in_channels; ++c)
      for (int64_t r = 0; r < height; ++r)
        memcpy(padded + (c * rows + r + padding) * pitch + padding, x + ((n * in_channels + c) * height + r) * width,
               sizeof(float) * (size_t)width);
    for (int64_t b = 0; b < blocks; ++b) {
      const float *wb = blocked + b * in_channels * 9 * BLOCK;
      const int64_t count = out_channels - b * BLOCK < BLOCK ? out_channels - b * BLOCK : BLOCK;
      for (int64_t oy = 0; oy < out_h; ++oy) {
        for (int64_t x0 = 0; x0 < out_w; x0 += LANES) {
          v16 acc[BLOCK];
          for (int r = 0; r < BLOCK; ++r) acc[r] = (v16){} + (r < count && bias ? bias[b * BLOCK + r] : 0.0f);
          for (int64_t c = 0; c < in_channels; ++c) {
            const float *at = padded + (c * rows + oy) * pitch + x0, *wc = wb + c * 9 * BLOCK;
            for (int t = 0; t < 9; ++t) {
              const v16 v = LOAD(at + t / 3 * pitch + t % 3);
              for (int r = 0; r < BLOCK; ++r) acc[r] += wc[t * BLOCK + r] * v;
            }
          }
          const int64_t valid = out_w - x0 < LANES ? out_w - x0 : LANES;
          for (int r = 0; r < count; ++r) {
            const v16 a = relu ? __builtin_elementwise_max(acc[r], (v16){}) : acc[r];
            float *plane = y + (n * out_channels + b * BLOCK + r) * out_h * out_w, *dst = plane + oy * out_w + x0;
            // A full store's spill past the row lands on this plane's next rows, written after it.
            if (valid == LANES || dst + LANES <= plane + out_h * out_w) STORE(dst, a);
            else STORE_FIRST(dst, a, valid);
          }
        }
      }
    }
  }
}

ADVPRUNE_CLONES(void, direct3x3,
                (const float *x, int64_t images, int64_t in_channels, int64_t height, int64_t width, int64_t padding,
                 const float *blocked, int64_t out_channels, const float *bias, int relu, float *y, float *padded),
                (x, images, in_channels, height, width, padding, blocked, out_channels, bias, relu, y, padded), )
