// Linear layers as GEMMs on the CPU reference backend.
extension CPUBackend {
  public func linearForward(y: Tensor, x: Tensor, weight: Tensor, bias: Tensor?) throws {
    let (n, inputs, outputs) = OpShapes.linear(y: y, x: x, weight: weight, bias: bias, op: "linearForward")
    let yp = ptr(y)
    if let bias {
      let bp = ptr(bias)
      for row in 0..<n { (yp + row * outputs).update(from: bp, count: outputs) }
    }
    blasGemm(
      transposeA: false, transposeB: true, m: n, n: outputs, k: inputs, alpha: 1,
      a: ptr(x), b: ptr(weight), beta: bias == nil ? 0 : 1, c: yp)
  }

  public func linearBackwardData(dx: Tensor, dy: Tensor, weight: Tensor) throws {
    let (n, inputs, outputs) = OpShapes.linear(y: dy, x: dx, weight: weight, bias: nil, op: "linearBackwardData")
    blasGemm(
      transposeA: false, transposeB: false, m: n, n: inputs, k: outputs, alpha: 1,
      a: ptr(dy), b: ptr(weight), beta: 0, c: ptr(dx))
  }

  public func linearBackwardWeight(dWeight: Tensor, dBias: Tensor?, dy: Tensor, x: Tensor) throws {
    let (n, inputs, outputs) = OpShapes.linear(y: dy, x: x, weight: dWeight, bias: dBias, op: "linearBackwardWeight")
    blasGemm(
      transposeA: true, transposeB: false, m: outputs, n: inputs, k: n, alpha: 1,
      a: ptr(dy), b: ptr(x), beta: 0, c: ptr(dWeight))
    if let dBias {
      let (db, g) = (ptr(dBias), ptr(dy))
      for o in 0..<outputs {
        var s: Float = 0
        for row in 0..<n { s += g[row * outputs + o] }
        db[o] = s
      }
    }
  }
}
