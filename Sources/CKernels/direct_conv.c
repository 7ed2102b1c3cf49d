#include "isa.h"

#include <string.h>

// Strided convolutions (ResNet's downsampling 3x3 and 1x1 shortcuts) of one image, without a
// column matrix. The im2col path spent most of their time outside its GEMM: building columns with
// stride-2 reads, copying the GEMM's output into NCHW, gathering dy and scattering col2im's sums
// back with stride-2 writes; narrow layers (a compact ResNet18's 16 -> 32) reached about a sixth
// of the FMA peak. Here 16 channels sit in a vector (output channels forward, input channels for
// the input gradient) and a block of pixels' accumulators in registers; each input value is read
// once per tap and weight vector, and a block's results are stored transposed into the NCHW plane.
// Stride 2 on planes the blocks tile takes the fast blocks below; other shapes (stride 3, odd
// widths) take 16 pixels at a time with an index per pixel.

typedef float v16 __attribute__((vector_size(64)));
#define LANES 16
#define MAX_TAPS 49

// ADVPRUNE_CLONES with the copy's block shape as a last argument: wide (1) for AVX-512.
#if defined(__x86_64__)
#define DIRECT_CLONES(name, params, ...)                                                                   \
  __attribute__((target("avx512f"))) static void name##_avx512 params { name##_body(__VA_ARGS__, 1); } \
  __attribute__((target("avx2,fma"))) static void name##_avx2 params { name##_body(__VA_ARGS__, 0); }  \
  static void name##_baseline params { name##_body(__VA_ARGS__, 0); }                                  \
  void name params {                                                                                   \
    switch (advprune_isa()) {                                                                          \
      case ADVPRUNE_ISA_AVX512: name##_avx512(__VA_ARGS__); break;                                     \
      case ADVPRUNE_ISA_AVX2: name##_avx2(__VA_ARGS__); break;                                         \
      default: name##_baseline(__VA_ARGS__); break;                                                    \
    }                                                                                                  \
  }
#else
#define DIRECT_CLONES(name, params, ...) \
  void name params { name##_body(__VA_ARGS__, 0); }
#endif

static inline int64_t round16(int64_t n) { return (n + LANES - 1) / LANES * LANES; }
// Weight rows hold a multiple of 32 channels (zeros past the last), what a fast block reads.
static inline int64_t round32(int64_t n) { return (n + 2 * LANES - 1) / (2 * LANES) * 2 * LANES; }

int64_t advprune_direct_conv_weight_count(int64_t out_channels, int64_t in_channels, int64_t k, int for_input_gradient) {
  return k * k * (for_input_gradient ? out_channels * round32(in_channels) : in_channels * round32(out_channels));
}

int64_t advprune_direct_conv_scratch_count(int64_t c, int64_t h, int64_t w, int64_t o, int64_t k, int64_t s, int64_t pad,
                                           int for_input_gradient) {
  if (!for_input_gradient) return pad > 0 ? c * (h + 2 * pad) * (w + 2 * pad) : 0;
  const int64_t oh = (h + 2 * pad - k) / s + 1, ow = (w + 2 * pad - k) / s + 1, e = (k - 1) / s + 1;
  return o * (oh + 2 * e) * (ow + 2 * e);
}

void advprune_direct_conv_weights(const float *weight, int64_t out_channels, int64_t in_channels, int64_t k, int for_input_gradient,
                                  float *wt) {
  const int64_t o32 = round32(out_channels), c32 = round32(in_channels);
  memset(wt, 0, sizeof(float) * (size_t)(for_input_gradient ? k * k * out_channels * c32 : in_channels * k * k * o32));
  for (int64_t o = 0; o < out_channels; ++o) {
    for (int64_t c = 0; c < in_channels; ++c) {
      for (int64_t t = 0; t < k * k; ++t) {
        const float v = weight[(o * in_channels + c) * k * k + t];
        if (for_input_gradient) {
          wt[(t * out_channels + o) * c32 + c] = v;
        } else {
          wt[(c * k * k + t) * o32 + o] = v;
        }
      }
    }
  }
}

// dst [planes][rows + top + bottom][cols + left + right] = src [planes][rows][cols] inside a zero
// border (times relu_output > 0 where given), writing each value once.
static inline __attribute__((always_inline)) void pad_planes(float *dst, const float *src, const float *relu_output, int64_t planes,
                                                             int64_t rows, int64_t cols, int64_t top, int64_t left, int64_t bottom,
                                                             int64_t right) {
  const int64_t width = cols + left + right;
  for (int64_t i = 0; i < planes; ++i) {
    float *plane = dst + i * (rows + top + bottom) * width;
    memset(plane, 0, sizeof(float) * (size_t)(top * width));
    for (int64_t r = 0; r < rows; ++r) {
      float *row = plane + (top + r) * width;
      const int64_t at = (i * rows + r) * cols;
      memset(row, 0, sizeof(float) * (size_t)left);
      if (relu_output) {
        for (int64_t x = 0; x < cols; ++x) row[left + x] = relu_output[at + x] > 0 ? src[at + x] : 0;
      } else {
        memcpy(row + left, src + at, sizeof(float) * (size_t)cols);
      }
      memset(row + left + cols, 0, sizeof(float) * (size_t)right);
    }
    memset(plane + (top + rows) * width, 0, sizeof(float) * (size_t)(bottom * width));
  }
}

// Stores a block's accumulators acc[j] (pixel j < pixels, lane l = channel) as plane[l][index[j]].
static inline __attribute__((always_inline)) void store_transposed(const v16 *acc, int lanes, int pixels, const int64_t *index,
                                                                   int64_t plane_size, const float *bias, int relu, float *out) {
  float tmp[LANES][LANES];
  memcpy(tmp, acc, sizeof(v16) * (size_t)pixels);
  for (int l = 0; l < lanes; ++l) {
    const float b = bias ? bias[l] : 0;
    float *dst = out + l * plane_size;
    for (int j = 0; j < pixels; ++j) {
      const float v = tmp[j][l] + b;
      dst[index[j]] = relu && !(v > 0) ? 0 : v;
    }
  }
}

// The fast blocks, stride 2: pix output pixels (one row of pix, or two rows of pix / 2) x one or
// two vectors of 16 channels. Every tap's inputs lie at fixed distances from one or two row
// pointers, so each is one broadcast feeding one or two FMAs, with no index loads. (With an index
// per pixel the loads, two per FMA, held the loop to about 40 % of the FMA peak.) The AVX-512
// copy runs 8 pixels x 32 channels (16 accumulators, 10 loads per 16 FMAs); the AVX2 and baseline
// copies, whose 64-byte vectors take two or four registers each, 4 pixels x 16 channels, so their
// accumulators stay in registers (8 x 32 spilled there: about 25 GMAC/s against 36-40).
#define MAX_PIX 8

static inline __attribute__((always_inline)) void forward_block(const float *xp, int64_t c, int64_t k, int64_t hp, int64_t wp,
                                                                const float *wt, int64_t o32, int64_t first, int64_t second,
                                                                int one_row, int nvec, int pix, v16 *acc) {
  for (int j = 0; j < 2 * MAX_PIX; ++j) acc[j] = (v16){};
  for (int64_t ci = 0; ci < c; ++ci) {
    for (int64_t kh = 0; kh < k; ++kh) {
      const float *a0 = xp + (ci * hp + kh) * wp + first, *a1 = xp + (ci * hp + kh) * wp + second;
      const float *wr = wt + (ci * k + kh) * k * o32;
      for (int64_t kw = 0; kw < k; ++kw) {
        v16 w0, w1;
        memcpy(&w0, wr + kw * o32, sizeof w0);
        if (nvec == 2) memcpy(&w1, wr + kw * o32 + LANES, sizeof w1);
        for (int j = 0; j < pix; ++j) {
          const float v = one_row ? a0[kw + 2 * j] : (j < pix / 2 ? a0[kw + 2 * j] : a1[kw + 2 * (j - pix / 2)]);
          acc[j] += w0 * v;
          if (nvec == 2) acc[pix + j] += w1 * v;
        }
      }
    }
  }
}

// The pixels of the block starting at output pixel q (row-major over the plane).
static inline __attribute__((always_inline)) void block_pixels(int64_t q, int64_t ow, int one_row, int pix, int64_t *index) {
  for (int j = 0; j < pix; ++j) index[j] = one_row || j < pix / 2 ? q + j : q + ow + j - pix / 2;
}

static inline __attribute__((always_inline)) void forward_fast(const float *xp, int64_t c, int64_t k, int64_t hp, int64_t wp,
                                                               const float *wt, int64_t o, int64_t oh, int64_t ow, const float *bias,
                                                               int relu, int one_row, int nvec, int pix, float *y) {
  const int64_t p = oh * ow, o32 = round32(o);
  const int64_t rows = one_row ? 1 : 2, cols = one_row ? pix : pix / 2;
  for (int64_t oy = 0; oy < oh; oy += rows) {
    for (int64_t ox = 0; ox < ow; ox += cols) {
      int64_t index[MAX_PIX];
      block_pixels(oy * ow + ox, ow, one_row, pix, index);
      const int64_t first = 2 * oy * wp + 2 * ox, second = first + 2 * wp;
      for (int64_t ob = 0; ob < o; ob += nvec * LANES) {
        v16 acc[2 * MAX_PIX];
        forward_block(xp, c, k, hp, wp, wt + ob, o32, first, second, one_row, nvec, pix, acc);
        for (int half = 0; half < nvec && ob + half * LANES < o; ++half) {
          const int64_t base = ob + half * LANES;
          const int lanes = o - base < LANES ? (int)(o - base) : LANES;
          store_transposed(acc + half * pix, lanes, pix, index, p, bias ? bias + base : NULL, relu, y + base * p);
        }
      }
    }
  }
}

// Whether blocks of pix tile an output plane: stride 2, rows a multiple of pix wide, or of pix / 2
// wide with an even number of them.
static inline int fast_plane(int64_t s, int64_t oh, int64_t ow, int pix) {
  return s == 2 && (ow % pix == 0 || (ow % (pix / 2) == 0 && oh % 2 == 0));
}

// The fast block shapes: `call` with (one_row, nvec, pix) as constants, so each copy is compiled
// for its own shape; wide: the AVX-512 copy.
#define FAST_SHAPES(wide, one_row, many_channels, call)    \
  do {                                                     \
    if ((wide) && (one_row) && (many_channels)) call(1, 2, 8);   \
    if ((wide) && (one_row) && !(many_channels)) call(1, 1, 8);  \
    if ((wide) && !(one_row) && (many_channels)) call(0, 2, 8);  \
    if ((wide) && !(one_row) && !(many_channels)) call(0, 1, 8); \
    if (!(wide) && (one_row)) call(1, 1, 4);                     \
    if (!(wide) && !(one_row)) call(0, 1, 4);                    \
  } while (0)

static inline __attribute__((always_inline)) void advprune_direct_conv_forward_body(
    const float *x, int64_t c, int64_t h, int64_t w, const float *wt, int64_t o, int64_t k, int64_t s, int64_t pad, const float *bias,
    int relu, float *scratch, float *y, int wide) {
  const int64_t hp = h + 2 * pad, wp = w + 2 * pad;
  const int64_t oh = (hp - k) / s + 1, ow = (wp - k) / s + 1, p = oh * ow, o16 = round16(o), o32 = round32(o);
  // Unpadded (the 1x1 shortcuts) the image is read in place.
  const float *xp = x;
  if (pad > 0) {
    pad_planes(scratch, x, NULL, c, h, w, pad, pad, pad, pad);
    xp = scratch;
  }
  const int pix = wide ? 8 : 4;
  if (fast_plane(s, oh, ow, pix)) {
    // Two vectors of output channels (each input read feeding two FMAs) where there are more than 16.
#define FORWARD(one_row, nvec, pix) forward_fast(xp, c, k, hp, wp, wt, o, oh, ow, bias, relu, one_row, nvec, pix, y)
    FAST_SHAPES(wide, ow % pix == 0, o > LANES, FORWARD);
#undef FORWARD
    return;
  }
  for (int64_t q0 = 0; q0 < p; q0 += LANES) {
    const int pixels = p - q0 < LANES ? (int)(p - q0) : LANES;
    int64_t off[LANES], index[LANES];
    for (int j = 0; j < LANES; ++j) {
      const int64_t q = q0 + (j < pixels ? j : 0);
      off[j] = (q / ow) * s * wp + (q % ow) * s;
      index[j] = q;
    }
    for (int64_t ob = 0; ob < o16; ob += LANES) {
      v16 acc[LANES];
      for (int j = 0; j < LANES; ++j) acc[j] = (v16){};
      for (int64_t ci = 0; ci < c; ++ci) {
        for (int64_t kh = 0; kh < k; ++kh) {
          const float *row = xp + (ci * hp + kh) * wp;
          const float *wrow = wt + ((ci * k + kh) * k) * o32 + ob;
          for (int64_t kw = 0; kw < k; ++kw) {
            v16 wv;
            memcpy(&wv, wrow + kw * o32, sizeof wv);
            const float *base = row + kw;
            for (int j = 0; j < LANES; ++j) acc[j] += wv * base[off[j]];
          }
        }
      }
      const int lanes = o - ob < LANES ? (int)(o - ob) : LANES;
      store_transposed(acc, lanes, pixels, index, p, bias ? bias + ob : NULL, relu, y + ob * p);
    }
  }
}

DIRECT_CLONES(advprune_direct_conv_forward,
              (const float *x, int64_t c, int64_t h, int64_t w, const float *wt, int64_t o, int64_t k, int64_t s, int64_t pad,
               const float *bias, int relu, float *scratch, float *y),
              x, c, h, w, wt, o, k, s, pad, bias, relu, scratch, y)

// One class's pixels in fast blocks (8 of them x 32 input channels): a class's pixel (a, b) reads
// tap u of dy at base[u] + a * pw + b, so a block's 8 reads are at fixed distances.
static inline __attribute__((always_inline)) void backward_fast(const float *dyp, int64_t o, int64_t ph, int64_t pw, const float *wt,
                                                                int64_t c, int nt, const int64_t *taps, const int64_t *base, int64_t ih0,
                                                                int64_t iw0, int64_t nh, int64_t nw, int64_t w, int64_t plane,
                                                                int one_row, int nvec, int pix, float *dx) {
  const int64_t c32 = round32(c), rows = one_row ? 1 : 2, cols = one_row ? pix : pix / 2;
  for (int64_t a = 0; a < nh; a += rows) {
    for (int64_t b = 0; b < nw; b += cols) {
      int64_t index[MAX_PIX];
      for (int j = 0; j < pix; ++j) {
        const int64_t aa = one_row ? a : a + j / (pix / 2), bb = one_row ? b + j : b + j % (pix / 2);
        index[j] = (ih0 + 2 * aa) * w + iw0 + 2 * bb;
      }
      const int64_t first = a * pw + b, second = first + pw;
      for (int64_t cb = 0; cb < c; cb += nvec * LANES) {
        v16 acc[2 * MAX_PIX];
        for (int j = 0; j < 2 * MAX_PIX; ++j) acc[j] = (v16){};
        for (int u = 0; u < nt; ++u) {
          const float *wtap = wt + taps[u] * o * c32 + cb;
          for (int64_t oo = 0; oo < o; ++oo) {
            v16 w0, w1;
            memcpy(&w0, wtap + oo * c32, sizeof w0);
            if (nvec == 2) memcpy(&w1, wtap + oo * c32 + LANES, sizeof w1);
            const float *a0 = dyp + oo * ph * pw + base[u] + first, *a1 = dyp + oo * ph * pw + base[u] + second;
            for (int j = 0; j < pix; ++j) {
              const float v = one_row ? a0[j] : (j < pix / 2 ? a0[j] : a1[j - pix / 2]);
              acc[j] += w0 * v;
              if (nvec == 2) acc[pix + j] += w1 * v;
            }
          }
        }
        for (int half = 0; half < nvec && cb + half * LANES < c; ++half) {
          const int64_t first_channel = cb + half * LANES;
          const int lanes = c - first_channel < LANES ? (int)(c - first_channel) : LANES;
          store_transposed(acc + half * pix, lanes, pix, index, plane, NULL, 0, dx + first_channel * plane);
        }
      }
    }
  }
}

// The input gradient gathers, for each input pixel, the output pixels whose windows cover it. An
// input row r = ih + pad meets kernel row kh where r - kh is a multiple of s, at output row
// (r - kh) / s, so the pixels with the same (r mod s, column mod s) share their taps: each such
// class runs as its own small convolution of dy, 16 of its pixels at a time.
static inline __attribute__((always_inline)) void advprune_direct_conv_backward_data_body(
    const float *dy, const float *relu_output, int64_t c, int64_t h, int64_t w, const float *wt, int64_t o, int64_t k, int64_t s,
    int64_t pad, float *scratch, float *dx, int wide) {
  const int64_t oh = (h + 2 * pad - k) / s + 1, ow = (w + 2 * pad - k) / s + 1;
  const int pix = wide ? 8 : 4;
  // A border of e zero rows and columns around dy covers every tap that falls outside it.
  const int64_t e = (k - 1) / s + 1, ph = oh + 2 * e, pw = ow + 2 * e, c16 = round16(c), c32 = round32(c);
  pad_planes(scratch, dy, relu_output, o, oh, ow, e, e, e, e);
  // Where the kernel is smaller than the stride (1x1 shortcuts) some classes meet no tap: their
  // pixels are zeroed here, all at once, and skipped below.
  if (k < s) memset(dx, 0, sizeof(float) * (size_t)(c * h * w));
  for (int64_t ra = 0; ra < s; ++ra) {
    for (int64_t rb = 0; rb < s; ++rb) {
      int64_t taps[MAX_TAPS], kh_of[MAX_TAPS], kw_of[MAX_TAPS];
      int nt = 0;
      for (int64_t kh = ra; kh < k; kh += s) {
        for (int64_t kw = rb; kw < k; kw += s) {
          taps[nt] = kh * k + kw;
          kh_of[nt] = kh;
          kw_of[nt] = kw;
          ++nt;
        }
      }
      if (nt == 0) continue;
      const int64_t ih0 = ((ra - pad) % s + s) % s, iw0 = ((rb - pad) % s + s) % s;
      const int64_t nh = ih0 < h ? (h - 1 - ih0) / s + 1 : 0, nw = iw0 < w ? (w - 1 - iw0) / s + 1 : 0;
      if (fast_plane(s, nh, nw, pix)) {
        int64_t base[MAX_TAPS];
        for (int u = 0; u < nt; ++u) base[u] = ((ih0 + pad - kh_of[u]) / s + e) * pw + (iw0 + pad - kw_of[u]) / s + e;
#define BACKWARD(one_row, nvec, pix) \
  backward_fast(scratch, o, ph, pw, wt, c, nt, taps, base, ih0, iw0, nh, nw, w, h * w, one_row, nvec, pix, dx)
        FAST_SHAPES(wide, nw % pix == 0, c > LANES, BACKWARD);
#undef BACKWARD
        continue;
      }
      for (int64_t t0 = 0; t0 < nh * nw; t0 += LANES) {
        const int pixels = nh * nw - t0 < LANES ? (int)(nh * nw - t0) : LANES;
        int64_t index[LANES], off[MAX_TAPS][LANES];
        for (int j = 0; j < LANES; ++j) {
          const int64_t t = t0 + (j < pixels ? j : 0);
          const int64_t ih = ih0 + (t / nw) * s, iw = iw0 + (t % nw) * s;
          index[j] = ih * w + iw;
          for (int u = 0; u < nt; ++u) off[u][j] = ((ih + pad - kh_of[u]) / s + e) * pw + (iw + pad - kw_of[u]) / s + e;
        }
        for (int64_t cb = 0; cb < c16; cb += LANES) {
          v16 acc[LANES];
          for (int j = 0; j < LANES; ++j) acc[j] = (v16){};
          for (int u = 0; u < nt; ++u) {
            const float *wtap = wt + taps[u] * o * c32 + cb;
            for (int64_t oo = 0; oo < o; ++oo) {
              v16 wv;
              memcpy(&wv, wtap + oo * c32, sizeof wv);
              const float *plane = scratch + oo * ph * pw;
              for (int j = 0; j < LANES; ++j) acc[j] += wv * plane[off[u][j]];
            }
          }
          const int lanes = c - cb < LANES ? (int)(c - cb) : LANES;
          store_transposed(acc, lanes, pixels, index, h * w, NULL, 0, dx + cb * h * w);
        }
      }
    }
  }
}

DIRECT_CLONES(advprune_direct_conv_backward_data,
              (const float *dy, const float *relu_output, int64_t c, int64_t h, int64_t w, const float *wt, int64_t o, int64_t k,
               int64_t s, int64_t pad, float *scratch, float *dx),
              dy, relu_output, c, h, w, wt, o, k, s, pad, scratch, dx)
