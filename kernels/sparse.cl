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

// The grid forms, for CPU devices (where a work-group is a task and work-items are loop
// iterations): the direct layout of `SparseGrid` (Sources/GPU/SparseGrid.swift). The whole batch
// (or a stack of it) is copied per input channel onto zero-padded planes one under the other, so
// each nonzero of a row is one long contiguous run of its channel's stack at a fixed offset; the
// rows kernel sums those runs into wide outputs on the same grid, and copies take the outputs
// (or the input gradient) back out. Each output still sums its terms in one fixed order.

// First and last+1 index v with 0 <= v * stride + offset < size (and v < count).
static inline int run_begin(const int offset, const int stride) { return offset < 0 ? (-offset + stride - 1) / stride : 0; }
static inline int run_end(const int offset, const int stride, const int size, const int count) {
  const int t = size - 1 - offset;
  return t < 0 ? 0 : min(count, t / stride + 1);
}

// Grid points per work-item of sparse_grid_rows: four 16-lane vectors.
#define GRID_RUN 64

// Flags of sparse_grid_rows beyond SPARSE_BIAS and SPARSE_RELU: add a residual on the output's
// grid; zero the points where keep[t % keep_period] is 0 (those a resident grid's shifted write
// puts on the padding).
#define SPARSE_RESIDUAL 4
#define SPARSE_KEEP 8
// Work-items tile by tile (every row of one tile, then the next tile) instead of row by row: the
// tile's window of the source stays in cache across the rows, which pays where rows read many
// runs each (the host sets it from the nonzeros per row).
#define SPARSE_TILE_MAJOR 16

// out[out_offset + r * out_stride + t] = bias[r] + sum_e values[e] * src[offsets[e] + t] for t in
// [0, length), over row r's entries start[r] ..< start[r + 1]; with SPARSE_RESIDUAL plus
// residual at the same position, then max(., 0) with SPARSE_RELU, then 0 where SPARSE_KEEP's
// pattern says (keep holds keep_period + GRID_RUN values). Work-item (tile, r) takes t
// in [tile * GRID_RUN, tile * GRID_RUN + GRID_RUN); src (and residual) reach GRID_RUN floats past
// the last run, which the caller allocates (those sums are of dropped grid points).
__kernel void sparse_grid_rows(__global float* restrict out, const int out_offset, const int out_stride,
                               __global const int* start, __global const int* offsets, __global const float* values,
                               __global const float* bias, const int flags, __global const float* restrict src,
                               __global const float* restrict residual, __global const float* keep,
                               const int keep_period, const int length, const int tiles, const int rows) {
  const int idx = get_global_id(0);
  if (idx >= tiles * rows) return;
  const int tile_major = flags & SPARSE_TILE_MAJOR;
  const int r = tile_major ? idx % rows : idx / tiles, t = (tile_major ? idx / rows : idx % tiles) * GRID_RUN;
  const float b = flags & SPARSE_BIAS ? bias[r] : 0.0f;
  float16 a0 = (float16)(b), a1 = a0, a2 = a0, a3 = a0;
  for (int e = start[r]; e < start[r + 1]; ++e) {
    const float w = values[e];
    __global const float* p = src + offsets[e] + t;
    a0 = fma((float16)(w), vload16(0, p), a0);
    a1 = fma((float16)(w), vload16(1, p), a1);
    a2 = fma((float16)(w), vload16(2, p), a2);
    a3 = fma((float16)(w), vload16(3, p), a3);
  }
  const long at = out_offset + (long)r * out_stride + t;
  if (flags & SPARSE_RESIDUAL) {
    __global const float* q = residual + at;
    a0 += vload16(0, q);
    a1 += vload16(1, q);
    a2 += vload16(2, q);
    a3 += vload16(3, q);
  }
  if (flags & SPARSE_RELU) {
    a0 = fmax(a0, 0.0f);
    a1 = fmax(a1, 0.0f);
    a2 = fmax(a2, 0.0f);
    a3 = fmax(a3, 0.0f);
  }
  if (flags & SPARSE_KEEP) {
    __global const float* k = keep + t % keep_period;
    const float16 zero = (float16)(0.0f);
    a0 = select(zero, a0, isnotequal(vload16(0, k), zero));
    a1 = select(zero, a1, isnotequal(vload16(1, k), zero));
    a2 = select(zero, a2, isnotequal(vload16(2, k), zero));
    a3 = select(zero, a3, isnotequal(vload16(3, k), zero));
  }
  __global float* o = out + at;
  if (t + GRID_RUN <= length) {
    vstore16(a0, 0, o);
    vstore16(a1, 1, o);
    vstore16(a2, 2, o);
    vstore16(a3, 3, o);
  } else {
    float sums[GRID_RUN];
    vstore16(a0, 0, sums);
    vstore16(a1, 1, sums);
    vstore16(a2, 2, sums);
    vstore16(a3, 3, sums);
    for (int k = 0; k < length - t; ++k) o[k] = sums[k];
  }
}

// Zeroes the first and the last `count` floats of each of `channels` channels `channel_floats`
// apart: the points of a resident grid that its conv's shifted write does not reach.
__kernel void sparse_grid_ends(__global float* grid, const int channels, const int channel_floats, const int count) {
  const int c = get_global_id(0);
  if (c >= channels) return;
  __global float* first = grid + (long)c * channel_floats;
  __global float* last = first + channel_floats - count;
  for (int k = 0; k < count; ++k) {
    first[k] = 0.0f;
    last[k] = 0.0f;
  }
}

// Work-item idx of a launch over (channel, phase, image) planes, images fastest: its image n,
// channel c and phase (row-major over phases_per_axis^2); false past the last plane.
static inline bool phase_plane(const int idx, const int nb, const int channels, const int phases_per_axis, int* n, int* c,
                               int* phase) {
  const int phases = phases_per_axis * phases_per_axis;
  if (idx >= channels * phases * nb) return false;
  *n = idx % nb;
  *phase = (idx / nb) % phases;
  *c = idx / (nb * phases);
  return true;
}

// Phase (a, b) of a conv's padded input (stride s, padding pad <= 1) gathered from a resident grid
// (every plane zero-padded by 1: rows_in x pitch_in, channel c's image n at plane c * nb + n):
// phase pixel (u, v) is padded pixel (s*u + a, s*v + b), which is grid point (s*u + a + 1 - pad,
// s*v + b + 1 - pad); 0 past the grid's plane. One work-item per (channel, phase, image) plane,
// laid out as sparse_grid_stack lays a stack of nb images.
__kernel void sparse_grid_gather(__global float* restrict phases, __global const float* restrict grid, const int nb,
                                 const int channels, const int rows_in, const int pitch_in, const int stride, const int pad,
                                 const int phases_per_axis, const int rows, const int pitch) {
  int n, c, phase;
  if (!phase_plane(get_global_id(0), nb, channels, phases_per_axis, &n, &c, &phase)) return;
  const int a = phase / phases_per_axis + 1 - pad, b = phase % phases_per_axis + 1 - pad;
  __global float* plane = phases + ((long)(c * phases_per_axis * phases_per_axis + phase) * nb + n) * rows * pitch;
  __global const float* source = grid + ((long)c * nb + n) * rows_in * pitch_in;
  // Columns v with s*v + b inside the grid's row.
  const int v_hi = min(pitch, (pitch_in - 1 - b) / stride + 1);
  for (int u = 0; u < rows; ++u) {
    __global float* row = plane + u * pitch;
    const int h = u * stride + a;
    if (h >= rows_in) {
      for (int v = 0; v < pitch; ++v) row[v] = 0.0f;
      continue;
    }
    __global const float* line = source + h * pitch_in + b;
    for (int v = 0; v < v_hi; ++v) row[v] = line[v * stride];
    for (int v = v_hi; v < pitch; ++v) row[v] = 0.0f;
  }
}

// The wide outputs (images rows x pitch apart, output channels grid_stride apart) onto a resident
// grid of out_h x out_w planes: each plane's interior, ReLU'd with `relu`, and its zero border.
// One work-item per (output channel, image) plane.
__kernel void sparse_grid_place(__global float* restrict out, __global const float* restrict wide, const int nb,
                                const int out_channels, const int out_h, const int out_w, const int rows, const int pitch,
                                const int grid_stride, const int relu) {
  const int idx = get_global_id(0);
  if (idx >= nb * out_channels) return;
  const int n = idx % nb, o = idx / nb;
  const int po = out_w + 2;
  __global const float* from = wide + (long)o * grid_stride + (long)n * rows * pitch;
  __global float* to = out + ((long)o * nb + n) * (out_h + 2) * po;
  for (int v = 0; v <= po; ++v) to[v] = 0.0f;
  for (int y = 0; y < out_h; ++y) {
    __global float* line = to + (y + 1) * po + 1;
    if (relu) {
      for (int x = 0; x < out_w; ++x) line[x] = fmax(from[y * pitch + x], 0.0f);
    } else {
      for (int x = 0; x < out_w; ++x) line[x] = from[y * pitch + x];
    }
    line[out_w] = 0.0f;
    line[out_w + 1] = 0.0f;
  }
  for (int v = 1; v < po; ++v) to[(out_h + 1) * po + v] = 0.0f;
}

// Padded pixel (s*u + a, s*v + b) of image n, channel c, in phase (a, b)'s plane of the grid; 0
// off the image. One work-item per (channel, phase, image) plane, images first..first+nb of x on a
// grid laid out for `stack` images.
__kernel void sparse_grid_stack(__global float* restrict grid, __global const float* restrict x, const int first, const int nb,
                                const int stack,
                                const int channels, const int height, const int width, const int stride, const int pad,
                                const int phases_per_axis, const int rows, const int pitch) {
  int n, c, phase;
  if (!phase_plane(get_global_id(0), nb, channels, phases_per_axis, &n, &c, &phase)) return;
  const int a = phase / phases_per_axis, b = phase % phases_per_axis;
  __global float* plane = grid + ((long)(c * phases_per_axis * phases_per_axis + phase) * stack + n) * rows * pitch;
  __global const float* image = x + ((long)(first + n) * channels + c) * height * width;
  // Columns v with 0 <= s*v + b - pad < width.
  const int v_lo = run_begin(b - pad, stride), v_hi = run_end(b - pad, stride, width, pitch);
  for (int u = 0; u < rows; ++u) {
    __global float* row = plane + u * pitch;
    const int h = u * stride + a - pad;
    if (h < 0 || h >= height) {
      for (int v = 0; v < pitch; ++v) row[v] = 0.0f;
      continue;
    }
    __global const float* line = image + h * width + b - pad;
    for (int v = 0; v < v_lo; ++v) row[v] = 0.0f;
    // Unit stride gets a loop of its own, so the compiler vectorises the copy.
    if (stride == 1) {
      for (int v = v_lo; v < v_hi; ++v) row[v] = line[v];
    } else {
      for (int v = v_lo; v < v_hi; ++v) row[v] = line[v * stride];
    }
    for (int v = v_hi; v < pitch; ++v) row[v] = 0.0f;
  }
}

// The wide outputs back into y's images first..first+nb (NCHW), ReLU'd with `relu`. One
// work-item per (image, output channel) plane.
__kernel void sparse_grid_unstack_outputs(__global float* restrict y, __global const float* restrict wide, const int first,
                                          const int nb, const int out_channels, const int out_h, const int out_w,
                                          const int rows, const int pitch, const int grid_stride, const int relu) {
  const int idx = get_global_id(0);
  if (idx >= nb * out_channels) return;
  const int o = idx % out_channels, n = idx / out_channels;
  __global const float* from = wide + (long)o * grid_stride + (long)n * rows * pitch;
  __global float* to = y + ((long)(first + n) * out_channels + o) * out_h * out_w;
  for (int oy = 0; oy < out_h; ++oy) {
    if (relu) {
      for (int ox = 0; ox < out_w; ++ox) to[oy * out_w + ox] = fmax(from[oy * pitch + ox], 0.0f);
    } else {
      for (int ox = 0; ox < out_w; ++ox) to[oy * out_w + ox] = from[oy * pitch + ox];
    }
  }
}

// dy's images first..first+nb onto the grid, each output channel after `front` zeros, zeros off
// the outputs; read as dy * (relu_output > 0) with `masked`. One work-item per (output channel,
// image) plane; image 0's also writes the channel's front.
__kernel void sparse_grid_stack_gradient(__global float* restrict grid, __global const float* restrict dy,
                                         __global const float* restrict relu_output, const int masked, const int first,
                                         const int nb, const int out_channels, const int out_h, const int out_w,
                                         const int rows, const int pitch, const int front, const int segment) {
  const int idx = get_global_id(0);
  if (idx >= out_channels * nb) return;
  const int n = idx % nb, o = idx / nb;
  __global float* channel = grid + (long)o * segment;
  if (n == 0)
    for (int k = 0; k < front; ++k) channel[k] = 0.0f;
  __global float* plane = channel + front + (long)n * rows * pitch;
  const long at = ((long)(first + n) * out_channels + o) * out_h * out_w;
  __global const float* g = dy + at;
  __global const float* m = relu_output + at;
  for (int u = 0; u < rows; ++u) {
    __global float* row = plane + u * pitch;
    if (u >= out_h) {
      for (int v = 0; v < pitch; ++v) row[v] = 0.0f;
      continue;
    }
    if (masked) {
      for (int v = 0; v < out_w; ++v) row[v] = m[u * out_w + v] > 0.0f ? g[u * out_w + v] : 0.0f;
    } else {
      for (int v = 0; v < out_w; ++v) row[v] = g[u * out_w + v];
    }
    for (int v = out_w; v < pitch; ++v) row[v] = 0.0f;
  }
}

// The padded input gradient's phases (a grid for `stack` images) back into dx's images
// first..first+nb (NCHW): pixel (h, w) from phase ((h + pad) % s, (w + pad) % s) at
// ((h + pad) / s, (w + pad) / s); 0 where no tap reads it (a phase not laid out). One work-item
// per (image, channel) plane.
__kernel void sparse_grid_unstack_inputs(__global float* restrict dx, __global const float* restrict grid, const int first,
                                         const int nb, const int stack, const int channels, const int height, const int width,
                                         const int stride, const int pad, const int phases_per_axis, const int rows,
                                         const int pitch) {
  const int idx = get_global_id(0);
  if (idx >= nb * channels) return;
  const int c = idx % channels, n = idx / channels;
  const int phases = phases_per_axis * phases_per_axis;
  __global float* to = dx + ((long)(first + n) * channels + c) * height * width;
  if (stride == 1) {
    // One phase, the padded plane itself: unit-stride rows, which the compiler vectorises.
    __global const float* from = grid + ((long)c * stack + n) * rows * pitch + pad * pitch + pad;
    for (int h = 0; h < height; ++h)
      for (int w = 0; w < width; ++w) to[h * width + w] = from[h * pitch + w];
    return;
  }
  // Pixels of phases not laid out (a 1x1 strided conv's) have no gradient.
  if (phases_per_axis < stride)
    for (int p = 0; p < height * width; ++p) to[p] = 0.0f;
  // Each laid phase's pixels scattered back: rows h = u * s + a - pad, columns w = v * s + b - pad.
  for (int phase = 0; phase < phases; ++phase) {
    const int a = phase / phases_per_axis, b = phase % phases_per_axis;
    __global const float* plane = grid + ((long)(c * phases + phase) * stack + n) * rows * pitch;
    const int v_lo = run_begin(b - pad, stride), v_hi = run_end(b - pad, stride, width, pitch);
    const int u_lo = run_begin(a - pad, stride), u_hi = run_end(a - pad, stride, height, rows);
    for (int u = u_lo; u < u_hi; ++u) {
      __global float* line = to + (u * stride + a - pad) * width + b - pad;
      for (int v = v_lo; v < v_hi; ++v) line[v * stride] = plane[u * pitch + v];
    }
  }
}
