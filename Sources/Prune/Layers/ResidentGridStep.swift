import GPU

/// A step a forward-only pass can run with its activations on the sparse grid (`ResidentGrid`):
/// a sparse 3x3 stride-1 padding-1 conv with its ReLU, or a residual block of sparse convs. It
/// keeps nothing for a backward.
protocol ResidentGridStep: Layer {
  /// Whether it runs on the grid for an input of `shape` now (its convs sparse at this batch).
  func runsOnGrid(_ shape: [Int]) -> Bool
  /// Its channels at most, which the grid buffers hold.
  var gridChannels: Int { get }
  /// The step from `layout`'s grid: `x` and the result are grid buffers, the result on the grid
  /// of the step's output shape.
  func forwardOnGrid(_ x: Tensor, layout: ResidentGrid) throws -> Tensor
}

extension Conv2d {
  /// Whether this conv runs on the grid: sparse at this batch, 3x3, stride 1, padding 1.
  func runsOnGrid(batch: Int) -> Bool { weight.shape[2] == 3 && stride == 1 && padding == 1 && runsBetweenGrids(batch: batch) }

  /// Whether it runs from one grid to another: sparse at this batch, padding at most the grid's.
  func runsBetweenGrids(batch: Int) -> Bool { weight.shape.count == 4 && padding <= 1 && sparse(forBatch: batch) != nil }
}

extension ConvReLU: ResidentGridStep {
  func runsOnGrid(_ shape: [Int]) -> Bool { conv.runsOnGrid(batch: shape[0]) }
  var gridChannels: Int { max(conv.weight.shape[0], conv.weight.shape[1]) }
  func forwardOnGrid(_ x: Tensor, layout: ResidentGrid) throws -> Tensor { try conv.forwardOnGrid(x, layout: layout, residual: nil) }
}

extension BasicBlock: ResidentGridStep {
  /// With the norms folded (eval mode): conv2 on its grid, conv1 and the shortcut's conv (a
  /// block that changes the shape) from the input's grid to conv2's, or both convs on the
  /// input's grid with the identity shortcut.
  func runsOnGrid(_ shape: [Int]) -> Bool {
    let batch = shape[0]
    guard bn1.isFolded, conv2.runsOnGrid(batch: batch) else { return false }
    guard let shortcut else { return conv1.runsOnGrid(batch: batch) }
    return conv1.runsBetweenGrids(batch: batch) && shortcut.conv.runsBetweenGrids(batch: batch)
  }
  var gridChannels: Int { max(conv1.weight.shape[1], conv2.weight.shape[0], conv1.weight.shape[0]) }
  func forwardOnGrid(_ x: Tensor, layout: ResidentGrid) throws -> Tensor {
    guard let shortcut else {
      return try conv2.forwardOnGrid(try conv1.forwardOnGrid(x, layout: layout, residual: nil), layout: layout, residual: x)
    }
    let out = outputShape(for: [layout.batch, conv1.weight.shape[1], layout.height, layout.width])
    let to = ResidentGrid(batch: layout.batch, height: out[2], width: out[3])
    let h = try conv1.forwardOnGrid(x, from: layout, to: to, relu: true)
    let skip = try shortcut.conv.forwardOnGrid(x, from: layout, to: to, relu: false)
    return try conv2.forwardOnGrid(h, layout: to, residual: skip)
  }
}
