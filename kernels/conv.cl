// conv.cl — the data movement around the convolution GEMMs (the GEMMs themselves run in CLBlast).
// cols[r, q]: r = (c*K + i)*K + j over the patch, q = n*P + oh*OW + ow over a slice of nb images
// starting at image `first`. Tensors are NCHW; one work-item per written element.
#pragma OPENCL FP_CONTRACT OFF

__kernel void im2col(__global float* cols, __global const float* x,
                     const int channels, const int height, const int width, const int kernel_size,
                     const int stride, const int pad, const int out_h, const int out_w,
                     const int first, const int nb) {
  const int idx = get_global_id(0);
  const int p = out_h * out_w;
  const int q = nb * p;
  const int total = channels * kernel_size * kernel_size * q;
  if (idx >= total) return;
  const int r = idx / q, col = idx % q;
  const int c = r / (kernel_size * kernel_size), i = (r / kernel_size) % kernel_size, j = r % kernel_size;
  const int n = col / p, oy = (col % p) / out_w, ox = col % out_w;
  const int h = oy * stride - pad + i, w = ox * stride - pad + j;
  float v = 0.0f;
  if (h >= 0 && h < height && w >= 0 && w < width) v = x[(((first + n) * channels + c) * height + h) * width + w];
  cols[idx] = v;
}

// Gather form of col2im: each input pixel sums the column entries that read it.
__kernel void col2im(__global float* dx, __global const float* cols,
                     const int channels, const int height, const int width, const int kernel_size,
                     const int stride, const int pad, const int out_h, const int out_w,
                     const int first, const int nb) {
  const int idx = get_global_id(0);
  const int total = nb * channels * height * width;
  if (idx >= total) return;
  const int w = idx % width, h = (idx / width) % height;
  const int c = (idx / (width * height)) % channels, n = idx / (width * height * channels);
  const int p = out_h * out_w, q = nb * p;
  float sum = 0.0f;
  for (int i = 0; i < kernel_size; ++i) {
    const int hy = h + pad - i;
    if (hy < 0 || hy % stride != 0 || hy / stride >= out_h) continue;
    for (int j = 0; j < kernel_size; ++j) {
      const int wx = w + pad - j;
      if (wx < 0 || wx % stride != 0 || wx / stride >= out_w) continue;
      sum += cols[((c * kernel_size + i) * kernel_size + j) * q + n * p + (hy / stride) * out_w + wx / stride];
    }
  }
  dx[(first * channels) * height * width + idx] = sum;
}

// y[first+n, o, p] = tmp[o, n*P + p] + b[o].
__kernel void scatter_bias(__global float* y, __global const float* tmp, __global const float* bias,
                           const int with_bias, const int out_channels, const int p, const int first, const int nb,
                           const int relu) {
  const int idx = get_global_id(0);
  if (idx >= nb * out_channels * p) return;
  const int pix = idx % p, o = (idx / p) % out_channels, n = idx / (p * out_channels);
  const float v = tmp[o * nb * p + n * p + pix] + (with_bias ? bias[o] : 0.0f);
  y[first * out_channels * p + idx] = relu ? fmax(v, 0.0f) : v;
}

// out[o, n*P + p] = dy[first+n, o, p].
__kernel void gather_dy(__global float* out, __global const float* dy,
                        const int out_channels, const int p, const int first, const int nb) {
  const int idx = get_global_id(0);
  if (idx >= nb * out_channels * p) return;
  const int pix = idx % p, o = (idx / p) % out_channels, n = idx / (p * out_channels);
  out[o * nb * p + n * p + pix] = dy[first * out_channels * p + idx];
}

// gather_dy of dy * (y > 0): the gradient through a ReLU that followed the convolution.
__kernel void gather_dy_relu(__global float* out, __global const float* dy, __global const float* y,
                             const int out_channels, const int p, const int first, const int nb) {
  const int idx = get_global_id(0);
  if (idx >= nb * out_channels * p) return;
  const int pix = idx % p, o = (idx / p) % out_channels, n = idx / (p * out_channels);
  const int at = first * out_channels * p + idx;
  out[o * nb * p + n * p + pix] = y[at] > 0.0f ? dy[at] : 0.0f;
}

// out[r] (+)= sum_i in[r, i], one work-item per row (bias gradient of a slice).
__kernel void row_sums(__global float* out, __global const float* in, const int rows, const int cols, const int accumulate) {
  const int r = get_global_id(0);
  if (r >= rows) return;
  float s = 0.0f;
  for (int i = 0; i < cols; ++i) s += in[r * cols + i];
  out[r] = accumulate ? out[r] + s : s;
}
