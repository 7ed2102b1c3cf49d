#include "isa.h"
#include "short_copy.h"
#include "winograd_lanes.h"

#include <stdlib.h>
#include <string.h>

// Winograd F(4x4, 3x3) (Lavin & Gray 2016, points 0, +-1, +-2): 6x6 input tiles at stride 4, 4x4
// output tiles, 36 products per tile: 2.25 multiplies per output and channel pair where
// F(2x2, 3x3) needs 4, and one transformed tile per 16 outputs instead of per 4, so the products
// read and write 1.8x fewer floats. Element xi = 6 * i + j is row combination i, column j.
//
//   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
//   G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
//   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
//
// As in winograd.c, a vector holds 16 tiles: of one tile row, or of two or four tile rows of up
// to 8 or 4 tiles. Column 4 tx + j of its tiles is "phase" j: four vector loads of the columns,
// split into evens and odds twice (phases 0-3), and the same from four columns on (4 and 5).
// Where those packed rows would leave lanes empty, both transforms run in stream order instead
// (`input_stream`, `output_stream`): 16 consecutive tiles per vector, across tile rows and images.
// Planes of at most four tiles with 16 images or more run in image order (`input_images`,
// `output_images`): 16 images' same tile per vector.

// B^T d for one column (or row) d[0..5] of 16 tiles.
static inline AI void input_combine(const v16 *d, v16 *r) {
  const v16 a = d[4] - 4.0f * d[2], b = d[3] - 4.0f * d[1];
  const v16 c = d[4] - d[2], e = 2.0f * (d[3] - d[1]);
  r[0] = 4.0f * d[0] - 5.0f * d[2] + d[4];
  r[1] = a + b;
  r[2] = a - b;
  r[3] = c + e;
  r[4] = c - e;
  r[5] = 4.0f * d[1] - 5.0f * d[3] + d[5];
}

// A^T m for one column (or row) m[0..5] of 16 tiles.
static inline AI void output_combine(const v16 *m, v16 *r) {
  const v16 s = m[1] + m[2], d = m[1] - m[2], s2 = m[3] + m[4], d2 = m[3] - m[4];
  r[0] = m[0] + s + s2;
  r[1] = d + 2.0f * d2;
  r[2] = s + 4.0f * s2;
  r[3] = d + 8.0f * d2 + m[5];
}

// The four vectors whose phases hold a vector's tiles, from `r` at a tile row's first column:
// one row's 64 columns (R = 1), two rows' 32 (R = 2) or four rows' 16 (R = 4), the rows of
// successive tile rows 4 pitch apart.
static inline AI void load_quad(const float *r, int64_t pitch, const int groups, v16 *q) {
  const int64_t step = groups == 1 ? LANES : 4 * pitch;
  if (groups == 2) {
    q[0] = LOAD(r);
    q[1] = LOAD(r + LANES);
    q[2] = LOAD(r + step);
    q[3] = LOAD(r + step + LANES);
  } else {
    for (int k = 0; k < 4; ++k) q[k] = LOAD(r + k * step);
  }
}

// Lane g G + l of phase j is column 4 l + j of group g (G = 16 / R lanes per group).
static inline AI void split_phases(const v16 *q, v16 *p, const int count) {
  const v16 e1 = EVENS(q[0], q[1]), o1 = ODDS(q[0], q[1]), e2 = EVENS(q[2], q[3]), o2 = ODDS(q[2], q[3]);
  p[0] = EVENS(e1, e2);
  p[1] = EVENS(o1, o2);
  if (count > 2) {
    p[2] = ODDS(e1, e2);
    p[3] = ODDS(o1, o2);
  }
}

// B^T d B of one vector's tiles: t[i][j], row combination i of phase j. Tile row line e's first
// four columns start at lines + e * line_stride and its last two `second` floats on, each read as
// load_quad does with `pitch` and `groups`.
static inline AI void input_tiles(const float *lines, int64_t line_stride, int64_t second, int64_t pitch, const int groups,
                                  v16 t[6][6]) {
  v16 d[6][6];  // d[e][j]: tile row line e, phase j
  for (int e = 0; e < 6; ++e) {
    v16 q[4];
    load_quad(lines + e * line_stride, pitch, groups, q);
    split_phases(q, d[e], 4);
    load_quad(lines + e * line_stride + second, pitch, groups, q);
    split_phases(q, d[e] + 4, 2);
  }
  for (int j = 0; j < 6; ++j) {
    const v16 column[6] = {d[0][j], d[1][j], d[2][j], d[3][j], d[4][j], d[5][j]};
    v16 r[6];
    input_combine(column, r);
    for (int i = 0; i < 6; ++i) t[i][j] = r[i];
  }
}

static inline AI void input_plane(const float *padded, int64_t pitch, int64_t th, int64_t tw, int64_t first,
                                  int64_t xi_stride, int64_t extent, float *out, const int groups) {
  const int64_t chunks = groups == 1 ? (tw + LANES - 1) / LANES : 1;
  for (int64_t ty = 0; ty < th; ty += groups) {
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      const int64_t tx0 = chunk * LANES;
      v16 t[6][6];  // t[i][j]: row combination i of phase j
      input_tiles(padded + 4 * ty * pitch + 4 * tx0, pitch, 4, pitch, groups, t);
      const int64_t present = th - ty < groups ? th - ty : groups, t0 = ty * tw + tx0;
      const int64_t valid = groups == 1 ? (tw - tx0 < LANES ? tw - tx0 : LANES) : present * tw;
      const int direct = first + t0 + LANES <= extent;
      for (int i = 0; i < 6; ++i) {
        v16 r[6];
        input_combine(t[i], r);
        for (int j = 0; j < 6; ++j) STORE_TILES(out + t0 + (6 * i + j) * xi_stride, r[j], direct, valid, groups, tw);
      }
    }
  }
}

// The input transform of the same narrow planes in stream order: the planes of one channel
// (every image) go into a buffer with their zero border, one under the other, and each run of
// one tile row's tiles is copied into a staged row per tile row line, columns 4 l.. (phases 0-3
// of lane l) and 4 l + 4.. (phases 4-5), so lane l is tile t0 + l whichever row and image it lies
// in, and the 16 tiles store in order with no lane shuffles. Per output on a 24-wide plane
// 1.17 -> 1.09 ns, on an 8-wide one 3.5 -> 2.1; SmallCNN's PGD-10 AT spent 15 % less in it.
static inline AI void input_stream(const float *x, const float *relu_output, int64_t images, int64_t channels,
                                   int64_t height, int64_t width, int64_t padding, int64_t th, int64_t tw, float *v) {
  const int64_t per_image = th * tw, tiles = images * per_image, extent = channels * tiles;
  const int64_t xi_stride = advprune_winograd_stride(channels, tiles);
  const int64_t rows = 4 * th + 2, pitch = 4 * tw + 4 + LANES;  // room for copy_row's vector writes
  float *padded = calloc((size_t)(images * rows * pitch + LANES), sizeof(float));
  if (!padded) abort();
  float staged[12][4 * LANES] = {{0}};  // [e]: columns from 4 l, [6 + e]: from 4 l + 4
  const float *end = x + images * channels * height * width;
  for (int64_t c = 0; c < channels; ++c) {
    for (int64_t n = 0; n < images; ++n) {
      const int64_t at = (n * channels + c) * height * width;
      float *plane = padded + n * rows * pitch;
      for (int64_t h = 0; h < height && h + padding < rows; ++h) {
        const int64_t count = width + padding <= pitch - LANES ? width : pitch - LANES - padding;
        copy_row(plane + (h + padding) * pitch + padding, x + at + h * width,
                 relu_output ? relu_output + at + h * width : NULL, count, pitch - padding, end);
      }
    }
    for (int64_t t0 = 0; t0 < tiles; t0 += LANES) {
      const int64_t valid = tiles - t0 < LANES ? tiles - t0 : LANES;
      for (int64_t l = 0; l < valid;) {
        const int64_t t = t0 + l, n = t / per_image, ty = (t % per_image) / tw, tx = t % tw;
        const int64_t run = tw - tx < valid - l ? tw - tx : valid - l;
        const float *r = padded + (n * rows + 4 * ty) * pitch + 4 * tx;
        for (int e = 0; e < 6; ++e) {
          copy_short(staged[e] + 4 * l, r + e * pitch, 4 * run);
          copy_short(staged[6 + e] + 4 * l, r + e * pitch + 4, 4 * run);
        }
        l += run;
      }
      v16 t[6][6];  // t[i][j]: row combination i of phase j
      input_tiles(staged[0], 4 * LANES, 6 * 4 * LANES, 0, 1, t);
      const int direct = c * tiles + t0 + LANES <= extent;
      float *out = v + c * tiles + t0;
      for (int i = 0; i < 6; ++i) {
        v16 r[6];
        input_combine(t[i], r);
        for (int j = 0; j < 6; ++j) STORE_TILES(out + (6 * i + j) * xi_stride, r[j], direct, valid, 1, tw);
      }
    }
  }
  free(padded);
}

// Lanes 0-7 of a and b interleaved (lo), lanes 8-15 (hi).
#define INTERLEAVE_LO(a, b) __builtin_shufflevector(a, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23)
#define INTERLEAVE_HI(a, b) __builtin_shufflevector(a, b, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31)

// A^T m of one vector's tiles down the columns: r[a][j], output row a of phase j, from element
// 6 i + j's tiles at m (LOAD_TILES's arguments).
static inline AI void output_columns(const float *m, int64_t xi_stride, int direct, int64_t valid, const int groups,
                                     int64_t tw, v16 r[4][6]) {
  for (int j = 0; j < 6; ++j) {
    v16 column[6], o[4];
    for (int i = 0; i < 6; ++i) column[i] = LOAD_TILES(m + (6 * i + j) * xi_stride, direct, valid, groups, tw);
    output_combine(column, o);
    for (int a = 0; a < 4; ++a) r[a][j] = o[a];
  }
}

// A^T along each output row, bias and ReLU, and the four phases back into column order:
// out[a][k] holds columns 4 l to 4 l + 3 of lanes l = 4 k to 4 k + 3.
static inline AI void output_rows(v16 r[4][6], float bias, int relu, v16 out[4][4]) {
  const v16 b = (v16){} + bias;
  for (int a = 0; a < 4; ++a) {
    v16 y[4];
    output_combine(r[a], y);
    for (int k = 0; k < 4; ++k) {
      y[k] += b;
      if (relu) y[k] = __builtin_elementwise_max(y[k], (v16){});
    }
    const v16 lo02 = INTERLEAVE_LO(y[0], y[2]), hi02 = INTERLEAVE_HI(y[0], y[2]);
    const v16 lo13 = INTERLEAVE_LO(y[1], y[3]), hi13 = INTERLEAVE_HI(y[1], y[3]);
    out[a][0] = INTERLEAVE_LO(lo02, lo13);
    out[a][1] = INTERLEAVE_HI(lo02, lo13);
    out[a][2] = INTERLEAVE_LO(hi02, hi13);
    out[a][3] = INTERLEAVE_HI(hi02, hi13);
  }
}

static inline AI void output_plane(const float *m, int64_t first, int64_t xi_stride, int64_t extent, int64_t height, int64_t width,
                                   float bias, int relu, float *plane, float *y_end, const int groups) {
  const int64_t th = (height + 3) / 4, tw = (width + 3) / 4;
  const int64_t chunks = groups == 1 ? (tw + LANES - 1) / LANES : 1;
  const int per_group = 4 / groups;  // vectors of 16 output columns per tile row
  for (int64_t ty = 0; ty < th; ty += groups) {
    const int64_t present = th - ty < groups ? th - ty : groups;
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      const int64_t tx0 = chunk * LANES;
      const int64_t count = groups > 1 ? tw : tw - tx0 < LANES ? tw - tx0 : LANES;
      const int64_t at = first + ty * tw + tx0;
      const int direct = at + LANES <= extent;
      v16 r[4][6], out[4][4];  // out[a][k]: a group's row is per_group of the k
      output_columns(m + at, xi_stride, direct, (present - 1) * tw + count, groups, tw, r);
      output_rows(r, bias, relu, out);
      // Rows in increasing order, so a full store's spill past a row lands on a row stored
      // after it — when a row is one chunk; with more, only whole vectors are stored in full.
      const int64_t valid = groups == 1 ? (width - 4 * tx0 < 4 * LANES ? width - 4 * tx0 : 4 * LANES) : width;
      for (int64_t g = 0; g < present; ++g) {
        for (int a = 0; a < 4; ++a) {
          const int64_t oy = 4 * (ty + g) + a;
          if (oy >= height) break;
          float *row = plane + oy * width + 4 * tx0;
          for (int k = 0; k < per_group; ++k) {
            const int64_t n = valid - k * LANES;
            if (n <= 0) break;
            float *p = row + k * LANES;
            const v16 vec = out[a][g * per_group + k];
            if ((n >= LANES || chunks == 1) && p + LANES <= y_end) STORE(p, vec);
            else STORE_FIRST(p, vec, n < LANES ? n : LANES);
          }
        }
      }
    }
  }
}

// The output transform of planes whose packed tile rows leave lanes empty (SmallCNN's 24- and
// 26-wide: 12 and 14 of 16; 8-wide: 4) in stream order: 16 consecutive tiles t = (n th + ty) tw +
// tx per vector, across tile rows and images, every lane used and no lane shuffles on the loads
// (the combines do not care which tile a lane holds); each run of one tile row is copied to its
// rows from a staged copy of the vector's outputs. Per output on a 24-wide plane 0.87 -> 0.55 ns
// (F(2x2): 0.60); where the packed rows fill the vector (4 or 8 tiles, 16 or more) they stay a
// little faster.
static inline AI void output_stream(const float *m, int64_t images, int64_t channels, int64_t height, int64_t width,
                                    const float *bias, int relu, float *y) {
  const int64_t th = (height + 3) / 4, tw = (width + 3) / 4, per_image = th * tw;
  const int64_t tiles = images * per_image, extent = channels * tiles;
  const int64_t xi_stride = advprune_winograd_stride(channels, tiles);
  v16 staged[4][4];  // as floats, staged[a][4 l + c]: output row a, column c of lane l's tile
  for (int64_t k = 0; k < channels; ++k) {
    const float b = bias ? bias[k] : 0.0f;
    for (int64_t t0 = 0; t0 < tiles; t0 += LANES) {
      const int64_t at = k * tiles + t0, valid = tiles - t0 < LANES ? tiles - t0 : LANES;
      const int direct = at + LANES <= extent;
      v16 r[4][6];
      output_columns(m + at, xi_stride, direct, valid, 1, tw, r);
      output_rows(r, b, relu, staged);
      for (int64_t l = 0; l < valid;) {
        const int64_t t = t0 + l, n = t / per_image, ty = (t % per_image) / tw, tx = t % tw;
        const int64_t run = tw - tx < valid - l ? tw - tx : valid - l;
        const int64_t count = 4 * (tx + run) <= width ? 4 * run : width - 4 * tx;
        float *at_row = y + (n * channels + k) * height * width + 4 * tx;
        for (int a = 0; a < 4 && 4 * ty + a < height; ++a) copy_short(at_row + (4 * ty + a) * width, (const float *)staged[a] + 4 * l, count);
        l += run;
      }
    }
  }
}

DEFINE_WINOGRAD_PASSES(4, winograd4_input_packed, winograd4_output_packed)

// Planes of at most four tiles (outputs of at most 64 pixels: ResNet18's 8x8 and 4x4 stages,
// SmallCNN's 8x8 conv4) in image order where a pass has a vector's worth of images: lane l is image n0 + l of a block
// of 16, and each of the plane's T tiles is one vector, stored at tiles n0 T + k vb (vb: the
// block's images; the products take tiles in any order, and both transforms of a pass pick the
// same by `image_lanes`). A block's planes come into lanes by 16x16 transposes of whole plane
// vectors, where stream order copied six 4-float rows per tile and lane. On one core
// (`bench_narrow_conv`'s pass, the best of 300, three alternating runs per build): 128 channels'
// 4x4 planes, 128 images, input transform 924-1056 -> 531-552 us, the pass 3184-3429 ->
// 2705-2816 us (512 channels: 30404-30900 -> 29400-29813); 64 channels' 8x8 planes, 32 images,
// 600-613 -> 550-581 us; SmallCNN's compact conv4 (16 channels, 10x10 -> 8x8, 32 images)
// 83-85 -> 71-73 us, its dense one (64) 614-620 -> 583-587. The output transform reads its rows
// as before and is a little slower this way (16.4 -> 21-22 us, 74 -> 92-94 us on those two), but
// the passes are faster in every case measured.
static inline AI int image_lanes(int64_t images, int64_t th, int64_t tw) { return th * tw <= 4 && images >= LANES; }

// Lane c of row i after a block swap at scale s: row i and row i + s (bit s of i clear) trade
// their off-diagonal s x s blocks.
#define SWAP_UPPER(s, c) (((c) & (s)) ? LANES + (c) - (s) : (c))
#define SWAP_LOWER(s, c) (((c) & (s)) ? LANES + (c) : (c) + (s))
#define SHUFFLE_BY(a, b, F, s)                                                                          \
  __builtin_shufflevector(a, b, F(s, 0), F(s, 1), F(s, 2), F(s, 3), F(s, 4), F(s, 5), F(s, 6), F(s, 7), \
                          F(s, 8), F(s, 9), F(s, 10), F(s, 11), F(s, 12), F(s, 13), F(s, 14), F(s, 15))
#define SWAP_BLOCKS(m, s)                                          \
  for (int i_ = 0; i_ < LANES; ++i_) {                             \
    if (i_ & (s)) continue;                                        \
    const v16 a_ = (m)[i_], b_ = (m)[i_ + (s)];                    \
    (m)[i_] = SHUFFLE_BY(a_, b_, SWAP_UPPER, s);                   \
    (m)[i_ + (s)] = SHUFFLE_BY(a_, b_, SWAP_LOWER, s);             \
  }

// m[i] lane j <- m[j] lane i: the off-diagonal blocks swapped at every scale.
static inline AI void transpose16(v16 *m) {
  SWAP_BLOCKS(m, 8);
  SWAP_BLOCKS(m, 4);
  SWAP_BLOCKS(m, 2);
  SWAP_BLOCKS(m, 1);
}

// `count` floats from src (zero where relu_output <= 0, when given), the rest of the vector zero.
// A macro, as LOAD: a function returning a 64-byte vector would have a different ABI per copy.
#define LOAD_PIXELS(src, relu_output, count)                                  \
  ({                                                                          \
    v16 p_, keep_ = {};                                                       \
    if ((count) == LANES) {                                                   \
      p_ = LOAD(src);                                                         \
      if (relu_output) keep_ = LOAD(relu_output);                             \
    } else {                                                                  \
      float lanes_[LANES] = {0}, mask_[LANES] = {0};                          \
      memcpy(lanes_, (src), (size_t)(count) * sizeof(float));                 \
      if (relu_output) memcpy(mask_, (relu_output), (size_t)(count) * sizeof(float)); \
      p_ = LOAD(lanes_);                                                      \
      keep_ = LOAD(mask_);                                                    \
    }                                                                         \
    (relu_output) ? (v16)((i16)p_ & (keep_ > (v16){})) : p_;                  \
  })

// Input planes of at most 108 pixels (4 th + 2 rows by 4 tw + 2 columns with th tw <= 4: 6x18).
static inline AI void input_images(const float *x, const float *relu_output, int64_t images, int64_t channels,
                                   int64_t height, int64_t width, int64_t padding, int64_t th, int64_t tw, float *v) {
  const int64_t per_image = th * tw, tiles = images * per_image, extent = channels * tiles;
  const int64_t xi_stride = advprune_winograd_stride(channels, tiles);
  const int64_t plane = height * width, groups = (plane + LANES - 1) / LANES;
  const v16 zero = {};
  v16 px[7 * LANES];  // px[p]: pixel p, lane l of image n0 + l
  if (groups > 7) abort();
  for (int64_t c = 0; c < channels; ++c) {
    for (int64_t n0 = 0; n0 < images; n0 += LANES) {
      const int64_t vb = images - n0 < LANES ? images - n0 : LANES;
      for (int64_t g = 0; g < groups; ++g) {
        const int64_t count = plane - g * LANES < LANES ? plane - g * LANES : LANES;
        v16 *rows = px + g * LANES;
        for (int64_t l = 0; l < LANES; ++l) {
          const int64_t at = ((n0 + l) * channels + c) * plane + g * LANES;
          if (l >= vb) {
            rows[l] = zero;
            continue;
          }
          const float *mask = relu_output ? relu_output + at : NULL;
          rows[l] = LOAD_PIXELS(x + at, mask, count);
        }
        transpose16(rows);
      }
      for (int64_t ty = 0; ty < th; ++ty) {
        for (int64_t tx = 0; tx < tw; ++tx) {
          v16 t[6][6];  // t[i][j]: row combination i of column j
          for (int j = 0; j < 6; ++j) {
            const int64_t col = 4 * tx + j - padding;
            v16 d[6], r[6];
            for (int e = 0; e < 6; ++e) {
              const int64_t row = 4 * ty + e - padding;
              d[e] = row >= 0 && row < height && col >= 0 && col < width ? px[row * width + col] : zero;
            }
            input_combine(d, r);
            for (int i = 0; i < 6; ++i) t[i][j] = r[i];
          }
          const int64_t at = c * tiles + n0 * per_image + (ty * tw + tx) * vb;
          const int direct = at + LANES <= extent;
          for (int i = 0; i < 6; ++i) {
            v16 r[6];
            input_combine(t[i], r);
            for (int j = 0; j < 6; ++j) STORE_TILES(v + at + (6 * i + j) * xi_stride, r[j], direct, vb, 1, tw);
          }
        }
      }
    }
  }
}

// Output planes of at most 64 pixels (th tw <= 4).
static inline AI void output_images(const float *m, int64_t images, int64_t channels, int64_t height, int64_t width,
                                    const float *bias, int relu, float *y) {
  const int64_t th = (height + 3) / 4, tw = (width + 3) / 4, per_image = th * tw;
  const int64_t tiles = images * per_image, extent = channels * tiles;
  const int64_t xi_stride = advprune_winograd_stride(channels, tiles);
  const int64_t plane = height * width, groups = (plane + LANES - 1) / LANES;
  v16 px[4 * LANES];  // px[p]: output pixel p, lane l of image n0 + l
  for (int64_t k = 0; k < channels; ++k) {
    const v16 b = (v16){} + (bias ? bias[k] : 0.0f);
    for (int64_t n0 = 0; n0 < images; n0 += LANES) {
      const int64_t vb = images - n0 < LANES ? images - n0 : LANES;
      for (int64_t ty = 0; ty < th; ++ty) {
        for (int64_t tx = 0; tx < tw; ++tx) {
          const int64_t at = k * tiles + n0 * per_image + (ty * tw + tx) * vb;
          v16 r[4][6];
          output_columns(m + at, xi_stride, at + LANES <= extent, vb, 1, tw, r);
          for (int a = 0; a < 4; ++a) {
            v16 o[4];
            output_combine(r[a], o);
            for (int col = 0; col < 4; ++col) {
              const v16 value = o[col] + b;
              o[col] = relu ? __builtin_elementwise_max(value, (v16){}) : value;
            }
            for (int col = 0; col < 4; ++col) {
              if (4 * ty + a < height && 4 * tx + col < width) px[(4 * ty + a) * width + 4 * tx + col] = o[col];
            }
          }
        }
      }
      for (int64_t p = plane; p < groups * LANES; ++p) px[p] = (v16){};
      for (int64_t g = 0; g < groups; ++g) {
        const int64_t count = plane - g * LANES < LANES ? plane - g * LANES : LANES;
        v16 *rows = px + g * LANES;
        transpose16(rows);
        for (int64_t l = 0; l < vb; ++l) {
          float *dst = y + ((n0 + l) * channels + k) * plane + g * LANES;
          if (count == LANES) STORE(dst, rows[l]);
          else STORE_FIRST(dst, rows[l], count);
        }
      }
    }
  }
}

// Packed tile rows where they fill a vector, stream order where they would leave lanes empty.
static inline AI int streams(int64_t th, int64_t tw) { return rows_per_vector(th, tw) * tw < LANES; }

static inline AI void winograd4_input_body(const float *x, const float *relu_output, int64_t images, int64_t channels,
                                           int64_t height, int64_t width, int64_t padding, int64_t th, int64_t tw, float *v) {
  if (image_lanes(images, th, tw)) input_images(x, relu_output, images, channels, height, width, padding, th, tw, v);
  else if (streams(th, tw)) input_stream(x, relu_output, images, channels, height, width, padding, th, tw, v);
  else winograd4_input_packed(x, relu_output, images, channels, height, width, padding, th, tw, v);
}

static inline AI void winograd4_output_body(const float *m, int64_t images, int64_t channels, int64_t height, int64_t width,
                                           const float *bias, int relu, float *y) {
  const int64_t th = (height + 3) / 4, tw = (width + 3) / 4;
  if (image_lanes(images, th, tw)) output_images(m, images, channels, height, width, bias, relu, y);
  else if (streams(th, tw)) output_stream(m, images, channels, height, width, bias, relu, y);
  else winograd4_output_packed(m, images, channels, height, width, bias, relu, y);
}

// G f for one column (or row) f[0..2] of a 3x3 kernel.
static void kernel_combine(const float *f, float *r) {
  r[0] = 0.25f * f[0];
  r[1] = -(f[0] + f[1] + f[2]) / 6.0f;
  r[2] = -(f[0] - f[1] + f[2]) / 6.0f;
  r[3] = f[0] / 24.0f + f[1] / 12.0f + f[2] / 6.0f;
  r[4] = f[0] / 24.0f - f[1] / 12.0f + f[2] / 6.0f;
  r[5] = f[2];
}

void winograd4_weights(const float *w, int64_t out_channels, int64_t in_channels, int for_input_gradient, float *u) {
  // As winograd2_weights, with 36 elements: u[xi][k][c] = G w[k][c] G^T, or for the input
  // gradient u[xi][c][k] from the kernel turned by 180 degrees.
  const int64_t cols = for_input_gradient ? out_channels : in_channels;
  const int64_t xi_stride = out_channels * in_channels;
  for (int64_t k = 0; k < out_channels; ++k) {
    for (int64_t c = 0; c < in_channels; ++c) {
      const float *g = w + (k * in_channels + c) * 9;
      float columns[3][6];  // columns[j] = G f[., j]
      for (int j = 0; j < 3; ++j) {
        float f[3];
        for (int i = 0; i < 3; ++i) f[i] = for_input_gradient ? g[(2 - i) * 3 + (2 - j)] : g[i * 3 + j];
        kernel_combine(f, columns[j]);
      }
      const int64_t at = for_input_gradient ? c * cols + k : k * cols + c;
      for (int i = 0; i < 6; ++i) {
        const float row[3] = {columns[0][i], columns[1][i], columns[2][i]};
        float r[6];
        kernel_combine(row, r);
        for (int j = 0; j < 6; ++j) u[(6 * i + j) * xi_stride + at] = r[j];
      }
    }
  }
}

ADVPRUNE_CLONES(void, winograd4_input, (const float *x, const float *relu_output, int64_t images, int64_t channels, int64_t height, int64_t width, int64_t padding, int64_t th, int64_t tw, float *v), (x, relu_output, images, channels, height, width, padding, th, tw, v), )
ADVPRUNE_CLONES(void, winograd4_output, (const float *m, int64_t images, int64_t channels, int64_t height, int64_t width, const float *bias, int relu, float *y), (m, images, channels, height, width, bias, relu, y), )
