#include "ckernels.h"

#include <stdlib.h>
#include <string.h>

// Winograd F(2x2, 3x3) (Lavin & Gray 2016): y = A^T [(G g G^T) . (B^T d B)] A for each 4x4 input
// tile d (stride 2) and 2x2 output tile. The transforms are here; the 16 products over channels
// are GEMMs the caller runs. Element xi = 4 * i + j of a transformed tile is row combination i,
// column combination j.
//
// The planes of small networks are narrow (SmallCNN's tile rows hold 4 to 13 tiles), so the
// transforms work on 16 tiles of one tile row at a time as one vector (GCC vector extensions: one
// AVX-512 register, two AVX2 ones) rather than looping over the tiles of a row.

typedef float v16 __attribute__((vector_size(64)));
#define LANES 16

// Macros, not functions: a function passing a 64-byte vector would have a different ABI in
// each clone.
#define LOAD(p) ({ v16 v_; memcpy(&v_, (p), sizeof v_); v_; })
#define STORE(p, v) do { v16 s_ = (v); memcpy((p), &s_, sizeof s_); } while (0)
// Stores the first `count` lanes only: for the last writes into a region, where a full vector
// would reach memory that is not ours or was already written.
#define STORE_FIRST(p, v, count)                      \
  do {                                                \
    float lanes_[LANES];                              \
    STORE(lanes_, (v));                               \
    memcpy((p), lanes_, (size_t)(count) * sizeof(float)); \
  } while (0)
#define EVENS(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
#define ODDS(a, b) __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31)

__attribute__((target_clones("avx512f", "arch=haswell", "default")))
void advprune_winograd_input(const float *x, const float *relu_output, int64_t images, int64_t channels,
                             int64_t height, int64_t width, int64_t padding, int64_t th, int64_t tw, float *v) {
  const int64_t tiles = images * th * tw, xi_stride = channels * tiles;
  const int64_t chunks = (tw + LANES - 1) / LANES;
  // The plane with its zero border: row r, column p hold input (r - padding, p - padding). Only
  // the interior is rewritten per plane, so the border stays zero. A chunk of 16 tiles reads 34
  // columns from 32 * chunk on.
  const int64_t rows = 2 * th + 2, pitch = 2 * LANES * chunks + 2;
  float *padded = calloc((size_t)(rows * pitch), sizeof(float));
  if (!padded) abort();
  for (int64_t c = 0; c < channels; ++c) {
    for (int64_t n = 0; n < images; ++n) {
      const int64_t at = (n * channels + c) * height * width;
      for (int64_t h = 0; h < height && h + padding < rows; ++h) {
        const int64_t count = width + padding <= pitch ? width : pitch - padding;
        float *dst = padded + (h + padding) * pitch + padding;
        const float *src = x + at + h * width;
        if (relu_output) {
          const float *y = relu_output + at + h * width;
          for (int64_t p = 0; p < count; ++p) dst[p] = y[p] > 0.0f ? src[p] : 0.0f;
        } else {
          memcpy(dst, src, (size_t)count * sizeof(float));
        }
      }
      float *out = v + c * tiles + n * th * tw;
      for (int64_t ty = 0; ty < th; ++ty) {
        for (int64_t chunk = 0; chunk < chunks; ++chunk) {
          const int64_t tx0 = chunk * LANES;
          const int64_t count = tw - tx0 < LANES ? tw - tx0 : LANES;
          // Row e of the tile row: columns [32 chunk, +32) and, shifted by two, [32 chunk + 2, +32).
          v16 lo[4], hi[4], lo2[4], hi2[4];
          for (int e = 0; e < 4; ++e) {
            const float *r = padded + (2 * ty + e) * pitch + 2 * tx0;
            lo[e] = LOAD(r);
            hi[e] = LOAD(r + LANES);
            lo2[e] = LOAD(r + 2);
            hi2[e] = LOAD(r + 2 + LANES);
          }
          // B^T d: row combinations i.
          v16 cl[4], ch[4], cl2[4], ch2[4];
#define ROWS(dst, src)            \
  dst[0] = src[0] - src[2];       \
  dst[1] = src[1] + src[2];       \
  dst[2] = src[2] - src[1];       \
  dst[3] = src[1] - src[3];
          ROWS(cl, lo) ROWS(ch, hi) ROWS(cl2, lo2) ROWS(ch2, hi2)
#undef ROWS
          // (B^T d) B: column combinations j of tile columns a, b, e, f = 2 tx + 0..3.
          float *dst = out + ty * tw + tx0;
          // Full-vector stores past the tile row spill into the tiles written after these in
          // the same stream; at the stream's end they would reach the next one (already written)
          // or past the buffer.
          const int exact = c * tiles + n * th * tw + ty * tw + tx0 + LANES > xi_stride;
          for (int i = 0; i < 4; ++i) {
            const v16 a = EVENS(cl[i], ch[i]), b = ODDS(cl[i], ch[i]);
            const v16 e = EVENS(cl2[i], ch2[i]), f = ODDS(cl2[i], ch2[i]);
            const v16 d[4] = {a - e, b + e, e - b, b - f};
            for (int j = 0; j < 4; ++j) {
              float *p = dst + (4 * i + j) * xi_stride;
              if (exact) STORE_FIRST(p, d[j], count);
              else STORE(p, d[j]);
            }
          }
        }
      }
    }
  }
  free(padded);
}

__attribute__((target_clones("avx512f", "arch=haswell", "default")))
void advprune_winograd_output(const float *m, int64_t images, int64_t channels, int64_t height, int64_t width,
                              const float *bias, int relu, float *y) {
  const int64_t th = (height + 1) / 2, tw = (width + 1) / 2;
  const int64_t tiles = images * th * tw, xi_stride = channels * tiles;
  const int64_t chunks = (tw + LANES - 1) / LANES;
  float *const y_end = y + images * channels * height * width;
  for (int64_t n = 0; n < images; ++n) {
    for (int64_t k = 0; k < channels; ++k) {
      const v16 b = (v16){} + (bias ? bias[k] : 0.0f);
      const float *src = m + k * tiles + n * th * tw;
      float *plane = y + (n * channels + k) * height * width;
      for (int64_t ty = 0; ty < th; ++ty) {
        for (int64_t chunk = 0; chunk < chunks; ++chunk) {
          const int64_t tx0 = chunk * LANES;
          const int64_t count = tw - tx0 < LANES ? tw - tx0 : LANES;
          // Lanes past the tile row read tiles of the same stream that are not used; at the
          // stream's end only the row's own tiles are read, so the last one stays in the buffer.
          const float *s = src + ty * tw + tx0;
          const int exact = k * tiles + n * th * tw + ty * tw + tx0 + LANES > xi_stride;
          v16 q[16];
          for (int xi = 0; xi < 16; ++xi) {
            if (exact) {
              float lanes[LANES] = {0};
              memcpy(lanes, s + xi * xi_stride, (size_t)count * sizeof(float));
              q[xi] = LOAD(lanes);
            } else {
              q[xi] = LOAD(s + xi * xi_stride);
            }
          }
          // A^T m: rows 0 and 1 of the output tile, then A: columns 0 and 1.
          v16 r0[4], r1[4];
          for (int j = 0; j < 4; ++j) {
            r0[j] = q[j] + q[4 + j] + q[8 + j];
            r1[j] = q[4 + j] - q[8 + j] - q[12 + j];
          }
          v16 even[2] = {b + r0[0] + r0[1] + r0[2], b + r1[0] + r1[1] + r1[2]};
          v16 odd[2] = {b + r0[1] - r0[2] - r0[3], b + r1[1] - r1[2] - r1[3]};
          if (relu) {
            const v16 zero = {};
            for (int a = 0; a < 2; ++a) {
              even[a] = __builtin_elementwise_max(even[a], zero);
              odd[a] = __builtin_elementwise_max(odd[a], zero);
            }
          }
          for (int a = 0; a < 2; ++a) {
            const int64_t oy = 2 * ty + a;
            if (oy >= height) break;
            float *row = plane + oy * width + 2 * tx0;
            const v16 first = __builtin_shufflevector(even[a], odd[a], 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
            const v16 second =
              __builtin_shufflevector(even[a], odd[a], 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
            // Past the row's end, full stores spill into the outputs written after this one;
            // not past these images' end (another worker's images, or the end of y).
            const int64_t valid = width - 2 * tx0 < 2 * LANES ? width - 2 * tx0 : 2 * LANES;
            if (row + 2 * LANES <= y_end) {
              STORE(row, first);
              STORE(row + LANES, second);
            } else if (valid > LANES) {
              STORE(row, first);
              STORE_FIRST(row + LANES, second, valid - LANES);
            } else {
              STORE_FIRST(row, first, valid);
            }
          }
        }
      }
    }
  }
}

void advprune_winograd_weights(const float *w, int64_t out_channels, int64_t in_channels, int for_input_gradient,
                               float *u) {
  // Forward: u[xi][k][c] = G w[k][c] G^T. Input gradient: the transposed conv with the kernel
  // turned by 180 degrees, u[xi][c][k] = G w[k][c]' G^T with w' [i][j] = w[2 - i][2 - j].
  const int64_t cols = for_input_gradient ? out_channels : in_channels;
  const int64_t xi_stride = out_channels * in_channels;
  for (int64_t k = 0; k < out_channels; ++k) {
    for (int64_t c = 0; c < in_channels; ++c) {
      const float *g = w + (k * in_channels + c) * 9;
      float f[3][3];
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) f[i][j] = for_input_gradient ? g[(2 - i) * 3 + (2 - j)] : g[i * 3 + j];
      float t[4][3];  // G f
      for (int j = 0; j < 3; ++j) {
        t[0][j] = f[0][j];
        t[1][j] = 0.5f * (f[0][j] + f[1][j] + f[2][j]);
        t[2][j] = 0.5f * (f[0][j] - f[1][j] + f[2][j]);
        t[3][j] = f[2][j];
      }
      const int64_t at = for_input_gradient ? c * cols + k : k * cols + c;
      for (int i = 0; i < 4; ++i) {
        float *d = u + (4 * i) * xi_stride + at;
        d[0 * xi_stride] = t[i][0];
        d[1 * xi_stride] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
        d[2 * xi_stride] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
        d[3 * xi_stride] = t[i][2];
      }
    }
  }
}
