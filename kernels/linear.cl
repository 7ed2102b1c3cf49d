// linear.cl — the non-GEMM parts of a linear layer: bias broadcast and bias gradient.
// y and dy are row-major [rows, cols].
#pragma OPENCL FP_CONTRACT OFF

// y[r, c] = b[c]; the GEMM then accumulates x*W^T with beta = 1.
__kernel void broadcast_rows(__global float* y, __global const float* b, const int cols, const int n) {
  const int i = get_global_id(0);
  if (i < n) y[i] = b[i % cols];
}

// out[c] = sum_r in[r, c], one work-item per column, rows summed in order (deterministic).
__kernel void column_sums(__global float* out, __global const float* in, const int rows, const int cols) {
  const int c = get_global_id(0);
  if (c >= cols) return;
  float s = 0.0f;
  for (int r = 0; r < rows; ++r) s += in[r * cols + c];
  out[c] = s;
}
