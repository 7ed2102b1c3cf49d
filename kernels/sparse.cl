// Sparse direct convolution for evaluating pruned models: the weight is given by its nonzeros
// (SparseConvWeights), by output channel for the forward pass and by input channel (patch row) for the
// input gradient. Each work-item gathers one output (or input-gradient) element over its channel's
// nonzeros, in index order: no atomics, and work proportional to the nonzeros. All work-items of
// a channel walk the same list, so control flow stays uniform within a group.

// Flags of the forward kernels: add the bias; ReLU on the output (a conv the model fuses with its ReLU).
#define SPARSE_BIAS 1
#define SPARSE_RELU 2

// Patch row r = (c * k + i) * k + j of a k x k kernel: its channel c (or output channel, in the
// input gradient's lists) and tap (i, j).
static inline int3 patch_row(const int r, const int kernel_size) {
  const int kk = kernel_size * kernel_size;
  return (int3)(r / kk, (r / kernel_size) % kernel_size, r % kernel_size);
}

// y[n, o, oy, ox] = b[o] + sum over o's nonzeros (c, i, j) of w * x[n, c, oy*s - pad + i, ox*s - pad + j]
// (then max(., 0) with SPARSE_RELU).
__kernel void sparse_conv_forward(__global float* y, __global const float* x,
                                  __global const int* row_start, __global const int* row_index,
                                  __global const float* row_value, __global const float* bias, const int flags,
                                  const int channels, const int height, const int width, const int kernel_size,
                                  const int stride, const int pad, const int out_channels, const int out_h,
                                  const int out_w, const int batch) {
  const int idx = get_global_id(0);
  if (idx >= batch * out_channels * out_h * out_w) return;
  const int ox = idx % out_w, oy = (idx / out_w) % out_h;
  const int o = (idx / (out_w * out_h)) % out_channels, n = idx / (out_w * out_h * out_channels);
  __global const float* image = x + n * channels * height * width;
  float sum = flags & SPARSE_BIAS ? bias[o] : 0.0f;
  for (int e = row_start[o]; e < row_start[o + 1]; ++e) {
    const int3 t = patch_row(row_index[e], kernel_size);
    const int c = t.x, i = t.y, j = t.z;
    const int h = oy * stride - pad + i, w = ox * stride - pad + j;
    if (h >= 0 && h < height && w >= 0 && w < width) sum += row_value[e] * image[(c * height + h) * width + w];
  }
  y[idx] = flags & SPARSE_RELU ? fmax(sum, 0.0f) : sum;
}

// dx[n, c, h, w] = sum over c's nonzeros (o, i, j) of w * dy[n, o, (h + pad - i)/s, (w + pad - j)/s]
// where those divide evenly and land inside the output; with `masked`, dy is read as
// dy * (relu_output > 0) (the gradient through the ReLU the forward fused).
__kernel void sparse_conv_backward_data(__global float* dx, __global const float* dy,
                                        __global const int* col_start, __global const int* col_index,
                                        __global const float* col_value, __global const float* relu_output, const int masked,
                                        const int channels, const int height, const int width, const int kernel_size,
                                        const int stride, const int pad, const int out_channels, const int out_h,
                                        const int out_w, const int batch) {
  const int idx = get_global_id(0);
  if (idx >= batch * channels * height * width) return;
  const int w = idx % width, h = (idx / width) % height;
  const int c = (idx / (width * height)) % channels, n = idx / (width * height * channels);
  const int kk = kernel_size * kernel_size;
  const int image = n * out_channels * out_h * out_w;
  __global const float* grad = dy + image;
  __global const float* mask = relu_output + image;
  float sum = 0.0f;
  for (int e = col_start[c * kk]; e < col_start[(c + 1) * kk]; ++e) {
    const int3 t = patch_row(col_index[e], kernel_size);
    const int o = t.x, i = t.y, j = t.z;
    const int hy = h + pad - i, wx = w + pad - j;
    if (hy < 0 || wx < 0 || hy % stride != 0 || wx % stride != 0) continue;
    const int yo = hy / stride, xo = wx / stride;
    if (yo >= out_h || xo >= out_w) continue;
    const int at = (o * out_h + yo) * out_w + xo;
    if (!masked || mask[at] > 0.0f) sum += col_value[e] * grad[at];
  }
  dx[idx] = sum;
}

// The plane forms, for CPU devices (where a work-group is a task and work-items are loop
// iterations): one work-item per output (or input-gradient) plane, walking its channel's nonzeros
// and, for each, the runs of the rows it reaches, so the index arithmetic is paid per nonzero
// instead of per output and the inner loop is a saxpy the compiler vectorises. Each output still
// sums its terms in index order, as the element forms do.

// First and last+1 output index o with 0 <= o * stride + offset < size.
static inline int run_begin(const int offset, const int stride) { return offset < 0 ? (-offset + stride - 1) / stride : 0; }
static inline int run_end(const int offset, const int stride, const int size, const int count) {
  const int t = size - 1 - offset;
  return t < 0 ? 0 : min(count, t / stride + 1);
}

// dst[k * dst_step] += v * src[k * src_step] for k in [lo, hi); unit steps get a loop of their
// own, so the compiler vectorises it. `restrict`: dst (an output or input-gradient plane) never
// overlaps what it reads, and without the promise PoCL's compiler left these loops scalar (the
// sparse layers ran 1.4-1.7x slower).
static inline void add_run(__global float* restrict dst, const int dst_step, __global const float* restrict src, const int src_step,
                           const float v, const int lo, const int hi) {
  if (dst_step == 1 && src_step == 1) {
    for (int k = lo; k < hi; ++k) dst[k] += v * src[k];
  } else {
    for (int k = lo; k < hi; ++k) dst[k * dst_step] += v * src[k * src_step];
  }
}

// dst[k * dst_step] += v * src[k] where mask[k] > 0, for k in [lo, hi).
static inline void add_masked_run(__global float* restrict dst, const int dst_step, __global const float* restrict src,
                                  __global const float* restrict mask, const float v, const int lo, const int hi) {
  if (dst_step == 1) {
    for (int k = lo; k < hi; ++k) dst[k] += mask[k] > 0.0f ? v * src[k] : 0.0f;
  } else {
    for (int k = lo; k < hi; ++k) dst[k * dst_step] += mask[k] > 0.0f ? v * src[k] : 0.0f;
  }
}

// Output pixel (oy, ox) reads x at (oy * stride + i - pad, ox * stride + j - pad).
__kernel void sparse_conv_forward_planes(__global float* y, __global const float* x,
                                         __global const int* row_start, __global const int* row_index,
                                         __global const float* row_value, __global const float* bias, const int flags,
                                         const int channels, const int height, const int width, const int kernel_size,
                                         const int stride, const int pad, const int out_channels, const int out_h,
                                         const int out_w, const int batch) {
  const int idx = get_global_id(0);
  if (idx >= batch * out_channels) return;
  const int o = idx % out_channels, n = idx / out_channels;
  __global float* out = y + idx * out_h * out_w;
  const float b = flags & SPARSE_BIAS ? bias[o] : 0.0f;
  for (int p = 0; p < out_h * out_w; ++p) out[p] = b;
  __global const float* image = x + n * channels * height * width;
  for (int e = row_start[o]; e < row_start[o + 1]; ++e) {
    const int3 t = patch_row(row_index[e], kernel_size);
    const int c = t.x, i = t.y, j = t.z;
    const int y_lo = run_begin(i - pad, stride), y_hi = run_end(i - pad, stride, height, out_h);
    const int x_lo = run_begin(j - pad, stride), x_hi = run_end(j - pad, stride, width, out_w);
    const float v = row_value[e];
    __global const float* src = image + (c * height + i - pad) * width + j - pad;
    for (int oy = y_lo; oy < y_hi; ++oy) add_run(out + oy * out_w, 1, src + oy * stride * width, stride, v, x_lo, x_hi);
  }
  if (flags & SPARSE_RELU)
    for (int p = 0; p < out_h * out_w; ++p) out[p] = fmax(out[p], 0.0f);
}

// dx pixel (yo * stride + i - pad, xo * stride + j - pad) takes w * dy[o, yo, xo].
__kernel void sparse_conv_backward_data_planes(__global float* dx, __global const float* dy,
                                               __global const int* col_start, __global const int* col_index,
                                               __global const float* col_value, __global const float* relu_output,
                                               const int masked,
                                               const int channels, const int height, const int width, const int kernel_size,
                                               const int stride, const int pad, const int out_channels, const int out_h,
                                               const int out_w, const int batch) {
  const int idx = get_global_id(0);
  if (idx >= batch * channels) return;
  const int c = idx % channels, n = idx / channels;
  const int kk = kernel_size * kernel_size;
  __global float* out = dx + idx * height * width;
  for (int p = 0; p < height * width; ++p) out[p] = 0.0f;
  __global const float* grad = dy + n * out_channels * out_h * out_w;
  for (int e = col_start[c * kk]; e < col_start[(c + 1) * kk]; ++e) {
    const int3 t = patch_row(col_index[e], kernel_size);
    const int o = t.x, i = t.y, j = t.z;
    const int y_lo = run_begin(i - pad, stride), y_hi = run_end(i - pad, stride, height, out_h);
    const int x_lo = run_begin(j - pad, stride), x_hi = run_end(j - pad, stride, width, out_w);
    const float v = col_value[e];
    __global float* dst = out + (i - pad) * width + j - pad;
    __global const float* g = grad + o * out_h * out_w;
    __global const float* m = relu_output + (n * out_channels + o) * out_h * out_w;
    for (int yo = y_lo; yo < y_hi; ++yo) {
      if (masked) {
        add_masked_run(dst + yo * stride * width, stride, g + yo * out_w, m + yo * out_w, v, x_lo, x_hi);
      } else {
        add_run(dst + yo * stride * width, stride, g + yo * out_w, 1, v, x_lo, x_hi);
      }
    }
  }
}
