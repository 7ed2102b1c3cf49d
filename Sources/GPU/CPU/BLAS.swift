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
