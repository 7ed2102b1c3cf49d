// optimizer.cl — SGD with momentum and weight decay under a 0/1 mask.
// g = (grad + wd*w)*m; v = (mu*v + g)*m; w = (w - lr*v)*m, or w = (w - lr*(g + mu*v))*m with
// Nesterov. Pruned weights stay exactly 0.
#pragma OPENCL FP_CONTRACT OFF

__kernel void sgd_step(__global float* w, __global const float* grad, __global float* v,
                       __global const float* mask, const float lr, const float mu, const float wd,
                       const int with_mask, const int nesterov, const int n) {
  const int i = get_global_id(0);
  if (i >= n) return;
  const float m = with_mask ? mask[i] : 1.0f;
  const float g = (grad[i] + wd * w[i]) * m;
  const float vi = (mu * v[i] + g) * m;
  v[i] = vi;
  w[i] = (w[i] - lr * (nesterov ? g + mu * vi : vi)) * m;
}
