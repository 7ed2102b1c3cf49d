import CKernels
import Foundation

// Sparse convolution on the CPU: work proportional to the nonzeros, the inner loop in CKernels
// (`advprune_sparse_rows`: a register block of outputs, a row's nonzeros streaming past).
//
// Two layouts feed it. Direct, for stride-1 convs with large planes: the output is computed
// "wide", with the (padded) input's row pitch Wp, so output pixel (y, x) sits at y*Wp + x and
// reads input pixel (y+i, x+j) at (y+i)*Wp + x+j: nonzero w[o, c, i, j] is one shifted row of the
// padded image, with no im2col. The Wp - OW columns past each output row are scratch, dropped
// when copying out. The input gradient is the transpose: dy laid out wide (zeros in the scratch
// columns, zero margins around each channel) gathered onto the padded input plane at shift
// -(i*Wp + j). Otherwise (strides, small planes, linear layers as 1x1 convs over 1x1 images):
// sparse weight times the im2col columns, in the dense path's slices. Each image or slice is one
// worker's, summed in a fixed order, so results do not depend on threads.
extension CPUBackend {
  /// Output rows at least this long take the direct layout (shorter rows waste the register block).
  static let directMinimumLength = 32

  public func sparseConv2dForward(y: Tensor, x: Tensor, weights: SparseConvWeights, bias: Tensor?, geometry g: ConvGeometry) throws {
    OpShapes.sparseConv(x: x, y: y, bias: bias, weights: weights, geometry: g, op: "sparseConv2dForward")
    let rows = Compressed(
      start: ptr(weights.rowStart), index: ptr(weights.rowIndex), value: ptr(weights.rowValue), count: weights.nonzeros, kernel: g.kernel)
    let (xp, yp, bp) = (UnsafePointer(ptr(x)), ptr(y), bias.map { UnsafePointer(ptr($0)) })
    let plan = DirectPlan(g)
    if plan.applies {
      let offsets = rows.offsets { c, i, j in c * plan.paddedPlane + i * plan.pitch + j }
      let wideFloats = plan.wideIsOutput ? 0 : g.outChannels * plan.widePlane
      forEachImage(g.batch, columns: g.padding > 0 ? g.inChannels * plan.paddedPlane : 0, other: wideFloats) { n, padded, wide in
        let image = xp + n * g.inChannels * g.height * g.width
        let out = yp + n * g.outChannels * g.outPixels
        let source = g.padding > 0 ? plan.pad(image, into: padded) : image
        let target = plan.wideIsOutput ? out : wide
        rows.multiply(
          rows: g.outChannels, offsets: offsets, bias: bp, source: source, into: target,
          stride: plan.wideIsOutput ? g.outPixels : plan.widePlane, length: plan.wideLength)
        if !plan.wideIsOutput {
          for o in 0..<g.outChannels { plan.narrow(wide + o * plan.widePlane, into: out + o * g.outPixels) }
        }
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
        for n in 0..<nb {
          for o in 0..<g.outChannels { (yp + ((first + n) * g.outChannels + o) * p).update(from: tmp + o * q + n * p, count: p) }
        }
      }
    }
  }

  public func sparseConv2dBackwardData(dx: Tensor, dy: Tensor, weights: SparseConvWeights, geometry g: ConvGeometry) throws {
    OpShapes.sparseConv(x: dx, y: dy, bias: nil, weights: weights, geometry: g, op: "sparseConv2dBackwardData")
    let columns = Compressed(
      start: ptr(weights.colStart), index: ptr(weights.colIndex), value: ptr(weights.colValue), count: weights.nonzeros, kernel: g.kernel)
    let (dxp, dyp) = (ptr(dx), UnsafePointer(ptr(dy)))
    let plan = DirectPlan(g)
    let kk = g.kernel * g.kernel
    if plan.applies {
      // Channel c's nonzeros are its K*K patch rows' together.
      let byChannel = (0...g.inChannels).map { Int32(columns.start[$0 * kk]) }
      let offsets = columns.offsets { o, i, j in o * plan.segment + plan.front - (i * plan.pitch + j) }
      let paddedFloats = g.padding > 0 ? g.inChannels * plan.paddedPlane : 0
      forEachImage(g.batch, columns: g.outChannels * plan.segment, other: paddedFloats) { n, margined, padded in
        let grad = dyp + n * g.outChannels * g.outPixels
        let image = dxp + n * g.inChannels * g.height * g.width
        plan.widenWithMargins(grad, into: margined)
        let target = g.padding > 0 ? padded : image
        byChannel.withUnsafeBufferPointer { starts in
          columns.multiply(
            rows: g.inChannels, start: starts.baseAddress!, offsets: offsets, bias: nil, source: margined, into: target,
            stride: plan.paddedPlane, length: plan.paddedPlane)
        }
        if g.padding > 0 {
          for c in 0..<g.inChannels { plan.crop(padded + c * plan.paddedPlane, into: image + c * g.height * g.width) }
        }
      }
    } else {
      let (p, slice) = (g.outPixels, sliceSize(g))
      let scratch = workerScratch(columns: g.patchSize * slice * p, other: g.outChannels * slice * p)
      forEachSlice(g) { t, first, nb in
        let (cols, dyT) = scratch[t]
        let q = nb * p
        gatherOutputGradient(dyp, g, first: first, count: nb, into: dyT)
        let offsets = columns.offsets { o, _, _ in o * q }
        columns.multiply(rows: g.patchSize, offsets: offsets, bias: nil, source: dyT, into: cols, stride: q, length: q)
        col2im(cols, g, first: first, count: nb, into: dxp)
      }
    }
  }

  /// Splits the batch over the workers, one image at a time, each with its own two scratch buffers.
  func forEachImage(
    _ batch: Int, columns: Int, other: Int,
    _ body: (Int, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> Void
  ) {
    let workers = min(workerCount, batch)
    guard workers > 0 else { return }
    let scratch = workerScratch(columns: columns, other: other)
    let perWorker = (batch + workers - 1) / workers
    DispatchQueue.concurrentPerform(iterations: workers) { t in
      for n in (t * perWorker)..<min(batch, (t + 1) * perWorker) { body(n, scratch[t].0, scratch[t].1) }
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

/// The direct layout of a stride-1 conv: padded input planes, wide output rows, and dy with margins.
private struct DirectPlan {
  let g: ConvGeometry
  /// Row pitch of the padded input, of the wide output and of the wide dy.
  let pitch: Int
  let paddedPlane: Int
  /// A wide output plane, OH rows of `pitch`.
  let widePlane: Int
  /// Floats a row of outputs spans: (OH-1)*pitch + OW.
  let wideLength: Int
  /// A 1x1 kernel without padding has no scratch columns: the wide output is the output.
  let wideIsOutput: Bool
  /// Zeros before each channel of margined dy (the largest shift, (K-1)*pitch + K-1), and a
  /// channel's whole stretch with the (K-1)*pitch zeros after it.
  let front: Int
  let segment: Int
  let applies: Bool

  init(_ g: ConvGeometry) {
    self.g = g
    pitch = g.width + 2 * g.padding
    paddedPlane = pitch * (g.height + 2 * g.padding)
    widePlane = g.outHeight * pitch
    wideLength = (g.outHeight - 1) * pitch + g.outWidth
    wideIsOutput = pitch == g.outWidth
    front = (g.kernel - 1) * pitch + g.kernel - 1
    segment = front + widePlane + (g.kernel - 1) * pitch
    applies = g.stride == 1 && wideLength >= CPUBackend.directMinimumLength
  }

  /// Copies an image's channels into zero-bordered planes.
  func pad(_ image: UnsafePointer<Float>, into padded: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
    padded.update(repeating: 0, count: g.inChannels * paddedPlane)
    for c in 0..<g.inChannels {
      for h in 0..<g.height {
        (padded + c * paddedPlane + (h + g.padding) * pitch + g.padding).update(from: image + (c * g.height + h) * g.width, count: g.width)
      }
    }
    return UnsafePointer(padded)
  }

  /// Keeps the first OW columns of each wide row.
  func narrow(_ wide: UnsafeMutablePointer<Float>, into plane: UnsafeMutablePointer<Float>) {
    for y in 0..<g.outHeight { (plane + y * g.outWidth).update(from: wide + y * pitch, count: g.outWidth) }
  }

  /// Lays each channel of dy out wide between zero margins; the scratch columns are zero too, so
  /// whatever the shifted reads touch outside dy adds nothing.
  func widenWithMargins(_ dy: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
    for o in 0..<g.outChannels {
      let channel = out + o * segment
      channel.update(repeating: 0, count: segment)
      for y in 0..<g.outHeight {
        (channel + front + y * pitch).update(from: dy + (o * g.outHeight + y) * g.outWidth, count: g.outWidth)
      }
    }
  }

  /// The interior of a padded plane.
  func crop(_ padded: UnsafeMutablePointer<Float>, into plane: UnsafeMutablePointer<Float>) {
    for h in 0..<g.height { (plane + h * g.width).update(from: padded + (h + g.padding) * pitch + g.padding, count: g.width) }
  }
}
