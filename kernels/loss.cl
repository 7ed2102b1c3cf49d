// loss.cl — softmax cross-entropy, one work-item per sample (class counts are small).
// loss[n] = logsumexp(z[n]) - z[n, y]; dlogits[n, c] = scale * (softmax_c - [c == y]).
#pragma OPENCL FP_CONTRACT OFF

__kernel void softmax_xent(__global float* losses, __global float* dlogits, __global const float* logits,
                           __global const float* labels, const int classes, const float scale,
                           const int with_grad, const int n) {
  const int row = get_global_id(0);
  if (row >= n) return;
  __global const float* z = logits + row * classes;
  const int label = (int)labels[row];
  float peak = z[0];
  for (int c = 1; c < classes; ++c) peak = fmax(peak, z[c]);
  float total = 0.0f;
  for (int c = 0; c < classes; ++c) total += exp(z[c] - peak);
  losses[row] = log(total) + peak - z[label];
  if (with_grad) {
    __global float* d = dlogits + row * classes;
    for (int c = 0; c < classes; ++c) {
      const float p = exp(z[c] - peak) / total;
      d[c] = scale * (p - (c == label ? 1.0f : 0.0f));
    }
  }
}

inline float log_sum_exp(__global const float* z, const int classes) {
  float peak = z[0];
  for (int c = 1; c < classes; ++c) peak = fmax(peak, z[c]);
  float total = 0.0f;
  for (int c = 0; c < classes; ++c) total += exp(z[c] - peak);
  return log(total) + peak;
}

// TRADES' KL(softmax(p) || softmax(q)) per sample, with the gradients with respect to both logits:
// dq = scale * (softmax(q) - softmax(p)); dp = scale * softmax(p) * (log p - log q - KL).
__kernel void softmax_kl(__global float* losses, __global float* dp, __global float* dq,
                         __global const float* p, __global const float* q, const int classes, const float scale,
                         const int with_dp, const int with_dq, const int n) {
  const int row = get_global_id(0);
  if (row >= n) return;
  __global const float* zp = p + row * classes;
  __global const float* zq = q + row * classes;
  const float lse_p = log_sum_exp(zp, classes), lse_q = log_sum_exp(zq, classes);
  float kl = 0.0f;
  for (int c = 0; c < classes; ++c) {
    const float log_p = zp[c] - lse_p;
    kl += exp(log_p) * (log_p - (zq[c] - lse_q));
  }
  losses[row] = kl;
  for (int c = 0; c < classes; ++c) {
    const float log_p = zp[c] - lse_p, log_q = zq[c] - lse_q;
    if (with_dq) dq[row * classes + c] = scale * (exp(log_q) - exp(log_p));
    if (with_dp) dp[row * classes + c] = scale * exp(log_p) * (log_p - log_q - kl);
  }
}
