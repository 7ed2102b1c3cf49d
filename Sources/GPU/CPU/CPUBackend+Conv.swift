import CKernels
import Foundation

// Convolution on the CPU reference backend: im2col + GEMM, the batch split across cores.
//
// Each core takes a contiguous range of images and works through it in slices small enough for
// its own column buffer. Columns layout: cols[r, q] with r = (c*K + i)*K + j over the patch and
// q = n*P + oh*OW + ow over the slice's output pixels, so the forward of a slice is one GEMM
// W[OC, patch] * cols[patch, nb*P]. BLAS runs single-threaded inside each worker.
extension CPUBackend {
  /// Images per slice so that one column matrix stays under `maxColumnFloats`.
  func sliceSize(_ g: ConvGeometry) -> Int {
    max(1, min(g.batch, maxColumnFloats / max(1, g.patchSize * g.outPixels)))
  }

  /// Splits the batch over the workers and calls `body(worker, first, count)` for each slice of
  /// at most `size` images (default: what fits the column buffer).
  func forEachSlice(_ g: ConvGeometry, size: Int? = nil, _ body: (Int, Int, Int) -> Void) {
    forEachSlice(batch: g.batch, size: size ?? sliceSize(g), body)
  }

  /// `batch` images split over the workers, each worker's share in slices of at most `size`.
  func forEachSlice(batch: Int, size: Int, _ body: (Int, Int, Int) -> Void) {
    _ = singleThreadedBLAS
    let workers = min(workerCount, batch)
    guard workers > 0 else { return }
    let perWorker = (batch + workers - 1) / workers
    let slice = min(size, perWorker)
    WorkerPool.shared.run(workers) { t in
      let end = min(batch, (t + 1) * perWorker)
      for first in stride(from: t * perWorker, to: end, by: slice) { body(t, first, min(slice, end - first)) }
    }
  }

  /// Valid output columns [lo, hi) for kernel column j: those reading inside the image.
  @inline(__always)
  func validRange(_ g: ConvGeometry, _ j: Int) -> (Int, Int) {
    // w = xo*s - pad + j must lie in [0, W).
    let lo = max(0, (g.padding - j + g.stride - 1) / g.stride)
    let hi = min(g.outWidth, (g.width + g.padding - j + g.stride - 1) / g.stride)
    return (lo, max(lo, hi))
  }

  func im2col(_ x: UnsafePointer<Float>, _ g: ConvGeometry, first: Int, count nb: Int, into cols: UnsafeMutablePointer<Float>) {
    let (p, ow, oh, k, s) = (g.outPixels, g.outWidth, g.outHeight, g.kernel, g.stride)
    let q = nb * p
    for r in 0..<g.patchSize {
      let (c, i, j) = (r / (k * k), (r / k) % k, r % k)
      let (lo, hi) = validRange(g, j)
      for n in 0..<nb {
        let plane = x + ((first + n) * g.inChannels + c) * g.height * g.width
        let out = cols + r * q + n * p
        for y in 0..<oh {
          let h = y * s - g.padding + i
          let row = out + y * ow
          guard h >= 0 && h < g.height else {
            row.update(repeating: 0, count: ow)
            continue
          }
          let line = plane + h * g.width - g.padding + j
          for xo in 0..<lo { row[xo] = 0 }
          if s == 1 {
            (row + lo).update(from: line + lo, count: hi - lo)
          } else {
            for xo in lo..<hi { row[xo] = line[xo * s] }
          }
          for xo in hi..<ow { row[xo] = 0 }
        }
      }
    }
  }

  /// Adds every column entry back onto the input pixel it was read from. Each image plane is
  /// written by one worker in a fixed order, so the sums do not depend on thread timing.
  func col2im(_ cols: UnsafePointer<Float>, _ g: ConvGeometry, first: Int, count nb: Int, into dx: UnsafeMutablePointer<Float>) {
    let (p, ow, oh, k, s) = (g.outPixels, g.outWidth, g.outHeight, g.kernel, g.stride)
    let q = nb * p
    for n in 0..<nb {
      for c in 0..<g.inChannels {
        let plane = dx + ((first + n) * g.inChannels + c) * g.height * g.width
        plane.update(repeating: 0, count: g.height * g.width)
        for i in 0..<k {
          for j in 0..<k {
            let (lo, hi) = validRange(g, j)
            let src = cols + ((c * k + i) * k + j) * q + n * p
            for y in 0..<oh {
              let h = y * s - g.padding + i
              guard h >= 0 && h < g.height else { continue }
              let line = plane + h * g.width - g.padding + j
              let row = src + y * ow
              if s == 1 {
                for xo in lo..<hi { line[xo] += row[xo] }
              } else {
                for xo in lo..<hi { line[xo * s] += row[xo] }
              }
            }
          }
        }
      }
    }
  }

  /// Copies a slice's GEMM output tmp [OC, nb*P] into y[first..<first+nb] ([nb, OC, P]), adding
  /// the bias when there is one, then max(., 0) when `relu`.
  func scatterOutput(
    _ tmp: UnsafePointer<Float>, _ g: ConvGeometry, first: Int, count nb: Int, bias: UnsafePointer<Float>?, relu: Bool = false,
    into y: UnsafeMutablePointer<Float>
  ) {
    let p = g.outPixels
    for n in 0..<nb {
      for o in 0..<g.outChannels {
        let src = tmp + o * nb * p + n * p
        let dst = y + ((first + n) * g.outChannels + o) * p
        let b = bias?[o] ?? 0
        if relu {
          for i in 0..<p { dst[i] = max(src[i] + b, 0) }
        } else {
          for i in 0..<p { dst[i] = src[i] + b }
        }
      }
    }
  }

  /// Copies dy[first..<first+nb] from [nb, OC, P] into [OC, nb*P], as dy * (reluOutput > 0) when
  /// given (the gradient through a ReLU after the convolution).
  func gatherOutputGradient(
    _ dy: UnsafePointer<Float>, _ g: ConvGeometry, first: Int, count nb: Int, reluOutput: UnsafePointer<Float>? = nil,
    into out: UnsafeMutablePointer<Float>
  ) {
    let p = g.outPixels
    for n in 0..<nb {
      for o in 0..<g.outChannels {
        let (src, dst) = (((first + n) * g.outChannels + o) * p, out + o * nb * p + n * p)
        if let y = reluOutput {
          advprune_relu_mask(dst, dy + src, y + src, Int64(p))
        } else {
          dst.update(from: dy + src, count: p)
        }
      }
    }
  }

  public func conv2dForward(y: Tensor, x: Tensor, weight: Tensor, bias: Tensor?, geometry g: ConvGeometry, relu: Bool) throws {
    OpShapes.conv(x: x, weight: weight, y: y, bias: bias, geometry: g, op: "conv2dForward")
    run(forwardPass(y: y, x: x, weight: weight, bias: bias, geometry: g, relu: relu), g)
  }

  public func conv2dBackwardData(dx: Tensor, dy: Tensor, weight: Tensor, geometry g: ConvGeometry, reluOutput: Tensor?) throws {
    OpShapes.conv(x: dx, weight: weight, y: dy, bias: nil, geometry: g, op: "conv2dBackwardData")
    if let reluOutput { checkSameCount(reluOutput, dy, op: "conv2dBackwardData") }
    run(inputGradientPass(dx: dx, dy: dy, weight: weight, geometry: g, reluOutput: reluOutput), g)
  }

  /// The forward of `g` on whichever path takes it (Winograd, direct, im2col), as a pass over
  /// runs of `slice` images (nil: the path's own choice).
  func forwardPass(y: Tensor, x: Tensor, weight: Tensor, bias: Tensor?, geometry g: ConvGeometry, relu: Bool, slice: Int? = nil) -> ConvSlicePass {
    convPass(
      input: ptr(x), weight: weight, bias: bias.map { UnsafePointer(ptr($0)) }, relu: relu, reluOutput: nil, output: ptr(y), g,
      inputGradient: false, slice: slice)
  }

  /// The input gradient of `g` (dy read through the ReLU's mask when `reluOutput` is given) as a
  /// pass over runs of `slice` images, like `forwardPass`.
  func inputGradientPass(dx: Tensor, dy: Tensor, weight: Tensor, geometry g: ConvGeometry, reluOutput: Tensor?, slice: Int? = nil) -> ConvSlicePass {
    convPass(
      input: ptr(dy), weight: weight, bias: nil, relu: false, reluOutput: reluOutput.map { UnsafePointer(ptr($0)) }, output: ptr(dx), g,
      inputGradient: true, slice: slice)
  }

  /// The pass of either direction (the arguments as `winogradPass` and `directPass` take them),
  /// on the first path that takes `g`; im2col + GEMM (+ col2im for the input gradient) the rest.
  private func convPass(
    input: UnsafePointer<Float>, weight: Tensor, bias: UnsafePointer<Float>?, relu: Bool, reluOutput: UnsafePointer<Float>?,
    output: UnsafeMutablePointer<Float>, _ g: ConvGeometry, inputGradient: Bool, slice: Int?
  ) -> ConvSlicePass {
    if usesWinograd(g) {
      return winogradPass(
        input: input, weight: weight, bias: bias, relu: relu, reluOutput: reluOutput, output: output, g, inputGradient: inputGradient, slice: slice)
    }
    if usesDirect(g) {
      return directPass(input: input, weight: weight, bias: bias, relu: relu, reluOutput: reluOutput, output: output, g, inputGradient: inputGradient)
    }
    let (p, images, wp) = (g.outPixels, slice ?? sliceSize(g), ptr(weight))
    return ConvSlicePass(slice: images, columns: g.patchSize * images * p, other: g.outChannels * images * p) { scratch, first, nb in
      let (cols, other) = scratch  // other: the GEMM's output, or dy laid out for it
      if inputGradient {
        self.gatherOutputGradient(input, g, first: first, count: nb, reluOutput: reluOutput, into: other)
        blasGemm(transposeA: true, transposeB: false, m: g.patchSize, n: nb * p, k: g.outChannels, alpha: 1, a: wp, b: other, beta: 0, c: cols)
        self.col2im(cols, g, first: first, count: nb, into: output)
      } else {
        self.im2col(input, g, first: first, count: nb, into: cols)
        blasGemm(transposeA: false, transposeB: false, m: g.outChannels, n: nb * p, k: g.patchSize, alpha: 1, a: wp, b: cols, beta: 0, c: other)
        self.scatterOutput(other, g, first: first, count: nb, bias: bias, relu: relu, into: output)
      }
    }
  }

  /// Runs `pass` over the batch: each worker its share of the images, `pass.slice` at a time.
  func run(_ pass: ConvSlicePass, _ g: ConvGeometry) {
    let scratch = workerScratch(columns: pass.columns, other: pass.other)
    forEachSlice(g, size: pass.slice) { t, first, nb in pass.body(scratch[t], first, nb) }
  }

  public func conv2dBackwardWeight(dWeight: Tensor, dBias: Tensor?, dy: Tensor, x: Tensor, geometry g: ConvGeometry) throws {
    OpShapes.conv(x: x, weight: dWeight, y: dy, bias: dBias, geometry: g, op: "conv2dBackwardWeight")
    let (xp, dyp) = (ptr(x), ptr(dy))
    let (p, slice) = (g.outPixels, sliceSize(g))
    let weights = g.weightShape.reduce(1, *)
    let scratch = workerScratch(columns: g.patchSize * slice * p, other: g.outChannels * slice * p)
    // Each worker sums into its own partial gradient; the partials are added in worker order.
    let stride = weights + g.outChannels
    let partials = UnsafeMutablePointer<Float>.allocate(capacity: workerCount * stride)
    partials.initialize(repeating: 0, count: workerCount * stride)
    defer { partials.deallocate() }
    forEachSlice(g) { t, first, nb in
      let (cols, dyT) = scratch[t]
      let partial = partials + t * stride
      im2col(xp, g, first: first, count: nb, into: cols)
      gatherOutputGradient(dyp, g, first: first, count: nb, into: dyT)
      blasGemm(
        transposeA: false, transposeB: true, m: g.outChannels, n: g.patchSize, k: nb * p, alpha: 1,
        a: dyT, b: cols, beta: 1, c: partial)
      let q = nb * p
      for o in 0..<g.outChannels {
        var s: Double = 0  // thousands of terms: keep the reference's digits
        let row = dyT + o * q
        for i in 0..<q { s += Double(row[i]) }
        partial[weights + o] += Float(s)
      }
    }
    let (dw, db) = (ptr(dWeight), dBias.map(ptr))
    dw.update(from: partials, count: weights)
    db?.update(from: partials + weights, count: g.outChannels)
    for t in 1..<max(1, workerCount) {
      let partial = partials + t * stride
      for i in 0..<weights { dw[i] += partial[i] }
      if let db { for o in 0..<g.outChannels { db[o] += partial[weights + o] } }
    }
  }
}
