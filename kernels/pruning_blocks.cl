// pruning_blocks.cl — building blocks of the pruning methods (CPUBackend+PruningBlocks.swift is
// the reference): axpby, two-stage reductions, and an exact top-k mask without sorting.
// Layout: flat float arrays. Work: axpby one work-item per element; reductions one partial per
// work-group (64 work-items), then one work-group over the partials; top-k one work-group that
// bisects on the bit patterns of |s| (ordered like the values for non-negative floats).
// Tunables: REDUCE_GROUPS (partials of the first stage).
#pragma OPENCL FP_CONTRACT OFF
#ifndef REDUCE_GROUPS
#define REDUCE_GROUPS 256
#endif
#define GROUP 64

__kernel void axpby(__global float* y, __global const float* x, const float alpha, const float beta, const int n) {
  const int i = get_global_id(0);
  if (i < n) y[i] = alpha * x[i] + beta * y[i];
}

inline float reduce_term(const float v, const int kind) {
  return kind == 0 ? v : (kind == 1 ? v * v : fabs(v));
}

inline float reduce_combine(const float a, const float b, const int kind) { return kind == 3 ? fmax(a, b) : a + b; }

inline void reduce_group(__local float* values, const int kind) {
  const int t = get_local_id(0);
  for (int stride = GROUP / 2; stride > 0; stride /= 2) {
    barrier(CLK_LOCAL_MEM_FENCE);
    if (t < stride) values[t] = reduce_combine(values[t], values[t + stride], kind);
  }
  barrier(CLK_LOCAL_MEM_FENCE);
}

// Stage 1: work-group g reduces x[g*64 + t], x[g*64 + t + groups*64], ... into partials[g].
__kernel void reduce_partial(__global float* partials, __global const float* x, const int kind, const int groups, const int n) {
  __local float values[GROUP];
  const int t = get_local_id(0), g = get_group_id(0);
  float acc = 0.0f;
  for (int i = g * GROUP + t; i < n; i += groups * GROUP) acc = reduce_combine(acc, reduce_term(x[i], kind), kind);
  values[t] = acc;
  reduce_group(values, kind);
  if (t == 0) partials[g] = values[0];
}

// Stage 2: one work-group over the partials.
__kernel void reduce_final(__global float* result, __global const float* partials, const int kind, const int groups) {
  __local float values[GROUP];
  const int t = get_local_id(0);
  float acc = 0.0f;
  for (int i = t; i < groups; i += GROUP) acc = reduce_combine(acc, partials[i], kind);
  values[t] = acc;
  reduce_group(values, kind);
  if (t == 0) result[0] = values[0];
}

// One work-group of 64: work-item t owns a contiguous chunk, so "lower index first" among ties is
// a prefix count over the work-items.
__kernel void top_k_mask(__global float* mask, __global const float* scores, const int keep, const int n) {
  __local int counts[GROUP];
  __local uint bounds[2];
  const int t = get_local_id(0);
  const int chunk = (n + GROUP - 1) / GROUP;
  const int begin = min(n, t * chunk), end = min(n, begin + chunk);
  if (t == 0) {
    bounds[0] = 0u;           // count(key >= bounds[0]) >= keep always holds
    bounds[1] = 0x7F800001u;  // count(key >= bounds[1]) < keep (past +inf)
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  // The largest key T with count(key >= T) >= keep: the keep-th largest |score|.
  for (int step = 0; step < 32; ++step) {
    const uint low = bounds[0], high = bounds[1];
    if (high - low <= 1u) break;
    const uint mid = low + (high - low) / 2u;
    int c = 0;
    for (int i = begin; i < end; ++i) c += as_uint(fabs(scores[i])) >= mid ? 1 : 0;
    counts[t] = c;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (t == 0) {
      int total = 0;
      for (int k = 0; k < GROUP; ++k) total += counts[k];
      if (total >= keep) bounds[0] = mid; else bounds[1] = mid;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const uint threshold = bounds[0];
  int above = 0, ties = 0;
  for (int i = begin; i < end; ++i) {
    const uint key = as_uint(fabs(scores[i]));
    above += key > threshold ? 1 : 0;
    ties += key == threshold ? 1 : 0;
  }
  counts[t] = above;
  barrier(CLK_LOCAL_MEM_FENCE);
  int allAbove = 0;
  for (int k = 0; k < GROUP; ++k) allAbove += counts[k];
  barrier(CLK_LOCAL_MEM_FENCE);
  counts[t] = ties;
  barrier(CLK_LOCAL_MEM_FENCE);
  int before = 0;
  for (int k = 0; k < t; ++k) before += counts[k];
  const int need = keep - allAbove;  // ties taken, lowest index first
  for (int i = begin; i < end; ++i) {
    const uint key = as_uint(fabs(scores[i]));
    float m = 0.0f;
    if (key > threshold) {
      m = 1.0f;
    } else if (key == threshold && keep > 0) {
      m = before < need ? 1.0f : 0.0f;
      before += 1;
    }
    mask[i] = m;
  }
}
