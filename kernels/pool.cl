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
