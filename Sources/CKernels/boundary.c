#include "isa.h"

#include <math.h>
#include <string.h>

// FAB's projection onto the linearised boundary, by bisection over the step length: each probe
// is one pass over the row, so the pass is what counts (41 per call, two calls per point and
// step). Written as a sum of |w_i| min(t q_i, room_i), with no branch per coordinate, it runs as
// 16-float vectors; the Swift loop of clamps it replaces was 12 % of FAB-T.

typedef float v16 __attribute__((vector_size(64)));
typedef int32_t i16 __attribute__((vector_size(64)));
#define LANES 16
#define SELECT(mask, a, b) ((v16)(((i16)(a) & (mask)) | ((i16)(b) & ~(mask))))

// n <= 16 floats at p as a vector, zero past n (a macro: a v16 return would change the ABI of
// the baseline copy).
#define LOAD(p, n)                                  \
  ({                                                \
    v16 v_;                                         \
    if ((n) == LANES) memcpy(&v_, (p), sizeof v_);  \
    else {                                          \
      float b_[LANES] = {0};                        \
      memcpy(b_, (p), (size_t)(n) * sizeof(float)); \
      memcpy(&v_, b_, sizeof v_);                   \
    }                                               \
    v_;                                             \
  })

// How much w.z changes, in absolute value, when z leaves p by t >= 0 along the step direction
// (sign * sign(w) for L-inf, sign * w for L2) and is held in [0, 1]: coordinate i moves
// min(t q_i, room_i) with q_i = 1 or |w_i|, room_i = 1 - p_i upward and p_i downward.
static inline float moved(const float *p, const float *w, int64_t count, float t, float sign, int l2) {
  v16 total = {0};
  for (int64_t i = 0; i < count; i += LANES) {
    const int64_t n = count - i < LANES ? count - i : LANES;
    const v16 pv = LOAD(p + i, n), wv = LOAD(w + i, n);
    const v16 a = (v16)((i16)wv & 0x7fffffff);
    const v16 room = SELECT(wv * sign > 0, 1.0f - pv, pv);
    const v16 step = l2 ? a * t : (v16){0} + t;
    total += a * SELECT(step < room, step, room);
  }
  float sum = 0;
  for (int k = 0; k < LANES; ++k) sum += total[k];
  return sum;
}

static inline __attribute__((always_inline)) float advprune_boundary_step_body(const float *p, const float *w, int64_t count, float c, int l2) {
  if (c == 0) return 0;
  const float sign = c > 0 ? -1.0f : 1.0f, goal = fabsf(c);
  float ww = 0;
  for (int64_t i = 0; i < count; ++i) ww += w[i] * w[i];
  if (ww == 0) return 0;
  float high = l2 ? goal / ww : 1.0f;
  for (int doublings = 0; l2 && moved(p, w, count, high, sign, l2) < goal && doublings < 60; ++doublings) high *= 2;
  if (moved(p, w, count, high, sign, l2) < goal) return sign * high;
  float low = 0;
  for (int k = 0; k < 40; ++k) {
    const float mid = (low + high) * 0.5f;
    if (mid == low || mid == high) break;  // float has no point between them: nothing changes any more
    if (moved(p, w, count, mid, sign, l2) < goal) low = mid;
    else high = mid;
  }
  return sign * high;
}

ADVPRUNE_CLONES(float, advprune_boundary_step, (const float *p, const float *w, int64_t count, float c, int l2), (p, w, count, c, l2), return)
