import CKernels
import Foundation

// Sparse convolution on the CPU: work proportional to the nonzeros, the inner loop in CKernels
// (`advprune_sparse_rows`: a register block of outputs, a row's nonzeros streaming past).
//
// The direct layout, with no im2col: a stack of nb images is laid out per channel as nb
// zero-padded planes one under the other (row pitch Wp, Hp rows each), and the output is
// computed "wide" on the same grid: output pixel (n, y, x) sits at (n*Hp + y)*Wp + x and reads
// input pixel (y+i, x+j) of image n at (n*Hp + y+i)*Wp + x+j, so nonzero w[o, c, i, j] is one
// contiguous shifted run of channel c's stack, offset i*Wp + j. The grid points that are not
// outputs (the Wp - OW columns past each row, the K-1 rows between images) are computed and
// dropped when copying out; stacking keeps the runs long on small planes. The input gradient is
// the transpose: dy on the same grid (zeros off the outputs, a zero margin before each channel)
// gathered onto the padded input stack at shift -(i*Wp + j); the zero rows between images keep
// each image's gradient its own.
//
// A conv of stride s runs on the padded input's stride phases: phase (a, b) holds padded pixels
// (s*u + a, s*v + b) on a grid of ceil(Hp/s) rows of pitch ceil(Wp/s), so output (y, x) reads
// tap (i, j) at (y + i/s, x + j/s) of phase (i%s, j%s) and the stride-1 scheme holds phase by
// phase (only phases some tap reads are laid out: one for a 1x1 stride-2 shortcut). Its input
// gradient gathers each phase from the taps of that phase. Each stack is one worker's, summed in
// a fixed order, so results do not depend on threads.
extension CPUBackend {
  /// Floats of padded input (and of wide output) one direct stack aims at: a core's L2 or so.
  static let directStackFloats = 128 << 10

  public func sparseConv2dForward(y: Tensor, x: Tensor, weights: SparseConvWeights, bias: Tensor?, geometry g: ConvGeometry, relu: Bool) throws {
    OpShapes.sparseConv(x: x, y: y, bias: bias, weights: weights, geometry: g, op: "sparseConv2dForward")
    let rows = Compressed(
      start: ptr(weights.rowStart), index: ptr(weights.rowIndex), value: ptr(weights.rowValue), count: weights.nonzeros, kernel: g.kernel)
    let (xp, yp, bp) = (UnsafePointer(ptr(x)), ptr(y), bias.map { UnsafePointer(ptr($0)) })
    let plan = StackPlan(g, workers: workerCount)
    // Every stack uses the full stack's strides, so the offsets are computed once.
    let offsets = weights.hostPlans.plan(plan.key(inputGradient: false)) {
      .init(offsets: rows.offsets { c, i, j in c * plan.channelStride + plan.tap(i, j) }, starts: [], values: [])
    }.offsets
    let scratch = workerScratch(columns: g.inChannels * plan.channelStride, other: g.outChannels * plan.gridStride)
    forEachSlice(g, size: plan.stack) { t, first, nb in
      let (padded, wide) = scratch[t]
      plan.stackPadded(xp, first: first, count: nb, into: padded)
      rows.multiply(
        rows: g.outChannels, offsets: offsets, values: rows.value, bias: bp, source: padded, into: wide, stride: plan.gridStride,
        length: plan.outputRun(nb))
      plan.unstackOutputs(wide, first: first, count: nb, relu: relu, into: yp)
    }
  }

  public func sparseConv2dBackwardData(dx: Tensor, dy: Tensor, weights: SparseConvWeights, geometry g: ConvGeometry, reluOutput: Tensor?) throws {
    OpShapes.sparseConv(x: dx, y: dy, bias: nil, weights: weights, geometry: g, op: "sparseConv2dBackwardData")
    if let reluOutput { checkSameCount(reluOutput, dy, op: "sparseConv2dBackwardData") }
    let mask = reluOutput.map { UnsafePointer(ptr($0)) }
    let columns = Compressed(
      start: ptr(weights.colStart), index: ptr(weights.colIndex), value: ptr(weights.colValue), count: weights.nonzeros, kernel: g.kernel)
    let (dxp, dyp) = (ptr(dx), UnsafePointer(ptr(dy)))
    let plan = StackPlan(g, workers: workerCount)
    // One output row per (input channel, phase): the column order's runs of each (channel, tap)
    // regrouped by the phase the tap falls in.
    let layout = weights.hostPlans.plan(plan.key(inputGradient: true)) {
      let order = columns.byPhase(plan)
      let offsets = order.entries.map { e in
        let r = Int(columns.index[e])
        let (o, i, j) = (r / (g.kernel * g.kernel), (r / g.kernel) % g.kernel, r % g.kernel)
        return Int64(o * plan.segment + plan.front - plan.shift(i, j))
      }
      return .init(offsets: offsets, starts: order.starts, values: order.entries.map { columns.value[$0] })
    }
    let (offsets, values) = (layout.offsets, layout.values)
    let scratch = workerScratch(columns: g.outChannels * plan.segment, other: g.inChannels * plan.channelStride)
    forEachSlice(g, size: plan.stack) { t, first, nb in
      let (grid, padded) = scratch[t]
      plan.stackGradient(dyp, first: first, count: nb, reluOutput: mask, into: grid)
      layout.starts.withUnsafeBufferPointer { starts in
        values.withUnsafeBufferPointer { v in
          columns.multiply(
            rows: g.inChannels * plan.phases, start: starts.baseAddress!, offsets: offsets, values: v.baseAddress!, bias: nil, source: grid,
            into: padded, stride: plan.gridStride, length: nb * plan.paddedPlane)
        }
      }
      plan.unstackInputs(padded, first: first, count: nb, into: dxp)
    }
  }
}

/// One compressed order of the nonzeros, read straight from the backend's buffers (indices are
/// Int32 bit patterns in float storage).
private struct Compressed {
  let start: UnsafePointer<Int32>
  let index: UnsafePointer<Int32>
  let value: UnsafePointer<Float>
  let count: Int
  let kernel: Int

  init(
    start: UnsafeMutablePointer<Float>, index: UnsafeMutablePointer<Float>, value: UnsafeMutablePointer<Float>, count: Int, kernel: Int
  ) {
    self.start = UnsafeRawPointer(start).assumingMemoryBound(to: Int32.self)
    self.index = UnsafeRawPointer(index).assumingMemoryBound(to: Int32.self)
    self.value = UnsafePointer(value)
    self.count = count
    self.kernel = kernel
  }

  /// Each nonzero's source offset, from its index `(a * K + i) * K + j` split into (a, i, j).
  func offsets(_ offset: (Int, Int, Int) -> Int) -> [Int64] {
    let (k, kk) = (kernel, kernel * kernel)
    return (0..<count).map { e in
      let r = Int(index[e])
      return Int64(offset(r / kk, (r / k) % k, r % k))
    }
  }

  /// The column order (channel c's nonzeros grouped by tap, `start[c*K*K + tap]`) as rows
  /// (c, phase): the nonzeros' positions in that order and each row's first.
  func byPhase(_ plan: StackPlan) -> (entries: [Int], starts: [Int32]) {
    let (k, s, n) = (kernel, plan.g.stride, plan.phasesPerAxis)
    var entries: [Int] = []
    var starts: [Int32] = [0]
    entries.reserveCapacity(count)
    starts.reserveCapacity(plan.g.inChannels * plan.phases + 1)
    for c in 0..<plan.g.inChannels {
      for phase in 0..<plan.phases {
        let (a, b) = (phase / n, phase % n)
        for i in stride(from: a, to: k, by: s) {
          for j in stride(from: b, to: k, by: s) {
            let tap = (c * k + i) * k + j
            entries.append(contentsOf: Int(start[tap])..<Int(start[tap + 1]))
          }
        }
        starts.append(Int32(entries.count))
      }
    }
    return (entries, starts)
  }

  /// `out[r * stride + t] = bias[r] + sum_e values[e] * source[offsets[e] + t]`.
  func multiply(
    rows: Int, start rowStart: UnsafePointer<Int32>? = nil, offsets: [Int64], values: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
    source: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, stride: Int, length: Int
  ) {
    offsets.withUnsafeBufferPointer { o in
      advprune_sparse_rows(0, Int64(rows), rowStart ?? start, o.baseAddress, values, bias, source, out, Int64(stride), Int64(length))
    }
  }
}

/// The direct layout: stacks of padded images, each input channel as the stride phases its taps
/// read, on a grid of `rows` x `pitch` per image (the padded image itself for stride 1).
private struct StackPlan {
  let g: ConvGeometry
  /// Phases laid out per axis, min(stride, K) (taps i reach phases i % stride), and in all.
  let phasesPerAxis: Int
  let phases: Int
  /// Rows and row pitch of one image's phase plane, which is also the grid of the wide output
  /// and of the wide dy: ceil(Hp / s) and ceil(Wp / s).
  let rows: Int
  let pitch: Int
  let paddedPlane: Int
  /// Images per stack.
  let stack: Int
  /// Zeros before each channel of dy on the grid: the largest shift.
  let front: Int
  /// One phase (or output channel) for a full stack; one input channel, all its phases; one
  /// output channel of dy after `front` zeros.
  let gridStride: Int
  let channelStride: Int
  let segment: Int
  /// Each input row's pixels by phase column: pixels image, image + s, ... (count of them) of a
  /// plane sit at grid, grid + 1, ... of a channel's phases (`laid`: some tap reads them). Worked
  /// out once: the divisions per row cost more than copying a short row.
  let runs: [advprune_phase_run]

  init(_ g: ConvGeometry, workers: Int) {
    self.g = g
    let s = g.stride
    phasesPerAxis = min(s, g.kernel)
    phases = phasesPerAxis * phasesPerAxis
    (rows, pitch) = g.phaseGrid
    paddedPlane = rows * pitch
    let perWorker = (g.batch + max(1, workers) - 1) / max(1, workers)
    // Both the input stack and the wide outputs stay near the budget.
    stack = max(1, min(perWorker, CPUBackend.directStackFloats / max(1, max(g.inChannels * phases, g.outChannels) * paddedPlane)))
    let reach = (g.kernel - 1) / s
    front = reach * pitch + reach
    gridStride = stack * paddedPlane
    channelStride = phases * gridStride
    segment = front + gridStride
    var runs: [advprune_phase_run] = []
    for h in 0..<g.height {
      let (a, u) = ((h + g.padding) % s, (h + g.padding) / s)
      for b in 0..<s {
        let w0 = ((b - g.padding) % s + s) % s
        guard w0 < g.width else { continue }
        let laid = a < phasesPerAxis && b < phasesPerAxis
        let grid = (laid ? (a * phasesPerAxis + b) * gridStride : 0) + u * pitch + (w0 + g.padding) / s
        runs.append(
          advprune_phase_run(image: Int64(h * g.width + w0), grid: Int64(grid), count: Int64((g.width - w0 + s - 1) / s), laid: laid ? 1 : 0))
      }
    }
    self.runs = runs
  }

  /// What the offsets of a weight's nonzeros depend on.
  func key(inputGradient: Bool) -> SparseHostPlans.Key {
    .init(inputGradient: inputGradient, height: g.height, width: g.width, padding: g.padding, stride: g.stride, stack: stack)
  }

  /// Where tap (i, j) reads within an input channel: its phase's grid, shifted.
  func tap(_ i: Int, _ j: Int) -> Int {
    let s = g.stride
    return ((i % s) * phasesPerAxis + j % s) * gridStride + shift(i, j)
  }

  /// Tap (i, j)'s shift within its phase.
  func shift(_ i: Int, _ j: Int) -> Int { (i / g.stride) * pitch + j / g.stride }

  /// Grid points from the first output to the last: ((nb-1)*rows + OH-1)*pitch + OW.
  func outputRun(_ nb: Int) -> Int { ((nb - 1) * rows + g.outHeight - 1) * pitch + g.outWidth }

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

  /// Whether an output plane lies on the grid as in NCHW (a 1x1 stride-1 conv, a linear layer), so
  /// each channel's images move as rows of a whole plane.
  var outputsAreWholePlanes: Bool { g.outWidth == pitch && g.outHeight == rows }

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
