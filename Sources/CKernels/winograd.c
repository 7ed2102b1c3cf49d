#include "isa.h"
#include "winograd_lanes.h"

#include <stdlib.h>
#include <string.h>

// Winograd F(2x2, 3x3) (Lavin & Gray 2016): y = A^T [(G g G^T) . (B^T d B)] A for each 4x4 input
// tile d (stride 2) and 2x2 output tile. The transforms are here; the 16 products over channels
// are GEMMs the caller runs. Element xi = 4 * i + j of a transformed tile is row combination i,
// column combination j.
//
// The planes of small networks are narrow (SmallCNN's tile rows hold 4 to 13 tiles), so the
// transforms work on 16 tiles as one vector (GCC vector extensions: one AVX-512 register, two
// AVX2 ones) rather than looping over the tiles of a row: 16 tiles of one tile row, or two or
// four whole tile rows of up to 8 or 4 tiles (the 4- and 5-tile rows of SmallCNN's 8x8 and 10x10
// planes filled 4 or 5 of 16 lanes one row at a time; two to four times fewer vector steps made
// those transforms 1.5-2.9x faster, measured alone).

// Lanes 0-7 of a, then lanes 0-7 of b.
#define HALVES(a, b) __builtin_shufflevector(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23)
#define UPPER(a) __builtin_shufflevector(a, a, 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15)

// B^T d B of 16 tiles whose four rows e are given as column pairs: columns (2 tx, 2 tx + 1) are
// the even and odd lanes of (lo[e], hi[e]), columns (2 tx + 2, 2 tx + 3) those of (lo2[e], hi2[e]).
#define TRANSFORM_TILES(d, lo, hi, lo2, hi2)                                      \
  do {                                                                          \
    /* B^T d: row combinations i, of each column set. */                        \
    const v16 *s_[4] = {lo, hi, lo2, hi2};                                      \
    v16 t_[4][4];                                                               \
    for (int k_ = 0; k_ < 4; ++k_) {                                            \
      t_[k_][0] = s_[k_][0] - s_[k_][2];                                        \
      t_[k_][1] = s_[k_][1] + s_[k_][2];                                        \
      t_[k_][2] = s_[k_][2] - s_[k_][1];                                        \
      t_[k_][3] = s_[k_][1] - s_[k_][3];                                        \
    }                                                                           \
    /* (B^T d) B: column combinations j of tile columns a, b, e, f = 2 tx + 0..3. */ \
    for (int i_ = 0; i_ < 4; ++i_) {                                            \
      const v16 a_ = EVENS(t_[0][i_], t_[1][i_]), b_ = ODDS(t_[0][i_], t_[1][i_]); \
      const v16 e_ = EVENS(t_[2][i_], t_[3][i_]), f_ = ODDS(t_[2][i_], t_[3][i_]); \
      d[i_][0] = a_ - e_;                                                       \
      d[i_][1] = b_ + e_;                                                       \
      d[i_][2] = e_ - b_;                                                       \
      d[i_][3] = b_ - f_;                                                       \
    }                                                                           \
  } while (0)

// The tiles of one plane: R = groups tile rows per vector (a constant in each caller, so the
// branches on it fold away).
static inline AI void input_plane(const float *padded, int64_t pitch, int64_t th, int64_t tw,
                                  int64_t first, int64_t xi_stride, int64_t extent, float *out,
                                  const int groups) {
  const int64_t chunks = groups == 1 ? (tw + LANES - 1) / LANES : 1;
  for (int64_t ty = 0; ty < th; ty += groups) {
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      const int64_t tx0 = chunk * LANES;
      // One tile row: row e's columns [32 chunk, +32) and, shifted by two, [32 chunk + 2, +32).
      // R tile rows: tile row ty + g in lanes [g G, g G + tw), from the first 2 G columns of its rows.
      v16 lo[4], hi[4], lo2[4], hi2[4], d[4][4];
      for (int e = 0; e < 4; ++e) {
        const float *r = padded + (2 * ty + e) * pitch + 2 * tx0;
        if (groups == 1) {
          lo[e] = LOAD(r);
          hi[e] = LOAD(r + LANES);
          lo2[e] = LOAD(r + 2);
          hi2[e] = LOAD(r + 2 + LANES);
        } else if (groups == 2) {
          lo[e] = LOAD(r);
          hi[e] = LOAD(r + 2 * pitch);
          lo2[e] = LOAD(r + 2);
          hi2[e] = LOAD(r + 2 * pitch + 2);
        } else {
          lo[e] = HALVES(LOAD(r), LOAD(r + 2 * pitch));
          hi[e] = HALVES(LOAD(r + 4 * pitch), LOAD(r + 6 * pitch));
          lo2[e] = HALVES(LOAD(r + 2), LOAD(r + 2 * pitch + 2));
          hi2[e] = HALVES(LOAD(r + 4 * pitch + 2), LOAD(r + 6 * pitch + 2));
        }
      }
      TRANSFORM_TILES(d, lo, hi, lo2, hi2);
      const int64_t present = th - ty < groups ? th - ty : groups, t0 = ty * tw + tx0;
      const int64_t valid = groups == 1 ? (tw - tx0 < LANES ? tw - tx0 : LANES) : present * tw;
      const int direct = first + t0 + LANES <= extent;
      for (int xi = 0; xi < 16; ++xi) STORE_TILES(out + t0 + xi * xi_stride, d[xi / 4][xi % 4], direct, valid, groups, tw);
    }
  }
}

// The outputs of one plane from its tiles; R = groups as in input_plane.
static inline AI void output_plane(const float *m, int64_t first, int64_t xi_stride, int64_t extent,
                                   int64_t height, int64_t width, float bias, int relu,
                                   float *plane, float *y_end, const int groups) {
  const int64_t th = (height + 1) / 2, tw = (width + 1) / 2;
  const int64_t chunks = groups == 1 ? (tw + LANES - 1) / LANES : 1;
  const v16 b = (v16){} + bias;
  for (int64_t ty = 0; ty < th; ty += groups) {
    const int64_t present = th - ty < groups ? th - ty : groups;
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      const int64_t tx0 = chunk * LANES;
      const int64_t count = groups > 1 ? tw : tw - tx0 < LANES ? tw - tx0 : LANES;
      // Lanes past a tile row read tiles of the same stream that are not used.
      const int64_t at = first + ty * tw + tx0;
      const int direct = at + LANES <= extent;
      v16 q[16];
      for (int xi = 0; xi < 16; ++xi) q[xi] = LOAD_TILES(m + at + xi * xi_stride, direct, (present - 1) * tw + count, groups, tw);
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
      // Output columns 2 lane and 2 lane + 1: lanes 0-7 in `front`, lanes 8-15 in `back`.
      v16 front[2], back[2];
      for (int a = 0; a < 2; ++a) {
        front[a] = __builtin_shufflevector(even[a], odd[a], 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        back[a] = __builtin_shufflevector(even[a], odd[a], 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
      }
      // Rows in increasing order: a full store past a row's end spills into the outputs written
      // after it; not past these images' end (another worker's images, or y's end).
      for (int64_t g = 0; g < present; ++g) {
        for (int a = 0; a < 2; ++a) {
          const int64_t oy = 2 * (ty + g) + a;
          if (oy >= height) break;
          float *row = plane + oy * width + 2 * tx0;
          if (groups == 1) {
            const int64_t valid = width - 2 * tx0 < 2 * LANES ? width - 2 * tx0 : 2 * LANES;
            // With more than one chunk the spill would land on the next row's first chunk,
            // already written: only a single-chunk row (or a full vector) stores past its end.
            if ((chunks == 1 || valid == 2 * LANES) && row + 2 * LANES <= y_end) {
              STORE(row, front[a]);
              STORE(row + LANES, back[a]);
            } else if (valid > LANES) {
              STORE(row, front[a]);
              STORE_FIRST(row + LANES, back[a], valid - LANES);
            } else {
              STORE_FIRST(row, front[a], valid);
            }
            continue;
          }
          const v16 out = groups == 2 ? (g == 0 ? front[a] : back[a])
                          : g == 0    ? front[a]
                          : g == 1    ? UPPER(front[a])
                          : g == 2    ? back[a]
                                      : UPPER(back[a]);
          if (row + LANES <= y_end) STORE(row, out);
          else STORE_FIRST(row, out, width);
        }
      }
    }
  }
}

DEFINE_WINOGRAD_PASSES(2, winograd2_input_body, winograd2_output_body)

void winograd2_weights(const float *w, int64_t out_channels, int64_t in_channels, int for_input_gradient,
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

ADVPRUNE_CLONES(void, winograd2_input, (const float *x, const float *relu_output, int64_t images, int64_t channels, int64_t height, int64_t width, int64_t padding, int64_t th, int64_t tw, float *v), (x, relu_output, images, channels, height, width, padding, th, tw, v), )
ADVPRUNE_CLONES(void, winograd2_output, (const float *m, int64_t images, int64_t channels, int64_t height, int64_t width, const float *bias, int relu, float *y), (m, images, channels, height, width, bias, relu, y), )

int64_t advprune_winograd_stride(int64_t channels, int64_t tiles) {
  const int64_t lines = (channels * tiles + LANES - 1) / LANES;
  return (lines | 1) * LANES;
}

void advprune_winograd_input(int64_t tile, const float *x, const float *relu_output, int64_t images, int64_t channels,
                             int64_t height, int64_t width, int64_t padding, int64_t th, int64_t tw, float *v) {
  (tile == 4 ? winograd4_input : winograd2_input)(x, relu_output, images, channels, height, width, padding, th, tw, v);
}

void advprune_winograd_output(int64_t tile, const float *m, int64_t images, int64_t channels, int64_t height,
                              int64_t width, const float *bias, int relu, float *y) {
  (tile == 4 ? winograd4_output : winograd2_output)(m, images, channels, height, width, bias, relu, y);
}

void advprune_winograd_weights(int64_t tile, const float *w, int64_t out_channels, int64_t in_channels,
                               int for_input_gradient, float *u) {
  (tile == 4 ? winograd4_weights : winograd2_weights)(w, out_channels, in_channels, for_input_gradient, u);
}
