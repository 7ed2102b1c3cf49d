import CKernels
import Foundation

// Sparse convolution on the CPU: work proportional to the nonzeros, the inner loop in CKernels
// (`advprune_sparse_rows`: a register block of outputs, a row's nonzeros streaming past).
//
// Two layouts feed it. Direct, for stride-1 convs: a stack of nb images is laid out per channel
// as nb zero-padded planes one under the other (row pitch Wp, Hp rows each), and the output is
// computed "wide" on the same grid: output pixel (n, y, x) sits at (n*Hp + y)*Wp + x and reads
// input pixel (y+i, x+j) of image n at (n*Hp + y+i)*Wp + x+j, so nonzero w[o, c, i, j] is one
// contiguous shifted run of channel c's stack, offset i*Wp + j, with no im2col. The grid points
// that are not outputs (the Wp - OW columns past each row, the K-1 rows between images) are
// computed and dropped when copying out; stacking keeps the runs long on small planes. The input
// gradient is the transpose: dy on the same grid (zeros off the outputs, a zero margin before
// each channel) gathered onto the padded input stack at shift -(i*Wp + j); the zero rows between
// images keep each image's gradient its own. Strided convs: the sparse weight times the im2col
// columns, in the dense path's slices. Each stack or slice is one worker's, summed in a fixed
// order, so results do not depend on threads.
extension CPUBackend {
  /// Floats of padded input (and of wide output) one direct stack aims at: a core's L2 or so.
  static let directStackFloats = 128 << 10

  public func sparseConv2dForward(y: Tensor, x: Tensor, weights: SparseConvWeights, bias: Tensor?, geometry g: ConvGeometry, relu: Bool) throws {
    OpShapes.sparseConv(x: x, y: y, bias: bias, weights: weights, geometry: g, op: "sparseConv2dForward")
    let rows = Compressed(
      start: ptr(weights.rowStart), index: ptr(weights.rowIndex), value: ptr(weights.rowValue), count: weights.nonzeros, kernel: g.kernel)
    let (xp, yp, bp) = (UnsafePointer(ptr(x)), ptr(y), bias.map { UnsafePointer(ptr($0)) })
    if g.stride == 1 {
      let plan = StackPlan(g, workers: workerCount)
      // Every stack uses the full stack's channel stride, so the offsets are computed once.
      let offsets = rows.offsets { c, i, j in c * plan.channelStride + i * plan.pitch + j }
      let scratch = workerScratch(columns: g.inChannels * plan.channelStride, other: g.outChannels * plan.channelStride)
      forEachSlice(g, size: plan.stack) { t, first, nb in
        let (padded, wide) = scratch[t]
        plan.stackPadded(xp, first: first, count: nb, into: padded)
        rows.multiply(
          rows: g.outChannels, offsets: offsets, bias: bp, source: padded, into: wide, stride: plan.channelStride, length: plan.outputRun(nb))
        plan.unstackOutputs(wide, first: first, count: nb, relu: relu, into: yp)
      }
    } else {
      let (p, slice) = (g.outPixels, sliceSize(g))
      let scratch = workerScratch(columns: g.patchSize * slice * p, other: g.outChannels * slice * p)
      forEachSlice(g) { t, first, nb in
        let (cols, tmp) = scratch[t]
        let q = nb * p
        im2col(xp, g, first: first, count: nb, into: cols)
        let offsets = rows.offsets { c, i, j in ((c * g.kernel + i) * g.kernel + j) * q }
        rows.multiply(rows: g.outChannels, offsets: offsets, bias: bp, source: cols, into: tmp, stride: q, length: q)
        scatterOutput(tmp, g, first: first, count: nb, bias: nil, relu: relu, into: yp)
      }
    }
  }

  public func sparseConv2dBackwardData(dx: Tensor, dy: Tensor, weights: SparseConvWeights, geometry g: ConvGeometry, reluOutput: Tensor?) throws {
    OpShapes.sparseConv(x: dx, y: dy, bias: nil, weights: weights, geometry: g, op: "sparseConv2dBackwardData")
    if let reluOutput { checkSameCount(reluOutput, dy, op: "sparseConv2dBackwardData") }
    let mask = reluOutput.map { UnsafePointer(ptr($0)) }
    let columns = Compressed(
      start: ptr(weights.colStart), index: ptr(weights.colIndex), value: ptr(weights.colValue), count: weights.nonzeros, kernel: g.kernel)
    let (dxp, dyp) = (ptr(dx), UnsafePointer(ptr(dy)))
    let kk = g.kernel * g.kernel
    if g.stride == 1 {
      let plan = StackPlan(g, workers: workerCount)
      // Channel c's nonzeros are its K*K patch rows' together.
      let byChannel = (0...g.inChannels).map { Int32(columns.start[$0 * kk]) }
      let offsets = columns.offsets { o, i, j in o * plan.segment + plan.front - (i * plan.pitch + j) }
      let scratch = workerScratch(columns: g.outChannels * plan.segment, other: g.inChannels * plan.channelStride)
      forEachSlice(g, size: plan.stack) { t, first, nb in
        let (grid, padded) = scratch[t]
        plan.stackGradient(dyp, first: first, count: nb, reluOutput: mask, into: grid)
        byChannel.withUnsafeBufferPointer { starts in
          columns.multiply(
            rows: g.inChannels, start: starts.baseAddress!, offsets: offsets, bias: nil, source: grid, into: padded,
            stride: plan.channelStride, length: nb * plan.paddedPlane)
        }
        plan.unstackInputs(padded, first: first, count: nb, into: dxp)
      }
    } else {
      let (p, slice) = (g.outPixels, sliceSize(g))
      let scratch = workerScratch(columns: g.patchSize * slice * p, other: g.outChannels * slice * p)
      forEachSlice(g) { t, first, nb in
        let (cols, dyT) = scratch[t]
        let q = nb * p
        gatherOutputGradient(dyp, g, first: first, count: nb, reluOutput: mask, into: dyT)
        let offsets = columns.offsets { o, _, _ in o * q }
        columns.multiply(rows: g.patchSize, offsets: offsets, bias: nil, source: dyT, into: cols, stride: q, length: q)
        col2im(cols, g, first: first, count: nb, into: dxp)
      }
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

  /// `out[r * stride + t] = bias[r] + sum_e value[e] * source[offsets[e] + t]`.
  func multiply(
    rows: Int, start rowStart: UnsafePointer<Int32>? = nil, offsets: [Int64], bias: UnsafePointer<Float>?,
    source: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, stride: Int, length: Int
  ) {
    offsets.withUnsafeBufferPointer { o in
      advprune_sparse_rows(0, Int64(rows), rowStart ?? start, o.baseAddress, value, bias, source, out, Int64(stride), Int64(length))
    }
  }
}

/// The direct layout of a stride-1 conv: stacks of padded images on a grid of pitch Wp.
private struct StackPlan {
  let g: ConvGeometry
  /// Row pitch of the padded input, the wide output and the wide dy.
  let pitch: Int
  /// One padded image plane, Hp rows of `pitch`.
  let paddedPlane: Int
  /// Images per stack.
  let stack: Int
  /// Zeros before each channel of dy on the grid: the largest shift, (K-1)*pitch + K-1.
  let front: Int
  /// One channel's grid for a full stack, and that after `front` zeros (dy's layout).
  let channelStride: Int
  let segment: Int

  init(_ g: ConvGeometry, workers: Int) {
    self.g = g
    pitch = g.width + 2 * g.padding
    paddedPlane = pitch * (g.height + 2 * g.padding)
    let perWorker = (g.batch + max(1, workers) - 1) / max(1, workers)
    // Both the input stack and the wide outputs stay near the budget.
    stack = max(1, min(perWorker, CPUBackend.directStackFloats / max(1, max(g.inChannels, g.outChannels) * paddedPlane)))
    front = (g.kernel - 1) * pitch + g.kernel - 1
    channelStride = stack * paddedPlane
    segment = front + channelStride
  }

  /// Grid points from the first output to the last: ((nb-1)*Hp + OH-1)*pitch + OW.
  func outputRun(_ nb: Int) -> Int { ((nb - 1) * (g.height + 2 * g.padding) + g.outHeight - 1) * pitch + g.outWidth }

  /// Images first..<first+nb of x, channel by channel, into zero-bordered planes one under the other.
  func stackPadded(_ x: UnsafePointer<Float>, first: Int, count nb: Int, into out: UnsafeMutablePointer<Float>) {
    out.update(repeating: 0, count: g.inChannels * channelStride)
    for c in 0..<g.inChannels {
      for n in 0..<nb {
        let plane = out + c * channelStride + n * paddedPlane + g.padding * pitch + g.padding
        let image = x + ((first + n) * g.inChannels + c) * g.height * g.width
        for h in 0..<g.height { (plane + h * pitch).update(from: image + h * g.width, count: g.width) }
      }
    }
  }

  /// The outputs on the wide grid back into y[first..<first+nb] (NCHW).
  func unstackOutputs(_ wide: UnsafeMutablePointer<Float>, first: Int, count nb: Int, relu: Bool, into y: UnsafeMutablePointer<Float>) {
    for o in 0..<g.outChannels {
      for n in 0..<nb {
        let grid = wide + o * channelStride + n * paddedPlane
        let plane = y + ((first + n) * g.outChannels + o) * g.outPixels
        for r in 0..<g.outHeight {
          let (to, from) = (plane + r * g.outWidth, grid + r * pitch)
          if relu {
            for i in 0..<g.outWidth { to[i] = max(from[i], 0) }
          } else {
            to.update(from: from, count: g.outWidth)
          }
        }
      }
    }
  }

  /// dy[first..<first+nb] onto the grid, each channel after `front` zeros, zeros off the outputs;
  /// read as dy * (reluOutput > 0) when given (dy's shape).
  func stackGradient(
    _ dy: UnsafePointer<Float>, first: Int, count nb: Int, reluOutput: UnsafePointer<Float>?, into out: UnsafeMutablePointer<Float>
  ) {
    out.update(repeating: 0, count: g.outChannels * segment)
    for o in 0..<g.outChannels {
      for n in 0..<nb {
        let grid = out + o * segment + front + n * paddedPlane
        let at = ((first + n) * g.outChannels + o) * g.outPixels
        for r in 0..<g.outHeight {
          let (to, from) = (grid + r * pitch, at + r * g.outWidth)
          if let reluOutput {
            advprune_relu_mask(to, dy + from, reluOutput + from, Int64(g.outWidth))
          } else {
            to.update(from: dy + from, count: g.outWidth)
          }
        }
      }
    }
  }

  /// The interior of each padded input plane back into dx[first..<first+nb] (NCHW).
  func unstackInputs(_ padded: UnsafeMutablePointer<Float>, first: Int, count nb: Int, into dx: UnsafeMutablePointer<Float>) {
    for c in 0..<g.inChannels {
      for n in 0..<nb {
        let grid = padded + c * channelStride + n * paddedPlane + g.padding * pitch + g.padding
        let plane = dx + ((first + n) * g.inChannels + c) * g.height * g.width
        for h in 0..<g.height { (plane + h * g.width).update(from: grid + h * pitch, count: g.width) }
      }
    }
  }
}
