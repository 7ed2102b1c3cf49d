// Linear layers on OpenCL: the engine's GEMMs plus the bias kernels of kernels/linear.cl.
extension OpenCLBackend {
  public func linearForward(y: Tensor, x: Tensor, weight: Tensor, bias: Tensor?) throws {
    let (n, inputs, outputs) = OpShapes.linear(y: y, x: x, weight: weight, bias: bias, op: "linearForward")
    if let bias { try launch("broadcast_rows", items: n * outputs, [.buffer(y), .buffer(bias), .int(outputs), .int(n * outputs)]) }
    try engineGemm(
      transposeA: false, transposeB: true, m: n, n: outputs, k: inputs, alpha: 1,
      a: x, b: weight, beta: bias == nil ? 0 : 1, c: y)
  }

  public func linearBackwardData(dx: Tensor, dy: Tensor, weight: Tensor) throws {
    let (n, inputs, outputs) = OpShapes.linear(y: dy, x: dx, weight: weight, bias: nil, op: "linearBackwardData")
    try engineGemm(transposeA: false, transposeB: false, m: n, n: inputs, k: outputs, alpha: 1, a: dy, b: weight, beta: 0, c: dx)
  }

  public func linearBackwardWeight(dWeight: Tensor, dBias: Tensor?, dy: Tensor, x: Tensor) throws {
    let (n, inputs, outputs) = OpShapes.linear(y: dy, x: x, weight: dWeight, bias: dBias, op: "linearBackwardWeight")
    try engineGemm(transposeA: true, transposeB: false, m: outputs, n: inputs, k: n, alpha: 1, a: dy, b: x, beta: 0, c: dWeight)
    if let dBias { try launch("column_sums", items: outputs, [.buffer(dBias), .buffer(dy), .int(n), .int(outputs)]) }
  }
}
