// Activations kept on the sparse grid (`ResidentGrid`) on OpenCL: the grid form's kernels
// (kernels/sparse.cl) over the whole batch as one stack, the conv's sums written onto the padded
// interior with the residual, the ReLU and the border's zeros in the same pass.
extension OpenCLBackend {
  /// On CPU devices, where the grid form is the sparse path, and while the grid fits the budget
  /// the stacked path keeps to; GPUs gather per element instead.
  public func prefersResidentGrid(_ layout: ResidentGrid, channels: Int) -> Bool {
    !tunables.isTiled && layout.floats(channels: channels) <= sparseGridFloats
  }

  /// `sparse_grid_stack`'s or `sparse_grid_unstack_inputs`' arguments for the resident layout: one
  /// stack of the whole batch, stride 1, padding 1.
  private func residentArgs(_ r: ResidentGrid, channels: Int) -> [Arg] {
    [
      .int(0), .int(r.batch), .int(r.batch), .int(channels), .int(r.height), .int(r.width), .int(1), .int(1), .int(1), .int(r.rows),
      .int(r.pitch),
    ]
  }

  public func sparseGridEnter(grid: Tensor, x: Tensor, layout r: ResidentGrid) throws {
    let channels = OpShapes.residentPlanes(nchw: x, grid: grid, layout: r, op: "sparseGridEnter")
    try launch("sparse_grid_stack", items: channels * r.batch, [.buffer(grid), .buffer(x)] + residentArgs(r, channels: channels))
  }

  public func sparseGridConv(out: Tensor, source: Tensor, weights: SparseConvWeights, bias: Tensor?, residual: Tensor?, layout r: ResidentGrid) throws
  {
    let g = OpShapes.residentConv(out: out, source: source, weights: weights, bias: bias, residual: residual, layout: r, op: "sparseGridConv")
    let grid = r.layout(inChannels: g.inChannels, outChannels: g.outChannels)
    try gridRows(
      out: out, offset: r.outputShift, stride: r.channelFloats, rows: g.outChannels, start: weights.rowStart, plan: try forwardPlan(weights, grid),
      values: weights.rowValue, bias: bias, source: source, length: grid.outputRun(r.batch), residual: residual, relu: true,
      keep: (try keepPattern(r), r.plane))
    try launch(
      "sparse_grid_ends", items: g.outChannels, [.buffer(out), .int(g.outChannels), .int(r.channelFloats), .int(r.unwrittenEnds)])
  }

  /// `ResidentGrid.keepPattern` of this plane size on the device, uploaded once.
  private func keepPattern(_ r: ResidentGrid) throws -> Tensor {
    let key = [r.height, r.width]
    if let pattern = keepPatterns[key] { return pattern }
    let values = r.keepPattern(extra: Self.sparseGridRun)
    let pattern = try upload(values, shape: [values.count])
    keepPatterns[key] = pattern
    return pattern
  }

  public func sparseGridLeave(y: Tensor, grid: Tensor, layout r: ResidentGrid) throws {
    let channels = OpShapes.residentPlanes(nchw: y, grid: grid, layout: r, op: "sparseGridLeave")
    try launch("sparse_grid_unstack_inputs", items: r.batch * channels, [.buffer(y), .buffer(grid)] + residentArgs(r, channels: channels))
  }

  public func sparseGridConv(
    out: Tensor, source: Tensor, weights: SparseConvWeights, bias: Tensor?, relu: Bool, geometry g: ConvGeometry, from: ResidentGrid, to: ResidentGrid
  ) throws {
    OpShapes.residentConv(out: out, source: source, weights: weights, bias: bias, geometry: g, from: from, to: to, op: "sparseGridConv")
    let grid = SparseGrid(wholeBatch: g)
    let phases = try reserve(padded, g.inChannels * grid.channelStride + Self.sparseGridRun)
    let wide = try reserve(columns, g.outChannels * grid.gridStride)
    try launch(
      "sparse_grid_gather", items: g.inChannels * grid.phases * g.batch,
      [
        .buffer(phases), .buffer(source), .int(g.batch), .int(g.inChannels), .int(from.rows), .int(from.pitch), .int(g.stride), .int(g.padding),
        .int(grid.phasesPerAxis), .int(grid.rows), .int(grid.pitch),
      ])
    try gridRows(
      out: wide, stride: grid.gridStride, rows: g.outChannels, start: weights.rowStart, plan: try forwardPlan(weights, grid),
      values: weights.rowValue,
      bias: bias, source: phases, length: grid.outputRun(g.batch))
    try launch(
      "sparse_grid_place", items: g.batch * g.outChannels,
      [
        .buffer(out), .buffer(wide), .int(g.batch), .int(g.outChannels), .int(g.outHeight), .int(g.outWidth), .int(grid.rows), .int(grid.pitch),
        .int(grid.gridStride), .int(relu ? 1 : 0),
      ])
  }
}
