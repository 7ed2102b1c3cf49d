// elementwise.cl — ReLU, masks and counter-based random numbers.
// Layout: flat float arrays of n elements; one work-item per element.
// Tunables: none. FP contraction is off so results match the CPU reference bit for bit where
// the arithmetic allows it.
#pragma OPENCL FP_CONTRACT OFF

__kernel void relu_forward(__global float* y, __global const float* x, const int n) {
  const int i = get_global_id(0);
  if (i < n) y[i] = fmax(x[i], 0.0f);
}

__kernel void relu_backward(__global float* dx, __global const float* dy, __global const float* y, const int n) {
  const int i = get_global_id(0);
  if (i < n) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

__kernel void multiply(__global float* out, __global const float* a, __global const float* b, const int n) {
  const int i = get_global_id(0);
  if (i < n) out[i] = a[i] * b[i];
}

// murmur3's finaliser; the same arithmetic as CounterRandom.mix in Swift.
inline uint mix32(uint x) {
  x ^= x >> 16;
  x *= 0x85EBCA6Bu;
  x ^= x >> 13;
  x *= 0xC2B2AE35u;
  x ^= x >> 16;
  return x;
}

// t[i] = low + span * u(i, seed), u = (hash >> 8) * 2^-24 in [0, 1).
__kernel void random_uniform(__global float* t, const float low, const float span,
                             const uint seed_lo, const uint seed_hi, const int n) {
  const int i = get_global_id(0);
  if (i >= n) return;
  const uint h = mix32(mix32(((uint)i * 0x9E3779B9u) ^ seed_lo) ^ seed_hi);
  const float u = (float)(h >> 8) * (1.0f / 16777216.0f);
  t[i] = low + span * u;
}
