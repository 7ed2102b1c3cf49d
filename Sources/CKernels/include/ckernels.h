#ifndef ADVPRUNE_CKERNELS_H
#define ADVPRUNE_CKERNELS_H

#include <stdint.h>

/// Which copy of the hot loops below runs: each is compiled for AVX-512, AVX2 + FMA and baseline
/// x86-64, and the best the CPU supports is chosen by its features when first needed
/// (`ADVPRUNE_CPU_ISA=baseline|avx2|avx512` asks for a lower one).
enum { ADVPRUNE_ISA_BASELINE = 0, ADVPRUNE_ISA_AVX2 = 1, ADVPRUNE_ISA_AVX512 = 2 };
/// The copy in use.
int advprune_isa(void);
/// Uses `requested` from now on, or the best the CPU supports when it lacks it (or for -1); returns the one in use.
int advprune_isa_select(int requested);
const char *advprune_isa_name(int isa);
/// The best the CPU supports, whatever the copy in use (what a CPU OpenCL device compiles for).
int advprune_isa_supported(void);
/// One spin-wait step (x86's `pause`): a waiting thread yields its core's pipeline to a sibling.
void advprune_spin_pause(void);

/// The inner loop of the CPU backend's sparse convolution, in C for its per-CPU copies.
///
/// For rows r in [row_begin, row_end) and t in [t_begin, t_end):
///   out[r * out_stride + t] = (bias ? bias[r] : 0) + sum over e in [start[r], start[r + 1]) of
///                             values[e] * src[offsets[e] + t]
/// summed in e order, then + residual[r * out_stride + t] (when residual is not NULL), max(., 0)
/// (when relu), and 0 where keep[t % keep_period] is 0 (when keep is not NULL; it holds
/// keep_period + 256 values, the pattern repeated that far). A block of outputs stays in registers while a row's nonzeros stream past,
/// so each nonzero costs one load and one FMA per output, not a load and a store of the output;
/// tiles of outputs are the outer loop, so one window of the source serves every row.
void advprune_sparse_rows(int64_t row_begin, int64_t row_end, const int32_t *start, const int64_t *offsets,
                          const float *values, const float *bias, const float *src, float *out, int64_t out_stride,
                          int64_t t_begin, int64_t t_end, const float *residual, int32_t relu, const float *keep,
                          int64_t keep_period);

/// Winograd F(2x2, 3x3) (tile = 2) or F(4x4, 3x3) (tile = 4) for 3x3 convolutions with stride 1:
/// the weight transform, the input transform, then for each of the X = (tile + 2)^2 transformed
/// elements xi a GEMM over channels (the caller's), then the output transform. T = images * TH *
/// TW tiles with TH = ceil(OH / tile), TW = ceil(OW / tile) over the output, in an order private
/// to the two transforms of a pass (the products take them in any order): t = (n * TH + ty) * TW
/// + tx, except for F(4x4) on planes of at most four tiles with 16 images or more, which go in
/// blocks of 16 images, tile by tile (winograd4.c's image order).
///
/// Element xi's channels start S = advprune_winograd_stride(channels, T) floats after element
/// xi - 1's (so a transformed buffer holds X * S floats, the last S - channels * T of each
/// element unused): channels * T rounded up to an odd number of 64-byte lines.
///
/// Input: v[xi * S + c * T + t] from x [images, channels, height, width], tile (ty, tx)
/// reading rows tile * ty - padding + [0, tile + 2) and the same columns, zero outside. With
/// relu_output (x's shape), x is read as x * (relu_output > 0): the gradient through a ReLU.
void advprune_winograd_input(int64_t tile, const float *x, const float *relu_output, int64_t images, int64_t channels,
                             int64_t height, int64_t width, int64_t padding, int64_t th, int64_t tw, float *v);
/// Output: y [images, channels, height, width] (the output's size; plus bias[k] when given, then
/// max(., 0) when relu) from m[xi * S + k * T + t].
void advprune_winograd_output(int64_t tile, const float *m, int64_t images, int64_t channels, int64_t height,
                              int64_t width, const float *bias, int relu, float *y);
/// S above. Each transform vector reads or writes a vector of every element, X of them S floats
/// apart: where S was a multiple of 4 KiB (channels * T is, for every slice of a 32x32 plane
/// with 16 or more channels) all X fell on the same L1 sets, and the transforms of the compact
/// ResNet18 ran 1.2-1.8x slower (measured alone, per layer).
int64_t advprune_winograd_stride(int64_t channels, int64_t tiles);
/// Weights w [out, in, 3, 3] to u[(xi * rows + r) * cols + col]: rows x cols = out x in for the
/// forward, in x out (the kernel turned by 180 degrees) for the input gradient, which is a 3x3
/// stride-1 convolution of the output gradient with padding 2 - padding.
void advprune_winograd_weights(int64_t tile, const float *w, int64_t out_channels, int64_t in_channels,
                               int for_input_gradient, float *u);

/// A convolution's weight w [out, in, k, k] for the direct kernels: [in * k * k][out32] for the
/// forward, [k * k][out][in32] for the input gradient (out32, in32: rounded up to 32, zero-filled).
void advprune_direct_conv_weights(const float *weight, int64_t out_channels, int64_t in_channels, int64_t k, int for_input_gradient,
                                  float *wt);
/// Floats of that layout, and of the per-call scratch below (the padded input; dy with its border).
int64_t advprune_direct_conv_weight_count(int64_t out_channels, int64_t in_channels, int64_t k, int for_input_gradient);
int64_t advprune_direct_conv_scratch_count(int64_t c, int64_t h, int64_t w, int64_t o, int64_t k, int64_t s, int64_t pad,
                                           int for_input_gradient);
/// One image's convolution without a column matrix (strided layers): x [c, h, w] -> y [o, oh, ow],
/// k x k kernel, stride s, zero padding pad, plus bias (or NULL), then max(., 0) when relu.
/// scratch: `advprune_direct_conv_scratch_count` floats (none unpadded: x is read in place).
void advprune_direct_conv_forward(const float *x, int64_t c, int64_t h, int64_t w, const float *wt, int64_t o, int64_t k, int64_t s,
                                  int64_t pad, const float *bias, int relu, float *scratch, float *y);
/// Its input gradient: dy [o, oh, ow] (times relu_output > 0 where given) -> dx [c, h, w], every
/// value written. k at most 7. scratch: `advprune_direct_conv_scratch_count` floats.
void advprune_direct_conv_backward_data(const float *dy, const float *relu_output, int64_t c, int64_t h, int64_t w, const float *wt,
                                        int64_t o, int64_t k, int64_t s, int64_t pad, float *scratch, float *dx);

/// c [m, n] = a [m, k] * b [k, n], row-major, c overwritten, each sum in k order: the Winograd
/// products of narrow layers, where OpenBLAS's zeroing and packing cost as much as its multiply.
/// k is at most 4096 (the last columns use a k x 16 panel on the stack).
void advprune_small_gemm(int64_t m, int64_t n, int64_t k, const float *a, const float *b, float *c);

/// 2x2 max pooling, stride 2, of x [planes * 2 * row_pairs_per_plane, width] seen as row pairs:
/// output row r (of row_pairs in all; this call does [first, last)) has width / 2 values, the
/// first largest of each window by `>` (NaN never wins over an earlier value). The backward
/// writes dx over the same row pairs: dy at the window's winner, 0 at its other three places.
void advprune_maxpool2x2_forward(const float *x, int64_t row_pairs, int64_t width, int64_t first, int64_t last,
                                 float *y);
void advprune_maxpool2x2_backward(const float *x, const float *dy, int64_t row_pairs, int64_t width, int64_t first,
                                  int64_t last, float *dx);

/// dst[i] = relu_output[i] > 0 ? src[i] : 0 for i in [0, count): the gradient through a ReLU
/// whose output is relu_output (dst may be src).
void advprune_relu_mask(float *dst, const float *src, const float *relu_output, int64_t count);

/// FAB's step onto the linearised boundary w.z = w.p - c from p within [0, 1]: the signed length t
/// with sum_i w_i (clamp(p_i + t d_i) - p_i) = -c, d = sign(w) (L-inf) or w (l2 nonzero), by
/// bisection (40 halvings at most, from [0, 1] for L-inf and from [0, |c| / |w|^2] doubled until
/// it brackets for L2); where the box cannot reach the hyperplane, the longest step tried.
float advprune_boundary_step(const float *p, const float *w, int64_t count, float c, int l2);

/// Rows of a plane between two row pitches: dst[r * dst_pitch + i] = src[r * src_pitch + i] for
/// r < rows, i < width; `_relu` stores max(src, 0), `_masked` src where relu_output (src's pitch)
/// is positive and 0 elsewhere. dst must not overlap src.
void advprune_copy_rows(float *dst, int64_t dst_pitch, const float *src, int64_t src_pitch, int64_t rows, int64_t width);
void advprune_copy_rows_relu(float *dst, int64_t dst_pitch, const float *src, int64_t src_pitch, int64_t rows,
                             int64_t width);
void advprune_copy_rows_masked(float *dst, int64_t dst_pitch, const float *src, const float *relu_output,
                               int64_t src_pitch, int64_t rows, int64_t width);

/// One input row's pixels of one stride phase column (the sparse direct conv's strided layout):
/// pixels image, image + stride, ... (count of them) of a plane sit at grid, grid + 1, ... of the
/// channel's phases; `laid` is 0 where no tap reads that phase.
typedef struct {
  int64_t image, grid, count, laid;
} advprune_phase_run;

/// One plane onto its phases (the laid runs) and back (the other runs' pixels get 0).
void advprune_gather_runs(float *grid, const float *image, const advprune_phase_run *runs, int64_t count, int64_t stride);
void advprune_scatter_runs(float *image, const float *grid, const advprune_phase_run *runs, int64_t count, int64_t stride);

/// Square's windows, one plane at a time. Crop: out [out_height, out_width] = the plane x
/// [height, width] from row top and column left, zero outside it. Paste: window [window_height,
/// window_width], whose corner is (top, left) in a plane of plane_height x plane_width, into
/// `into` [into_height, into_width] whose corner is (into_top, into_left) in the same plane, where
/// both lie inside that plane.
void advprune_crop_window(float *out, int64_t out_height, int64_t out_width, const float *x, int64_t height,
                          int64_t width, int64_t top, int64_t left);
void advprune_paste_window(float *into, int64_t into_height, int64_t into_width, int64_t into_top,
                           int64_t into_left, const float *window, int64_t window_height, int64_t window_width,
                           int64_t top, int64_t left, int64_t plane_height, int64_t plane_width);

#endif
