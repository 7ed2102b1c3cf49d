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
