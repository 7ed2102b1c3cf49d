// igemm.cl — our own convolution and GEMM kernels: implicit GEMM, no column buffer, NCHW read and
// written directly. A work-item owns a vector of PIX output pixels (or GEMM columns) and walks a
// block of ROWS output channels (or GEMM rows) whose accumulators stay in registers; patch rows
// are staged KC at a time in a private tile so each gathered input value feeds every output
// channel of the work-item.
//
// Tunables are -D defines (the host passes per-device values, see CLTunables.swift); the defaults
// here suit a CPU device. PIX must be 2, 4, 8 or 16.
#ifndef PIX
#define PIX 16
#endif
#ifndef ROWS
#define ROWS 16
#endif
#ifndef KC
#define KC 64
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

// Flags of conv_igemm.
#define WITH_BIAS 1
#define RELU_OUT 2
#define GATE_SOURCE 4
#define TRANSPOSED 8
// The source is a zero-bordered copy (pad_planes) of a stride-1 convolution's input: no tap reads
// outside it, so a row segment is one plain vector load. src_h/src_w are the copy's sizes.
#define PADDED 16

static inline floatv load_lanes(__global const float* p, const int count) {
  if (count == PIX) return vloadv(0, p);
  lanes_t u;
  #pragma unroll
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

// A work-item's PIX lanes: consecutive pixels of an output plane, starting at (oy0, ox0).
typedef struct {
  int oy0, ox0;
  int count;    // live lanes
  bool segment; // all lanes in one row
} pixel_block;

// The source values one tap (i, j) of source channel plane `plane` contributes to the lanes'
// output pixels (py, px): from a padded copy, one vector load for a row segment or a gather at
// the lanes' offsets; from the tensor itself (strided convolutions), lane by lane with zeros
// outside it.
static inline floatv gather_tap(__global const float* plane, __global const float* gplane, const bool gated,
                                const bool transposed, const bool padded, const pixel_block blk, const int* py,
                                const int* px, const int* lane_off, const int i, const int j, const int kernel_size,
                                const int src_h, const int src_w, const int stride, const int pad) {
  if (padded) {
    // Output pixel (y, x) reads copy pixel (y + i, x + j); the transposed pass runs the kernel
    // turned by 180 degrees.
    const int ti = transposed ? kernel_size - 1 - i : i, tj = transposed ? kernel_size - 1 - j : j;
    __global const float* at = plane + (blk.oy0 + ti) * src_w + blk.ox0 + tj;
    if (blk.segment) return vloadv(0, at);
    lanes_t u;
#pragma unroll
    for (int l = 0; l < PIX; ++l) u.s[l] = at[lane_off[l]];
    return u.v;
  }
  lanes_t u;
#pragma unroll
  for (int l = 0; l < PIX; ++l) {
    int sy, sx;
    bool inside;
    if (transposed) {
      const int hy = py[l] + pad - i, wx = px[l] + pad - j;
      if (stride == 1) {
        sy = hy;
        sx = wx;
        inside = hy >= 0 && wx >= 0 && sy < src_h && sx < src_w;
      } else {
        sy = hy / stride;
        sx = wx / stride;
        inside = hy >= 0 && wx >= 0 && hy % stride == 0 && wx % stride == 0 && sy < src_h && sx < src_w;
      }
    } else {
      sy = py[l] * stride - pad + i;
      sx = px[l] * stride - pad + j;
      inside = sy >= 0 && sy < src_h && sx >= 0 && sx < src_w;
    }
    const int at = inside ? sy * src_w + sx : 0;
    float v = inside ? plane[at] : 0.0f;
    if (gated && !(gplane[at] > 0.0f)) v = 0.0f;
    u.s[l] = v;
  }
  return u.v;
}

// The epilogue after the last patch rows: bias, then ReLU.
static inline floatv finish(floatv v, const bool last, const int flags, __global const float* bias, const int r) {
  if (!last) return v;
  if (flags & WITH_BIAS) v += (floatv)(bias[r]);
  if (flags & RELU_OUT) v = fmax(v, (floatv)(0.0f));
  return v;
}

// out[n, r, p] = sum over (q, i, j) of A(r, q, i, j) * S(n, q, i, j, p)   (+ bias, ReLU)
//
// Forward (flags without TRANSPOSED): src = x [N, Q=C, SH, SW], out = y [N, R=OC, OH, OW],
//   A = w[r, q, i, j], S = x[n, q, oy*s - pad + i, ox*s - pad + j].
// Input gradient (TRANSPOSED): src = dy [N, Q=OC, SH=OH, SW=OW], out = dx [N, R=C, H, W],
//   A = w[q, r, i, j], S = dy[n, q, (y + pad - i)/s, (x + pad - j)/s] where divisible and inside;
//   with GATE_SOURCE, dy is read through a ReLU: dy * (gate > 0), gate shaped like dy.
// Global size: (N * blocks_per_plane(OH, OW), ceil(R / rows_per_item)).
__kernel void conv_igemm(__global float* out, __global const float* src, __global const float* w,
                         __global const float* bias, __global const float* gate, const int flags, const int batch,
                         const int src_channels, const int src_h, const int src_w, const int out_rows, const int out_h,
                         const int out_w, const int kernel_size, const int stride, const int pad,
                         const int rows_per_item) {
  const int P = out_h * out_w;
  const int blocks = (P + PIX - 1) / PIX;
  const int n = get_global_id(0) / blocks;
  if (n >= batch) return;
  // PIX consecutive pixels of the plane, across rows where the plane is narrow; lanes past
  // `count` repeat the last pixel and are not stored.
  const int p0 = (get_global_id(0) % blocks) * PIX, count = min(PIX, P - p0);
  const int r_begin = get_global_id(1) * rows_per_item;
  const int r_end = min(out_rows, r_begin + rows_per_item);
  if (r_begin >= r_end) return;
  const bool transposed = (flags & TRANSPOSED) != 0;
  const bool gated = (flags & GATE_SOURCE) != 0;
  const bool padded = (flags & PADDED) != 0;
  const int kk = kernel_size * kernel_size;
  const int K = src_channels * kk;
  const int src_plane = src_h * src_w;
  const int row_stride = transposed ? kk : src_channels * kk;
  const int q_stride = transposed ? out_rows * kk : kk;

  // lane_off: a lane's offset in the padded copy from the first lane's pixel.
  int py[PIX], px[PIX], lane_off[PIX];
#pragma unroll
  for (int l = 0; l < PIX; ++l) {
    const int p = p0 + min(l, count - 1);
    py[l] = p / out_w;
    px[l] = p % out_w;
    lane_off[l] = (py[l] - py[0]) * src_w + px[l] - px[0];
  }
  pixel_block blk;
  blk.oy0 = py[0];
  blk.ox0 = px[0];
  blk.count = count;
  blk.segment = py[PIX - 1] == py[0] && px[PIX - 1] - px[0] == PIX - 1;
  __global const float* src_n = src + n * src_channels * src_plane;
  __global const float* gate_n = gate + n * src_channels * src_plane;
  __global float* out_n = out + n * out_rows * P + p0;

  floatv tile[KC];
  int woff[KC];
  for (int k0 = 0; k0 < K; k0 += KC) {
    const int kc = min(KC, K - k0);
    // Patch row k0 + t is tap (i, j) of source channel q, advanced without divisions.
    int q = k0 / kk, i = (k0 % kk) / kernel_size, j = k0 % kernel_size;
    for (int t = 0; t < kc; ++t) {
      woff[t] = q * q_stride + i * kernel_size + j;
      tile[t] = gather_tap(src_n + q * src_plane, gate_n + q * src_plane, gated, transposed, padded, blk, py, px,
                           lane_off, i, j, kernel_size, src_h, src_w, stride, pad);
      if (++j == kernel_size) {
        j = 0;
        if (++i == kernel_size) {
          i = 0;
          ++q;
        }
      }
    }
    const bool last = k0 + KC >= K;
    for (int r0 = r_begin; r0 < r_end; r0 += ROWS) {
      const int rows = min(ROWS, r_end - r0);
      if (rows * 4 <= ROWS) {
        // A few rows (a one-channel input's gradient): two accumulator chains per row instead of a
        // mostly idle register block.
        for (int r = r0; r < r0 + rows; ++r) {
          floatv a0 = k0 == 0 ? (floatv)(0.0f) : load_lanes(out_n + r * P, count), a1 = (floatv)(0.0f);
          __global const float* wr = w + r * row_stride;
          int t = 0;
          for (; t + 1 < kc; t += 2) {
            a0 = fma((floatv)(wr[woff[t]]), tile[t], a0);
            a1 = fma((floatv)(wr[woff[t + 1]]), tile[t + 1], a1);
          }
          if (t < kc) a0 = fma((floatv)(wr[woff[t]]), tile[t], a0);
          store_lanes(out_n + r * P, finish(a0 + a1, last, flags, bias, r), count);
        }
        continue;
      }
      int roff[ROWS];
      floatv acc[ROWS];
#pragma unroll
      for (int r = 0; r < ROWS; ++r) {
        roff[r] = min(r0 + r, out_rows - 1) * row_stride;
        acc[r] = k0 == 0 ? (floatv)(0.0f) : load_lanes(out_n + min(r0 + r, out_rows - 1) * P, count);
      }
      for (int t = 0; t < kc; ++t) {
        const floatv v = tile[t];
        __global const float* wt = w + woff[t];
#pragma unroll
        for (int r = 0; r < ROWS; ++r) acc[r] = fma((floatv)(wt[roff[r]]), v, acc[r]);
      }
      for (int r = 0; r < rows; ++r) store_lanes(out_n + (r0 + r) * P, finish(acc[r], last, flags, bias, r0 + r), count);
    }
  }
}

#ifndef WROWS
#define WROWS 4
#endif
#ifndef WTAPS
#define WTAPS 4
#endif

// Weight gradient, split over the batch: partial[s, o, k] = sum over the images of split s and
// their output pixels p of dy[n, o, p] * x[n, c, oy*s - pad + i, ox*s - pad + j], k = (c, i, j).
// A work-item holds WROWS output channels x WTAPS patch rows, each a PIX-lane vector over blocks
// of consecutive pixels, summed across lanes at the end. With PADDED, x is pad_planes' copy
// (src_h x src_w planes) of a stride-1 convolution's input. Work-items of patch block 0 also sum
// dy per channel into bias_partial[s, o]. Global size: (ceil(K / WTAPS), ceil(OC / WROWS), splits).
__kernel void conv_igemm_dweight(__global float* partial, __global float* bias_partial, __global const float* dy,
                                 __global const float* x, const int flags, const int batch, const int channels,
                                 const int src_h, const int src_w, const int out_channels, const int out_h,
                                 const int out_w, const int kernel_size, const int stride, const int pad,
                                 const int images_per_split) {
  const int kk = kernel_size * kernel_size;
  const int K = channels * kk;
  const int k0 = get_global_id(0) * WTAPS, o0 = get_global_id(1) * WROWS, split = get_global_id(2);
  if (k0 >= K || o0 >= out_channels) return;
  const bool padded = (flags & PADDED) != 0;
  const int n_begin = split * images_per_split, n_end = min(batch, n_begin + images_per_split);
  const int P = out_h * out_w;
  const int plane = src_h * src_w;
  int kc[WTAPS], ki[WTAPS], kj[WTAPS], orow[WROWS];
#pragma unroll
  for (int t = 0; t < WTAPS; ++t) {
    const int k = min(k0 + t, K - 1);
    kc[t] = k / kk;
    ki[t] = (k % kk) / kernel_size;
    kj[t] = k % kernel_size;
  }
#pragma unroll
  for (int r = 0; r < WROWS; ++r) orow[r] = min(o0 + r, out_channels - 1) * P;
  floatv acc[WROWS * WTAPS];
  floatv bsum[WROWS];
#pragma unroll
  for (int r = 0; r < WROWS; ++r) {
    bsum[r] = (floatv)(0.0f);
#pragma unroll
    for (int t = 0; t < WTAPS; ++t) acc[r * WTAPS + t] = (floatv)(0.0f);
  }
  int py[PIX], px[PIX], lane_off[PIX];
  for (int n = n_begin; n < n_end; ++n) {
    __global const float* xn = x + n * channels * plane;
    __global const float* dyn = dy + n * out_channels * P;
#pragma unroll
    for (int l = 0; l < PIX; ++l) {
      py[l] = l / out_w;
      px[l] = l % out_w;
    }
    for (int p0 = 0; p0 < P; p0 += PIX) {
      pixel_block blk;
      blk.count = min(PIX, P - p0);
      if (blk.count < PIX) {
        // The plane's last block: lanes past the end repeat its last pixel (their dy is 0).
#pragma unroll
        for (int l = 0; l < PIX; ++l) {
          const int p = p0 + min(l, blk.count - 1);
          py[l] = p / out_w;
          px[l] = p % out_w;
        }
      }
#pragma unroll
      for (int l = 0; l < PIX; ++l) lane_off[l] = (py[l] - py[0]) * src_w + px[l] - px[0];
      blk.oy0 = py[0];
      blk.ox0 = px[0];
      blk.segment = py[PIX - 1] == py[0] && px[PIX - 1] - px[0] == PIX - 1;
      floatv d[WROWS];
#pragma unroll
      for (int r = 0; r < WROWS; ++r) {
        d[r] = load_lanes(dyn + orow[r] + p0, blk.count);
        bsum[r] += d[r];
      }
      floatv v[WTAPS];
#pragma unroll
      for (int t = 0; t < WTAPS; ++t)
        v[t] = gather_tap(xn + kc[t] * plane, xn, false, false, padded, blk, py, px, lane_off, ki[t], kj[t],
                          kernel_size, src_h, src_w, stride, pad);
#pragma unroll
      for (int r = 0; r < WROWS; ++r)
#pragma unroll
        for (int t = 0; t < WTAPS; ++t) acc[r * WTAPS + t] = fma(d[r], v[t], acc[r * WTAPS + t]);
      // Next block: every lane moves PIX pixels on, wrapping rows without a division.
#pragma unroll
      for (int l = 0; l < PIX; ++l) {
        px[l] += PIX;
        while (px[l] >= out_w) {
          px[l] -= out_w;
          ++py[l];
        }
      }
    }
  }
  const int rows = min(WROWS, out_channels - o0), taps = min(WTAPS, K - k0);
  for (int r = 0; r < rows; ++r) {
    for (int t = 0; t < taps; ++t) {
      lanes_t u;
      u.v = acc[r * WTAPS + t];
      float s = 0.0f;
      for (int l = 0; l < PIX; ++l) s += u.s[l];
      partial[(split * out_channels + o0 + r) * K + k0 + t] = s;
    }
    if (k0 == 0) {
      lanes_t u;
      u.v = bsum[r];
      float s = 0.0f;
      for (int l = 0; l < PIX; ++l) s += u.s[l];
      bias_partial[split * out_channels + o0 + r] = s;
    }
  }
}

// out[plane, y, x] = in[plane, y - top, x - left] inside, else 0, for out planes of out_h x out_w;
// with `gated`, in * (gate > 0) (the ReLU's mask on dy). One work-item per output row; the item
// past the last row zeroes the `tail` floats after it (the slack of the last block's loads).
__kernel void pad_planes(__global float* out, __global const float* in, __global const float* gate, const int gated,
                         const int planes, const int h, const int w, const int top, const int left, const int out_h,
                         const int out_w, const int tail) {
  const int row = get_global_id(0);
  if (row > planes * out_h) return;
  __global float* o = out + row * out_w;
  if (row == planes * out_h) {
    for (int x = 0; x < tail; ++x) o[x] = 0.0f;
    return;
  }
  const int plane = row / out_h, sy = row % out_h - top;
  if (sy < 0 || sy >= h) {
    for (int x = 0; x < out_w; ++x) o[x] = 0.0f;
    return;
  }
  __global const float* r = in + (plane * h + sy) * w;
  __global const float* gr = gate + (plane * h + sy) * w;
  for (int x = 0; x < left; ++x) o[x] = 0.0f;
  if (gated) {
    for (int x = 0; x < w; ++x) o[left + x] = gr[x] > 0.0f ? r[x] : 0.0f;
  } else {
    for (int x = 0; x < w; ++x) o[left + x] = r[x];
  }
  for (int x = left + w; x < out_w; ++x) o[x] = 0.0f;
}

// out[e] = (accumulate ? out[e] : 0) + sum over s of partial[s * count + e], splits in order.
__kernel void sum_splits(__global float* out, __global const float* partial, const int count, const int splits,
                         const int accumulate) {
  const int e = get_global_id(0);
  if (e >= count) return;
  float s = accumulate ? out[e] : 0.0f;
  for (int k = 0; k < splits; ++k) s += partial[k * count + e];
  out[e] = s;
}

// C[m, n] = alpha * sum_k A(m, k) * B[k, n] + beta * C[m, n], row-major C (ldc = cols) and B
// (ldb = cols), A(m, k) = a[m * a_row + k * a_col] (either orientation). A vector of PIX columns
// and ROWS rows per work-item. Global size: (ceil(cols / PIX), ceil(rows / ROWS)).
__kernel void gemm_rows(__global float* c, __global const float* a, __global const float* b, const int rows,
                        const int cols, const int depth, const int a_row, const int a_col, const float alpha,
                        const float beta) {
  const int c0 = get_global_id(0) * PIX, m0 = get_global_id(1) * ROWS;
  if (c0 >= cols || m0 >= rows) return;
  const int count = min(PIX, cols - c0);
  int aoff[ROWS];
  floatv acc[ROWS];
  #pragma unroll
  for (int r = 0; r < ROWS; ++r) {
    aoff[r] = min(m0 + r, rows - 1) * a_row;
    acc[r] = (floatv)(0.0f);
  }
  for (int k = 0; k < depth; ++k) {
    const floatv v = load_lanes(b + k * cols + c0, count);
    __global const float* ak = a + k * a_col;
    #pragma unroll
    for (int r = 0; r < ROWS; ++r) acc[r] = fma((floatv)(ak[aoff[r]]), v, acc[r]);
  }
  const int m_count = min(ROWS, rows - m0);
  for (int r = 0; r < m_count; ++r) {
    __global float* cr = c + (m0 + r) * cols + c0;
    floatv v = (floatv)(alpha) * acc[r];
    if (beta != 0.0f) v += (floatv)(beta) * load_lanes(cr, count);
    store_lanes(cr, v, count);
  }
}

// out[j, i] = in[i, j] for in [rows, cols]; one work-item per element.
__kernel void transpose(__global float* out, __global const float* in, const int rows, const int cols) {
  const int e = get_global_id(0);
  if (e >= rows * cols) return;
  const int i = e / cols, j = e % cols;
  out[j * rows + i] = in[e];
}

// The device's FMA throughput at this vector width, for the workbench's "share of peak": eight
// independent chains per work-item, `iterations` steps each (2 * 8 * PIX * iterations flops).
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
  u.v = a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
  float s = 0.0f;
  for (int l = 0; l < PIX; ++l) s += u.s[l];
  out[get_global_id(0)] = s;
}
