// attack_blocks.cl — the building blocks of APGD, FAB, Square and FMN (CPUBackend+AttackBlocks.swift
// is the reference, function for function).
// Layout: a batch of `batch` samples of `features` floats each; per-sample state as [batch] arrays.
// Work: elementwise kernels run one work-item per element; per-sample kernels (norms, bisection,
// row copies) run one work-item per sample looping over its features: simple and exact, and the
// per-sample work is small next to the model's forward and backward passes.
// Norm codes: 0 L-inf, 1 L2, 2 L1. Loss codes: see AttackLoss.code.
#pragma OPENCL FP_CONTRACT OFF

inline int first_maximum(__global const float* z, const int classes, const int skipping) {
  int best = -1;
  for (int c = 0; c < classes; ++c)
    if (c != skipping && (best < 0 || z[c] > z[best])) best = c;
  return best;
}

// Loss codes 1..4 (cross-entropy runs softmax_xent).
__kernel void attack_loss(__global float* losses, __global float* dlogits, __global const float* logits,
                          __global const float* labels, __global const float* targets, const int kind,
                          const int classes, const float scale, const int with_grad, const int n) {
  const int row = get_global_id(0);
  if (row >= n) return;
  __global const float* z = logits + row * classes;
  const int y = (int)labels[row];
  const int t = (kind == 2 || kind == 4) ? (int)targets[row] : 0;
  int picked[4] = {-1, -1, -1, -1};
  const int ranks = min(4, classes);
  for (int rank = 0; rank < ranks; ++rank) {
    int best = -1;
    for (int c = 0; c < classes; ++c) {
      bool taken = false;
      for (int r = 0; r < rank; ++r) taken = taken || picked[r] == c;
      if (!taken && (best < 0 || z[c] > z[best])) best = c;
    }
    picked[rank] = best;
  }
  for (int rank = classes; rank < 4; ++rank) picked[rank] = picked[classes - 1];
  const int runner_up = first_maximum(z, classes, y);
  __global float* d = dlogits + row * classes;
  if (with_grad)
    for (int c = 0; c < classes; ++c) d[c] = 0.0f;
  if (kind == 1) {
    const float a = z[y] - z[runner_up];
    const float den = z[picked[0]] - z[picked[2]] + 1e-12f;
    losses[row] = -a / den;
    if (with_grad) {
      const float inv = 1.0f / den;
      const float q = a * inv * inv;
      d[y] -= scale * inv;
      d[runner_up] += scale * inv;
      d[picked[0]] += scale * q;
      d[picked[2]] -= scale * q;
    }
  } else if (kind == 2) {
    const float a = z[y] - z[t];
    const float den = z[picked[0]] - (z[picked[2]] + z[picked[3]]) * 0.5f + 1e-12f;
    losses[row] = -a / den;
    if (with_grad) {
      const float inv = 1.0f / den;
      const float q = a * inv * inv;
      d[y] -= scale * inv;
      d[t] += scale * inv;
      d[picked[0]] += scale * q;
      d[picked[2]] -= scale * q * 0.5f;
      d[picked[3]] -= scale * q * 0.5f;
    }
  } else if (kind == 3) {
    losses[row] = z[y] - z[runner_up];
    if (with_grad) {
      d[y] += scale;
      d[runner_up] -= scale;
    }
  } else {
    losses[row] = z[y] - z[t];
    if (with_grad) {
      d[y] += scale;
      d[t] -= scale;
    }
  }
}

__kernel void misclassified(__global float* flags, __global const float* logits, __global const float* labels,
                            const int classes, const int n) {
  const int row = get_global_id(0);
  if (row < n) flags[row] = first_maximum(logits + row * classes, classes, -1) == (int)labels[row] ? 0.0f : 1.0f;
}

__kernel void select_rows(__global float* destination, __global const float* source, __global const float* flags,
                          const int width, const int n) {
  const int i = get_global_id(0);
  if (i < n && flags[i / width] != 0.0f) destination[i] = source[i];
}

inline float clamp01(const float v) { return fmin(fmax(v, 0.0f), 1.0f); }

__kernel void apgd_step_linf(__global float* xadv, __global float* xprev, __global const float* x,
                             __global const float* g, __global const float* eta, const float m, const float eps,
                             const int features, const int n) {
  const int i = get_global_id(0);
  if (i >= n) return;
  const float e = eta[i / features], xk = xadv[i], x0 = x[i], gi = g[i];
  const float s = gi > 0.0f ? 1.0f : (gi < 0.0f ? -1.0f : 0.0f);
  const float z = clamp01(fmin(fmax(xk + e * s, x0 - eps), x0 + eps));
  const float u = xk + m * (z - xk) + (1.0f - m) * (xk - xprev[i]);
  xprev[i] = xk;
  xadv[i] = clamp01(fmin(fmax(u, x0 - eps), x0 + eps));
}

__kernel void apgd_step_l2(__global float* xadv, __global float* xprev, __global const float* x,
                           __global const float* g, __global const float* eta, const float m, const float eps,
                           const int features, const int batch) {
  const int n = get_global_id(0);
  if (n >= batch) return;
  const int o = n * features;
  float gg = 0.0f;
  for (int i = o; i < o + features; ++i) gg += g[i] * g[i];
  const float s = eta[n] / (sqrt(gg) + 1e-12f);
  float dd = 0.0f;
  for (int i = o; i < o + features; ++i) {
    const float v = xadv[i] + s * g[i] - x[i];
    dd += v * v;
  }
  const float r1 = fmin(eps, sqrt(dd)) / (sqrt(dd) + 1e-12f);
  float uu = 0.0f;
  for (int i = o; i < o + features; ++i) {
    const float xk = xadv[i], x0 = x[i];
    const float z = clamp01(x0 + (xk + s * g[i] - x0) * r1);
    const float u = xk + m * (z - xk) + (1.0f - m) * (xk - xprev[i]);
    xprev[i] = xk;
    xadv[i] = u;
    uu += (u - x0) * (u - x0);
  }
  const float r2 = fmin(eps, sqrt(uu)) / (sqrt(uu) + 1e-12f);
  for (int i = o; i < o + features; ++i) xadv[i] = clamp01(x[i] + (xadv[i] - x[i]) * r2);
}

__kernel void apgd_track(__global const float* losses, __global float* best, __global float* previous,
                         __global float* increases, __global float* improved, const int n) {
  const int i = get_global_id(0);
  if (i >= n) return;
  const float l = losses[i];
  improved[i] = l > best[i] ? 1.0f : 0.0f;
  best[i] = fmax(best[i], l);
  increases[i] += l > previous[i] ? 1.0f : 0.0f;
  previous[i] = l;
}

inline float distance(__global const float* a, __global const float* b, const int count, const int norm) {
  float total = 0.0f;
  for (int i = 0; i < count; ++i) {
    const float d = fabs(a[i] - b[i]);
    if (norm == 0) total = fmax(total, d);
    else if (norm == 1) total += d * d;
    else total += d;
  }
  return norm == 1 ? sqrt(total) : total;
}

inline float projected(const float p, const float w, const float t, const int norm) {
  const float direction = norm == 0 ? (w > 0.0f ? 1.0f : (w < 0.0f ? -1.0f : 0.0f)) : w;
  return clamp01(p + t * direction);
}

// How much w.z changes, in absolute value, when z leaves p by t >= 0 along the step direction and
// is held in [0, 1] (moved() in CKernels/boundary.c): coordinate i moves min(t q_i, room_i).
inline float boundary_moved(__global const float* p, __global const float* w, const int count, const float t,
                            const float sign, const int norm) {
  float total = 0.0f;
  for (int i = 0; i < count; ++i) {
    const float a = fabs(w[i]);
    const float room = w[i] * sign > 0.0f ? 1.0f - p[i] : p[i];
    const float step = norm == 1 ? a * t : t;
    total += a * (step < room ? step : room);
  }
  return total;
}

// The signed step t with w.projected(p, t) = w.p - c, by bisection (advprune_boundary_step in C).
inline float boundary_step(__global const float* p, __global const float* w, const int count, const float c,
                           const int norm) {
  if (c == 0.0f) return 0.0f;
  const float sign = c > 0.0f ? -1.0f : 1.0f, goal = fabs(c);
  float ww = 0.0f;
  for (int i = 0; i < count; ++i) ww += w[i] * w[i];
  if (ww == 0.0f) return 0.0f;
  float high = norm == 1 ? goal / ww : 1.0f;
  for (int doublings = 0; norm == 1 && boundary_moved(p, w, count, high, sign, norm) < goal && doublings < 60;
       ++doublings)
    high *= 2.0f;
  if (boundary_moved(p, w, count, high, sign, norm) < goal) return sign * high;
  float low = 0.0f;
  for (int k = 0; k < 40; ++k) {
    const float mid = (low + high) * 0.5f;
    if (mid == low || mid == high) break;
    if (boundary_moved(p, w, count, mid, sign, norm) < goal) low = mid; else high = mid;
  }
  return sign * high;
}

__kernel void fab_step(__global float* xadv, __global const float* x, __global const float* g,
                       __global const float* difference, const int norm, const float alpha_max, const float eta,
                       const int features, const int batch) {
  const int n = get_global_id(0);
  if (n >= batch) return;
  __global float* x1 = xadv + n * features;
  __global const float* x0 = x + n * features;
  __global const float* w = g + n * features;
  float wx1 = 0.0f, wx0 = 0.0f;
  for (int i = 0; i < features; ++i) {
    wx1 += w[i] * x1[i];
    wx0 += w[i] * x0[i];
  }
  const float target = wx1 - difference[n];
  const float t1 = boundary_step(x1, w, features, wx1 - target, norm);
  const float t0 = boundary_step(x0, w, features, wx0 - target, norm);
  float a1 = 0.0f, a2 = 0.0f;
  for (int i = 0; i < features; ++i) {
    const float d1 = projected(x1[i], w[i], t1, norm) - x1[i];
    const float d2 = projected(x0[i], w[i], t0, norm) - x0[i];
    a1 = norm == 0 ? fmax(a1, fabs(d1)) : a1 + d1 * d1;
    a2 = norm == 0 ? fmax(a2, fabs(d2)) : a2 + d2 * d2;
  }
  if (norm == 1) {
    a1 = sqrt(a1);
    a2 = sqrt(a2);
  }
  a1 = fmax(a1, 1e-8f);
  a2 = fmax(a2, 1e-8f);
  const float alpha = fmin(fmax(a1 / (a1 + a2), 0.0f), alpha_max);
  for (int i = 0; i < features; ++i) {
    const float d1 = projected(x1[i], w[i], t1, norm) - x1[i];
    const float d2 = projected(x0[i], w[i], t0, norm) - x0[i];
    x1[i] = clamp01((x1[i] + eta * d1) * (1.0f - alpha) + (x0[i] + eta * d2) * alpha);
  }
}

__kernel void keep_smallest_adversarial(__global float* xadv, __global const float* x, __global const float* flags,
                                        __global float* best_norms, __global float* best, const int norm,
                                        const float beta, const int features, const int batch) {
  const int n = get_global_id(0);
  if (n >= batch || flags[n] == 0.0f) return;
  const int o = n * features;
  const float t = distance(xadv + o, x + o, features, norm);
  if (t < best_norms[n]) {
    best_norms[n] = t;
    for (int i = o; i < o + features; ++i) best[i] = xadv[i];
  }
  if (beta != 1.0f)
    for (int i = o; i < o + features; ++i) xadv[i] = x[i] + (xadv[i] - x[i]) * beta;
}

inline float counter_unit(const uint i, const uint seed_lo, const uint seed_hi) {
  uint h = ((i * 0x9E3779B9u) ^ seed_lo);
  for (int round = 0; round < 2; ++round) {
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    h ^= h >> 16;
    if (round == 0) h ^= seed_hi;
  }
  return (float)(h >> 8) * (1.0f / 16777216.0f);
}

inline int square_offset(const float u, const int size, const int side) {
  return min((int)(u * (float)(size - side + 1)), size - side);
}

__kernel void square_proposal(__global float* xnew, __global const float* xbest, __global const float* x,
                              __global const float* ids, const float eps, const int side, const int c, const int h, const int w,
                              const uint seed_lo, const uint seed_hi, const int n) {
  const int i = get_global_id(0);
  if (i >= n) return;
  const int sample = i / (c * h * w), channel = (i / (h * w)) % c;
  const int row = (i / w) % h, column = i % w;
  const uint base = (uint)((int)ids[sample] * (2 + c));
  const int top = square_offset(counter_unit(base, seed_lo, seed_hi), h, side);
  const int left = square_offset(counter_unit(base + 1u, seed_lo, seed_hi), w, side);
  if (row >= top && row < top + side && column >= left && column < left + side) {
    const float sign = counter_unit(base + 2u + (uint)channel, seed_lo, seed_hi) < 0.5f ? -1.0f : 1.0f;
    xnew[i] = clamp01(x[i] + eps * sign);
  } else {
    xnew[i] = xbest[i];
  }
}

// Square-L2's meta pseudo-Gaussian square (PseudoGaussianSquare in Swift).
inline float square_bump(const int a, const int b, const int rows, const int columns) {
  const int xc = rows / 2 + 1, yc = columns / 2 + 1;
  const int kmin = max(max(max(0, xc - 1 - a), max(a - xc + 1, yc - 1 - b)), b - yc + 1);
  float value = 0.0f;
  for (int k = kmin; k < max(xc, yc); ++k) value += 1.0f / (float)((k + 1) * (k + 1));
  return value;
}

inline float square_bump_norm(const int rows, const int columns) {
  float total = 0.0f;
  for (int a = 0; a < rows; ++a)
    for (int b = 0; b < columns; ++b) {
      const float v = square_bump(a, b, rows, columns);
      total += v * v;
    }
  return fmax(sqrt(total), 1e-12f);
}

inline float square_pattern(const int i, const int j, const int side, const int transposed, const float top_norm,
                            const float bottom_norm) {
  const int r = transposed ? j : i, c = transposed ? i : j;
  const int top_rows = side / 2;
  const float inv_sqrt2 = 0.70710678f;
  if (r < top_rows) return square_bump(r, c, top_rows, side) / top_norm * inv_sqrt2;
  return -square_bump(r - top_rows, c, side - top_rows, side) / bottom_norm * inv_sqrt2;
}

// One work-item per sample (see squareL2Proposal in Swift).
__kernel void square_l2_proposal(__global float* xnew, __global const float* xbest, __global const float* x,
                                 __global const float* ids, const float eps, const int side, const int c,
                                 const int h, const int w, const uint seed_lo, const uint seed_hi, const int batch) {
  const int n = get_global_id(0);
  if (n >= batch) return;
  const int features = c * h * w, o = n * features;
  const uint base = (uint)((int)ids[n] * (5 + c));
  const int top = square_offset(counter_unit(base, seed_lo, seed_hi), h, side);
  const int left = square_offset(counter_unit(base + 1u, seed_lo, seed_hi), w, side);
  const int top2 = square_offset(counter_unit(base + 2u, seed_lo, seed_hi), h, side);
  const int left2 = square_offset(counter_unit(base + 3u, seed_lo, seed_hi), w, side);
  const int transposed = counter_unit(base + 4u, seed_lo, seed_hi) < 0.5f;
  const float top_norm = square_bump_norm(side / 2, side), bottom_norm = square_bump_norm(side - side / 2, side);
  float image = 0.0f, windows = 0.0f;
  float first_norms[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (int i = 0; i < features; ++i) {
    const int ch = i / (h * w), r = (i / w) % h, col = i % w;
    const float d = xbest[o + i] - x[o + i];
    const bool in1 = r >= top && r < top + side && col >= left && col < left + side;
    const bool in2 = r >= top2 && r < top2 + side && col >= left2 && col < left2 + side;
    image += d * d;
    if (in1 || in2) windows += d * d;
    if (in1) first_norms[ch] += d * d;
  }
  for (int ch = 0; ch < c; ++ch) first_norms[ch] = sqrt(first_norms[ch]);
  float fresh_norm = 0.0f;
  for (int ch = 0; ch < c; ++ch) {
    const float sign = counter_unit(base + 5u + (uint)ch, seed_lo, seed_hi) < 0.5f ? -1.0f : 1.0f;
    for (int r = top; r < top + side; ++r)
      for (int col = left; col < left + side; ++col) {
        const int i = (ch * h + r) * w + col;
        const float v = square_pattern(r - top, col - left, side, transposed, top_norm, bottom_norm) * sign
                        + (xbest[o + i] - x[o + i]) / (1e-12f + first_norms[ch]);
        fresh_norm += v * v;
      }
  }
  const float scale = sqrt(fmax(eps * eps - image, 0.0f) / (float)c + windows) / (1e-12f + sqrt(fresh_norm));
  float total = 0.0f;
  for (int pass = 0; pass < 2; ++pass) {
    const float to_ball = eps / (sqrt(total) + 1e-12f);
    for (int i = 0; i < features; ++i) {
      const int ch = i / (h * w), r = (i / w) % h, col = i % w;
      const bool in1 = r >= top && r < top + side && col >= left && col < left + side;
      const bool in2 = r >= top2 && r < top2 + side && col >= left2 && col < left2 + side;
      float v;
      if (in1) {
        const float sign = counter_unit(base + 5u + (uint)ch, seed_lo, seed_hi) < 0.5f ? -1.0f : 1.0f;
        v = (square_pattern(r - top, col - left, side, transposed, top_norm, bottom_norm) * sign
             + (xbest[o + i] - x[o + i]) / (1e-12f + first_norms[ch])) * scale;
      } else {
        v = in2 ? 0.0f : xbest[o + i] - x[o + i];
      }
      if (pass == 0) total += v * v;
      else xnew[o + i] = clamp01(x[o + i] + v * to_ball);
    }
  }
}

__kernel void square_accept(__global float* xbest, __global float* best_margins, __global const float* xnew,
                            __global const float* margins, __global float* accepted, const int has_accepted,
                            const int width, const int batch) {
  const int n = get_global_id(0);
  if (n >= batch) return;
  const int better = best_margins[n] > 0.0f && margins[n] < best_margins[n];
  if (has_accepted) accepted[n] = better ? 1.0f : 0.0f;
  if (!better) return;
  best_margins[n] = margins[n];
  for (int i = n * width; i < (n + 1) * width; ++i) xbest[i] = xnew[i];
}

// Square's incremental evaluation: windows cut from planes (0 outside), and written back.
__kernel void crop_windows(__global float* out, __global const float* x, __global const float* corners, const int c,
                           const int h, const int w, const int oh, const int ow, const int n) {
  const int i = get_global_id(0);
  if (i >= n) return;
  const int plane = i / (oh * ow), sample = plane / c;
  const int y = (int)corners[2 * sample] + (i / ow) % oh, x0 = (int)corners[2 * sample + 1] + i % ow;
  out[i] = y >= 0 && y < h && x0 >= 0 && x0 < w ? x[(plane * h + y) * w + x0] : 0.0f;
}

__kernel void paste_windows(__global float* into, __global const float* into_corners, __global const float* window,
                            __global const float* window_corners, __global const float* rows, const int has_into_corners,
                            const int has_rows, const int c, const int ih, const int iw, const int wh, const int ww,
                            const int ph, const int pw, const int n) {
  const int i = get_global_id(0);
  if (i >= n) return;
  const int plane = i / (wh * ww), sample = plane / c;
  if (has_rows && rows[sample] == 0.0f) return;
  const int y = (int)window_corners[2 * sample] + (i / ww) % wh, x = (int)window_corners[2 * sample + 1] + i % ww;
  const int ty = y - (has_into_corners ? (int)into_corners[2 * sample] : 0);
  const int tx = x - (has_into_corners ? (int)into_corners[2 * sample + 1] : 0);
  if (y < 0 || y >= ph || x < 0 || x >= pw || ty < 0 || ty >= ih || tx < 0 || tx >= iw) return;
  into[(plane * ih + ty) * iw + tx] = window[i];
}

// Projects the row d onto the ball of radius r (see projectOntoBall in Swift).
inline void project_onto_ball(__global float* d, const int count, const float r, const int norm) {
  if (norm == 0) {
    for (int i = 0; i < count; ++i) d[i] = fmin(fmax(d[i], -r), r);
  } else if (norm == 1) {
    float dd = 0.0f;
    for (int i = 0; i < count; ++i) dd += d[i] * d[i];
    const float shrink = fmin(1.0f, r / (sqrt(dd) + 1e-12f));
    for (int i = 0; i < count; ++i) d[i] *= shrink;
  } else {
    float total = 0.0f, peak = 0.0f;
    for (int i = 0; i < count; ++i) {
      total += fabs(d[i]);
      peak = fmax(peak, fabs(d[i]));
    }
    if (total <= r) return;
    float low = 0.0f, high = peak;
    for (int k = 0; k < 40; ++k) {
      const float mid = (low + high) * 0.5f;
      float kept = 0.0f;
      for (int i = 0; i < count; ++i) kept += fmax(fabs(d[i]) - mid, 0.0f);
      if (kept > r) low = mid; else high = mid;
    }
    for (int i = 0; i < count; ++i) d[i] = d[i] > 0.0f ? fmax(d[i] - high, 0.0f) : fmin(d[i] + high, 0.0f);
  }
}

__kernel void fmn_step(__global float* xadv, __global const float* x, __global const float* g,
                       __global const float* losses, __global const float* flags, __global float* velocity,
                       __global float* epsilons, __global const float* best_norms, __global const float* worst_norms,
                       const int norm, const float alpha, const float gamma, const float momentum,
                       const int features, const int batch) {
  const int n = get_global_id(0);
  if (n >= batch) return;
  const int o = n * features;
  const float current = distance(xadv + o, x + o, features, norm);
  float g2 = 0.0f, g_dual = 0.0f;
  for (int i = o; i < o + features; ++i) {
    const float gi = g[i];
    g2 += gi * gi;
    g_dual = norm == 0 ? g_dual + fabs(gi) : (norm == 2 ? fmax(g_dual, fabs(gi)) : g_dual);
  }
  if (norm == 1) g_dual = sqrt(g2);
  float eps = epsilons[n];
  if (flags[n] != 0.0f) {
    eps = fmin(eps * (1.0f - gamma), best_norms[n]);
  } else if (best_norms[n] < INFINITY) {
    eps = eps * (1.0f + gamma);
  } else {
    eps = (current + fabs(losses[n]) / fmax(g_dual, 1e-12f)) * (1.0f + gamma);
  }
  eps = fmin(eps, worst_norms[n]);
  epsilons[n] = eps;
  const float g_scale = 1.0f / fmax(sqrt(g2), 1e-12f);
  for (int i = o; i < o + features; ++i) {
    velocity[i] = momentum * velocity[i] + g[i] * g_scale;
    xadv[i] = (xadv[i] - x[i]) - alpha * velocity[i];
  }
  project_onto_ball(xadv + o, features, eps, norm);
  for (int i = o; i < o + features; ++i) xadv[i] = clamp01(x[i] + xadv[i]);
}
