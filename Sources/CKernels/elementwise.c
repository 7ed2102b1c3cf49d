#include "isa.h"

#include <string.h>

// The ReLU's gradient as a mask, 16 floats per compare and blend. The Swift loop `y > 0 ? dy : 0`
// loaded dy only where taken, which the compiler kept scalar with a branch per float (10 % of a
// 99 %-sparse ResNet18's PGD step). Each vector is loaded before it is stored, so dst may be src.

typedef float v16 __attribute__((vector_size(64)));
typedef int32_t i16 __attribute__((vector_size(64)));
#define LANES 16

static inline __attribute__((always_inline)) void advprune_relu_mask_body(float *dst, const float *src,
                                                                          const float *relu_output, int64_t count) {
  int64_t i = 0;
  for (; i + LANES <= count; i += LANES) {
    v16 v, y;
    memcpy(&v, src + i, sizeof v);
    memcpy(&y, relu_output + i, sizeof y);
    v = (v16)((i16)v & (y > (v16){}));
    memcpy(dst + i, &v, sizeof v);
  }
  for (; i < count; ++i) dst[i] = relu_output[i] > 0.0f ? src[i] : 0.0f;
}

ADVPRUNE_CLONES(void, advprune_relu_mask, (float *dst, const float *src, const float *relu_output, int64_t count), (dst, src, relu_output, count), )
