// Sparse direct convolution on OpenCL (kernels/sparse.cl): on a GPU one gather per output
// element; on a CPU device (tunables without local-memory tiles) one plane per work-item, so the
// index arithmetic is per nonzero and the inner loop a vector saxpy.
extension OpenCLBackend {
  private var sparsePlanes: Bool { tunables.tileRows == 0 }

  private func sparseArgs(_ g: ConvGeometry) -> [Arg] {
    [
      .int(g.inChannels), .int(g.height), .int(g.width), .int(g.kernel), .int(g.stride), .int(g.padding),
      .int(g.outChannels), .int(g.outHeight), .int(g.outWidth), .int(g.batch),
    ]
  }

  public func sparseConv2dForward(y: Tensor, x: Tensor, weights: SparseConvWeights, bias: Tensor?, geometry g: ConvGeometry) throws {
    OpShapes.sparseConv(x: x, y: y, bias: bias, weights: weights, geometry: g, op: "sparseConv2dForward")
    try launch(
      sparsePlanes ? "sparse_conv_forward_planes" : "sparse_conv_forward", items: sparsePlanes ? y.count / g.outPixels : y.count,
      [
        .buffer(y), .buffer(x), .buffer(weights.rowStart), .buffer(weights.rowIndex), .buffer(weights.rowValue),
        .buffer(bias ?? weights.rowValue), .int(bias == nil ? 0 : 1),
      ] + sparseArgs(g))
  }

  public func sparseConv2dBackwardData(dx: Tensor, dy: Tensor, weights: SparseConvWeights, geometry g: ConvGeometry) throws {
    OpShapes.sparseConv(x: dx, y: dy, bias: nil, weights: weights, geometry: g, op: "sparseConv2dBackwardData")
    try launch(
      sparsePlanes ? "sparse_conv_backward_data_planes" : "sparse_conv_backward_data",
      items: sparsePlanes ? dx.count / (g.height * g.width) : dx.count,
      [.buffer(dx), .buffer(dy), .buffer(weights.colStart), .buffer(weights.colIndex), .buffer(weights.colValue)] + sparseArgs(g))
  }
}
