// Convolution on OpenCL: our implicit-GEMM kernels (native engine, OpenCLBackend+ImplicitGemm), or
// the CLBlast baseline here: im2col/col2im (kernels/conv.cl) around CLBlast GEMMs, over slices of
// the batch so the column matrix stays under `maxColumnFloats`.
extension OpenCLBackend {
  public func conv2dForward(y: Tensor, x: Tensor, weight: Tensor, bias: Tensor?, geometry g: ConvGeometry, relu: Bool) throws {
    OpShapes.conv(x: x, weight: weight, y: y, bias: bias, geometry: g, op: "conv2dForward")
    switch engine {
    case .native: try nativeConv2dForward(y: y, x: x, weight: weight, bias: bias, geometry: g, relu: relu)
    case .clblast: try clblastConv2dForward(y: y, x: x, weight: weight, bias: bias, geometry: g, relu: relu)
    }
  }

  public func conv2dBackwardData(dx: Tensor, dy: Tensor, weight: Tensor, geometry g: ConvGeometry, reluOutput: Tensor?) throws {
    OpShapes.conv(x: dx, weight: weight, y: dy, bias: nil, geometry: g, op: "conv2dBackwardData")
    if let reluOutput { checkSameCount(reluOutput, dy, op: "conv2dBackwardData") }
    switch engine {
    case .native: try nativeConv2dBackwardData(dx: dx, dy: dy, weight: weight, geometry: g, reluOutput: reluOutput)
    case .clblast: try clblastConv2dBackwardData(dx: dx, dy: dy, weight: weight, geometry: g, reluOutput: reluOutput)
    }
  }

  public func conv2dBackwardWeight(dWeight: Tensor, dBias: Tensor?, dy: Tensor, x: Tensor, geometry g: ConvGeometry) throws {
    OpShapes.conv(x: x, weight: dWeight, y: dy, bias: dBias, geometry: g, op: "conv2dBackwardWeight")
    switch engine {
    case .native: try nativeConv2dBackwardWeight(dWeight: dWeight, dBias: dBias, dy: dy, x: x, geometry: g)
    case .clblast: try clblastConv2dBackwardWeight(dWeight: dWeight, dBias: dBias, dy: dy, x: x, geometry: g)
    }
  }

  func sliceSize(_ g: ConvGeometry) -> Int {
    max(1, min(g.batch, maxColumnFloats / max(1, g.patchSize * g.outPixels)))
  }

  private func geometryArgs(_ g: ConvGeometry, first: Int, count nb: Int) -> [Arg] {
    [
      .int(g.inChannels), .int(g.height), .int(g.width), .int(g.kernel), .int(g.stride), .int(g.padding),
      .int(g.outHeight), .int(g.outWidth), .int(first), .int(nb),
    ]
  }

  func clblastConv2dForward(y: Tensor, x: Tensor, weight: Tensor, bias: Tensor?, geometry g: ConvGeometry, relu: Bool) throws {
    let nbMax = sliceSize(g)
    let p = g.outPixels
    let cols = try reserve(columns, g.patchSize * nbMax * p)
    let tmp = try reserve(transposed, g.outChannels * nbMax * p)
    for first in stride(from: 0, to: g.batch, by: nbMax) {
      let nb = min(nbMax, g.batch - first)
      try launch("im2col", items: g.patchSize * nb * p, [.buffer(cols), .buffer(x)] + geometryArgs(g, first: first, count: nb))
      try clblastGemm(
        transposeA: false, transposeB: false, m: g.outChannels, n: nb * p, k: g.patchSize, alpha: 1, a: weight, b: cols, beta: 0, c: tmp)
      try launch(
        "scatter_bias", items: nb * g.outChannels * p,
        [
          .buffer(y), .buffer(tmp), .buffer(bias ?? tmp), .int(bias == nil ? 0 : 1), .int(g.outChannels), .int(p), .int(first), .int(nb),
          .int(relu ? 1 : 0),
        ])
    }
  }

  func clblastConv2dBackwardData(dx: Tensor, dy: Tensor, weight: Tensor, geometry g: ConvGeometry, reluOutput: Tensor?) throws {
    let nbMax = sliceSize(g)
    let p = g.outPixels
    let cols = try reserve(columns, g.patchSize * nbMax * p)
    let dyT = try reserve(transposed, g.outChannels * nbMax * p)
    for first in stride(from: 0, to: g.batch, by: nbMax) {
      let nb = min(nbMax, g.batch - first)
      if let reluOutput {
        try launch(
          "gather_dy_relu", items: nb * g.outChannels * p,
          [.buffer(dyT), .buffer(dy), .buffer(reluOutput), .int(g.outChannels), .int(p), .int(first), .int(nb)])
      } else {
        try launch("gather_dy", items: nb * g.outChannels * p, [.buffer(dyT), .buffer(dy), .int(g.outChannels), .int(p), .int(first), .int(nb)])
      }
      try clblastGemm(transposeA: true, transposeB: false, m: g.patchSize, n: nb * p, k: g.outChannels, alpha: 1, a: weight, b: dyT, beta: 0, c: cols)
      try launch("col2im", items: nb * g.inChannels * g.height * g.width, [.buffer(dx), .buffer(cols)] + geometryArgs(g, first: first, count: nb))
    }
  }

  func clblastConv2dBackwardWeight(dWeight: Tensor, dBias: Tensor?, dy: Tensor, x: Tensor, geometry g: ConvGeometry) throws {
    let nbMax = sliceSize(g)
    let p = g.outPixels
    let cols = try reserve(columns, g.patchSize * nbMax * p)
    let dyT = try reserve(transposed, g.outChannels * nbMax * p)
    for first in stride(from: 0, to: g.batch, by: nbMax) {
      let nb = min(nbMax, g.batch - first)
      try launch("im2col", items: g.patchSize * nb * p, [.buffer(cols), .buffer(x)] + geometryArgs(g, first: first, count: nb))
      try launch("gather_dy", items: nb * g.outChannels * p, [.buffer(dyT), .buffer(dy), .int(g.outChannels), .int(p), .int(first), .int(nb)])
      try clblastGemm(
        transposeA: false, transposeB: true, m: g.outChannels, n: g.patchSize, k: nb * p, alpha: 1,
        a: dyT, b: cols, beta: first == 0 ? 0 : 1, c: dWeight)
      if let dBias {
        try launch("row_sums", items: g.outChannels, [.buffer(dBias), .buffer(dyT), .int(g.outChannels), .int(nb * p), .int(first == 0 ? 0 : 1)])
      }
    }
  }
}
