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
