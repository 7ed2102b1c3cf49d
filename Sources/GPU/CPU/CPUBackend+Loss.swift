import Foundation

// Softmax cross-entropy on the CPU reference backend.
extension CPUBackend {
  public func softmaxCrossEntropy(losses: Tensor, dLogits: Tensor?, logits: Tensor, labels: Tensor, scale: Float) throws {
    let (n, classes) = OpShapes.loss(losses: losses, dLogits: dLogits, logits: logits, labels: labels)
    let (lp, zp, yp, dp) = (ptr(losses), ptr(logits), ptr(labels), dLogits.map(ptr))
    for row in 0..<n {
      let z = zp + row * classes
      let label = Int(yp[row])
      precondition(label >= 0 && label < classes, "softmaxCrossEntropy: label \(yp[row]) outside 0..<\(classes)")
      var peak = z[0]
      for c in 1..<classes { peak = max(peak, z[c]) }
      var total: Float = 0
      for c in 0..<classes { total += expf(z[c] - peak) }
      lp[row] = logf(total) + peak - z[label]
      if let dp {
        let d = dp + row * classes
        for c in 0..<classes {
          let p = expf(z[c] - peak) / total
          d[c] = scale * (p - (c == label ? 1 : 0))
        }
      }
    }
  }
}

extension CPUBackend {
  public func softmaxKL(losses: Tensor, dP: Tensor?, dQ: Tensor?, p: Tensor, q: Tensor, scale: Float) throws {
    precondition(p.rank == 2 && p.shape == q.shape, "softmaxKL: logits \(p.shape) and \(q.shape) must be the same [N, C]")
    let (n, classes) = (p.shape[0], p.shape[1])
    precondition(losses.count == n, "softmaxKL: losses must have \(n) entries")
    let (lp, pp, qp, dpp, dqp) = (ptr(losses), ptr(p), ptr(q), dP.map(ptr), dQ.map(ptr))
    for row in 0..<n {
      let (zp, zq) = (pp + row * classes, qp + row * classes)
      let (lseP, lseQ) = (logSumExp(zp, classes), logSumExp(zq, classes))
      var kl: Float = 0
      for c in 0..<classes {
        let logP = zp[c] - lseP
        kl += expf(logP) * (logP - (zq[c] - lseQ))
      }
      lp[row] = kl
      for c in 0..<classes {
        let (logP, logQ) = (zp[c] - lseP, zq[c] - lseQ)
        dqp?[row * classes + c] = scale * (expf(logQ) - expf(logP))
        dpp?[row * classes + c] = scale * expf(logP) * (logP - logQ - kl)
      }
    }
  }

  /// log(sum_c exp(z_c)), shifted by the maximum for stability.
  func logSumExp(_ z: UnsafePointer<Float>, _ count: Int) -> Float {
    var peak = z[0]
    for c in 1..<count { peak = max(peak, z[c]) }
    var total: Float = 0
    for c in 0..<count { total += expf(z[c] - peak) }
    return logf(total) + peak
  }
}
