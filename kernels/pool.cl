// pool.cl — non-overlapping 2x2 max pooling over NCHW planes.
// One work-item per output element; ties go to the first maximum in row-major window order,
// the same rule as the CPU reference, so forward and backward always agree.
#pragma OPENCL FP_CONTRACT OFF

inline int argmax2x2(__global const float* x, const int width, const int base) {
  int best = 0;
  float value = x[base];
  if (x[base + 1] > value) { best = 1; value = x[base + 1]; }
  if (x[base + width] > value) { best = 2; value = x[base + width]; }
  if (x[base + width + 1] > value) { best = 3; }
  return best;
}

__kernel void maxpool2x2_forward(__global float* y, __global const float* x,
                                 const int height, const int width, const int n) {
  const int o = get_global_id(0);
  if (o >= n) return;
  const int oh = height / 2, ow = width / 2;
  const int plane = o / (oh * ow), oy = (o / ow) % oh, ox = o % ow;
  const int base = plane * height * width + 2 * oy * width + 2 * ox;
  const int a = argmax2x2(x, width, base);
  y[o] = x[base + (a >> 1) * width + (a & 1)];
}

__kernel void maxpool2x2_backward(__global float* dx, __global const float* dy, __global const float* x,
                                  const int height, const int width, const int n) {
  const int o = get_global_id(0);
  if (o >= n) return;
  const int oh = height / 2, ow = width / 2;
  const int plane = o / (oh * ow), oy = (o / ow) % oh, ox = o % ow;
  const int base = plane * height * width + 2 * oy * width + 2 * ox;
  const int a = argmax2x2(x, width, base);
  dx[base] = 0.0f;
  dx[base + 1] = 0.0f;
  dx[base + width] = 0.0f;
  dx[base + width + 1] = 0.0f;
  dx[base + (a >> 1) * width + (a & 1)] = dy[o];
}

// The same pooling with one work-item per output row, eight windows per step as vectors (what a
// CPU device wants: an item there is a loop iteration, and the element kernels above pay an index
// division per value). The comparisons are argmax2x2's, in its order, so ties and NaN pick the
// same window element and both versions give the same bits.
#define POOL_LANES 8

inline int8 argmax_lanes(const float8 a, const float8 b, const float8 c, const float8 d) {
  float8 value = a;
  int8 best = (int8)(0);
  int8 m = b > value;
  value = select(value, b, m);
  best = select(best, (int8)(1), m);
  m = c > value;
  value = select(value, c, m);
  best = select(best, (int8)(2), m);
  return select(best, (int8)(3), d > value);
}

__kernel void maxpool2x2_rows_forward(__global float* restrict y, __global const float* restrict x, const int height,
                                      const int width, const int rows) {
  const int r = get_global_id(0);
  if (r >= rows) return;
  const int ow = width / 2;
  // Output row r (plane * oh + oy) reads input rows 2r and 2r + 1: planes have an even height.
  __global const float* restrict top = x + 2 * r * width;
  __global float* restrict out = y + r * ow;
  int ox = 0;
  for (; ox + POOL_LANES <= ow; ox += POOL_LANES) {
    const float16 t = vload16(0, top + 2 * ox), b = vload16(0, top + width + 2 * ox);
    float8 value = t.even;
    value = select(value, t.odd, t.odd > value);
    value = select(value, b.even, b.even > value);
    value = select(value, b.odd, b.odd > value);
    vstore8(value, 0, out + ox);
  }
  for (; ox < ow; ++ox) {
    const int a = argmax2x2(top, width, 2 * ox);
    out[ox] = top[2 * ox + (a >> 1) * width + (a & 1)];
  }
}

__kernel void maxpool2x2_rows_backward(__global float* restrict dx, __global const float* restrict dy,
                                       __global const float* restrict x, const int height, const int width, const int rows) {
  const int r = get_global_id(0);
  if (r >= rows) return;
  const int ow = width / 2;
  __global const float* restrict top = x + 2 * r * width;
  __global const float* restrict g = dy + r * ow;
  __global float* restrict d0 = dx + 2 * r * width;
  __global float* restrict d1 = d0 + width;
  const uint16 interleave = (uint16)(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
  int ox = 0;
  for (; ox + POOL_LANES <= ow; ox += POOL_LANES) {
    const float16 t = vload16(0, top + 2 * ox), b = vload16(0, top + width + 2 * ox);
    const int8 a = argmax_lanes(t.even, t.odd, b.even, b.odd);
    const float8 v = vload8(0, g + ox), zero = (float8)(0.0f);
    vstore16(shuffle2(select(zero, v, a == 0), select(zero, v, a == 1), interleave), 0, d0 + 2 * ox);
    vstore16(shuffle2(select(zero, v, a == 2), select(zero, v, a == 3), interleave), 0, d1 + 2 * ox);
  }
  for (; ox < ow; ++ox) {
    const int a = argmax2x2(top, width, 2 * ox);
    d0[2 * ox] = d0[2 * ox + 1] = d1[2 * ox] = d1[2 * ox + 1] = 0.0f;
    (a < 2 ? d0 : d1)[2 * ox + (a & 1)] = g[ox];
  }
}
