// ReLU, masks, pooling and random numbers on OpenCL (kernels/elementwise.cl, kernels/pool.cl).
extension OpenCLBackend {
  public func reluForward(y: Tensor, x: Tensor) throws {
    checkSameCount(y, x, op: "reluForward")
    try launch("relu_forward", items: x.count, [.buffer(y), .buffer(x), .int(x.count)])
  }

  public func reluBackward(dx: Tensor, dy: Tensor, y: Tensor) throws {
    checkSameCount(dx, dy, op: "reluBackward")
    checkSameCount(dx, y, op: "reluBackward")
    try launch("relu_backward", items: dx.count, [.buffer(dx), .buffer(dy), .buffer(y), .int(dx.count)])
  }

  public func multiply(out: Tensor, a: Tensor, b: Tensor) throws {
    checkSameCount(out, a, op: "multiply")
    checkSameCount(a, b, op: "multiply")
    try launch("multiply", items: a.count, [.buffer(out), .buffer(a), .buffer(b), .int(a.count)])
  }

  public func maxPool2x2Forward(y: Tensor, x: Tensor) throws {
    let (planes, h, w) = OpShapes.pool(x: x, y: y, op: "maxPool2x2Forward")
    if tunables.isTiled {
      try launch("maxpool2x2_forward", items: y.count, [.buffer(y), .buffer(x), .int(h), .int(w), .int(y.count)])
    } else {
      try launch("maxpool2x2_rows_forward", items: planes * h / 2, [.buffer(y), .buffer(x), .int(h), .int(w), .int(planes * h / 2)])
    }
  }

  public func maxPool2x2Backward(dx: Tensor, dy: Tensor, x: Tensor) throws {
    let (planes, h, w) = OpShapes.pool(x: x, y: dy, op: "maxPool2x2Backward")
    checkSameCount(dx, x, op: "maxPool2x2Backward")
    if tunables.isTiled {
      try launch("maxpool2x2_backward", items: dy.count, [.buffer(dx), .buffer(dy), .buffer(x), .int(h), .int(w), .int(dy.count)])
    } else {
      try launch(
        "maxpool2x2_rows_backward", items: planes * h / 2, [.buffer(dx), .buffer(dy), .buffer(x), .int(h), .int(w), .int(planes * h / 2)])
    }
  }

  public func randomUniform(_ tensor: Tensor, low: Float, high: Float, seed: UInt64) throws {
    try launch(
      "random_uniform", items: tensor.count,
      [
        .buffer(tensor), .float(low), .float(high - low), .uint(UInt32(truncatingIfNeeded: seed)),
        .uint(UInt32(truncatingIfNeeded: seed >> 32)), .int(tensor.count),
      ])
  }
}
