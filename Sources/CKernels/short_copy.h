#ifndef ADVPRUNE_SHORT_COPY_H
#define ADVPRUNE_SHORT_COPY_H

#include <stdint.h>
#include <string.h>

// Copies of a few floats (rows of small planes): through memmove each paid a call and a size
// dispatch that cost more than the copy. Any count in [k, 2k] is two fixed-size moves that may
// overlap, which compile to vector loads and stores.
static inline __attribute__((always_inline)) void copy_short(float *restrict d, const float *restrict s, int64_t n) {
  if (n > 32) {
    memcpy(d, s, (size_t)n * sizeof(float));
  } else if (n > 16) {
    memcpy(d, s, 64);
    memcpy(d + n - 16, s + n - 16, 64);
  } else if (n >= 8) {
    memcpy(d, s, 32);
    memcpy(d + n - 8, s + n - 8, 32);
  } else if (n >= 4) {
    memcpy(d, s, 16);
    memcpy(d + n - 4, s + n - 4, 16);
  } else if (n >= 2) {
    memcpy(d, s, 8);
    memcpy(d + n - 2, s + n - 2, 8);
  } else if (n == 1) {
    d[0] = s[0];
  }
}

#endif
