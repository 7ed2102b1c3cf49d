// norm.cl — batch normalisation, residual adds and average pooling.
// Batch norm works per channel of NCHW (or [N, C]) input: M = N*HW values per channel.
// Reductions: one work-group of NORM_GROUP work-items per channel, each summing a strided share,
// then a tree in local memory (fixed order, so results are deterministic).
// Tunables: NORM_GROUP (must equal the launch's work-group size, 64).
#pragma OPENCL FP_CONTRACT OFF
#ifndef NORM_GROUP
#define NORM_GROUP 64
#endif

__kernel void add(__global float* out, __global const float* a, __global const float* b, const int n) {
  const int i = get_global_id(0);
  if (i < n) out[i] = a[i] + b[i];
}

// A residual block's sum and its ReLU in one pass.
__kernel void add_relu(__global float* out, __global const float* a, __global const float* b, const int n) {
  const int i = get_global_id(0);
  if (i < n) out[i] = fmax(a[i] + b[i], 0.0f);
}

__kernel void avgpool_forward(__global float* y, __global const float* x, const int height, const int width,
                              const int k, const int n) {
  const int o = get_global_id(0);
  if (o >= n) return;
  const int oh = height / k, ow = width / k;
  const int plane = o / (oh * ow), oy = (o / ow) % oh, ox = o % ow;
  float s = 0.0f;
  for (int i = 0; i < k; ++i)
    for (int j = 0; j < k; ++j) s += x[plane * height * width + (oy * k + i) * width + ox * k + j];
  y[o] = s * (1.0f / (float)(k * k));
}

__kernel void avgpool_backward(__global float* dx, __global const float* dy, const int height, const int width,
                               const int k, const int n) {
  const int i = get_global_id(0);
  if (i >= n) return;
  const int oh = height / k, ow = width / k;
  const int plane = i / (height * width), y = (i / width) % height, x = i % width;
  dx[i] = dy[plane * oh * ow + (y / k) * ow + x / k] * (1.0f / (float)(k * k));
}

// Sums of a[k] (and a[k]*b-term) over one channel, reduced in local memory.
inline float group_sum(__local float* scratch, float v) {
  const int lid = get_local_id(0);
  scratch[lid] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = NORM_GROUP / 2; s > 0; s >>= 1) {
    if (lid < s) scratch[lid] += scratch[lid + s];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const float total = scratch[0];
  barrier(CLK_LOCAL_MEM_FENCE);
  return total;
}

// One group per channel: batch mean and 1/sqrt(var + eps), running-stat update (training),
// or the running stats' mean and inverse std (inference).
__kernel void bn_stats(__global const float* x, __global float* mean, __global float* inv_std,
                       __global float* running_mean, __global float* running_var,
                       const int n, const int channels, const int hw, const int training,
                       const float momentum, const float eps) {
  __local float scratch[NORM_GROUP];
  const int ch = get_group_id(0), lid = get_local_id(0);
  if (ch >= channels) return;
  if (!training) {
    if (lid == 0) {
      mean[ch] = running_mean[ch];
      inv_std[ch] = 1.0f / sqrt(running_var[ch] + eps);
    }
    return;
  }
  const int m = n * hw;
  float s = 0.0f;
  for (int k = lid; k < m; k += NORM_GROUP) s += x[((k / hw) * channels + ch) * hw + k % hw];
  const float mu = group_sum(scratch, s) / (float)m;
  float q = 0.0f;
  for (int k = lid; k < m; k += NORM_GROUP) {
    const float d = x[((k / hw) * channels + ch) * hw + k % hw] - mu;
    q += d * d;
  }
  const float variance = group_sum(scratch, q) / (float)m;
  if (lid == 0) {
    mean[ch] = mu;
    inv_std[ch] = 1.0f / sqrt(variance + eps);
    running_mean[ch] = (1.0f - momentum) * running_mean[ch] + momentum * mu;
    running_var[ch] = (1.0f - momentum) * running_var[ch] + momentum * variance * (float)m / (float)max(m - 1, 1);
  }
}

// bn_apply and bn_backward_data: one work-item per run of `chunk` values of one plane, so the
// channel is found once per run rather than with two divisions per value.

// With `relu`, max(., 0) of the norm (a norm and the ReLU after it, in one pass).
__kernel void bn_apply(__global float* y, __global const float* x, __global const float* gamma, __global const float* beta,
                       __global const float* mean, __global const float* inv_std, const int channels, const int hw,
                       const int planes, const int chunk, const int relu) {
  const int chunks = (hw + chunk - 1) / chunk, item = get_global_id(0);
  if (item >= planes * chunks) return;
  const int plane = item / chunks, ch = plane % channels;
  const int begin = plane * hw + (item % chunks) * chunk, end = min(plane * hw + hw, begin + chunk);
  const float g = gamma[ch], b = beta[ch], mu = mean[ch], inv = inv_std[ch];
  if (relu) {
    for (int k = begin; k < end; ++k) y[k] = fmax(g * ((x[k] - mu) * inv) + b, 0.0f);
  } else {
    for (int k = begin; k < end; ++k) y[k] = g * ((x[k] - mu) * inv) + b;
  }
}

// dy as the norm's backward reads it: through the fused ReLU's mask (its output y) when `masked`.
// Both loads unconditional (y is dy when unmasked): a load under the condition made PoCL's
// per-channel reduction 2.6x slower.
static inline float bn_dy(__global const float* dy, __global const float* y, const int masked, const int k) {
  const float d = dy[k], m = y[k];
  return masked && !(m > 0.0f) ? 0.0f : d;
}

// One group per channel: dgamma = sum dy * xhat, dbeta = sum dy.
__kernel void bn_backward_reduce(__global float* dgamma, __global float* dbeta, __global const float* dy,
                                 __global const float* relu_output, const int masked, __global const float* x,
                                 __global const float* mean, __global const float* inv_std, const int n,
                                 const int channels, const int hw) {
  __local float scratch[NORM_GROUP];
  const int ch = get_group_id(0), lid = get_local_id(0);
  if (ch >= channels) return;
  const int m = n * hw;
  const float mu = mean[ch], inv = inv_std[ch];
  float a = 0.0f, b = 0.0f;
  for (int k = lid; k < m; k += NORM_GROUP) {
    const int idx = ((k / hw) * channels + ch) * hw + k % hw;
    const float d = bn_dy(dy, relu_output, masked, idx);
    a += d;
    b += d * ((x[idx] - mu) * inv);
  }
  const float sdy = group_sum(scratch, a);
  const float sdyx = group_sum(scratch, b);
  if (lid == 0) {
    dbeta[ch] = sdy;
    dgamma[ch] = sdyx;
  }
}

__kernel void bn_backward_data(__global float* dx, __global const float* dy, __global const float* relu_output,
                               const int masked, __global const float* x, __global const float* gamma,
                               __global const float* mean, __global const float* inv_std, __global const float* dgamma,
                               __global const float* dbeta, const int channels, const int hw, const int n_per_channel,
                               const int training, const int planes, const int chunk) {
  const int chunks = (hw + chunk - 1) / chunk, item = get_global_id(0);
  if (item >= planes * chunks) return;
  const int plane = item / chunks, ch = plane % channels;
  const int begin = plane * hw + (item % chunks) * chunk, end = min(plane * hw + hw, begin + chunk);
  const float inv = inv_std[ch], scale = gamma[ch] * inv;
  if (training) {
    const float m = (float)n_per_channel, mu = mean[ch], db = dbeta[ch], dg = dgamma[ch];
    for (int k = begin; k < end; ++k) dx[k] = scale / m * (m * bn_dy(dy, relu_output, masked, k) - db - ((x[k] - mu) * inv) * dg);
  } else {
    for (int k = begin; k < end; ++k) dx[k] = scale * bn_dy(dy, relu_output, masked, k);
  }
}
