#ifndef ADVPRUNE_WINOGRAD_LANES_H
#define ADVPRUNE_WINOGRAD_LANES_H

// What the Winograd transforms F(2x2, 3x3) (winograd.c) and F(4x4, 3x3) (winograd4.c) share:
// 16 tiles as one vector (GCC vector extensions: one AVX-512 register, two AVX2 ones), narrow
// planes packed two or four tile rows to a vector, and the short-row copy into a padded plane.

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef float v16 __attribute__((vector_size(64)));
#define LANES 16
#define AI __attribute__((always_inline))

// Macros, not functions: a function passing a 64-byte vector would have a different ABI in
// each copy.
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

// Narrow planes put R tile rows in one vector, G = 16 / R lanes each: SmallCNN's 10x10 and 8x8
// outputs have 5 and 4 tiles per row, which would fill 5 or 4 of 16 lanes one row at a time.
// (Fewer when the plane has fewer tile rows: a 4x4 plane's two tile rows are one vector of two.)
static int64_t rows_per_vector(int64_t th, int64_t tw) { return tw <= 4 && th > 2 ? 4 : tw <= 8 && th > 1 ? 2 : 1; }

// R tile rows of T = tw tiles: `PACK` moves group g's lanes [g G, g G + T) to [g T, g T + T), so
// one store writes the R tile rows' tiles in order; `SPREAD` is its inverse for one load. The
// shuffles need constant lanes: one case per (R, T).
#define PACKED2(T, i) ((i) < (T) ? (i) : (i) < 2 * (T) ? (i) - (T) + 8 : 0)
#define PACKED4(T, i) ((i) < 4 * (T) ? (i) / (T) * 4 + (i) % (T) : 0)
#define SPREAD2(T, i) ((i) % 8 < (T) ? (i) / 8 * (T) + (i) % 8 : 0)
#define SPREAD4(T, i) ((i) % 4 < (T) ? (i) / 4 * (T) + (i) % 4 : 0)
#define SHUFFLE_PACKED2(v, T) __builtin_shufflevector(v, v, PACKED2(T, 0), PACKED2(T, 1), PACKED2(T, 2), PACKED2(T, 3), PACKED2(T, 4), PACKED2(T, 5), PACKED2(T, 6), PACKED2(T, 7), PACKED2(T, 8), PACKED2(T, 9), PACKED2(T, 10), PACKED2(T, 11), PACKED2(T, 12), PACKED2(T, 13), PACKED2(T, 14), PACKED2(T, 15))
#define SHUFFLE_PACKED4(v, T) __builtin_shufflevector(v, v, PACKED4(T, 0), PACKED4(T, 1), PACKED4(T, 2), PACKED4(T, 3), PACKED4(T, 4), PACKED4(T, 5), PACKED4(T, 6), PACKED4(T, 7), PACKED4(T, 8), PACKED4(T, 9), PACKED4(T, 10), PACKED4(T, 11), PACKED4(T, 12), PACKED4(T, 13), PACKED4(T, 14), PACKED4(T, 15))
#define SHUFFLE_SPREAD2(v, T) __builtin_shufflevector(v, v, SPREAD2(T, 0), SPREAD2(T, 1), SPREAD2(T, 2), SPREAD2(T, 3), SPREAD2(T, 4), SPREAD2(T, 5), SPREAD2(T, 6), SPREAD2(T, 7), SPREAD2(T, 8), SPREAD2(T, 9), SPREAD2(T, 10), SPREAD2(T, 11), SPREAD2(T, 12), SPREAD2(T, 13), SPREAD2(T, 14), SPREAD2(T, 15))
#define SHUFFLE_SPREAD4(v, T) __builtin_shufflevector(v, v, SPREAD4(T, 0), SPREAD4(T, 1), SPREAD4(T, 2), SPREAD4(T, 3), SPREAD4(T, 4), SPREAD4(T, 5), SPREAD4(T, 6), SPREAD4(T, 7), SPREAD4(T, 8), SPREAD4(T, 9), SPREAD4(T, 10), SPREAD4(T, 11), SPREAD4(T, 12), SPREAD4(T, 13), SPREAD4(T, 14), SPREAD4(T, 15))
#define BY_GROUPS(v, groups, tw, NAME)                                          \
  ({                                                                            \
    v16 r_ = (v);                                                               \
    switch ((groups) * 16 + (int)(tw)) {                                        \
      case 33: r_ = SHUFFLE_##NAME##2(v, 1); break;                              \
      case 34: r_ = SHUFFLE_##NAME##2(v, 2); break;                              \
      case 35: r_ = SHUFFLE_##NAME##2(v, 3); break;                              \
      case 36: r_ = SHUFFLE_##NAME##2(v, 4); break;                              \
      case 37: r_ = SHUFFLE_##NAME##2(v, 5); break;                              \
      case 38: r_ = SHUFFLE_##NAME##2(v, 6); break;                              \
      case 39: r_ = SHUFFLE_##NAME##2(v, 7); break;                              \
      case 40: r_ = SHUFFLE_##NAME##2(v, 8); break;                              \
      case 65: r_ = SHUFFLE_##NAME##4(v, 1); break;                              \
      case 66: r_ = SHUFFLE_##NAME##4(v, 2); break;                              \
      case 67: r_ = SHUFFLE_##NAME##4(v, 3); break;                              \
      case 68: r_ = SHUFFLE_##NAME##4(v, 4); break;                              \
      default: break;                                                           \
    }                                                                           \
    r_;                                                                         \
  })


// One vector of transformed tiles, in tile order (R tile rows packed to R * TW consecutive
// tiles), stored at dst: in full where `direct` (the spill past its `valid` tiles, even past the
// plane, lands on tiles stored after it: this plane's next vector or the next plane's), else only
// the `valid` first ones (near the end of element xi's tiles, where the spill would land on a
// plane already written, or in the unused floats before element xi + 1).
#define STORE_TILES(dst, v, direct, valid, groups, tw)                            \
  do {                                                                          \
    v16 tiles_ = (v);                                                           \
    if ((groups) > 1) tiles_ = BY_GROUPS(tiles_, groups, tw, PACKED);           \
    if (direct) STORE((dst), tiles_);                                           \
    else STORE_FIRST((dst), tiles_, (valid));                                   \
  } while (0)
// Its inverse: the tiles at src, spread to their lanes; where a full load would read past the
// stream (not `direct`), only the `valid` first ones, the rest zero.
#define LOAD_TILES(src, direct, valid, groups, tw)                               \
  ({                                                                            \
    v16 tiles_;                                                                 \
    if (direct) {                                                               \
      tiles_ = LOAD(src);                                                       \
    } else {                                                                    \
      float lanes_[LANES] = {0};                                                \
      memcpy(lanes_, (src), (size_t)(valid) * sizeof(float));                   \
      tiles_ = LOAD(lanes_);                                                    \
    }                                                                           \
    (groups) > 1 ? BY_GROUPS(tiles_, groups, tw, SPREAD) : tiles_;              \
  })

typedef int32_t i16 __attribute__((vector_size(64)));
#define LANE_INDEX ((i16){0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})

// Copies `count` floats (zero where relu_output <= 0, when given) as one or two masked vectors
// where the row is short: a plane row of a small network is shorter than the call to memcpy that
// would copy it. The vector reads may run past the row, not past `end`; the writes stay within
// `room` floats of dst (lanes past `count` land on the plane's zero border and write zero).
static inline AI void copy_row(float *dst, const float *src, const float *relu_output,
                               int64_t count, int64_t room, const float *end) {
  const int64_t vectors = count <= LANES ? 1 : 2;
  if (count > 2 * LANES || vectors * LANES > room || src + vectors * LANES > end) {
    if (relu_output) {
      for (int64_t p = 0; p < count; ++p) dst[p] = relu_output[p] > 0.0f ? src[p] : 0.0f;
    } else {
      memcpy(dst, src, (size_t)count * sizeof(float));
    }
    return;
  }
  for (int64_t k = 0; k < vectors; ++k) {
    i16 keep = LANE_INDEX < (i16){} + (int32_t)(count - k * LANES);
    if (relu_output) keep &= LOAD(relu_output + k * LANES) > (v16){};
    STORE(dst + k * LANES, (v16)((i16)LOAD(src + k * LANES) & keep));
  }
}

// The passes over every plane for tile size M (2 or 4), around the including file's
// `input_plane` and `output_plane` (R = groups tile rows per vector, a constant in each call, so
// the branches on it fold away). The input plane is copied into a buffer with its zero border:
// row r, column p hold input (r - padding, p - padding); only the interior is rewritten per
// plane, so the border stays zero. A chunk of 16 tiles reads 16 M + 2 columns from 16 M * chunk
// on (F(4x4) loads from 4 columns on: 16 M + M); a vector of R tile rows reads up to M R rows
// past the last tile row.
#define DEFINE_WINOGRAD_PASSES(M, input_body, output_body)                                                   \
  static inline AI void input_body(                                                                           \
      const float *x, const float *relu_output, int64_t images, int64_t channels, int64_t height,             \
      int64_t width, int64_t padding, int64_t th, int64_t tw, float *v) {                                    \
    const int64_t tiles = images * th * tw, extent = channels * tiles;                                       \
    const int64_t xi_stride = advprune_winograd_stride(channels, tiles);                                     \
    const int64_t chunks = (tw + LANES - 1) / LANES, groups = rows_per_vector(th, tw);                       \
    const int64_t rows = (M) * th + (M) * groups, pitch = (M) * LANES * chunks + (M);                        \
    float *padded = calloc((size_t)(rows * pitch), sizeof(float));                                           \
    if (!padded) abort();                                                                                    \
    const float *end = x + images * channels * height * width;                                               \
    for (int64_t c = 0; c < channels; ++c) {                                                                 \
      for (int64_t n = 0; n < images; ++n) {                                                                 \
        const int64_t at = (n * channels + c) * height * width;                                              \
        for (int64_t h = 0; h < height && h + padding < rows; ++h) {                                         \
          const int64_t count = width + padding <= pitch ? width : pitch - padding;                          \
          copy_row(padded + (h + padding) * pitch + padding, x + at + h * width,                             \
                   relu_output ? relu_output + at + h * width : NULL, count, pitch - padding, end);          \
        }                                                                                                    \
        const int64_t first = c * tiles + n * th * tw;                                                       \
        if (groups == 1) input_plane(padded, pitch, th, tw, first, xi_stride, extent, v + first, 1);                 \
        else if (groups == 2) input_plane(padded, pitch, th, tw, first, xi_stride, extent, v + first, 2);            \
        else input_plane(padded, pitch, th, tw, first, xi_stride, extent, v + first, 4);                             \
      }                                                                                                      \
    }                                                                                                        \
    free(padded);                                                                                            \
  }                                                                                                          \
  static inline AI void output_body(                                                                          \
      const float *m, int64_t images, int64_t channels, int64_t height, int64_t width, const float *bias,    \
      int relu, float *y) {                                                                                  \
    const int64_t th = (height + (M) - 1) / (M), tw = (width + (M) - 1) / (M);                               \
    const int64_t tiles = images * th * tw, extent = channels * tiles;                                       \
    const int64_t xi_stride = advprune_winograd_stride(channels, tiles);                                     \
    const int64_t groups = rows_per_vector(th, tw);                                                          \
    float *const y_end = y + images * channels * height * width;                                             \
    for (int64_t n = 0; n < images; ++n) {                                                                   \
      for (int64_t k = 0; k < channels; ++k) {                                                               \
        const float b = bias ? bias[k] : 0.0f;                                                               \
        const int64_t first = k * tiles + n * th * tw;                                                       \
        float *plane = y + (n * channels + k) * height * width;                                              \
        if (groups == 1) output_plane(m, first, xi_stride, extent, height, width, b, relu, plane, y_end, 1);         \
        else if (groups == 2) output_plane(m, first, xi_stride, extent, height, width, b, relu, plane, y_end, 2);    \
        else output_plane(m, first, xi_stride, extent, height, width, b, relu, plane, y_end, 4);                     \
      }                                                                                                      \
    }                                                                                                        \
  }

// The two tile sizes behind advprune_winograd_* (ckernels.h), which pick one by `tile`.
void winograd2_input(const float *x, const float *relu_output, int64_t images, int64_t channels, int64_t height,
                     int64_t width, int64_t padding, int64_t th, int64_t tw, float *v);
void winograd2_output(const float *m, int64_t images, int64_t channels, int64_t height, int64_t width,
                      const float *bias, int relu, float *y);
void winograd2_weights(const float *w, int64_t out_channels, int64_t in_channels, int for_input_gradient, float *u);
void winograd4_input(const float *x, const float *relu_output, int64_t images, int64_t channels, int64_t height,
                     int64_t width, int64_t padding, int64_t th, int64_t tw, float *v);
void winograd4_output(const float *m, int64_t images, int64_t channels, int64_t height, int64_t width,
                      const float *bias, int relu, float *y);
void winograd4_weights(const float *w, int64_t out_channels, int64_t in_channels, int for_input_gradient, float *u);

#endif
