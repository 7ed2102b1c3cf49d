// attack.cl — fused PGD steps and start-point projection, L-inf and L2.
// Layout: a batch of `batch` samples of `features` floats each, x and x_adv in [0, 1].
// L-inf kernels: one work-item per element. L2 kernels need per-sample norms: one work-item per
// sample, looping over its features (simple; L2 attacks are rare in training loops).
#pragma OPENCL FP_CONTRACT OFF

__kernel void pgd_step_linf(__global float* xadv, __global const float* x, __global const float* g,
                            const float alpha, const float eps, const int n) {
  const int i = get_global_id(0);
  if (i >= n) return;
  const float gi = g[i];
  const float s = gi > 0.0f ? 1.0f : (gi < 0.0f ? -1.0f : 0.0f);
  const float d = fmin(fmax(xadv[i] - x[i] + alpha * s, -eps), eps);
  xadv[i] = fmin(fmax(x[i] + d, 0.0f), 1.0f);
}

__kernel void pgd_step_l2(__global float* xadv, __global const float* x, __global const float* g,
                          const float alpha, const float eps, const int features, const int batch) {
  const int n = get_global_id(0);
  if (n >= batch) return;
  const int o = n * features;
  float gg = 0.0f;
  for (int i = 0; i < features; ++i) gg += g[o + i] * g[o + i];
  const float step = alpha / (sqrt(gg) + 1e-12f);
  float dd = 0.0f;
  for (int i = 0; i < features; ++i) {
    const float d = xadv[o + i] - x[o + i] + step * g[o + i];
    dd += d * d;
  }
  const float shrink = fmin(1.0f, eps / (sqrt(dd) + 1e-12f));
  for (int i = 0; i < features; ++i) {
    const float d = (xadv[o + i] - x[o + i] + step * g[o + i]) * shrink;
    xadv[o + i] = fmin(fmax(x[o + i] + d, 0.0f), 1.0f);
  }
}

__kernel void pgd_project_linf(__global float* xadv, __global const float* x, __global const float* delta,
                               const float eps, const int n) {
  const int i = get_global_id(0);
  if (i < n) xadv[i] = fmin(fmax(x[i] + fmin(fmax(delta[i], -eps), eps), 0.0f), 1.0f);
}

__kernel void pgd_project_l2(__global float* xadv, __global const float* x, __global const float* delta,
                             const float eps, const int features, const int batch) {
  const int n = get_global_id(0);
  if (n >= batch) return;
  const int o = n * features;
  float dd = 0.0f;
  for (int i = 0; i < features; ++i) dd += delta[o + i] * delta[o + i];
  const float shrink = fmin(1.0f, eps / (sqrt(dd) + 1e-12f));
  for (int i = 0; i < features; ++i) xadv[o + i] = fmin(fmax(x[o + i] + delta[o + i] * shrink, 0.0f), 1.0f);
}
