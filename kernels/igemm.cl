// igemm.cl — our own convolution and GEMM kernels: implicit GEMM, no column buffer, NCHW read and
// written directly. A work-item owns a vector of PIX output pixels (or GEMM columns) and walks a
// block of ROWS output channels (or GEMM rows) whose accumulators stay in registers; patch rows
// are staged KC at a time in a private tile so each gathered input value feeds every output
// channel of the work-item.
//
// Every convolution reads its source from a zero-bordered copy (pad_planes; an unpadded source is
// read as it is; conv_tiled reads a strided convolution's dy dilated by the stride, conv_igemm its
// phases from the undilated copy), so no tap ever falls outside it: a row of lanes is one vector
// load, other lanes a gather at precomputed offsets, and no lane needs a bounds test (but for
// conv_few_rows_dx's cut at the copy's very end, where its vectors' spare lanes would read past).
//
// Tunables are -D defines (the host passes per-device values, see CLTunables.swift); the defaults
// here suit a CPU device. PIX must be 2, 4, 8 or 16.
#ifndef PIX
#define PIX 16
#endif
#ifndef ROWS
#define ROWS 16
#endif
#ifndef GEMM_ROWS
#define GEMM_ROWS 8
#endif
#ifndef KC
#define KC 64
#endif
#ifndef WTAPS
#define WTAPS 16
#endif

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define floatv CAT(float, PIX)
#define vloadv CAT(vload, PIX)
#define vstorev CAT(vstore, PIX)

typedef union {
  floatv v;
  float s[PIX];
} lanes_t;

typedef union {
  CAT(int, PIX) v;
  int s[PIX];
} lanes_i;

// conv_igemm blends a vector of pixels spread over at most this many rows from row loads.
#define MAX_BLEND 4
// conv_igemm: an item with at most this many rows skips the tile (see `few`).
#define FEW_ROWS 4
// conv_igemm: a strided input gradient's phases with at most this many taps (a 7x7 kernel at
// stride 2 has 16) walk K without the tile.
#define MAX_PHASE_TAPS 16

// Flags of conv_igemm.
#define WITH_BIAS 1
#define RELU_OUT 2
// The input gradient: the copy holds dy, and the kernel turned by 180 degrees runs over it.
#define TRANSPOSED 4
// conv_tiled: this launch is split over K; store raw partial sums (sum_tiled_splits finishes).
#define SPLIT_K 8

static inline floatv load_lanes(__global const float* p, const int count) {
  if (count == PIX) return vloadv(0, p);
  lanes_t u;
  for (int l = 0; l < PIX; ++l) u.s[l] = l < count ? p[l] : 0.0f;
  return u.v;
}

static inline void store_lanes(__global float* p, const floatv v, const int count) {
  if (count == PIX) {
    vstorev(v, 0, p);
    return;
  }
  lanes_t u;
  u.v = v;
  for (int l = 0; l < count; ++l) p[l] = u.s[l];
}

// A phase's pixels as columns: a phase of stride ps starting at (phase_y, phase_x) holds
// phase_h x phase_w pixels of an out_h x out_w plane; column pp of an image is the pixel
// phase_pixel(pp) of its plane.
static inline int phase_extent(const int size, const int phase, const int ps) { return (size - phase + ps - 1) / ps; }
static inline int phase_pixel(const int pp, const int phase_w, const int phase_y, const int phase_x, const int ps, const int out_w) {
  return (phase_y + ps * (pp / phase_w)) * out_w + phase_x + ps * (pp % phase_w);
}

// A vector of pixels of one plane: consecutive from p, or (spread) at p + off[l].
static inline floatv load_pixels(__global const float* p, const int* off, const bool spread, const int count) {
  if (!spread) return load_lanes(p, count);
  lanes_t u;
  for (int l = 0; l < PIX; ++l) u.s[l] = l < count ? p[off[l]] : 0.0f;
  return u.v;
}

static inline void store_pixels(__global float* p, const int* off, const bool spread, const floatv v, const int count) {
  if (!spread) {
    store_lanes(p, v, count);
    return;
  }
  lanes_t u;
  u.v = v;
  for (int l = 0; l < count; ++l) p[off[l]] = u.s[l];
}

// A vector of pixels whose lanes lie in `rows` consecutive rows of the copy, lane l of relative
// row rr (row_of) at at + l + rr * row_shift: one vector load per row, blended in.
static inline floatv load_rows(__global const float* at, const int rows, const int row_shift, const CAT(int, PIX) row_of) {
  floatv v = vloadv(0, at);
  for (int rr = 1; rr < rows; ++rr) v = select(v, vloadv(0, at + rr * row_shift), row_of >= rr);
  return v;
}

// The epilogue after the last patch rows: bias, then ReLU.
static inline floatv finish(floatv v, const bool last, const int flags, __global const float* bias, const int r) {
  if (!last) return v;
  if (flags & WITH_BIAS) v += (floatv)(bias[r]);
  if (flags & RELU_OUT) v = fmax(v, (floatv)(0.0f));
  return v;
}

// out[n, r, p] = sum over (q, i, j) of A(r, q, i, j) * S(n, q, i, j, p)   (+ bias, ReLU), where src
// is the bordered copy (src_h x src_w planes, the source's real_h rows after `border` zero rows,
// what pad_planes wrote) and output pixel (y, x) reads copy pixel (y * stride + i', x * stride + j').
//
// Forward: src = copy of x [N, Q=C], out = y [N, R=OC], A = w[r, q, i, j], (i', j') = (i, j).
// Input gradient (TRANSPOSED): src = copy of dy [N, Q=OC] (masked by the ReLU), out = dx [N, R=C],
//   A = w[q, r, i, j], stride 1. dx(y, x) takes w(i, j) * dy((y + pad - i) / s, ...) where the
//   forward stride s divides y + pad - i, so the launch covers one phase of the pixels,
//   y = phase_y + s * yy (x likewise), with only the taps i = (phase_y + pad) mod s + s a that
//   meet dy there, and pixel (yy, xx) reads the undilated copy at i' = (phase_y + pad - i) / s +
//   border. (s = 1: one phase, every tap, i' = k - 1 - i with border = k - 1 - pad.)
// Global size: (N * ceil(phase pixels / PIX), ceil(R / rows_per_item)).
__kernel void conv_igemm(__global float* out, __global const float* src, __global const float* w,
                         __global const float* bias, const int flags, const int batch, const int src_channels,
                         const int src_h, const int src_w, const int out_rows, const int out_h, const int out_w,
                         const int kernel_size, const int stride, const int rows_per_item, const int border,
                         const int real_h, const int phase_stride, const int phase_y, const int phase_x,
                         const int pad) {
  const int ps = phase_stride;
  const int phase_w = phase_extent(out_w, phase_x, ps), P = phase_extent(out_h, phase_y, ps) * phase_w;
  const int plane_p = out_h * out_w;
  const int blocks = (P + PIX - 1) / PIX;
  const int n = get_global_id(0) / blocks;
  if (n >= batch) return;
  // PIX consecutive pixels of the phase, across rows where it is narrow; lanes past `count`
  // repeat the last pixel and are not stored.
  const int p0 = (get_global_id(0) % blocks) * PIX, count = min(PIX, P - p0);
  const int r_begin = get_global_id(1) * rows_per_item;
  const int r_end = min(out_rows, r_begin + rows_per_item);
  if (r_begin >= r_end) return;
  const bool transposed = (flags & TRANSPOSED) != 0;
  const int kk = kernel_size * kernel_size;
  // This phase's taps: i = i0 + ps * a for a < taps_h, j likewise.
  const int i0 = transposed ? (phase_y + pad) % ps : 0, j0 = transposed ? (phase_x + pad) % ps : 0;
  const int taps_h = (kernel_size - i0 + ps - 1) / ps, taps_w = (kernel_size - j0 + ps - 1) / ps;
  const int taps = taps_h * taps_w, K = src_channels * taps;
  const int src_plane = src_h * src_w;
  const int row_stride = transposed ? kk : src_channels * kk;
  const int q_stride = transposed ? out_rows * kk : kk;

  // lane_off: where a lane's pixel reads the copy, relative to the first lane's; out_off: where
  // it is written in its plane.
  int py0 = 0, px0 = 0, lane_off[PIX], out_off[PIX];
  bool row = true, one_row = true;
  lanes_i lane_row;
#pragma unroll
  for (int l = 0; l < PIX; ++l) {
    const int pp = p0 + min(l, count - 1);
    const int py = pp / phase_w, px = pp % phase_w;
    if (l == 0) {
      py0 = py;
      px0 = px;
    }
    lane_off[l] = ((py - py0) * src_w + px - px0) * stride;
    lane_row.s[l] = py - py0;
    out_off[l] = phase_pixel(pp, phase_w, phase_y, phase_x, ps, out_w);
    row = row && lane_off[l] == l;
    one_row = one_row && py == py0;
  }
  // A full vector over a few rows at stride 1: lane l of relative row rr reads l + rr * (src_w -
  // phase_w), so each row's lanes are one vector load, blended in, instead of PIX scalar loads.
  // (Every load stays between the first lane's word and the last lane's.)
  const int rows_spanned = lane_row.s[PIX - 1] + 1, row_shift = src_w - phase_w;
  const bool blended = !row && count == PIX && stride == 1 && rows_spanned <= MAX_BLEND;
  const int blend_rows = row ? 1 : rows_spanned;
  __global const float* src_n = src + n * src_channels * src_plane + (py0 * src_w + px0) * stride;
  __global float* out_n = out + n * out_rows * plane_p;
  // A phase's pixels are ps apart in the plane: gathered and scattered lane by lane.
  const bool spread = ps > 1;
  if (spread && K == 0) {
    // No tap of this phase meets dy (a strided 1x1 convolution's other phases): dx is 0 there.
    for (int r = r_begin; r < r_end; ++r)
      for (int l = 0; l < count; ++l) out_n[r * plane_p + out_off[l]] = 0.0f;
    return;
  }
  out_n += spread ? 0 : out_off[0];

  // An item with a few rows (a one- or three-channel input's gradient) multiplies each gathered
  // vector at once into two accumulator chains per row: staging it in the tile for a mostly idle
  // register block cost more than the multiplies.
  const int item_rows = r_end - r_begin;
  const bool few = item_rows <= FEW_ROWS;
  floatv fa[FEW_ROWS], fb[FEW_ROWS];
#pragma unroll
  for (int r = 0; r < FEW_ROWS; ++r) fa[r] = fb[r] = (floatv)(0.0f);
  bool odd = false;

  // A few rows of a stride-1 3x3 pass (the input gradient of a one-channel image): the nine taps'
  // offsets fixed per item, so each tap is its loads and FMAs without the patch walk's bookkeeping.
  if (few && ps == 1 && kernel_size == 3 && (row || blended)) {
    // Tap t = (i, j) reads weight i * 3 + j at copy offset tap_at[t].
    int tap_at[9];
#pragma unroll
    for (int i = 0; i < 3; ++i) {
#pragma unroll
      for (int j = 0; j < 3; ++j) {
        const int ti = transposed ? phase_y + pad - i + border : i, tj = transposed ? phase_x + pad - j + border : j;
        tap_at[i * 3 + j] = ti * src_w + tj;
      }
    }
    if (item_rows == 1) {
      // One row (a one-channel image's gradient): three chains, one per kernel row, so the
      // multiply-adds wait less on each other than in fa / fb.
      floatv a0 = (floatv)(0.0f), a1 = a0, a2 = a0;
      for (int q = 0; q < src_channels; ++q) {
        __global const float* at_q = src_n + q * src_plane;
        __global const float* w_q = w + r_begin * row_stride + q * q_stride;
#pragma unroll
        for (int t = 0; t < 9; ++t) {
          __global const float* at = at_q + tap_at[t];
          const floatv v = load_rows(at, blend_rows, row_shift, lane_row.v);
          const floatv wv = (floatv)(w_q[t]);
          if (t < 3) a0 = fma(wv, v, a0);
          else if (t < 6) a1 = fma(wv, v, a1);
          else a2 = fma(wv, v, a2);
        }
      }
      store_pixels(out_n + r_begin * plane_p, out_off, spread, finish(a0 + a1 + a2, true, flags, bias, r_begin), count);
      return;
    }
    for (int q = 0; q < src_channels; ++q) {
      __global const float* at_q = src_n + q * src_plane;
      __global const float* w_q = w + r_begin * row_stride + q * q_stride;
#pragma unroll
      for (int t = 0; t < 9; ++t) {
        __global const float* at = at_q + tap_at[t];
        const floatv v = load_rows(at, blend_rows, row_shift, lane_row.v);
#pragma unroll
        for (int r = 0; r < FEW_ROWS; ++r)
          if (r < item_rows) {
            if (t & 1) fb[r] = fma((floatv)(w_q[r * row_stride + t]), v, fb[r]);
            else fa[r] = fma((floatv)(w_q[r * row_stride + t]), v, fa[r]);
          }
      }
    }
    for (int r = 0; r < item_rows; ++r)
      store_pixels(out_n + (r_begin + r) * plane_p, out_off, spread, finish(fa[r] + fb[r], true, flags, bias, r_begin + r), count);
    return;
  }

  // A strided input gradient's phase whose lanes load as vectors (one row, or a few blended): each
  // block of ROWS channels walks the whole K with its accumulators in registers and scatters
  // once. Staging KC taps in the tile would store and reload every accumulator lane by lane per
  // KC taps, and reloading a vector per tap costs less than that. The phase's few taps are
  // worked out once, so the walk has no divisions.
  if (spread && !few && (row || blended) && taps <= MAX_PHASE_TAPS) {
    int tap_at[MAX_PHASE_TAPS], tap_w[MAX_PHASE_TAPS];
    int kept = 0;
    for (int a = 0; a < taps_h; ++a) {
      for (int b = 0; b < taps_w; ++b) {
        const int i = i0 + ps * a, j = j0 + ps * b;
        const int ti = (phase_y + pad - i) / ps + border, tj = (phase_x + pad - j) / ps + border;
        const int dr = py0 * stride + ti - border;
        if (one_row && (dr < 0 || dr >= real_h)) continue;
        tap_at[kept] = ti * src_w + tj;
        tap_w[kept] = i * kernel_size + j;
        ++kept;
      }
    }
    for (int r0 = r_begin; r0 < r_end; r0 += ROWS) {
      const int rows = min(ROWS, r_end - r0);
      int roff[ROWS];
      floatv acc[ROWS];
#pragma unroll
      for (int r = 0; r < ROWS; ++r) {
        roff[r] = min(r0 + r, out_rows - 1) * row_stride;
        acc[r] = (floatv)(0.0f);
      }
      for (int q = 0; q < src_channels; ++q) {
        __global const float* src_q = src_n + q * src_plane;
        __global const float* w_q = w + q * q_stride;
        for (int t = 0; t < kept; ++t) {
          __global const float* at = src_q + tap_at[t];
          const floatv v = load_rows(at, blend_rows, row_shift, lane_row.v);
          __global const float* wt = w_q + tap_w[t];
#pragma unroll
          for (int r = 0; r < ROWS; ++r) acc[r] = fma((floatv)(wt[roff[r]]), v, acc[r]);
        }
      }
      for (int r = 0; r < rows; ++r)
        store_pixels(out_n + (r0 + r) * plane_p, out_off, spread, finish(acc[r], true, flags, bias, r0 + r), count);
    }
    return;
  }

  floatv tile[KC];
  int woff[KC];
  for (int k0 = 0; k0 < K; k0 += KC) {
    // Patch row k0 + t is tap (i0 + ps a, j0 + ps b) of source channel q, advanced without
    // divisions. When all lanes share an output row, a tap whose copy row is border zeros is left
    // out: `kc` counts the taps kept.
    int q = k0 / taps, a = (k0 % taps) / taps_w, b = k0 % taps_w;
    int kc = 0;
    for (int t = 0; t < min(KC, K - k0); ++t) {
      const int i = i0 + ps * a, j = j0 + ps * b;
      // (ps = 1 needs no division: the loop runs for every tap of every stride-1 convolution.)
      const int ti = transposed ? (ps == 1 ? phase_y + pad - i : (phase_y + pad - i) / ps) + border : i;
      const int tj = transposed ? (ps == 1 ? phase_x + pad - j : (phase_x + pad - j) / ps) + border : j;
      const int dr = py0 * stride + ti - border;
      if (!(one_row && (dr < 0 || dr >= real_h))) {
        const int wo = q * q_stride + i * kernel_size + j;
        __global const float* at = src_n + q * src_plane + ti * src_w + tj;
        floatv v;
        if (row || blended) {
          v = load_rows(at, blend_rows, row_shift, lane_row.v);
        } else {
          lanes_t u;
#pragma unroll
          for (int l = 0; l < PIX; ++l) u.s[l] = at[lane_off[l]];
          v = u.v;
        }
        if (few) {
          __global const float* wt = w + r_begin * row_stride + wo;
#pragma unroll
          for (int r = 0; r < FEW_ROWS; ++r) {
            if (r < item_rows) {
              if (odd) fb[r] = fma((floatv)(wt[r * row_stride]), v, fb[r]);
              else fa[r] = fma((floatv)(wt[r * row_stride]), v, fa[r]);
            }
          }
          odd = !odd;
        } else {
          tile[kc] = v;
          woff[kc] = wo;
          ++kc;
        }
      }
      if (++b == taps_w) {
        b = 0;
        if (++a == taps_h) {
          a = 0;
          ++q;
        }
      }
    }
    if (few) continue;
    const bool last = k0 + KC >= K;
    for (int r0 = r_begin; r0 < r_end; r0 += ROWS) {
      const int rows = min(ROWS, r_end - r0);
      int roff[ROWS];
      floatv acc[ROWS];
#pragma unroll
      for (int r = 0; r < ROWS; ++r) {
        roff[r] = min(r0 + r, out_rows - 1) * row_stride;
        acc[r] = k0 == 0 ? (floatv)(0.0f) : load_pixels(out_n + min(r0 + r, out_rows - 1) * plane_p, out_off, spread, count);
      }
      for (int t = 0; t < kc; ++t) {
        const floatv v = tile[t];
        __global const float* wt = w + woff[t];
#pragma unroll
        for (int r = 0; r < ROWS; ++r) acc[r] = fma((floatv)(wt[roff[r]]), v, acc[r]);
      }
      for (int r = 0; r < rows; ++r)
        store_pixels(out_n + (r0 + r) * plane_p, out_off, spread, finish(acc[r], last, flags, bias, r0 + r), count);
    }
  }
  if (few) {
#pragma unroll
    for (int r = 0; r < FEW_ROWS; ++r)
      if (r < item_rows) store_pixels(out_n + (r_begin + r) * plane_p, out_off, spread, finish(fa[r] + fb[r], true, flags, bias, r_begin + r), count);
  }
}

// The same convolution as conv_igemm, tiled for a GPU: one GEMM over the columns (n, p) of the
// whole batch, a work-group of TG x TG items computing a TM x TN block of out from TK-deep slices
// of A (the weights) and of the gathered source staged in local memory, each item a
// (TM / TG) x (TN / TG) block of accumulators in registers. An item's rows and columns are TG
// apart, so neighbouring items read neighbouring local words and write neighbouring pixels.
// TN must divide TG * TG, so each item gathers the same column of every source slice.
//
// Phases: the input gradient of a stride-s convolution reads dy dilated by s, where for output
// pixel (y, x) only taps with (y + ti - border) % s == 0 (and the same across) meet a dy value.
// With phase_stride = s the launch covers the pixels y = phase_y + s * yy, x = phase_x + s * xx
// only, and K holds just the taps that meet dy there (about k*k / s^2 of them), so no multiply
// lands on a dilation zero. phase_stride = 1, phase 0: every pixel, every tap.
//
// Split K: where the tiles are too few to fill the device (deep layers: few pixels, long K), the
// third dimension splits K into runs of k_per_split; with SPLIT_K each split stores its raw sums
// at out[(split * R + row) * cols + col] and sum_tiled_splits adds them in order.
// Global size: (ceil(N * PH * PW / TN) * TG, ceil(R / TM) * TG, splits), local size (TG, TG, 1).
#ifndef TM
#define TM 64
#endif
#ifndef TN
#define TN 64
#endif
#ifndef TK
#define TK 16
#endif
#define TG 16
#define WM (TM / TG)
#define WN (TN / TG)

__kernel __attribute__((reqd_work_group_size(TG, TG, 1))) void conv_tiled(
    __global float* out, __global const float* src, __global const float* w, __global const float* bias, const int flags,
    const int batch, const int src_channels, const int src_h, const int src_w, const int out_rows, const int out_h,
    const int out_w, const int kernel_size, const int stride, const int phase_stride, const int phase_y, const int phase_x,
    const int border, const int k_per_split) {
  __local float a_tile[TK][TM + 1];
  __local float b_tile[TK][TN];
  const int tx = get_local_id(0), ty = get_local_id(1), lid = ty * TG + tx;
  const int ps = phase_stride;
  const int phase_w = phase_extent(out_w, phase_x, ps);
  const int P = out_h * out_w, phase_p = phase_extent(out_h, phase_y, ps) * phase_w, cols = batch * phase_p;
  const int col0 = get_group_id(0) * TN, row0 = get_group_id(1) * TM;
  const bool transposed = (flags & TRANSPOSED) != 0;
  // This phase's taps: ti = ti0 + ps * a for a < taps_h, tj likewise.
  const int ti0 = ((border - phase_y) % ps + ps) % ps, tj0 = ((border - phase_x) % ps + ps) % ps;
  const int taps_h = (kernel_size - ti0 + ps - 1) / ps, taps_w = (kernel_size - tj0 + ps - 1) / ps;
  const int taps = taps_h * taps_w, K = src_channels * taps, src_plane = src_h * src_w;
  const int kk = kernel_size * kernel_size;
  const int row_stride = transposed ? kk : src_channels * kk;
  const int q_stride = transposed ? out_rows * kk : kk;

  // The one column this item gathers: where its pixel's window starts in the copy.
  const int my_col = col0 + lid % TN;
  const bool col_ok = my_col < cols;
  int col_base = 0;
  if (col_ok) {
    const int p = phase_pixel(my_col % phase_p, phase_w, phase_y, phase_x, ps, out_w);
    col_base = (my_col / phase_p) * src_channels * src_plane + (p / out_w * src_w + p % out_w) * stride;
  }

  float acc[WM][WN];
#pragma unroll
  for (int m = 0; m < WM; ++m)
#pragma unroll
    for (int c = 0; c < WN; ++c) acc[m][c] = 0.0f;

  const int k_begin = get_group_id(2) * k_per_split, k_end = min(K, k_begin + k_per_split);
  for (int k0 = k_begin; k0 < k_end; k0 += TK) {
    for (int e = lid; e < TK * TM; e += TG * TG) {
      const int k = e % TK, r = e / TK, kg = k0 + k, row = row0 + r;
      float v = 0.0f;
      if (kg < k_end && row < out_rows) {
        const int q = kg / taps, t = kg % taps;
        int tap;
        if (ps == 1) {
          // Every tap in order (turned by 180 degrees for the input gradient): no divisions, which
          // cost a GPU more than this slice's multiplies.
          tap = transposed ? kk - 1 - t : t;
        } else {
          const int ti = ti0 + ps * (t / taps_w), tj = tj0 + ps * (t % taps_w);
          tap = (transposed ? kernel_size - 1 - ti : ti) * kernel_size + (transposed ? kernel_size - 1 - tj : tj);
        }
        v = w[row * row_stride + q * q_stride + tap];
      }
      a_tile[k][r] = v;
    }
    for (int e = lid; e < TK * TN; e += TG * TG) {
      const int k = e / TN, kg = k0 + k;
      float v = 0.0f;
      if (kg < k_end && col_ok) {
        const int q = kg / taps, t = kg % taps;
        const int ti = ti0 + ps * (t / taps_w), tj = tj0 + ps * (t % taps_w);
        v = src[col_base + q * src_plane + ti * src_w + tj];
      }
      b_tile[k][e % TN] = v;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
#pragma unroll
    for (int k = 0; k < TK; ++k) {
      float a[WM], b[WN];
#pragma unroll
      for (int m = 0; m < WM; ++m) a[m] = a_tile[k][ty + TG * m];
#pragma unroll
      for (int c = 0; c < WN; ++c) b[c] = b_tile[k][tx + TG * c];
#pragma unroll
      for (int m = 0; m < WM; ++m)
#pragma unroll
        for (int c = 0; c < WN; ++c) acc[m][c] = fma(a[m], b[c], acc[m][c]);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }

#pragma unroll
  for (int c = 0; c < WN; ++c) {
    const int col = col0 + tx + TG * c;
    if (col >= cols) continue;
    if (flags & SPLIT_K) {
#pragma unroll
      for (int m = 0; m < WM; ++m) {
        const int row = row0 + ty + TG * m;
        if (row < out_rows) out[(get_group_id(2) * out_rows + row) * cols + col] = acc[m][c];
      }
      continue;
    }
    const int n = col / phase_p, p = phase_pixel(col % phase_p, phase_w, phase_y, phase_x, ps, out_w);
#pragma unroll
    for (int m = 0; m < WM; ++m) {
      const int row = row0 + ty + TG * m;
      if (row >= out_rows) continue;
      float v = acc[m][c];
      if (flags & WITH_BIAS) v += bias[row];
      if (flags & RELU_OUT) v = fmax(v, 0.0f);
      out[(n * out_rows + row) * P + p] = v;
    }
  }
}

// Finishes a split conv_tiled: out (NCHW, this phase's pixels) = the splits' partial sums added in
// order, then bias and ReLU as flags say. One work-item per (row, column).
__kernel void sum_tiled_splits(__global float* out, __global const float* partial, __global const float* bias,
                               const int flags, const int splits, const int out_rows, const int batch, const int out_h,
                               const int out_w, const int phase_stride, const int phase_y, const int phase_x) {
  const int ps = phase_stride;
  const int phase_w = phase_extent(out_w, phase_x, ps), phase_p = phase_extent(out_h, phase_y, ps) * phase_w;
  const int cols = batch * phase_p;
  const int e = get_global_id(0);
  if (e >= out_rows * cols) return;
  const int row = e / cols, col = e % cols;
  float v = 0.0f;
  for (int s = 0; s < splits; ++s) v += partial[(s * out_rows + row) * cols + col];
  if (flags & WITH_BIAS) v += bias[row];
  if (flags & RELU_OUT) v = fmax(v, 0.0f);
  const int n = col / phase_p, p = phase_pixel(col % phase_p, phase_w, phase_y, phase_x, ps, out_w);
  out[(n * out_rows + row) * out_h * out_w + p] = v;
}

// Weight gradient, split over the batch: partial[s, o, k] = sum over the images of split s and
// their output pixels p of dy[n, o, p] * xc[n, c, oy*stride + i, ox*stride + j] for k = (c, i, j),
// from dy channels-last (dyt[n, p, o]) and the bordered copy xc of x (src_h x src_w planes). A
// work-item holds PIX output channels (one vector of dy per pixel) x WTAPS patch rows (one
// broadcast x value each). Work-items of patch block 0 also sum dy into bias_partial[s, o].
// Global size: (ceil(OC / PIX), ceil(K / WTAPS), splits).
__kernel void conv_igemm_dweight(__global float* partial, __global float* bias_partial, __global const float* dyt,
                                 __global const float* x, const int batch, const int channels, const int src_h,
                                 const int src_w, const int out_channels, const int out_h, const int out_w,
                                 const int kernel_size, const int stride, const int images_per_split) {
  const int kk = kernel_size * kernel_size;
  const int K = channels * kk;
  const int o0 = get_global_id(0) * PIX, k0 = get_global_id(1) * WTAPS, split = get_global_id(2);
  if (o0 >= out_channels || k0 >= K) return;
  const int count = min(PIX, out_channels - o0);
  const int n_begin = split * images_per_split, n_end = min(batch, n_begin + images_per_split);
  const int P = out_h * out_w;
  const int plane = src_h * src_w;
  int tap[WTAPS];
#pragma unroll
  for (int t = 0; t < WTAPS; ++t) {
    const int k = min(k0 + t, K - 1);
    const int ij = k % kk;
    tap[t] = (k / kk) * plane + (ij / kernel_size) * src_w + ij % kernel_size;
  }
  floatv acc[WTAPS];
  floatv bsum = (floatv)(0.0f);
#pragma unroll
  for (int t = 0; t < WTAPS; ++t) acc[t] = (floatv)(0.0f);
  for (int n = n_begin; n < n_end; ++n) {
    __global const float* xn = x + n * channels * plane;
    __global const float* d_at = dyt + n * P * out_channels + o0;
    for (int oy = 0; oy < out_h; ++oy) {
      __global const float* x_row = xn + oy * stride * src_w;
      for (int ox = 0; ox < out_w; ++ox) {
        const floatv d = load_lanes(d_at, count);
        d_at += out_channels;
        bsum += d;
        __global const float* x_at = x_row + ox * stride;
#pragma unroll
        for (int t = 0; t < WTAPS; ++t) acc[t] = fma((floatv)(x_at[tap[t]]), d, acc[t]);
      }
    }
  }
  const int taps = min(WTAPS, K - k0);
  for (int t = 0; t < taps; ++t) {
    lanes_t u;
    u.v = acc[t];
    for (int l = 0; l < count; ++l) partial[(split * out_channels + o0 + l) * K + k0 + t] = u.s[l];
  }
  if (k0 == 0) {
    lanes_t u;
    u.v = bsum;
    for (int l = 0; l < count; ++l) bias_partial[split * out_channels + o0 + l] = u.s[l];
  }
}

// Output rows per work-item of conv_few_rows_dx.
#ifndef FEW_RB
#define FEW_RB 4
#endif

// The input gradient of a 3x3 stride-1 convolution of an image with a few channels (at most the
// host's fewRowsChannels: SmallCNN's conv1, the ResNet18 and VGG stems), which every attack step
// computes (CPU devices; GPUs when their few_rb is set). A work-item owns FEW_RB rows of PIX output
// columns of one image: each source row it loads (three shifted vectors per dy channel) feeds up to
// three of its rows, about three multiply-adds per load where conv_igemm's pixel vectors, spread
// over two rows of a narrow plane, blend two loads per multiply-add. src is the transposed pass's
// bordered copy of dy (src_h x src_w = out_h + 2 x out_w + 2, `src_len` floats in all): dx(r, y, x)
// = sum over q, a, b of w[q, r, 2 - a, 2 - b] * src(q, y + a, x + b). Global size: N * ceil(out_h /
// FEW_RB) * ceil(out_w / PIX).
__kernel void conv_few_rows_dx(__global float* out, __global const float* src, __global const float* w, const int batch,
                               const int src_channels, const int src_h, const int src_w, const int src_len,
                               const int out_rows, const int out_h, const int out_w) {
  const int col_blocks = (out_w + PIX - 1) / PIX, row_blocks = (out_h + FEW_RB - 1) / FEW_RB;
  const int g = get_global_id(0), n = g / (row_blocks * col_blocks);
  if (n >= batch) return;
  const int y0 = g / col_blocks % row_blocks * FEW_RB, x0 = g % col_blocks * PIX, count = min(PIX, out_w - x0);
  for (int r = 0; r < out_rows; ++r) {
    floatv acc[FEW_RB];
#pragma unroll
    for (int yy = 0; yy < FEW_RB; ++yy) acc[yy] = (floatv)(0.0f);
    for (int q = 0; q < src_channels; ++q) {
      const int plane = (n * src_channels + q) * src_h;
      __global const float* wq = w + (q * out_rows + r) * 9;
#pragma unroll
      for (int sr = 0; sr < FEW_RB + 2; ++sr) {
        if (y0 + sr >= src_h) break;
        const int at = (plane + y0 + sr) * src_w + x0;
        floatv v[3];
#pragma unroll
        for (int b = 0; b < 3; ++b) {
          // Lanes past the row read the next one (not stored); only the buffer's end is cut.
          v[b] = at + b + PIX <= src_len ? vloadv(0, src + at + b) : load_lanes(src + at + b, src_len - at - b);
        }
#pragma unroll
        for (int yy = 0; yy < FEW_RB; ++yy) {
          const int a = sr - yy;
          if (a < 0 || a > 2) continue;
#pragma unroll
          for (int b = 0; b < 3; ++b) acc[yy] = fma((floatv)(wq[(2 - a) * 3 + 2 - b]), v[b], acc[yy]);
        }
      }
    }
#pragma unroll
    for (int yy = 0; yy < FEW_RB; ++yy)
      if (y0 + yy < out_h) store_lanes(out + ((n * out_rows + r) * out_h + y0 + yy) * out_w + x0, acc[yy], count);
  }
}

// The bordered copy: out[plane, y, x] = in[plane, (y - top) / d, (x - left) / d] where y - top and
// x - left are non-negative multiples of the dilation d inside the input, else 0; with `gated`,
// in * (gate > 0) (the ReLU's mask on dy). One work-item per output row. `restrict` and the
// separate loops let the compiler vectorise the undilated row (gate may be in itself: both are
// only read).
__kernel void pad_planes(__global float* restrict out, __global const float* restrict in, __global const float* restrict gate,
                         const int gated, const int planes, const int h, const int w, const int top, const int left,
                         const int dilation, const int out_h, const int out_w) {
  const int r = get_global_id(0);
  if (r >= planes * out_h) return;
  __global float* restrict o = out + r * out_w;
  const int plane = r / out_h, dy = r % out_h - top;
  if (dy < 0 || dy % dilation != 0 || dy / dilation >= h) {
    for (int x = 0; x < out_w; ++x) o[x] = 0.0f;
    return;
  }
  const int sy = dy / dilation;
  __global const float* restrict row = in + (plane * h + sy) * w;
  __global const float* restrict grow = gate + (plane * h + sy) * w;
  const int last = min(w, (out_w - left + dilation - 1) / dilation);
  if (dilation != 1) {
    for (int x = 0; x < out_w; ++x) o[x] = 0.0f;
    for (int sx = 0; sx < last; ++sx) o[left + sx * dilation] = gated && !(grow[sx] > 0.0f) ? 0.0f : row[sx];
    return;
  }
  for (int x = 0; x < left; ++x) o[x] = 0.0f;
  __global float* restrict mid = o + left;
  if (gated) {
    for (int sx = 0; sx < last; ++sx) mid[sx] = grow[sx] > 0.0f ? row[sx] : 0.0f;
  } else {
    for (int sx = 0; sx < last; ++sx) mid[sx] = row[sx];
  }
  for (int x = left + last; x < out_w; ++x) o[x] = 0.0f;
}

// pad_planes with one work-item per value of the copy, so neighbouring items write neighbouring
// words (what a GPU wants; pad_planes' rows suit a CPU device, where an item is a loop iteration).
__kernel void pad_elements(__global float* out, __global const float* in, __global const float* gate, const int gated,
                           const int planes, const int h, const int w, const int top, const int left, const int dilation,
                           const int out_h, const int out_w) {
  const int e = get_global_id(0);
  if (e >= planes * out_h * out_w) return;
  const int r = e / out_w, dy = r % out_h - top, dx = e % out_w - left;
  float v = 0.0f;
  if (dy >= 0 && dx >= 0 && dy % dilation == 0 && dx % dilation == 0 && dy / dilation < h && dx / dilation < w) {
    const int at = ((r / out_h) * h + dy / dilation) * w + dx / dilation;
    v = gated && !(gate[at] > 0.0f) ? 0.0f : in[at];
  }
  out[e] = v;
}

// out[e] = sum over s of partial[s * count + e], splits in order.
__kernel void sum_splits(__global float* out, __global const float* partial, const int count, const int splits) {
  const int e = get_global_id(0);
  if (e >= count) return;
  float s = 0.0f;
  for (int k = 0; k < splits; ++k) s += partial[k * count + e];
  out[e] = s;
}

// C[m, n] = alpha * sum_k A(m, k) * B[k, n] + beta * C[m, n], row-major C (ldc = cols) and B
// (ldb = cols), A(m, k) = a[m * a_row + k * a_col] (either orientation): the block of a vector of
// PIX columns from c0 and GEMM_ROWS rows from m0.
static inline void gemm_rows_at(__global float* c, __global const float* a, __global const float* b, const int rows,
                                const int cols, const int depth, const int a_row, const int a_col, const float alpha,
                                const float beta, const int c0, const int m0) {
  if (c0 >= cols || m0 >= rows) return;
  const int count = min(PIX, cols - c0);
  int aoff[GEMM_ROWS];
  floatv acc[GEMM_ROWS];
  #pragma unroll
  for (int r = 0; r < GEMM_ROWS; ++r) {
    aoff[r] = min(m0 + r, rows - 1) * a_row;
    acc[r] = (floatv)(0.0f);
  }
  for (int k = 0; k < depth; ++k) {
    const floatv v = load_lanes(b + k * cols + c0, count);
    __global const float* ak = a + k * a_col;
    #pragma unroll
    for (int r = 0; r < GEMM_ROWS; ++r) acc[r] = fma((floatv)(ak[aoff[r]]), v, acc[r]);
  }
  const int m_count = min(GEMM_ROWS, rows - m0);
  for (int r = 0; r < m_count; ++r) {
    __global float* cr = c + (m0 + r) * cols + c0;
    floatv v = (floatv)(alpha) * acc[r];
    if (beta != 0.0f) v += (floatv)(beta) * load_lanes(cr, count);
    store_lanes(cr, v, count);
  }
}

// gemm_rows_at for each work-item. Global size: (ceil(cols / PIX), ceil(rows / GEMM_ROWS)).
__kernel void gemm_rows(__global float* c, __global const float* a, __global const float* b, const int rows,
                        const int cols, const int depth, const int a_row, const int a_col, const float alpha,
                        const float beta) {
  gemm_rows_at(c, a, b, rows, cols, depth, a_row, a_col, alpha, beta, get_global_id(0) * PIX, get_global_id(1) * GEMM_ROWS);
}

// C[m, n] = alpha * sum_k A[m, k] * B[n, k] + beta * C[m, n], all row-major (a linear layer's
// forward: x times the weight transposed). A work-item computes a 4 x 4 block of C as dot
// products over PIX-lane vectors of k, summed across lanes at the end.
// Global size: (ceil(cols / 4), ceil(rows / 4)).
__kernel void gemm_nt(__global float* c, __global const float* a, __global const float* b, const int rows,
                      const int cols, const int depth, const float alpha, const float beta) {
  const int n0 = get_global_id(0) * 4, m0 = get_global_id(1) * 4;
  if (n0 >= cols || m0 >= rows) return;
  __global const float* ar[4];
  __global const float* br[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    ar[i] = a + min(m0 + i, rows - 1) * depth;
    br[i] = b + min(n0 + i, cols - 1) * depth;
  }
  floatv acc[16];
#pragma unroll
  for (int e = 0; e < 16; ++e) acc[e] = (floatv)(0.0f);
  for (int k = 0; k < depth; k += PIX) {
    const int count = min(PIX, depth - k);
    floatv va[4], vb[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      va[i] = load_lanes(ar[i] + k, count);
      vb[i] = load_lanes(br[i] + k, count);
    }
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[i * 4 + j] = fma(va[i], vb[j], acc[i * 4 + j]);
  }
  for (int i = 0; i < min(4, rows - m0); ++i) {
    for (int j = 0; j < min(4, cols - n0); ++j) {
      lanes_t u;
      u.v = acc[i * 4 + j];
      float s = 0.0f;
      for (int l = 0; l < PIX; ++l) s += u.s[l];
      __global float* cij = c + (m0 + i) * cols + n0 + j;
      *cij = beta != 0.0f ? alpha * s + beta * *cij : alpha * s;
    }
  }
}

// out[m, j, i] = in[m, i, j] for `count` matrices in [rows, cols]; one work-item per element.
__kernel void transpose(__global float* out, __global const float* in, const int rows, const int cols, const int count) {
  const int e = get_global_id(0);
  if (e >= count * rows * cols) return;
  const int m = e / (rows * cols), i = (e / cols) % rows, j = e % cols;
  out[(m * cols + j) * rows + i] = in[e];
}

// The same transpose a 16 x 16 tile per work-item (what a CPU device wants: the kernel above pays
// three index divisions per value, and its writes go `rows` apart): the tile's rows read as
// vectors into private memory, its columns written out as vectors. Items: count * ceil(rows / 16)
// * ceil(cols / 16).
#define TT 16  // OpenCLBackend.transposeTile
__kernel void transpose_tiles(__global float* restrict out, __global const float* restrict in, const int rows, const int cols,
                              const int count) {
  const int row_tiles = (rows + TT - 1) / TT, col_tiles = (cols + TT - 1) / TT;
  const int e = get_global_id(0);
  if (e >= count * row_tiles * col_tiles) return;
  const int m = e / (row_tiles * col_tiles), i0 = (e / col_tiles) % row_tiles * TT, j0 = e % col_tiles * TT;
  const int ni = min(TT, rows - i0), nj = min(TT, cols - j0);
  __global const float* restrict from = in + ((long)m * rows + i0) * cols + j0;
  __global float* restrict to = out + ((long)m * cols + j0) * rows + i0;
  float tile[TT][TT];
  if (ni == TT && nj == TT) {
    for (int r = 0; r < TT; ++r) vstore16(vload16(0, from + r * cols), 0, tile[r]);
    for (int c = 0; c < TT; ++c) {
      float16 v;
      float* lanes = (float*)&v;
      for (int r = 0; r < TT; ++r) lanes[r] = tile[r][c];
      vstore16(v, 0, to + c * rows);
    }
    return;
  }
  for (int r = 0; r < ni; ++r)
    for (int c = 0; c < nj; ++c) tile[r][c] = from[r * cols + c];
  for (int c = 0; c < nj; ++c)
    for (int r = 0; r < ni; ++r) to[c * rows + r] = tile[r][c];
}

// The device's FMA throughput at this vector width, for the workbench's "share of peak": eight
// independent chains per work-item (sixteen measured slower on PoCL: the chains spill), `iterations`
// steps each (2 * 8 * PIX * iterations flops).
__kernel void peak_fma(__global float* out, const int iterations, const float seed) {
  const float id = (float)get_global_id(0);
  floatv a[8];
#pragma unroll
  for (int c = 0; c < 8; ++c) a[c] = (floatv)(seed + id * 1e-7f + (float)c * 1e-3f);
  const floatv m = (floatv)(0.999f), k = (floatv)(1e-4f);
  for (int it = 0; it < iterations; ++it) {
#pragma unroll
    for (int c = 0; c < 8; ++c) a[c] = fma(a[c], m, k);
  }
  lanes_t u;
  u.v = (floatv)(0.0f);
#pragma unroll
  for (int c = 0; c < 8; ++c) u.v += a[c];
  float s = 0.0f;
  for (int l = 0; l < PIX; ++l) s += u.s[l];
  out[get_global_id(0)] = s;
}
