// Batch normalisation, residual adds and average pooling on OpenCL (kernels/norm.cl).
extension OpenCLBackend {
  public func add(out: Tensor, a: Tensor, b: Tensor) throws {
    checkSameCount(out, a, op: "add")
    checkSameCount(a, b, op: "add")
    try launch("add", items: a.count, [.buffer(out), .buffer(a), .buffer(b), .int(a.count)])
  }

  public func addReLU(out: Tensor, a: Tensor, b: Tensor) throws {
    checkSameCount(out, a, op: "addReLU")
    checkSameCount(a, b, op: "addReLU")
    try launch("add_relu", items: a.count, [.buffer(out), .buffer(a), .buffer(b), .int(a.count)])
  }

  public func avgPoolForward(y: Tensor, x: Tensor, kernel k: Int) throws {
    let (_, h, w) = OpShapes.avgPool(x: x, y: y, kernel: k, op: "avgPoolForward")
    try launch("avgpool_forward", items: y.count, [.buffer(y), .buffer(x), .int(h), .int(w), .int(k), .int(y.count)])
  }

  public func avgPoolBackward(dx: Tensor, dy: Tensor, kernel k: Int) throws {
    let (_, h, w) = OpShapes.avgPool(x: dx, y: dy, kernel: k, op: "avgPoolBackward")
    try launch("avgpool_backward", items: dx.count, [.buffer(dx), .buffer(dy), .int(h), .int(w), .int(k), .int(dx.count)])
  }

  public func batchNormForward(
    y: Tensor, x: Tensor, gamma: Tensor, beta: Tensor, mean: Tensor, invStd: Tensor,
    runningMean: Tensor, runningVar: Tensor, training: Bool, momentum: Float, eps: Float, relu: Bool
  ) throws {
    let (n, c, hw) = OpShapes.batchNorm(x: x, channelTensors: [gamma, beta, mean, invStd, runningMean, runningVar], op: "batchNormForward")
    checkSameCount(y, x, op: "batchNormForward")
    // One work-group (of groupSize items) per channel.
    try launch(
      "bn_stats", items: c * Self.groupSize,
      [
        .buffer(x), .buffer(mean), .buffer(invStd), .buffer(runningMean), .buffer(runningVar), .int(n), .int(c), .int(hw),
        .int(training ? 1 : 0), .float(momentum), .float(eps),
      ])
    try launch(
      "bn_apply", items: n * c * Self.chunks(hw),
      [
        .buffer(y), .buffer(x), .buffer(gamma), .buffer(beta), .buffer(mean), .buffer(invStd), .int(c), .int(hw), .int(n * c), .int(Self.bnChunk),
        .int(relu ? 1 : 0),
      ])
  }

  public func batchNormBackward(
    dx: Tensor?, dGamma: Tensor?, dBeta: Tensor?, dy: Tensor, x: Tensor, gamma: Tensor, mean: Tensor, invStd: Tensor,
    training: Bool, reluOutput: Tensor?
  ) throws {
    precondition((dGamma == nil) == (dBeta == nil), "batchNormBackward: dGamma and dBeta come together")
    let (n, c, hw) = OpShapes.batchNorm(x: x, channelTensors: [gamma, mean, invStd] + [dGamma, dBeta].compactMap { $0 }, op: "batchNormBackward")
    checkSameCount(dy, x, op: "batchNormBackward")
    if let reluOutput { checkSameCount(reluOutput, x, op: "batchNormBackward") }
    let mask: [Arg] = [.buffer(reluOutput ?? dy), .int(reluOutput == nil ? 0 : 1)]
    // The sums: the parameter gradients when asked, else scratch when the training-mode input
    // gradient needs them; an inference-mode input gradient needs none.
    var sums = dGamma.flatMap { g in dBeta.map { (g, $0) } }
    if sums == nil && training && dx != nil {
      sums = (
        try reserve(bnSums, c),
        try reserve(bnSums2, c)
      )
    }
    if let (dg, db) = sums {
      try launch(
        "bn_backward_reduce", items: c * Self.groupSize,
        [.buffer(dg), .buffer(db), .buffer(dy)] + mask + [.buffer(x), .buffer(mean), .buffer(invStd), .int(n), .int(c), .int(hw)])
    }
    guard let dx else { return }
    let (dGamma, dBeta) = sums ?? (dy, dy)  // inference mode reads neither
    try launch(
      "bn_backward_data", items: n * c * Self.chunks(hw),
      [.buffer(dx), .buffer(dy)] + mask + [
        .buffer(x), .buffer(gamma), .buffer(mean), .buffer(invStd), .buffer(dGamma), .buffer(dBeta), .int(c), .int(hw), .int(n * hw),
        .int(training ? 1 : 0), .int(n * c), .int(Self.bnChunk),
      ])
  }

  /// Values of one plane per work-item of bn_apply / bn_backward_data.
  private static let bnChunk = 64
  private static func chunks(_ hw: Int) -> Int { (hw + bnChunk - 1) / bnChunk }
}
