import CKernels
import COpenCL

/// The CPU backend's one door to C: row-major single-precision GEMM from the system CBLAS.
/// `C = alpha * op(A) * op(B) + beta * C`, `op(A)` is m x k, `op(B)` is k x n.
func blasGemm(
  transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
  a: UnsafePointer<Float>, b: UnsafePointer<Float>, beta: Float, c: UnsafeMutablePointer<Float>
) {
  let lda = transposeA ? m : k
  let ldb = transposeB ? k : n
  cblas_sgemm(
    CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(n))
}

/// One BLAS thread per caller: the CPU backend parallelises over the batch itself, and
/// OpenBLAS's own threads would spin (sched_yield) against ours between calls.
let singleThreadedBLAS: Void = openblas_set_num_threads(1)

extension CPUBackend {
  /// Products over at most this many terms run in `advprune_small_gemm`, more through BLAS.
  /// Measured alternately (same binary, AVX2 host): PGD-40 of the dense SmallCNN (32 and 64
  /// channels) 2.34-2.49 s against 2.73-2.81 s with OpenBLAS, of a compacted one (8 and 16)
  /// 0.48-0.57 against 0.57-0.66 s; ResNet18 at batch 128 per layer about 9 % faster at 64
  /// channels, level (within the noise) at 128 to 512, where OpenBLAS's packing pays.
  static let smallGemmDepth = 64

  /// `c [m, n] = a [m, k] * b [k, n]` (row-major, c overwritten): the small kernel where k is
  /// small (at a few dozen terms OpenBLAS spends as long zeroing c and packing as multiplying),
  /// CBLAS otherwise. (SmallCNN's one-channel conv1 on im2col, k = 9 forward and 32 for the input
  /// gradient, measured no faster through it: APGD-T 12.7-13.9 s against 12.6-14.6 s.)
  func product(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>) {
    if k <= Self.smallGemmDepth {
      advprune_small_gemm(Int64(m), Int64(n), Int64(k), a, b, c)
    } else {
      blasGemm(transposeA: false, transposeB: false, m: m, n: n, k: k, alpha: 1, a: a, b: b, beta: 0, c: c)
    }
  }
}
