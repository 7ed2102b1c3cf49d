// Convolution on the CPU reference backend: im2col + one GEMM per slice of the batch.
//
// Columns layout: cols[r, q] with r = (c*K + i)*K + j over the patch and q = n*P + oh*OW + ow over
// the output pixels of the slice, so the forward is one GEMM W[OC, patch] * cols[patch, nb*P].
extension CPUBackend {
  /// Images per slice so that the column matrix stays under `maxColumnFloats`.
  func sliceSize(_ g: ConvGeometry) -> Int {
    max(1, min(g.batch, maxColumnFloats / max(1, g.patchSize * g.outPixels)))
  }

  func im2col(_ x: UnsafePointer<Float>, _ g: ConvGeometry, first: Int, count nb: Int, into cols: UnsafeMutablePointer<Float>) {
    let (p, ow, oh, k) = (g.outPixels, g.outWidth, g.outHeight, g.kernel)
    let q = nb * p
    parallelRanges(g.patchSize, minimumPerThread: 1) { rows in
      for r in rows {
        let c = r / (k * k)
        let i = (r / k) % k
        let j = r % k
        let row = cols + r * q
        for n in 0..<nb {
          let plane = x + ((first + n) * g.inChannels + c) * g.height * g.width
          for y in 0..<oh {
            let h = y * g.stride - g.padding + i
            let out = row + n * p + y * ow
            if h < 0 || h >= g.height {
              out.update(repeating: 0, count: ow)
              continue
            }
            let line = plane + h * g.width
            for xo in 0..<ow {
              let w = xo * g.stride - g.padding + j
              out[xo] = (w >= 0 && w < g.width) ? line[w] : 0
            }
          }
        }
      }
    }
  }

  /// Adds every column entry back onto the input pixel it was read from (gather form: each input
  /// pixel sums its own contributions, so the result does not depend on thread timing).
  func col2im(_ cols: UnsafePointer<Float>, _ g: ConvGeometry, first: Int, count nb: Int, into dx: UnsafeMutablePointer<Float>) {
    let (p, ow, oh, k, s) = (g.outPixels, g.outWidth, g.outHeight, g.kernel, g.stride)
    let q = nb * p
    parallelRanges(nb * g.inChannels, minimumPerThread: 1) { planes in
      for plane in planes {
        let n = plane / g.inChannels
        let c = plane % g.inChannels
        let out = dx + ((first + n) * g.inChannels + c) * g.height * g.width
        for h in 0..<g.height {
          for w in 0..<g.width {
            var sum: Float = 0
            for i in 0..<k {
              let hy = h + g.padding - i
              if hy < 0 || hy % s != 0 || hy / s >= oh { continue }
              for j in 0..<k {
                let wx = w + g.padding - j
                if wx < 0 || wx % s != 0 || wx / s >= ow { continue }
                sum += cols[((c * k + i) * k + j) * q + n * p + (hy / s) * ow + wx / s]
              }
            }
            out[h * g.width + w] = sum
          }
        }
      }
    }
  }

  public func conv2dForward(y: Tensor, x: Tensor, weight: Tensor, bias: Tensor?, geometry g: ConvGeometry) throws {
    OpShapes.conv(x: x, weight: weight, y: y, bias: bias, geometry: g, op: "conv2dForward")
    let nbMax = sliceSize(g)
    let cols = columns.reserve(g.patchSize * nbMax * g.outPixels)
    let tmp = transposed.reserve(g.outChannels * nbMax * g.outPixels)
    let (xp, yp, wp, bp) = (ptr(x), ptr(y), ptr(weight), bias.map(ptr))
    let p = g.outPixels
    for first in stride(from: 0, to: g.batch, by: nbMax) {
      let nb = min(nbMax, g.batch - first)
      im2col(xp, g, first: first, count: nb, into: cols)
      blasGemm(
        transposeA: false, transposeB: false, m: g.outChannels, n: nb * p, k: g.patchSize, alpha: 1,
        a: wp, b: cols, beta: 0, c: tmp)
      // tmp is [OC, nb*P]; y wants [nb, OC, P].
      for n in 0..<nb {
        for o in 0..<g.outChannels {
          let src = tmp + o * nb * p + n * p
          let dst = yp + ((first + n) * g.outChannels + o) * p
          let b = bp?[o] ?? 0
          for i in 0..<p { dst[i] = src[i] + b }
        }
      }
    }
  }

  /// Copies dy[first..<first+nb] from [nb, OC, P] into [OC, nb*P].
  func gatherOutputGradient(_ dy: UnsafePointer<Float>, _ g: ConvGeometry, first: Int, count nb: Int, into out: UnsafeMutablePointer<Float>) {
    let p = g.outPixels
    for n in 0..<nb {
      for o in 0..<g.outChannels {
        (out + o * nb * p + n * p).update(from: dy + ((first + n) * g.outChannels + o) * p, count: p)
      }
    }
  }

  public func conv2dBackwardData(dx: Tensor, dy: Tensor, weight: Tensor, geometry g: ConvGeometry) throws {
    OpShapes.conv(x: dx, weight: weight, y: dy, bias: nil, geometry: g, op: "conv2dBackwardData")
    let nbMax = sliceSize(g)
    let cols = columns.reserve(g.patchSize * nbMax * g.outPixels)
    let dyT = transposed.reserve(g.outChannels * nbMax * g.outPixels)
    for first in stride(from: 0, to: g.batch, by: nbMax) {
      let nb = min(nbMax, g.batch - first)
      gatherOutputGradient(ptr(dy), g, first: first, count: nb, into: dyT)
      blasGemm(
        transposeA: true, transposeB: false, m: g.patchSize, n: nb * g.outPixels, k: g.outChannels, alpha: 1,
        a: ptr(weight), b: dyT, beta: 0, c: cols)
      col2im(cols, g, first: first, count: nb, into: ptr(dx))
    }
  }

  public func conv2dBackwardWeight(dWeight: Tensor, dBias: Tensor?, dy: Tensor, x: Tensor, geometry g: ConvGeometry) throws {
    OpShapes.conv(x: x, weight: dWeight, y: dy, bias: dBias, geometry: g, op: "conv2dBackwardWeight")
    let nbMax = sliceSize(g)
    let cols = columns.reserve(g.patchSize * nbMax * g.outPixels)
    let dyT = transposed.reserve(g.outChannels * nbMax * g.outPixels)
    if let dBias { try fill(dBias, value: 0) }
    for first in stride(from: 0, to: g.batch, by: nbMax) {
      let nb = min(nbMax, g.batch - first)
      im2col(ptr(x), g, first: first, count: nb, into: cols)
      gatherOutputGradient(ptr(dy), g, first: first, count: nb, into: dyT)
      blasGemm(
        transposeA: false, transposeB: true, m: g.outChannels, n: g.patchSize, k: nb * g.outPixels, alpha: 1,
        a: dyT, b: cols, beta: first == 0 ? 0 : 1, c: ptr(dWeight))
      if let dBias {
        let db = ptr(dBias)
        let q = nb * g.outPixels
        for o in 0..<g.outChannels {
          var s: Float = 0
          let row = dyT + o * q
          for i in 0..<q { s += row[i] }
          db[o] += s
        }
      }
    }
  }
}
