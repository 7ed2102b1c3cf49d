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
    let offsets = weights.hostForwardOffsets(grid)
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

extension CPUBackend {
  public func sparseGridConv(
    out: Tensor, source: Tensor, weights: SparseConvWeights, bias: Tensor?, relu: Bool, geometry g: ConvGeometry, from: ResidentGrid, to: ResidentGrid
  ) throws {
    OpShapes.residentConv(out: out, source: source, weights: weights, bias: bias, geometry: g, from: from, to: to, op: "sparseGridConv")
    let grid = SparseGrid(wholeBatch: g)
    let offsets = weights.hostForwardOffsets(grid)
    let (phases, wide) = workerScratch(columns: g.inChannels * grid.channelStride, other: g.outChannels * grid.gridStride)[0]
    gatherPhases(into: phases, from: UnsafePointer(ptr(source)), g, grid, from)
    let (start, values) = (int32s(ptr(weights.rowStart)), UnsafePointer(ptr(weights.rowValue)))
    let bp = bias.map { UnsafePointer(ptr($0)) }
    offsets.withUnsafeBufferPointer { o in
      parallelRanges(grid.outputRun(g.batch), minimumPerThread: Self.residentPointsPerWorker) { points in
        advprune_sparse_rows(
          0, Int64(g.outChannels), start, o.baseAddress, values, bp, phases, wide, Int64(grid.gridStride), Int64(points.lowerBound),
          Int64(points.upperBound), nil, 0, nil, 1)
      }
    }
    let op = ptr(out)
    parallelRows(g.outChannels * g.batch, to.rows * to.pitch) { k in
      let (o, n) = (k / g.batch, k % g.batch)
      let plane = op + k * to.rows * to.pitch
      zeroBorder(plane, to)
      let wideRows = wide + o * grid.gridStride + n * grid.paddedPlane
      let copy = relu ? advprune_copy_rows_relu : advprune_copy_rows
      copy(plane + to.outputShift, Int64(to.pitch), wideRows, Int64(grid.pitch), Int64(to.height), Int64(to.width))
    }
  }

  /// The stride phases of g's padded input from a resident grid (padded by 1): phase pixel (u, v)
  /// of phase (a, b) is grid point (s*u + a + 1 - pad, s*v + b + 1 - pad), 0 past the plane.
  private func gatherPhases(
    into phases: UnsafeMutablePointer<Float>, from source: UnsafePointer<Float>, _ g: ConvGeometry, _ grid: SparseGrid, _ r: ResidentGrid
  ) {
    let s = g.stride
    parallelRows(g.inChannels * grid.phases * g.batch, grid.paddedPlane) { k in
      let (n, phase, c) = (k % g.batch, (k / g.batch) % grid.phases, k / (g.batch * grid.phases))
      let (a, b) = (phase / grid.phasesPerAxis + 1 - g.padding, phase % grid.phasesPerAxis + 1 - g.padding)
      let plane = phases + k * grid.paddedPlane
      let image = source + (c * g.batch + n) * r.rows * r.pitch
      let columns = min(grid.pitch, (r.pitch - 1 - b) / s + 1)
      plane.update(repeating: 0, count: grid.paddedPlane)
      for u in 0..<grid.rows where u * s + a < r.rows {
        let (row, line) = (plane + u * grid.pitch, image + (u * s + a) * r.pitch + b)
        for v in 0..<columns { row[v] = line[v * s] }
      }
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
