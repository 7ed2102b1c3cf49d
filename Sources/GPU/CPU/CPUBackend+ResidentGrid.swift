import CKernels

// Activations kept on the sparse grid (`ResidentGrid`) on the CPU: the sparse rows kernel over the
// whole batch's grid, split across workers by ranges of grid points (each point summed by one
// worker in a fixed order), zeroing the points that land on the padding as it stores.
extension CPUBackend {
  /// Grid points per worker at least: below this the threads cost more than they save.
  private static let residentPointsPerWorker = 4096
  /// The longest block `advprune_sparse_rows` finishes at once (its TILE), which the keep pattern
  /// reaches past a period.
  private static let sparseRowsTile = 256

  public func prefersResidentGrid(_ layout: ResidentGrid, channels: Int) -> Bool { residentGrid }

  public func sparseGridEnter(grid: Tensor, x: Tensor, layout r: ResidentGrid) throws {
    let channels = OpShapes.residentPlanes(nchw: x, grid: grid, layout: r, op: "sparseGridEnter")
    let (gp, xp, plane) = (ptr(grid), UnsafePointer(ptr(x)), r.height * r.width)
    parallelRows(channels * r.batch, r.rows * r.pitch) { k in
      let (c, n) = (k / r.batch, k % r.batch)
      let onGrid = gp + k * r.rows * r.pitch
      zeroBorder(onGrid, r)
      advprune_copy_rows(onGrid + r.outputShift, Int64(r.pitch), xp + (n * channels + c) * plane, Int64(r.width), Int64(r.height), Int64(r.width))
    }
  }

  public func sparseGridConv(out: Tensor, source: Tensor, weights: SparseConvWeights, bias: Tensor?, residual: Tensor?, layout r: ResidentGrid) throws
  {
    let g = OpShapes.residentConv(out: out, source: source, weights: weights, bias: bias, residual: residual, layout: r, op: "sparseGridConv")
    let grid = r.layout(inChannels: g.inChannels, outChannels: g.outChannels)
    let offsets = weights.hostPlans.plan(grid.key(inputGradient: false)) {
      .init(offsets: grid.forwardOffsets(weights.layout), starts: [], values: [])
    }.offsets
    let (start, values) = (int32s(ptr(weights.rowStart)), UnsafePointer(ptr(weights.rowValue)))
    let (op, sp, bp) = (ptr(out) + r.outputShift, UnsafePointer(ptr(source)), bias.map { UnsafePointer(ptr($0)) })
    let rp = residual.map { UnsafePointer(ptr($0) + r.outputShift) }
    let length = grid.outputRun(r.batch)
    let keep = r.keepPattern(extra: Self.sparseRowsTile)
    offsets.withUnsafeBufferPointer { o in
      keep.withUnsafeBufferPointer { k in
        parallelRanges(length, minimumPerThread: Self.residentPointsPerWorker) { points in
          advprune_sparse_rows(
            0, Int64(g.outChannels), start, o.baseAddress, values, bp, sp, op, Int64(r.channelFloats), Int64(points.lowerBound),
            Int64(points.upperBound), rp, 1, k.baseAddress, Int64(r.plane))
        }
      }
    }
    let (base, ends) = (ptr(out), r.unwrittenEnds)
    for c in 0..<g.outChannels {
      (base + c * r.channelFloats).update(repeating: 0, count: ends)
      (base + (c + 1) * r.channelFloats - ends).update(repeating: 0, count: ends)
    }
  }

  public func sparseGridLeave(y: Tensor, grid: Tensor, layout r: ResidentGrid) throws {
    let channels = OpShapes.residentPlanes(nchw: y, grid: grid, layout: r, op: "sparseGridLeave")
    let (gp, yp, plane) = (UnsafePointer(ptr(grid)), ptr(y), r.height * r.width)
    parallelRows(channels * r.batch, r.rows * r.pitch) { k in
      let (c, n) = (k / r.batch, k % r.batch)
      advprune_copy_rows(
        yp + (n * channels + c) * plane, Int64(r.width), gp + k * r.rows * r.pitch + r.outputShift, Int64(r.pitch), Int64(r.height), Int64(r.width))
    }
  }
}

/// Zeroes one padded plane's border: the top row, the two columns either side of each row (one
/// run from the end of one row to the start of the next) and the bottom row.
private func zeroBorder(_ plane: UnsafeMutablePointer<Float>, _ r: ResidentGrid) {
  plane.update(repeating: 0, count: r.pitch + 1)
  for y in 1...r.height { (plane + y * r.pitch + r.width + 1).update(repeating: 0, count: 2) }
  (plane + (r.height + 1) * r.pitch + 1).update(repeating: 0, count: r.pitch - 1)
}
