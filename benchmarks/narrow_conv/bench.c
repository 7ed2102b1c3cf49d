// One thread, one convolution shape per line: advprune's Winograd F(4x4, 3x3) pass as the CPU
// backend runs it (input transform, 36 products, output transform with bias and ReLU; the
// weights transformed once, as for a frozen weight) against direct.c's direct convolution, the
// best whole pass of 300 each (and the best of each Winograd stage), and the largest difference
// between their outputs (exit status 1 above 1e-3). Like the backend's slices, the products span
// at least 128 tiles: IMAGES is raised to that where the planes are small.
// Usage: bench IMAGES IN_CHANNELS OUT_CHANNELS SIZE PADDING (a SIZE x SIZE plane).
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ckernels.h"

void direct3x3(const float *x, int64_t images, int64_t in_channels, int64_t height, int64_t width, int64_t padding,
               const float *blocked, int64_t out_channels, const float *bias, int relu, float *y, float *padded);

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static float *uniform(int64_t count, unsigned *state) {
  float *p = malloc(sizeof(float) * (size_t)(count + 64));
  for (int64_t i = 0; i < count; ++i) p[i] = (float)rand_r(state) / (float)RAND_MAX - 0.5f;
  return p;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s IMAGES IN_CHANNELS OUT_CHANNELS SIZE PADDING\n", argv[0]);
    return 2;
  }
  const int64_t cin = atol(argv[2]), cout = atol(argv[3]), size = atol(argv[4]), pad = atol(argv[5]);
  const int64_t out = size + 2 * pad - 2, th = (out + 3) / 4, least = (128 + th * th - 1) / (th * th);
  const int64_t nb = atol(argv[1]) > least ? atol(argv[1]) : least, tiles = nb * th * th;
  unsigned state = 1;
  float *x = uniform(nb * cin * size * size, &state), *w = uniform(cout * cin * 9, &state), *bias = uniform(cout, &state);
  float *winograd = calloc((size_t)(nb * cout * out * out + 64), sizeof(float));
  float *direct = calloc((size_t)(nb * cout * out * out + 64), sizeof(float));
  const int64_t vs = advprune_winograd_stride(cin, tiles), ms = advprune_winograd_stride(cout, tiles);
  float *u = malloc(sizeof(float) * (size_t)(36 * cin * cout)), *v = malloc(sizeof(float) * (size_t)(36 * vs + 64));
  float *m = malloc(sizeof(float) * (size_t)(36 * ms + 64));
  advprune_winograd_weights(4, w, cout, cin, 0, u);
  // direct.c's weights: blocks of 8 output channels, [block][in channel][tap][8].
  float *blocked = calloc((size_t)((cout + 7) / 8 * 8 * cin * 9), sizeof(float));
  for (int64_t o = 0; o < cout; ++o)
    for (int64_t c = 0; c < cin; ++c)
      for (int t = 0; t < 9; ++t) blocked[((o / 8 * cin + c) * 9 + t) * 8 + o % 8] = w[(o * cin + c) * 9 + t];
  const int64_t pitch = (out + 2 + 15) / 16 * 16 + 16;
  float *padded = malloc(sizeof(float) * (size_t)(cin * (size + 2 * pad) * pitch + 64));
  double best[4] = {1e9, 1e9, 1e9, 1e9}, pass = 1e9;  // input transform, products, output, direct; a whole pass
  for (int rep = 0; rep < 300; ++rep) {
    double t[5];
    t[0] = now();
    advprune_winograd_input(4, x, NULL, nb, cin, size, size, pad, th, th, v);
    t[1] = now();
    for (int xi = 0; xi < 36; ++xi) advprune_small_gemm(cout, tiles, cin, u + xi * cout * cin, v + xi * vs, m + xi * ms);
    t[2] = now();
    advprune_winograd_output(4, m, nb, cout, out, out, bias, 1, winograd);
    t[3] = now();
    direct3x3(x, nb, cin, size, size, pad, blocked, cout, bias, 1, direct, padded);
    t[4] = now();
    for (int k = 0; k < 4; ++k)
      if (t[k + 1] - t[k] < best[k]) best[k] = t[k + 1] - t[k];
    if (t[3] - t[0] < pass) pass = t[3] - t[0];
  }
  double diff = 0;
  for (int64_t i = 0; i < nb * cout * out * out; ++i) {
    const double d = winograd[i] > direct[i] ? winograd[i] - direct[i] : direct[i] - winograd[i];
    if (d > diff) diff = d;
  }
  const double macs = (double)(nb * cout * cin * 9 * out * out), products = 36.0 * (double)(cout * cin * tiles);
  // direct.c computes whole vectors of 16 output columns: this share of their lanes are outputs.
  const double lanes = (double)out / (double)((out + 15) / 16 * 16);
  printf("| %ld -> %ld, %ldx%ld, %ld images | %.1f | %.1f / %.1f / %.1f | %.1f | %.1f | %.0f | %.0f %% | %.2fx | %.1e |\n",
         (long)cin, (long)cout, (long)size, (long)size, (long)nb, pass * 1e6, best[0] * 1e6, best[1] * 1e6, best[2] * 1e6,
         2 * products / best[1] / 1e9, best[3] * 1e6, 2 * macs / best[3] / 1e9, 100 * lanes, pass / best[3], diff);
  // The two convolutions compute the same thing: a yardstick that disagrees measures nothing.
  if (!(diff <= 1e-3)) {
    fprintf(stderr, "direct and Winograd outputs differ by %.3g\n", diff);
    return 1;
  }
  return 0;
}
