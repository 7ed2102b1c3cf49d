import COpenCL
import Foundation

extension OpenCLBackend {
  /// Row-major SGEMM through CLBlast, with element offsets into the operands:
  /// `C = alpha * op(A) * op(B) + beta * C`, `op(A)` is m x k, `op(B)` is k x n.
  func clblastGemm(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
    a: Tensor, aOffset: Int = 0, b: Tensor, bOffset: Int = 0, beta: Float, c: Tensor, cOffset: Int = 0
  ) throws {
    guard m > 0, n > 0 else { return }
    let lda = transposeA ? m : k
    let ldb = transposeB ? k : n
    var q: cl_command_queue? = queue
    if profiling { try synchronize() }
    let start = profiling ? DispatchTime.now().uptimeNanoseconds : 0
    let status = CLBlastSgemm(
      CLBlastLayoutRowMajor, transposeA ? CLBlastTransposeYes : CLBlastTransposeNo, transposeB ? CLBlastTransposeYes : CLBlastTransposeNo, m, n,
      k, alpha, mem(a), aOffset, lda, mem(b), bOffset, ldb, beta, mem(c), cOffset, n, &q, nil)
    if status != CLBlastSuccess {
      throw CLError.device(name: device.name, call: "CLBlastSgemm(\(m)x\(n)x\(k))", code: status.rawValue, codeName: clblastErrorName(status))
    }
    if profiling {
      try check(clFinish(queue), "clFinish")
      recordWallTime(
        "clblast_sgemm (all its kernels, host-timed)", nanoseconds: Double(DispatchTime.now().uptimeNanoseconds - start),
        flops: 2 * Double(m * n * k))
    }
  }

  public func gemm(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
    a: Tensor, b: Tensor, beta: Float, c: Tensor
  ) throws {
    precondition(a.count >= m * k && b.count >= k * n && c.count >= m * n, "gemm: operands too small")
    try engineGemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a, b: b, beta: beta, c: c)
  }

  /// The GEMM of the selected engine.
  func engineGemm(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: Tensor, b: Tensor, beta: Float, c: Tensor
  ) throws {
    switch engine {
    case .native: try nativeGemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a, b: b, beta: beta, c: c)
    case .clblast: try clblastGemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a, b: b, beta: beta, c: c)
    }
  }
}
