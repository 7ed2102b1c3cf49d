import GPU

/// A step a forward-only pass can run with its activations on the sparse grid (`ResidentGrid`):
/// a sparse 3x3 stride-1 padding-1 conv with its ReLU, or a residual block of two of them with
/// an identity shortcut. It keeps nothing for a backward.
protocol ResidentGridStep: Layer {
  /// Whether it runs on the grid for an input of `shape` now (its convs sparse at this batch).
  func runsOnGrid(_ shape: [Int]) -> Bool
  /// Its channels at most, which the grid buffers hold.
  var gridChannels: Int { get }
  /// The step on `layout`'s grid: `x` and the result are grid buffers.
  func forwardOnGrid(_ x: Tensor, layout: ResidentGrid) throws -> Tensor
}

extension Conv2d {
  /// Whether this conv runs on the grid: sparse at this batch, 3x3, stride 1, padding 1.
  func runsOnGrid(batch: Int) -> Bool {
    weight.shape.count == 4 && weight.shape[2] == 3 && stride == 1 && padding == 1 && sparse(forBatch: batch) != nil
  }
}

extension ConvReLU: ResidentGridStep {
  func runsOnGrid(_ shape: [Int]) -> Bool { conv.runsOnGrid(batch: shape[0]) }
  var gridChannels: Int { max(conv.weight.shape[0], conv.weight.shape[1]) }
  func forwardOnGrid(_ x: Tensor, layout: ResidentGrid) throws -> Tensor { try conv.forwardOnGrid(x, layout: layout, residual: nil) }
}

extension BasicBlock: ResidentGridStep {
  /// With the norms folded (eval mode) and an identity shortcut, both convs on the grid.
  func runsOnGrid(_ shape: [Int]) -> Bool {
    shortcut == nil && bn1.isFolded && conv1.runsOnGrid(batch: shape[0]) && conv2.runsOnGrid(batch: shape[0])
  }
  var gridChannels: Int { max(conv1.weight.shape[0], conv1.weight.shape[1]) }
  func forwardOnGrid(_ x: Tensor, layout: ResidentGrid) throws -> Tensor {
    try conv2.forwardOnGrid(try conv1.forwardOnGrid(x, layout: layout, residual: nil), layout: layout, residual: x)
  }
}
