// winograd.cl — 3x3 stride-1 convolutions (forward and input gradient) as Winograd F(4x4, 3x3)
// (Lavin & Gray 2016, points 0, +-1, +-2), in three passes over global memory:
//   winograd_input   V[xi, q, t] = (B^T d B)[xi] for each 6x6 tile d (at stride 4) of source plane q,
//   winograd_gemm    M[xi] = U[xi] V[xi] for the 36 elements xi (U: winograd_weights),
//   winograd_output  out[n, r, 4x4 tile t] = A^T M[., r, t] A (+ bias, ReLU).
// 2.25 multiplies per output and channel pair where the implicit GEMM needs 9; the price is the
// transformed tiles and products, written once and read once each.
//
//   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
//   G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
//   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
//
// Compiled after igemm.cl in one program (its PIX, GEMM_ROWS, vector types and lane helpers). A
// work-item owns a vector of PIX consecutive tiles t = (n * tiles_h + ty) * tiles_w + tx; V and M
// rows are `pitch` = T rounded up to PIX floats long, so every vector store stays inside.

// B^T d for one column (or row) d[0..5].
static inline void wino_input_combine(const floatv* d, floatv* r) {
  const floatv a = d[4] - 4.0f * d[2], b = d[3] - 4.0f * d[1];
  const floatv c = d[4] - d[2], e = 2.0f * (d[3] - d[1]);
  r[0] = 4.0f * d[0] - 5.0f * d[2] + d[4];
  r[1] = a + b;
  r[2] = a - b;
  r[3] = c + e;
  r[4] = c - e;
  r[5] = 4.0f * d[1] - 5.0f * d[3] + d[5];
}

// A^T m for one column (or row) m[0..5].
static inline void wino_output_combine(const floatv* m, floatv* r) {
  const floatv s = m[1] + m[2], d = m[1] - m[2], s2 = m[3] + m[4], d2 = m[3] - m[4];
  r[0] = m[0] + s + s2;
  r[1] = d + 2.0f * d2;
  r[2] = s + 4.0f * s2;
  r[3] = d + 8.0f * d2 + m[5];
}

// G f for one column (or row) f[0..2] of a 3x3 kernel.
static inline void wino_kernel_combine(const float* f, float* r) {
  r[0] = f[0] / 4.0f;
  r[1] = -(f[0] + f[1] + f[2]) / 6.0f;
  r[2] = -(f[0] - f[1] + f[2]) / 6.0f;
  r[3] = f[0] / 24.0f + f[1] / 12.0f + f[2] / 6.0f;
  r[4] = f[0] / 24.0f - f[1] / 12.0f + f[2] / 6.0f;
  r[5] = f[2];
}

// U[xi, r, q] = (G g G^T)[xi] of the kernel that takes source plane q to output plane r: the
// forward's w[r, q] (rows = output channels, depth = input channels), or for the input gradient
// (transposed) w[q, r] turned by 180 degrees (rows = input channels, depth = output channels).
// Global size: rows * depth.
__kernel void winograd_weights(__global float* u, __global const float* w, const int rows, const int depth,
                               const int transposed) {
  const int e = get_global_id(0);
  if (e >= rows * depth) return;
  const int r = e / depth, q = e % depth;
  __global const float* g = w + (transposed ? q * rows + r : r * depth + q) * 9;
  float columns[3][6];
  for (int j = 0; j < 3; ++j) {
    float f[3];
    for (int i = 0; i < 3; ++i) f[i] = transposed ? g[(2 - i) * 3 + (2 - j)] : g[i * 3 + j];
    wino_kernel_combine(f, columns[j]);
  }
  for (int i = 0; i < 6; ++i) {
    const float row[3] = {columns[0][i], columns[1][i], columns[2][i]};
    float t[6];
    wino_kernel_combine(row, t);
    for (int j = 0; j < 6; ++j) u[(6 * i + j) * rows * depth + e] = t[j];
  }
}

// V[xi, q, t] for the tiles t0..t0 + PIX - 1 of plane q of `src`, a bordered copy whose planes
// (src_h x src_w) hold every tile's 6x6 window: src_h >= 4 * tiles_h + 2, src_w >= 4 * tiles_w + 2.
// Lanes past the last tile repeat it. Global size: (pitch / PIX, planes).
__kernel void winograd_input(__global float* v, __global const float* src, const int planes, const int src_h,
                             const int src_w, const int tiles_h, const int tiles_w, const int tiles, const int pitch) {
  const int t0 = get_global_id(0) * PIX, q = get_global_id(1);
  if (t0 >= tiles || q >= planes) return;
  const int per_image = tiles_h * tiles_w;
  int off[PIX];
#pragma unroll
  for (int l = 0; l < PIX; ++l) {
    const int t = min(t0 + l, tiles - 1), n = t / per_image, ty = (t % per_image) / tiles_w, tx = t % tiles_w;
    off[l] = ((n * planes + q) * src_h + 4 * ty) * src_w + 4 * tx;
  }
  // Rows first: rt[i][j] = (B^T d)[i][j], row i of B^T applied down column j of the window.
  floatv rt[6][6];
  for (int j = 0; j < 6; ++j) {
    floatv d[6];
#pragma unroll
    for (int i = 0; i < 6; ++i) {
      lanes_t u;
#pragma unroll
      for (int l = 0; l < PIX; ++l) u.s[l] = src[off[l] + i * src_w + j];
      d[i] = u.v;
    }
    floatv r[6];
    wino_input_combine(d, r);
#pragma unroll
    for (int i = 0; i < 6; ++i) rt[i][j] = r[i];
  }
  __global float* out = v + q * pitch + t0;
  const int xi_stride = planes * pitch;
#pragma unroll
  for (int i = 0; i < 6; ++i) {
    floatv r[6];
    wino_input_combine(rt[i], r);
#pragma unroll
    for (int j = 0; j < 6; ++j) vstorev(r[j], 0, out + (6 * i + j) * xi_stride);
  }
}

// M[xi] = U[xi] V[xi] for xi = get_global_id(2): U[xi] rows x depth, V[xi] depth x pitch, M[xi]
// rows x pitch; gemm_rows' register block (PIX columns, GEMM_ROWS rows). Global size:
// (pitch / PIX (rounded up to the group), ceil(rows / GEMM_ROWS), 36).
//
// With WINO_ROWS_FIRST the first two dimensions are walked as one index whose fastest part is the
// row block: on a CPU device, where work-items run in order, the row blocks of one column block
// follow each other and reuse its depth x PIX slice of V from L1. In the other order each row
// block streamed all of V[xi] again, which fell out of L2 once V[xi] and M[xi] outgrew it
// (SmallCNN's 26x26 input gradient: 800 KB of V per element). A GPU wants the columns first, its
// neighbouring work-items reading neighbouring words.
#ifndef WINO_ROWS_FIRST
#define WINO_ROWS_FIRST 0
#endif
__kernel void winograd_gemm(__global float* m, __global const float* u, __global const float* v, const int rows,
                            const int depth, const int pitch) {
  const int xi = get_global_id(2);
#if WINO_ROWS_FIRST
  const int row_blocks = get_global_size(1), at = get_global_id(1) * get_global_size(0) + get_global_id(0);
  const int c0 = at / row_blocks * PIX, m0 = at % row_blocks * GEMM_ROWS;
#else
  const int c0 = get_global_id(0) * PIX, m0 = get_global_id(1) * GEMM_ROWS;
#endif
  gemm_rows_at(m + xi * rows * pitch, u + xi * rows * depth, v + xi * depth * pitch, rows, pitch, depth, depth, 1, 1.0f,
               0.0f, c0, m0);
}

// out[n, r, 4x4 tile] = A^T M[., r, t] A for the tiles t0..t0 + PIX - 1, cut at the plane's edge
// (out_h x out_w), plus the bias and the ReLU (conv_igemm's flags). Global size: (pitch / PIX, rows).
__kernel void winograd_output(__global float* out, __global const float* m, __global const float* bias, const int flags,
                              const int rows, const int out_h, const int out_w, const int tiles_h, const int tiles_w,
                              const int tiles, const int pitch) {
  const int t0 = get_global_id(0) * PIX, r = get_global_id(1);
  if (t0 >= tiles || r >= rows) return;
  __global const float* in = m + r * pitch + t0;
  const int xi_stride = rows * pitch;
  // Columns first: ct[i][j] = (A^T M)[i][j].
  floatv ct[4][6];
  for (int j = 0; j < 6; ++j) {
    floatv c[6];
#pragma unroll
    for (int i = 0; i < 6; ++i) c[i] = vloadv(0, in + (6 * i + j) * xi_stride);
    floatv o[4];
    wino_output_combine(c, o);
#pragma unroll
    for (int i = 0; i < 4; ++i) ct[i][j] = o[i];
  }
  // Where each lane's 4x4 tile starts in out, and how many of its rows and columns are inside.
  const int per_image = tiles_h * tiles_w, count = min(PIX, tiles - t0);
  int base[PIX], in_rows[PIX], in_cols[PIX];
  for (int l = 0; l < count; ++l) {
    const int t = t0 + l, n = t / per_image, ty = (t % per_image) / tiles_w, tx = t % tiles_w;
    base[l] = ((n * rows + r) * out_h + 4 * ty) * out_w + 4 * tx;
    in_rows[l] = min(4, out_h - 4 * ty);
    in_cols[l] = min(4, out_w - 4 * tx);
  }
  const floatv b = (floatv)((flags & WITH_BIAS) ? bias[r] : 0.0f);
  const bool relu = (flags & RELU_OUT) != 0;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    floatv o[4];
    wino_output_combine(ct[i], o);
    lanes_t row[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) row[j].v = relu ? fmax(o[j] + b, (floatv)(0.0f)) : o[j] + b;
    for (int l = 0; l < count; ++l) {
      if (i >= in_rows[l]) continue;
      __global float* at = out + base[l] + i * out_w;
      if (in_cols[l] == 4) {
        vstore4((float4)(row[0].s[l], row[1].s[l], row[2].s[l], row[3].s[l]), 0, at);
      } else {
        for (int j = 0; j < in_cols[l]; ++j) at[j] = row[j].s[l];
      }
    }
  }
}
