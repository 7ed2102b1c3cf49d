import Foundation

// Batch normalisation, residual adds and average pooling on the CPU reference backend.
extension CPUBackend {
  public func add(out: Tensor, a: Tensor, b: Tensor) throws {
    checkSameCount(out, a, op: "add")
    checkSameCount(a, b, op: "add")
    let sum = addition(out: out, a: a, b: b, relu: false)
    parallelRanges(a.count, sum)
  }

  public func addReLU(out: Tensor, a: Tensor, b: Tensor) throws {
    checkSameCount(out, a, op: "addReLU")
    checkSameCount(a, b, op: "addReLU")
    let sum = addition(out: out, a: a, b: b, relu: true)
    parallelRanges(a.count, sum)
  }

  /// `out = a + b` (then `max(., 0)` when `relu`) over a range of elements: the whole-batch ops'
  /// share of a core, or a depth-first run's slice of images.
  func addition(out: Tensor, a: Tensor, b: Tensor, relu: Bool) -> (Range<Int>) -> Void {
    let (op, ap, bp) = (ptr(out), ptr(a), ptr(b))
    return relu ? { r in for i in r { op[i] = max(ap[i] + bp[i], 0) } } : { r in for i in r { op[i] = ap[i] + bp[i] } }
  }

  public func avgPoolForward(y: Tensor, x: Tensor, kernel k: Int) throws {
    let (planes, h, w) = OpShapes.avgPool(x: x, y: y, kernel: k, op: "avgPoolForward")
    let (yp, xp) = (ptr(y), ptr(x))
    let (oh, ow) = (h / k, w / k)
    let scale = 1 / Float(k * k)
    parallelRanges(planes * oh * ow, minimumPerThread: 4096) { r in
      for o in r {
        let plane = o / (oh * ow)
        let (oy, ox) = ((o / ow) % oh, o % ow)
        var s: Float = 0
        for i in 0..<k {
          for j in 0..<k { s += xp[plane * h * w + (oy * k + i) * w + ox * k + j] }
        }
        yp[o] = s * scale
      }
    }
  }

  public func avgPoolBackward(dx: Tensor, dy: Tensor, kernel k: Int) throws {
    let (_, h, w) = OpShapes.avgPool(x: dx, y: dy, kernel: k, op: "avgPoolBackward")
    let (dxp, dyp) = (ptr(dx), ptr(dy))
    let (oh, ow) = (h / k, w / k)
    let scale = 1 / Float(k * k)
    // Whole planes per core: the index divisions per element cost more than the copy.
    parallelRanges(dx.count / max(1, h * w), minimumPerThread: max(1, 32_768 / max(1, h * w))) { planes in
      for plane in planes {
        let (to, from) = (dxp + plane * h * w, dyp + plane * oh * ow)
        for y in 0..<h {
          let (row, source) = (to + y * w, from + (y / k) * ow)
          for ox in 0..<ow {
            let v = source[ox] * scale
            for j in 0..<k { row[ox * k + j] = v }
          }
        }
      }
    }
  }

  public func batchNormForward(
    y: Tensor, x: Tensor, gamma: Tensor, beta: Tensor, mean: Tensor, invStd: Tensor,
    runningMean: Tensor, runningVar: Tensor, training: Bool, momentum: Float, eps: Float, relu: Bool
  ) throws {
    let (n, c, hw) = OpShapes.batchNorm(x: x, channelTensors: [gamma, beta, mean, invStd, runningMean, runningVar], op: "batchNormForward")
    checkSameCount(y, x, op: "batchNormForward")
    let (xp, yp, gp, bp, mp, sp, rm, rv) = (ptr(x), ptr(y), ptr(gamma), ptr(beta), ptr(mean), ptr(invStd), ptr(runningMean), ptr(runningVar))
    let m = n * hw
    WorkerPool.shared.run(c) { ch in
      if training {
        // Double accumulators: the reference should not lose digits over 10^4-10^5 values.
        var sum: Double = 0
        for b in 0..<n { for i in 0..<hw { sum += Double(xp[(b * c + ch) * hw + i]) } }
        let mu = Float(sum / Double(m))
        var sq: Double = 0
        for b in 0..<n {
          for i in 0..<hw {
            let d = Double(xp[(b * c + ch) * hw + i] - mu)
            sq += d * d
          }
        }
        let variance = Float(sq / Double(m))
        mp[ch] = mu
        sp[ch] = 1 / (variance + eps).squareRoot()
        rm[ch] = (1 - momentum) * rm[ch] + momentum * mu
        rv[ch] = (1 - momentum) * rv[ch] + momentum * variance * Float(m) / Float(max(m - 1, 1))
      } else {
        mp[ch] = rm[ch]
        sp[ch] = 1 / (rv[ch] + eps).squareRoot()
      }
      let (mu, inv, g, bt) = (mp[ch], sp[ch], gp[ch], bp[ch])
      for b in 0..<n {
        for i in 0..<hw {
          let k = (b * c + ch) * hw + i
          let v = g * ((xp[k] - mu) * inv) + bt
          yp[k] = relu ? max(v, 0) : v
        }
      }
    }
  }

  public func batchNormBackward(
    dx: Tensor?, dGamma: Tensor?, dBeta: Tensor?, dy: Tensor, x: Tensor, gamma: Tensor, mean: Tensor, invStd: Tensor,
    training: Bool, reluOutput: Tensor?
  ) throws {
    precondition((dGamma == nil) == (dBeta == nil), "batchNormBackward: dGamma and dBeta come together")
    let (n, c, hw) = OpShapes.batchNorm(x: x, channelTensors: [gamma, mean, invStd] + [dGamma, dBeta].compactMap { $0 }, op: "batchNormBackward")
    checkSameCount(dy, x, op: "batchNormBackward")
    if let reluOutput { checkSameCount(reluOutput, x, op: "batchNormBackward") }
    let (xp, gp, mp, sp) = (ptr(x), ptr(gamma), ptr(mean), ptr(invStd))
    let (rawDy, mask) = (ptr(dy), reluOutput.map(ptr))
    // dy through the fused ReLU's mask (its output) when there is one.
    let dyp = { (k: Int) -> Float in
      guard let mask, !(mask[k] > 0) else { return rawDy[k] }
      return 0
    }
    let (dgp, dbp) = (dGamma.map(ptr), dBeta.map(ptr))
    let dxp = dx.map(ptr)
    let needSums = dgp != nil || (training && dxp != nil)
    let m = Float(n * hw)
    WorkerPool.shared.run(c) { ch in
      let (mu, inv) = (mp[ch], sp[ch])
      var (sumDy, sumDyX): (Double, Double) = (0, 0)
      if needSums {
        for b in 0..<n {
          for i in 0..<hw {
            let k = (b * c + ch) * hw + i
            let d = dyp(k)
            sumDy += Double(d)
            sumDyX += Double(d * ((xp[k] - mu) * inv))
          }
        }
      }
      let (sdy, sdyx) = (Float(sumDy), Float(sumDyX))
      dgp?[ch] = sdyx
      dbp?[ch] = sdy
      guard let dxp else { return }
      let scale = gp[ch] * inv
      for b in 0..<n {
        for i in 0..<hw {
          let k = (b * c + ch) * hw + i
          if training {
            dxp[k] = scale / m * (m * dyp(k) - sdy - ((xp[k] - mu) * inv) * sdyx)
          } else {
            dxp[k] = scale * dyp(k)
          }
        }
      }
    }
  }
}
