#include "isa.h"

#include <string.h>

// C = A B for the Winograd products of narrow layers (channels in the tens): row-major, C
// overwritten. OpenBLAS spends as long zeroing C (its beta = 0 pass) and packing as multiplying
// when K is 8 or 16 (a compacted SmallCNN: 45 % of its PGD step in sgemm_beta, sgemm_itcopy and
// the kernel together). Here a block of ROWS x 16 outputs stays in registers while K streams
// past: one 16-float load of B and ROWS broadcasts of A per k, each output stored once. B's
// 16-column panel (K x 64 bytes) stays in L1 across the row blocks.

typedef float v16 __attribute__((vector_size(64)));
#define LANES 16
#define MAX_ROWS 6

static inline __attribute__((always_inline)) void block(int rows, int64_t k, const float *a, int64_t lda, const float *b,
                                                        int64_t ldb, float *c, int64_t ldc, int64_t columns) {
  v16 acc[MAX_ROWS];
  for (int r = 0; r < MAX_ROWS; ++r) acc[r] = (v16){};
  for (int64_t p = 0; p < k; ++p) {
    v16 bv;
    memcpy(&bv, b + p * ldb, sizeof bv);
    for (int r = 0; r < MAX_ROWS; ++r) {
      if (r < rows) acc[r] += a[r * lda + p] * bv;
    }
  }
  for (int r = 0; r < MAX_ROWS; ++r) {
    if (r >= rows) break;
    if (columns == LANES) {
      memcpy(c + r * ldc, &acc[r], sizeof acc[r]);
    } else {
      float out[LANES];
      memcpy(out, &acc[r], sizeof out);
      memcpy(c + r * ldc, out, (size_t)columns * sizeof(float));
    }
  }
}

// A block of `rows` (at most MAX_ROWS) rows, each row count its own copy of `block`.
static inline __attribute__((always_inline)) void row_block(int64_t rows, int64_t k, const float *a, const float *b,
                                                            int64_t ldb, float *c, int64_t ldc, int64_t columns) {
  switch (rows) {
    case 6: block(6, k, a, k, b, ldb, c, ldc, columns); break;
    case 5: block(5, k, a, k, b, ldb, c, ldc, columns); break;
    case 4: block(4, k, a, k, b, ldb, c, ldc, columns); break;
    case 3: block(3, k, a, k, b, ldb, c, ldc, columns); break;
    case 2: block(2, k, a, k, b, ldb, c, ldc, columns); break;
    default: block(1, k, a, k, b, ldb, c, ldc, columns); break;
  }
}

// The last columns (fewer than 16) through a zero-padded copy of B's panel.
static inline __attribute__((always_inline)) void advprune_small_gemm_body(int64_t m, int64_t n, int64_t k, const float *a,
                                                                           const float *b, float *c) {
  const int64_t full = n / LANES * LANES;
  for (int64_t j = 0; j < full; j += LANES) {
    for (int64_t i = 0; i < m; i += MAX_ROWS) row_block(m - i < MAX_ROWS ? m - i : MAX_ROWS, k, a + i * k, b + j, n, c + i * n + j, n, LANES);
  }
  const int64_t rest = n - full;
  if (rest == 0) return;
  float panel[k * LANES];
  for (int64_t p = 0; p < k; ++p) {
    memset(panel + p * LANES, 0, sizeof(float) * LANES);
    memcpy(panel + p * LANES, b + p * n + full, (size_t)rest * sizeof(float));
  }
  for (int64_t i = 0; i < m; i += MAX_ROWS) row_block(m - i < MAX_ROWS ? m - i : MAX_ROWS, k, a + i * k, panel, LANES, c + i * n + full, n, rest);
}

ADVPRUNE_CLONES(void, advprune_small_gemm, (int64_t m, int64_t n, int64_t k, const float *a, const float *b, float *c), (m, n, k, a, b, c), )
