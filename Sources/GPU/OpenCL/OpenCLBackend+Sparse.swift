// Sparse direct convolution on OpenCL (kernels/sparse.cl): on a GPU one gather per output
// element; on a CPU device (tunables not `isTiled`) one plane per work-item, so the
// index arithmetic is per nonzero and the inner loop a vector saxpy.
extension OpenCLBackend {
  private func sparseArgs(_ g: ConvGeometry) -> [Arg] {
    [
      .int(g.inChannels), .int(g.height), .int(g.width), .int(g.kernel), .int(g.stride), .int(g.padding),
      .int(g.outChannels), .int(g.outHeight), .int(g.outWidth), .int(g.batch),
    ]
  }

  public func sparseConv2dForward(y: Tensor, x: Tensor, weights: SparseConvWeights, bias: Tensor?, geometry g: ConvGeometry, relu: Bool) throws {
    OpShapes.sparseConv(x: x, y: y, bias: bias, weights: weights, geometry: g, op: "sparseConv2dForward")
    try launch(
      tunables.isTiled ? "sparse_conv_forward" : "sparse_conv_forward_planes", items: tunables.isTiled ? y.count : y.count / g.outPixels,
      [
        .buffer(y), .buffer(x), .buffer(weights.rowStart), .buffer(weights.rowIndex), .buffer(weights.rowValue),
        .buffer(bias ?? weights.rowValue), .int((bias == nil ? 0 : 1) | (relu ? 2 : 0)),
      ] + sparseArgs(g))
  }

  public func sparseConv2dBackwardData(dx: Tensor, dy: Tensor, weights: SparseConvWeights, geometry g: ConvGeometry, reluOutput: Tensor?) throws {
    OpShapes.sparseConv(x: dx, y: dy, bias: nil, weights: weights, geometry: g, op: "sparseConv2dBackwardData")
    if let reluOutput { checkSameCount(reluOutput, dy, op: "sparseConv2dBackwardData") }
    try launch(
      tunables.isTiled ? "sparse_conv_backward_data" : "sparse_conv_backward_data_planes",
      items: tunables.isTiled ? dx.count : dx.count / (g.height * g.width),
      [
        .buffer(dx), .buffer(dy), .buffer(weights.colStart), .buffer(weights.colIndex), .buffer(weights.colValue),
        .buffer(reluOutput ?? dy), .int(reluOutput == nil ? 0 : 1),
      ] + sparseArgs(g))
  }
}
