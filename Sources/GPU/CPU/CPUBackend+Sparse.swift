import CKernels
import Foundation

// Sparse convolution on the CPU: work proportional to the nonzeros, the inner loop in CKernels
// (`advprune_sparse_rows`: a register block of outputs, a row's nonzeros streaming past).
//
// The direct layout of `SparseGrid`, in stacks of a few images each, one stack per worker at a
// time, summed in a fixed order, so results do not depend on threads.
extension CPUBackend {
  /// Floats of padded input (and of wide output) one direct stack aims at: a core's L2 or so.
  static let directStackFloats = 128 << 10

  public func sparseConv2dForward(y: Tensor, x: Tensor, weights: SparseConvWeights, bias: Tensor?, geometry g: ConvGeometry, relu: Bool) throws {
    OpShapes.sparseConv(x: x, y: y, bias: bias, weights: weights, geometry: g, op: "sparseConv2dForward")
    let (xp, yp, bp) = (UnsafePointer(ptr(x)), ptr(y), bias.map { UnsafePointer(ptr($0)) })
    let (start, values) = (int32s(ptr(weights.rowStart)), UnsafePointer(ptr(weights.rowValue)))
    let plan = StackPlan(g, workers: workerCount)
    // Every stack uses the full stack's strides, so the offsets are computed once.
    let offsets = weights.hostForwardOffsets(plan.grid)
    let scratch = workerScratch(columns: g.inChannels * plan.channelStride, other: g.outChannels * plan.gridStride)
    forEachSlice(g, size: plan.stack) { t, first, nb in
      let (padded, wide) = scratch[t]
      plan.stackPadded(xp, first: first, count: nb, into: padded)
      sparseRows(
        g.outChannels, start: start, offsets: offsets, values: values, bias: bp, source: padded,
        into: wide, stride: plan.gridStride, length: plan.grid.outputRun(nb))
      plan.unstackOutputs(wide, first: first, count: nb, relu: relu, into: yp)
    }
  }

  public func sparseConv2dBackwardData(dx: Tensor, dy: Tensor, weights: SparseConvWeights, geometry g: ConvGeometry, reluOutput: Tensor?) throws {
    OpShapes.sparseConv(x: dx, y: dy, bias: nil, weights: weights, geometry: g, op: "sparseConv2dBackwardData")
    if let reluOutput { checkSameCount(reluOutput, dy, op: "sparseConv2dBackwardData") }
    let mask = reluOutput.map { UnsafePointer(ptr($0)) }
    let (dxp, dyp) = (ptr(dx), UnsafePointer(ptr(dy)))
    let plan = StackPlan(g, workers: workerCount)
    let layout = weights.hostPlans.plan(plan.grid.key(inputGradient: true)) { plan.grid.inputGradientOrder(weights.layout) }
    let (offsets, values) = (layout.offsets, layout.values)
    let scratch = workerScratch(columns: g.outChannels * plan.segment, other: g.inChannels * plan.channelStride)
    forEachSlice(g, size: plan.stack) { t, first, nb in
      let (grid, padded) = scratch[t]
      plan.stackGradient(dyp, first: first, count: nb, reluOutput: mask, into: grid)
      layout.starts.withUnsafeBufferPointer { starts in
        values.withUnsafeBufferPointer { v in
          sparseRows(
            g.inChannels * plan.phases, start: starts.baseAddress!, offsets: offsets, values: v.baseAddress!, bias: nil, source: grid,
            into: padded, stride: plan.gridStride, length: nb * plan.paddedPlane)
        }
      }
      plan.unstackInputs(padded, first: first, count: nb, into: dxp)
    }
  }
}

/// A weight's index buffer as the Int32 bit patterns it holds in float storage.
func int32s(_ p: UnsafeMutablePointer<Float>) -> UnsafePointer<Int32> { UnsafeRawPointer(p).assumingMemoryBound(to: Int32.self) }

/// `out[r * stride + t] = bias[r] + sum_e values[e] * source[offsets[e] + t]` over row r's
/// entries `start[r] ..< start[r + 1]`.
private func sparseRows(
  _ rows: Int, start: UnsafePointer<Int32>, offsets: [Int64], values: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
  source: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, stride: Int, length: Int
) {
  offsets.withUnsafeBufferPointer { o in
    advprune_sparse_rows(0, Int64(rows), start, o.baseAddress, values, bias, source, out, Int64(stride), 0, Int64(length), nil, 0, nil, 1)
  }
}

/// The direct layout (`SparseGrid`) with the CPU's copies onto it and back.
private struct StackPlan {
  let grid: SparseGrid
  /// Each input row's pixels by phase column: pixels image, image + s, ... (count of them) of a
  /// plane sit at grid, grid + 1, ... of a channel's phases (`laid`: some tap reads them). Worked
  /// out once: the divisions per row cost more than copying a short row.
  let runs: [advprune_phase_run]

  init(_ g: ConvGeometry, workers: Int) {
    let perWorker = (g.batch + max(1, workers) - 1) / max(1, workers)
    grid = SparseGrid(g, images: perWorker, floats: CPUBackend.directStackFloats)
    let (s, phasesPerAxis, gridStride, pitch) = (g.stride, grid.phasesPerAxis, grid.gridStride, grid.pitch)
    var runs: [advprune_phase_run] = []
    for h in 0..<g.height {
      let (a, u) = ((h + g.padding) % s, (h + g.padding) / s)
      for b in 0..<s {
        let w0 = ((b - g.padding) % s + s) % s
        guard w0 < g.width else { continue }
        let laid = a < phasesPerAxis && b < phasesPerAxis
        let at = (laid ? (a * phasesPerAxis + b) * gridStride : 0) + u * pitch + (w0 + g.padding) / s
        runs.append(
          advprune_phase_run(image: Int64(h * g.width + w0), grid: Int64(at), count: Int64((g.width - w0 + s - 1) / s), laid: laid ? 1 : 0))
      }
    }
    self.runs = runs
  }

  var g: ConvGeometry { grid.g }
  var stack: Int { grid.stack }
  var phases: Int { grid.phases }
  var pitch: Int { grid.pitch }
  var paddedPlane: Int { grid.paddedPlane }
  var front: Int { grid.front }
  var gridStride: Int { grid.gridStride }
  var channelStride: Int { grid.channelStride }
  var segment: Int { grid.segment }
  var outputsAreWholePlanes: Bool { grid.outputsAreWholePlanes }

  /// Images first..<first+nb of x, channel by channel, into zero-bordered phase planes one under the other.
  func stackPadded(_ x: UnsafePointer<Float>, first: Int, count nb: Int, into out: UnsafeMutablePointer<Float>) {
    out.update(repeating: 0, count: g.inChannels * channelStride)
    moveInputs(UnsafeMutablePointer(mutating: x), out, first: first, count: nb, toGrid: true)
  }

  /// Images first..<first+nb of the NCHW `nchw` and their phase planes on `grid`, copied onto the
  /// grid (`toGrid`; `nchw` is only read) or back (pixels no tap reads get 0).
  private func moveInputs(_ nchw: UnsafeMutablePointer<Float>, _ grid: UnsafeMutablePointer<Float>, first: Int, count nb: Int, toGrid: Bool) {
    let plane = g.height * g.width
    // `rows` rows of `width` between the NCHW side (pitch `nchwPitch`) and the grid side.
    func copy(_ image: UnsafeMutablePointer<Float>, _ nchwPitch: Int, _ onGrid: UnsafeMutablePointer<Float>, _ gridPitch: Int, rows: Int, width: Int)
    {
      let (np, gp, r, w) = (Int64(nchwPitch), Int64(gridPitch), Int64(rows), Int64(width))
      if toGrid { advprune_copy_rows(onGrid, gp, image, np, r, w) } else { advprune_copy_rows(image, np, onGrid, gp, r, w) }
    }
    runs.withUnsafeBufferPointer { runs in
      for c in 0..<g.inChannels {
        let (images, phases) = (nchw + (first * g.inChannels + c) * plane, grid + c * channelStride)
        if g.stride == 1 && g.padding == 0 {
          // The grid is the plane: one row per image.
          copy(images, g.inChannels * plane, phases, paddedPlane, rows: nb, width: plane)
          continue
        }
        for n in 0..<nb {
          let (image, onGrid) = (images + n * g.inChannels * plane, phases + n * paddedPlane)
          if g.stride == 1 {
            copy(image, g.width, onGrid + g.padding * pitch + g.padding, pitch, rows: g.height, width: g.width)
          } else if toGrid {
            advprune_gather_runs(onGrid, image, runs.baseAddress!, Int64(runs.count), Int64(g.stride))
          } else {
            advprune_scatter_runs(image, onGrid, runs.baseAddress!, Int64(runs.count), Int64(g.stride))
          }
        }
      }
    }
  }

  /// The outputs on the wide grid back into y[first..<first+nb] (NCHW).
  func unstackOutputs(_ wide: UnsafeMutablePointer<Float>, first: Int, count nb: Int, relu: Bool, into y: UnsafeMutablePointer<Float>) {
    let copy = relu ? advprune_copy_rows_relu : advprune_copy_rows
    let (ow, oh, op) = (Int64(g.outWidth), Int64(g.outHeight), g.outPixels)
    for o in 0..<g.outChannels {
      let (from, to) = (wide + o * gridStride, y + (first * g.outChannels + o) * op)
      if outputsAreWholePlanes {
        copy(to, Int64(g.outChannels * op), from, Int64(paddedPlane), Int64(nb), Int64(op))
        continue
      }
      for n in 0..<nb { copy(to + n * g.outChannels * op, ow, from + n * paddedPlane, Int64(pitch), oh, ow) }
    }
  }

  /// dy[first..<first+nb] onto the grid, each channel after `front` zeros, zeros off the outputs;
  /// read as dy * (reluOutput > 0) when given (dy's shape).
  func stackGradient(
    _ dy: UnsafePointer<Float>, first: Int, count nb: Int, reluOutput: UnsafePointer<Float>?, into out: UnsafeMutablePointer<Float>
  ) {
    out.update(repeating: 0, count: g.outChannels * segment)
    let (ow, oh, op) = (Int64(g.outWidth), Int64(g.outHeight), g.outPixels)
    // Rows of `count` floats, `rows` of them, from dy's offset `at` (its pitch `from`) to `to`.
    func copy(_ to: UnsafeMutablePointer<Float>, _ pitch: Int, _ at: Int, _ from: Int, _ rows: Int64, _ count: Int64) {
      if let reluOutput {
        advprune_copy_rows_masked(to, Int64(pitch), dy + at, reluOutput + at, Int64(from), rows, count)
      } else {
        advprune_copy_rows(to, Int64(pitch), dy + at, Int64(from), rows, count)
      }
    }
    for o in 0..<g.outChannels {
      let (grid, at) = (out + o * segment + front, (first * g.outChannels + o) * op)
      if outputsAreWholePlanes {
        copy(grid, paddedPlane, at, g.outChannels * op, Int64(nb), Int64(op))
        continue
      }
      for n in 0..<nb { copy(grid + n * paddedPlane, pitch, at + n * g.outChannels * op, g.outWidth, oh, ow) }
    }
  }

  /// The interior of each padded input's phases back into dx[first..<first+nb] (NCHW); pixels no
  /// tap reads get 0.
  func unstackInputs(_ padded: UnsafeMutablePointer<Float>, first: Int, count nb: Int, into dx: UnsafeMutablePointer<Float>) {
    moveInputs(dx, padded, first: first, count: nb, toGrid: false)
  }
}
