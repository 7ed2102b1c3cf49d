// Sparse direct convolution on OpenCL (kernels/sparse.cl): on a GPU one gather per output
// element; on a CPU device (tunables not `isTiled`) the direct layout of `SparseGrid`, the CPU
// backend's: the batch copied onto padded planes per channel, so each nonzero is one long run and
// the inner loop a vector multiply-add.
extension OpenCLBackend {
  /// Grid points per work-item of `sparse_grid_rows` (its GRID_RUN), which is also how far past
  /// its last run it reads.
  static let sparseGridRun = 64
  /// Nonzeros per row from which `sparse_grid_rows` runs tile by tile (SPARSE_TILE_MAJOR): where
  /// each row reads many runs, the tile's window of the source is reused across the rows from
  /// cache; where rows read few, row by row keeps the writes in one stream. Clean passes of a
  /// sparse ResNet18 at 64 images on PoCL (AVX-512 host, alternating): 95 % (29 and 58 per row on
  /// layers 1 and 2) 0.096-0.108 s with this rule against 0.115-0.142 s row by row; 99 % (6 and 12
  /// there, 23 and 46 on layers 3 and 4) 0.042-0.050 s against 0.041-0.050 s, where tile by tile
  /// on every layer took 0.044-0.068 s.
  static let tileMajorNonzerosPerRow = 16

  private func sparseArgs(_ g: ConvGeometry) -> [Arg] {
    [
      .int(g.inChannels), .int(g.height), .int(g.width), .int(g.kernel), .int(g.stride), .int(g.padding),
      .int(g.outChannels), .int(g.outHeight), .int(g.outWidth), .int(g.batch),
    ]
  }

  public func sparseConv2dForward(y: Tensor, x: Tensor, weights: SparseConvWeights, bias: Tensor?, geometry g: ConvGeometry, relu: Bool) throws {
    OpShapes.sparseConv(x: x, y: y, bias: bias, weights: weights, geometry: g, op: "sparseConv2dForward")
    guard tunables.isTiled else { return try gridForward(y: y, x: x, weights: weights, bias: bias, geometry: g, relu: relu) }
    try launch(
      "sparse_conv_forward", items: y.count,
      [
        .buffer(y), .buffer(x), .buffer(weights.rowStart), .buffer(weights.rowIndex), .buffer(weights.rowValue),
        .buffer(bias ?? weights.rowValue), .int((bias == nil ? 0 : 1) | (relu ? 2 : 0)),
      ] + sparseArgs(g))
  }

  public func sparseConv2dBackwardData(dx: Tensor, dy: Tensor, weights: SparseConvWeights, geometry g: ConvGeometry, reluOutput: Tensor?) throws {
    OpShapes.sparseConv(x: dx, y: dy, bias: nil, weights: weights, geometry: g, op: "sparseConv2dBackwardData")
    if let reluOutput { checkSameCount(reluOutput, dy, op: "sparseConv2dBackwardData") }
    guard tunables.isTiled else { return try gridBackwardData(dx: dx, dy: dy, weights: weights, geometry: g, reluOutput: reluOutput) }
    try launch(
      "sparse_conv_backward_data", items: dx.count,
      [
        .buffer(dx), .buffer(dy), .buffer(weights.colStart), .buffer(weights.colIndex), .buffer(weights.colValue),
        .buffer(reluOutput ?? dy), .int(reluOutput == nil ? 0 : 1),
      ] + sparseArgs(g))
  }

  private func grid(_ g: ConvGeometry) -> SparseGrid {
    SparseGrid(g, images: g.batch, floats: sparseGridFloats)
  }

  /// A plan's offsets (and, with `ownOrder`, its rows and weights) on the device.
  private func upload(_ plan: SparsePlan, ownOrder: Bool) throws -> DeviceSparsePlan {
    precondition(plan.offsets.allSatisfy { $0 <= Int64(Int32.max) }, "sparse grid offsets overflow int32")
    func ints(_ v: [Int32]) throws -> Tensor {
      try upload(v.isEmpty ? [0] : v.map { Float(bitPattern: UInt32(bitPattern: $0)) }, shape: [max(1, v.count)])
    }
    return DeviceSparsePlan(
      offsets: try ints(plan.offsets.map { Int32($0) }), starts: ownOrder ? try ints(plan.starts) : nil,
      values: ownOrder ? try upload(plan.values.isEmpty ? [0] : plan.values, shape: [max(1, plan.values.count)]) : nil)
  }

  /// Queues `sparse_grid_rows`: `rows` rows of `length` grid points, `stride` apart in `out` from
  /// `offset` on; with `residual` (a buffer like `out`) added at the same positions, a ReLU, and
  /// zeros where `keep`'s pattern is 0.
  func gridRows(
    out: Tensor, offset: Int = 0, stride: Int, rows: Int, start: Tensor, plan: DeviceSparsePlan, values: Tensor, bias: Tensor?,
    source: Tensor, length: Int, residual: Tensor? = nil, relu: Bool = false, keep: (pattern: Tensor, period: Int)? = nil
  ) throws {
    let tiles = (length + Self.sparseGridRun - 1) / Self.sparseGridRun
    let tileMajor = plan.offsets.count >= Self.tileMajorNonzerosPerRow * rows
    let flags = (bias == nil ? 0 : 1) | (relu ? 2 : 0) | (residual == nil ? 0 : 4) | (keep == nil ? 0 : 8) | (tileMajor ? 16 : 0)
    try launch(
      "sparse_grid_rows", items: tiles * rows,
      [
        .buffer(out), .int(offset), .int(stride), .buffer(start), .buffer(plan.offsets), .buffer(values), .buffer(bias ?? values),
        .int(flags), .buffer(source), .buffer(residual ?? source), .buffer(keep?.pattern ?? source), .int(keep?.period ?? 1), .int(length),
        .int(tiles), .int(rows),
      ])
  }

  /// The forward offsets of `weights` on `grid`, uploaded once per layout.
  func forwardPlan(_ weights: SparseConvWeights, _ grid: SparseGrid) throws -> DeviceSparsePlan {
    try weights.devicePlans.plan(grid.key(inputGradient: false)) {
      try upload(SparsePlan(offsets: grid.forwardOffsets(weights.layout), starts: [], values: []), ownOrder: false)
    }
  }

  private func gridForward(y: Tensor, x: Tensor, weights: SparseConvWeights, bias: Tensor?, geometry g: ConvGeometry, relu: Bool) throws {
    let grid = grid(g)
    let plan = try forwardPlan(weights, grid)
    let source = try reserve(padded, g.inChannels * grid.channelStride + Self.sparseGridRun)
    let wide = try reserve(columns, g.outChannels * grid.gridStride)
    for first in stride(from: 0, to: g.batch, by: grid.stack) {
      let nb = min(grid.stack, g.batch - first)
      try launch(
        "sparse_grid_stack", items: g.inChannels * grid.phases * nb,
        [
          .buffer(source), .buffer(x), .int(first), .int(nb), .int(grid.stack), .int(g.inChannels), .int(g.height), .int(g.width),
          .int(g.stride), .int(g.padding), .int(grid.phasesPerAxis), .int(grid.rows), .int(grid.pitch),
        ])
      try gridRows(
        out: wide, stride: grid.gridStride, rows: g.outChannels, start: weights.rowStart, plan: plan, values: weights.rowValue, bias: bias,
        source: source, length: grid.outputRun(nb))
      try launch(
        "sparse_grid_unstack_outputs", items: nb * g.outChannels,
        [
          .buffer(y), .buffer(wide), .int(first), .int(nb), .int(g.outChannels), .int(g.outHeight), .int(g.outWidth), .int(grid.rows),
          .int(grid.pitch), .int(grid.gridStride), .int(relu ? 1 : 0),
        ])
    }
  }

  private func gridBackwardData(dx: Tensor, dy: Tensor, weights: SparseConvWeights, geometry g: ConvGeometry, reluOutput: Tensor?) throws {
    let grid = grid(g)
    let plan = try weights.devicePlans.plan(grid.key(inputGradient: true)) { try upload(grid.inputGradientOrder(weights.layout), ownOrder: true) }
    guard let starts = plan.starts, let values = plan.values else { preconditionFailure("an input-gradient plan has its own order") }
    let source = try reserve(columns, g.outChannels * grid.segment + Self.sparseGridRun)
    let paddedInputs = try reserve(padded, g.inChannels * grid.channelStride)
    for first in stride(from: 0, to: g.batch, by: grid.stack) {
      let nb = min(grid.stack, g.batch - first)
      try launch(
        "sparse_grid_stack_gradient", items: g.outChannels * nb,
        [
          .buffer(source), .buffer(dy), .buffer(reluOutput ?? dy), .int(reluOutput == nil ? 0 : 1), .int(first), .int(nb),
          .int(g.outChannels), .int(g.outHeight), .int(g.outWidth), .int(grid.rows), .int(grid.pitch), .int(grid.front), .int(grid.segment),
        ])
      try gridRows(
        out: paddedInputs, stride: grid.gridStride, rows: g.inChannels * grid.phases, start: starts, plan: plan, values: values, bias: nil,
        source: source, length: nb * grid.paddedPlane)
      try launch(
        "sparse_grid_unstack_inputs", items: nb * g.inChannels,
        [
          .buffer(dx), .buffer(paddedInputs), .int(first), .int(nb), .int(grid.stack), .int(g.inChannels), .int(g.height), .int(g.width),
          .int(g.stride), .int(g.padding), .int(grid.phasesPerAxis), .int(grid.rows), .int(grid.pitch),
        ])
    }
  }
}

/// A weight's `SparsePlan` uploaded: offsets as int32 bit patterns, and for the input gradient its
/// own row starts and weights. Buffers of one backend, used only on its queue.
struct DeviceSparsePlan: @unchecked Sendable {
  let offsets: Tensor
  let starts: Tensor?
  let values: Tensor?
}
