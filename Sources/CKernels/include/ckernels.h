#ifndef ADVPRUNE_CKERNELS_H
#define ADVPRUNE_CKERNELS_H

#include <stdint.h>

/// The inner loop of the CPU backend's sparse convolution, in C for its per-CPU clones
/// (AVX-512, AVX2 + FMA, baseline: picked when the program loads).
///
/// For rows r in [row_begin, row_end) and t in [0, length):
///   out[r * out_stride + t] = (bias ? bias[r] : 0) + sum over e in [start[r], start[r + 1]) of
///                             values[e] * src[offsets[e] + t]
/// summed in e order. A block of outputs stays in registers while a row's nonzeros stream past,
/// so each nonzero costs one load and one FMA per output, not a load and a store of the output;
/// tiles of outputs are the outer loop, so one window of the source serves every row.
void advprune_sparse_rows(int64_t row_begin, int64_t row_end, const int32_t *start, const int64_t *offsets,
                          const float *values, const float *bias, const float *src, float *out, int64_t out_stride,
                          int64_t length);

#endif
