import CKernels

// ReLU, max pooling and masks on the CPU reference backend.
extension CPUBackend {
  public func reluForward(y: Tensor, x: Tensor) throws {
    checkSameCount(y, x, op: "reluForward")
    let (yp, xp) = (ptr(y), ptr(x))
    parallelRanges(x.count) { r in for i in r { yp[i] = max(xp[i], 0) } }
  }

  public func reluBackward(dx: Tensor, dy: Tensor, y: Tensor) throws {
    checkSameCount(dx, dy, op: "reluBackward")
    checkSameCount(dx, y, op: "reluBackward")
    parallelRanges(dx.count, reluMask(dx: dx, dy: dy, y: y))
  }

  /// `dx = dy * (y > 0)` over a range of elements (the whole-batch op's share of a core, or a
  /// depth-first run's slice of images).
  func reluMask(dx: Tensor, dy: Tensor, y: Tensor) -> (Range<Int>) -> Void {
    let (dxp, dyp, yp) = (ptr(dx), ptr(dy), ptr(y))
    return { r in advprune_relu_mask(dxp + r.lowerBound, dyp + r.lowerBound, yp + r.lowerBound, Int64(r.count)) }
  }

  public func multiply(out: Tensor, a: Tensor, b: Tensor) throws {
    checkSameCount(out, a, op: "multiply")
    checkSameCount(a, b, op: "multiply")
    let (op, ap, bp) = (ptr(out), ptr(a), ptr(b))
    parallelRanges(a.count) { r in for i in r { op[i] = ap[i] * bp[i] } }
  }

  /// Index (0...3, row-major in the window) of the first maximum of window (plane, oy, ox).
  @inline(__always)
  func argmax2x2(_ x: UnsafePointer<Float>, width: Int, base: Int) -> Int {
    var best = 0
    var value = x[base]
    if x[base + 1] > value {
      best = 1
      value = x[base + 1]
    }
    if x[base + width] > value {
      best = 2
      value = x[base + width]
    }
    if x[base + width + 1] > value { best = 3 }
    return best
  }

  /// Calls `body(base, o)` for every 2x2 window of `planes` planes of h x w: `base` is the window's
  /// top-left input index, `o` its output index. Whole planes per core, rows of windows within:
  /// three integer divisions per flat output index cost more than the window itself.
  @inline(__always)
  func forEachPoolWindow(planes: Int, height h: Int, width w: Int, _ body: (Int, Int) -> Void) {
    let (oh, ow) = (h / 2, w / 2)
    parallelRanges(planes, minimumPerThread: max(1, 8192 / max(1, oh * ow))) { r in
      for plane in r {
        for oy in 0..<oh {
          let (top, out) = (plane * h * w + 2 * oy * w, (plane * oh + oy) * ow)
          for ox in 0..<ow { body(top + 2 * ox, out + ox) }
        }
      }
    }
  }

  public func maxPool2x2Forward(y: Tensor, x: Tensor) throws {
    let (planes, h, w) = OpShapes.pool(x: x, y: y, op: "maxPool2x2Forward")
    let (yp, xp) = (ptr(y), ptr(x))
    if vectorPooling {
      let pairs = planes * h / 2
      return parallelRanges(pairs, minimumPerThread: max(1, 4096 / w)) { r in
        advprune_maxpool2x2_forward(xp, Int64(pairs), Int64(w), Int64(r.lowerBound), Int64(r.upperBound), yp)
      }
    }
    forEachPoolWindow(planes: planes, height: h, width: w) { base, o in
      let a = argmax2x2(xp, width: w, base: base)
      yp[o] = xp[base + (a >> 1) * w + (a & 1)]
    }
  }

  public func maxPool2x2Backward(dx: Tensor, dy: Tensor, x: Tensor) throws {
    let (planes, h, w) = OpShapes.pool(x: x, y: dy, op: "maxPool2x2Backward")
    checkSameCount(dx, x, op: "maxPool2x2Backward")
    let (dxp, dyp, xp) = (ptr(dx), ptr(dy), ptr(x))
    if vectorPooling {
      let pairs = planes * h / 2
      return parallelRanges(pairs, minimumPerThread: max(1, 4096 / w)) { r in
        advprune_maxpool2x2_backward(xp, dyp, Int64(pairs), Int64(w), Int64(r.lowerBound), Int64(r.upperBound), dxp)
      }
    }
    forEachPoolWindow(planes: planes, height: h, width: w) { base, o in
      let a = argmax2x2(xp, width: w, base: base)
      let g = dyp[o]
      dxp[base] = a == 0 ? g : 0
      dxp[base + 1] = a == 1 ? g : 0
      dxp[base + w] = a == 2 ? g : 0
      dxp[base + w + 1] = a == 3 ? g : 0
    }
  }

  public func randomUniform(_ tensor: Tensor, low: Float, high: Float, seed: UInt64) throws {
    let tp = ptr(tensor)
    let span = high - low
    parallelRanges(tensor.count) { r in
      for i in r { tp[i] = low + span * CounterRandom.unit(index: UInt32(truncatingIfNeeded: i), seed: seed) }
    }
  }
}
