import CKernels
import Foundation

// The attack building blocks on the CPU reference backend: per-sample losses, flags and row
// selection, and the per-sample steps of APGD, FAB, Square and FMN. kernels/attack_blocks.cl
// mirrors each function line for line (same arithmetic order, so the backends agree to rounding).
extension CPUBackend {
  public func attackLoss(
    _ loss: AttackLoss, losses: Tensor, dLogits: Tensor?, logits: Tensor, labels: Tensor, targets: Tensor?, scale: Float
  ) throws {
    let (n, classes) = OpShapes.attackLoss(loss, losses: losses, dLogits: dLogits, logits: logits, labels: labels, targets: targets)
    if loss == .crossEntropy {
      return try softmaxCrossEntropy(losses: losses, dLogits: dLogits, logits: logits, labels: labels, scale: scale)
    }
    let (lp, zp, yp, tp, dp) = (ptr(losses), ptr(logits), ptr(labels), targets.map(ptr), dLogits.map(ptr))
    for row in 0..<n {
      let z = zp + row * classes
      let y = Int(yp[row])
      let t = tp.map { Int($0[row]) } ?? 0
      let order = topFour(z, classes)
      let runnerUp = firstMaximum(z, classes, skipping: y)
      let d = dp.map { $0 + row * classes }
      if let d { d.update(repeating: 0, count: classes) }
      switch loss {
      case .dlr:
        let a = z[y] - z[runnerUp]
        let den = z[order.0] - z[order.2] + 1e-12
        lp[row] = -a / den
        if let d {
          let inv = 1 / den
          let q = a * inv * inv
          d[y] -= scale * inv
          d[runnerUp] += scale * inv
          d[order.0] += scale * q
          d[order.2] -= scale * q
        }
      case .targetedDLR:
        let a = z[y] - z[t]
        let den = z[order.0] - (z[order.2] + z[order.3]) * 0.5 + 1e-12
        lp[row] = -a / den
        if let d {
          let inv = 1 / den
          let q = a * inv * inv
          d[y] -= scale * inv
          d[t] += scale * inv
          d[order.0] += scale * q
          d[order.2] -= scale * q * 0.5
          d[order.3] -= scale * q * 0.5
        }
      case .margin:
        lp[row] = z[y] - z[runnerUp]
        if let d {
          d[y] += scale
          d[runnerUp] -= scale
        }
      case .targetedMargin:
        lp[row] = z[y] - z[t]
        if let d {
          d[y] += scale
          d[t] -= scale
        }
      case .crossEntropy:
        preconditionFailure("handled above")
      }
    }
  }

  public func misclassified(flags: Tensor, logits: Tensor, labels: Tensor) throws {
    let (n, classes) = OpShapes.rows(logits, labels: labels, op: "misclassified")
    precondition(flags.count == n, "misclassified: flags must have \(n) entries")
    let (fp, zp, yp) = (ptr(flags), ptr(logits), ptr(labels))
    for row in 0..<n { fp[row] = firstMaximum(zp + row * classes, classes, skipping: -1) == Int(yp[row]) ? 0 : 1 }
  }

  public func selectRows(destination: Tensor, source: Tensor, where flags: Tensor) throws {
    let width = OpShapes.selectRows(destination: destination, source: source, flags: flags)
    let (dp, sp, fp) = (ptr(destination), ptr(source), ptr(flags))
    for row in 0..<flags.count where fp[row] != 0 {
      (dp + row * width).update(from: sp + row * width, count: width)
    }
  }

  public func apgdStep(
    xAdv: Tensor, xPrevious: Tensor, x: Tensor, grad: Tensor, stepSizes: Tensor, momentum m: Float, eps: Float,
    norm: PerturbationNorm
  ) throws {
    let (batch, features) = OpShapes.attack(xAdv: xAdv, x: x, other: grad, op: "apgdStep")
    checkSameCount(xPrevious, x, op: "apgdStep")
    precondition(stepSizes.count == batch, "apgdStep: one step size per sample")
    let (ap, pp, xp, gp, ep) = (ptr(xAdv), ptr(xPrevious), ptr(x), ptr(grad), ptr(stepSizes))
    switch norm {
    case .linf:
      parallelRanges(x.count) { r in
        for i in r {
          let (e, xk, x0, g) = (ep[i / features], ap[i], xp[i], gp[i])
          let s: Float = g > 0 ? 1 : (g < 0 ? -1 : 0)
          let z = min(max(min(max(xk + e * s, x0 - eps), x0 + eps), 0), 1)
          let u = xk + m * (z - xk) + (1 - m) * (xk - pp[i])
          pp[i] = xk
          ap[i] = min(max(min(max(u, x0 - eps), x0 + eps), 0), 1)
        }
      }
    case .l2:
      parallelRows(batch, features) { n in
        let o = n * features
        var gg: Float = 0
        for i in o..<(o + features) { gg += gp[i] * gp[i] }
        let s = ep[n] / (gg.squareRoot() + 1e-12)
        var dd: Float = 0
        for i in o..<(o + features) {
          let v = ap[i] + s * gp[i] - xp[i]
          dd += v * v
        }
        let r1 = min(eps, dd.squareRoot()) / (dd.squareRoot() + 1e-12)
        var uu: Float = 0
        for i in o..<(o + features) {
          let (xk, x0) = (ap[i], xp[i])
          let z = min(max(x0 + (xk + s * gp[i] - x0) * r1, 0), 1)
          let u = xk + m * (z - xk) + (1 - m) * (xk - pp[i])
          pp[i] = xk
          ap[i] = u
          uu += (u - x0) * (u - x0)
        }
        let r2 = min(eps, uu.squareRoot()) / (uu.squareRoot() + 1e-12)
        for i in o..<(o + features) { ap[i] = min(max(xp[i] + (ap[i] - xp[i]) * r2, 0), 1) }
      }
    case .l1:
      preconditionFailure("apgdStep: L1 balls are for minimum-norm attacks only")
    }
  }

  public func apgdTrack(losses: Tensor, bestLosses: Tensor, previousLosses: Tensor, increases: Tensor, improved: Tensor) throws {
    for t in [bestLosses, previousLosses, increases, improved] { checkSameCount(t, losses, op: "apgdTrack") }
    let (lp, bp, pp, cp, ip) = (ptr(losses), ptr(bestLosses), ptr(previousLosses), ptr(increases), ptr(improved))
    for n in 0..<losses.count {
      let l = lp[n]
      ip[n] = l > bp[n] ? 1 : 0
      bp[n] = max(bp[n], l)
      cp[n] += l > pp[n] ? 1 : 0
      pp[n] = l
    }
  }

  public func fabStep(
    xAdv: Tensor, x: Tensor, grad: Tensor, difference: Tensor, norm: PerturbationNorm, alphaMax: Float, eta: Float
  ) throws {
    let (batch, features) = OpShapes.attack(xAdv: xAdv, x: x, other: grad, op: "fabStep")
    precondition(difference.count == batch, "fabStep: one logit difference per sample")
    precondition(norm != .l1, "fabStep: L-inf and L2 only")
    let (ap, xp, gp, fp) = (ptr(xAdv), ptr(x), ptr(grad), ptr(difference))
    parallelRows(batch, features) { n in
      let (x1, x0, w) = (ap + n * features, xp + n * features, gp + n * features)
      // The boundary's linearisation at x1: w.z = w.x1 - df.
      var (wx1, wx0): (Float, Float) = (0, 0)
      for i in 0..<features {
        wx1 += w[i] * x1[i]
        wx0 += w[i] * x0[i]
      }
      let target = wx1 - fp[n]
      let t1 = boundaryStep(UnsafePointer(x1), w, features, wx1 - target, norm)
      let t0 = boundaryStep(UnsafePointer(x0), w, features, wx0 - target, norm)
      var (a1, a2): (Float, Float) = (0, 0)
      for i in 0..<features {
        let d1 = projected(x1[i], w[i], t1, norm) - x1[i]
        let d2 = projected(x0[i], w[i], t0, norm) - x0[i]
        a1 = norm == .linf ? max(a1, abs(d1)) : a1 + d1 * d1
        a2 = norm == .linf ? max(a2, abs(d2)) : a2 + d2 * d2
      }
      if norm == .l2 { (a1, a2) = (a1.squareRoot(), a2.squareRoot()) }
      (a1, a2) = (max(a1, 1e-8), max(a2, 1e-8))
      let alpha = min(max(a1 / (a1 + a2), 0), alphaMax)
      for i in 0..<features {
        let d1 = projected(x1[i], w[i], t1, norm) - x1[i]
        let d2 = projected(x0[i], w[i], t0, norm) - x0[i]
        x1[i] = min(max((x1[i] + eta * d1) * (1 - alpha) + (x0[i] + eta * d2) * alpha, 0), 1)
      }
    }
  }

  public func keepSmallestAdversarial(
    xAdv: Tensor, x: Tensor, flags: Tensor, bestNorms: Tensor, best: Tensor, norm: PerturbationNorm, beta: Float
  ) throws {
    let (batch, features) = OpShapes.attack(xAdv: xAdv, x: x, other: best, op: "keepSmallestAdversarial")
    precondition(flags.count == batch && bestNorms.count == batch, "keepSmallestAdversarial: one flag and norm per sample")
    let (ap, xp, fp, np, bp) = (ptr(xAdv), ptr(x), ptr(flags), ptr(bestNorms), ptr(best))
    parallelRows(batch, features) { n in
      guard fp[n] != 0 else { return }
      let o = n * features
      let t = distance(UnsafePointer(ap + o), UnsafePointer(xp + o), features, norm)
      if t < np[n] {
        np[n] = t
        (bp + o).update(from: ap + o, count: features)
      }
      if beta != 1 {
        for i in o..<(o + features) { ap[i] = xp[i] + (ap[i] - xp[i]) * beta }
      }
    }
  }

  public func squareProposal(xNew: Tensor, xBest: Tensor, x: Tensor, ids: Tensor, eps: Float, side: Int, seed: UInt64) throws {
    let (c, h, w) = OpShapes.square(xNew: xNew, xBest: xBest, x: x, ids: ids, side: side)
    let (np, bp, xp, ip) = (ptr(xNew), ptr(xBest), ptr(x), ptr(ids))
    let features = c * h * w
    // The square's place and signs are drawn once per point (the OpenCL kernel draws them per
    // value, from the same counters).
    parallelRows(x.shape[0], features) { n in
      let o = n * features
      let base = UInt32(truncatingIfNeeded: Int(ip[n]) * (2 + c))
      let (top, left) = SquareDraws.corner(id: Int(ip[n]), channels: c, height: h, width: w, side: side, seed: seed)
      (np + o).update(from: bp + o, count: features)
      for channel in 0..<c {
        let sign: Float = CounterRandom.unit(index: base &+ 2 &+ UInt32(channel), seed: seed) < 0.5 ? -1 : 1
        for row in top..<(top + side) {
          let at = o + (channel * h + row) * w + left
          for i in at..<(at + side) { np[i] = min(max(xp[i] + eps * sign, 0), 1) }
        }
      }
    }
  }

  public func squareL2Proposal(xNew: Tensor, xBest: Tensor, x: Tensor, ids: Tensor, eps: Float, side: Int, seed: UInt64) throws {
    let (c, h, w) = OpShapes.square(xNew: xNew, xBest: xBest, x: x, ids: ids, side: side)
    precondition(c <= 4, "squareL2Proposal: at most 4 channels")
    let (np, bp, xp, ip) = (ptr(xNew), ptr(xBest), ptr(x), ptr(ids))
    let features = c * h * w
    let pattern = PseudoGaussianSquare(side: side)
    parallelRows(x.shape[0], features) { n in
      let o = n * features
      let base = UInt32(truncatingIfNeeded: Int(ip[n]) * (5 + c))
      let u = { (k: Int) in CounterRandom.unit(index: base &+ UInt32(k), seed: seed) }
      let (top, left) = (squareOffset(u(0), h, side), squareOffset(u(1), w, side))
      let (top2, left2) = (squareOffset(u(2), h, side), squareOffset(u(3), w, side))
      let transposed = u(4) < 0.5
      let inFirst = { (r: Int, col: Int) in r >= top && r < top + side && col >= left && col < left + side }
      let inSecond = { (r: Int, col: Int) in r >= top2 && r < top2 + side && col >= left2 && col < left2 + side }
      var (image, windows): (Float, Float) = (0, 0)
      var firstNorms: [Float] = [0, 0, 0, 0]
      for i in 0..<features {
        let (ch, r, col) = (i / (h * w), (i / w) % h, i % w)
        let d = bp[o + i] - xp[o + i]
        image += d * d
        if inFirst(r, col) || inSecond(r, col) { windows += d * d }
        if inFirst(r, col) { firstNorms[ch] += d * d }
      }
      for ch in 0..<c { firstNorms[ch] = firstNorms[ch].squareRoot() }
      let fresh = { (ch: Int, r: Int, col: Int) -> Float in
        let sign: Float = u(5 + ch) < 0.5 ? -1 : 1
        let i = (ch * h + r) * w + col
        return pattern.value(r - top, col - left, transposed: transposed) * sign + (bp[o + i] - xp[o + i]) / (1e-12 + firstNorms[ch])
      }
      var freshNorm: Float = 0
      for ch in 0..<c {
        for r in top..<(top + side) {
          for col in left..<(left + side) {
            let v = fresh(ch, r, col)
            freshNorm += v * v
          }
        }
      }
      let scale = (max(eps * eps - image, 0) / Float(c) + windows).squareRoot() / (1e-12 + freshNorm.squareRoot())
      let proposed = { (i: Int) -> Float in
        let (ch, r, col) = (i / (h * w), (i / w) % h, i % w)
        if inFirst(r, col) { return fresh(ch, r, col) * scale }
        return inSecond(r, col) ? 0 : bp[o + i] - xp[o + i]
      }
      var total: Float = 0
      for i in 0..<features {
        let v = proposed(i)
        total += v * v
      }
      let toBall = eps / (total.squareRoot() + 1e-12)
      for i in 0..<features { np[o + i] = min(max(xp[o + i] + proposed(i) * toBall, 0), 1) }
    }
  }

  public func squareAccept(xBest: Tensor, bestMargins: Tensor, xNew: Tensor, margins: Tensor, accepted: Tensor?) throws {
    let width = OpShapes.selectRows(destination: xBest, source: xNew, flags: bestMargins)
    checkSameCount(margins, bestMargins, op: "squareAccept")
    if let accepted { checkSameCount(accepted, margins, op: "squareAccept") }
    let (bp, mp, np, cp) = (ptr(xBest), ptr(bestMargins), ptr(xNew), ptr(margins))
    let ap = accepted.map(ptr)
    for n in 0..<margins.count {
      let better = mp[n] > 0 && cp[n] < mp[n]
      ap?[n] = better ? 1 : 0
      guard better else { continue }
      mp[n] = cp[n]
      (bp + n * width).update(from: np + n * width, count: width)
    }
  }

  public func cropWindows(out: Tensor, x: Tensor, corners: Tensor) throws {
    let (c, oh, ow) = OpShapes.windows(window: out, other: x, corners: [corners], rows: nil, op: "cropWindows")
    let (h, w) = (x.shape[2], x.shape[3])
    let (op, xp, cp) = (ptr(out), ptr(x), ptr(corners))
    parallelRows(out.shape[0] * c, oh * ow) { plane in
      let (top, left) = (Int64(cp[2 * (plane / c)]), Int64(cp[2 * (plane / c) + 1]))
      advprune_crop_window(op + plane * oh * ow, Int64(oh), Int64(ow), xp + plane * h * w, Int64(h), Int64(w), top, left)
    }
  }

  public func pasteWindows(
    into: Tensor, intoCorners: Tensor?, window: Tensor, windowCorners: Tensor, plane: (height: Int, width: Int), rows: Tensor?
  ) throws {
    let (c, wh, ww) = OpShapes.windows(window: window, other: into, corners: [intoCorners, windowCorners], rows: rows, op: "pasteWindows")
    let (ih, iw) = (into.shape[2], into.shape[3])
    let (ip, wp, wc) = (ptr(into), ptr(window), ptr(windowCorners))
    let (ic, rp) = (intoCorners.map(ptr), rows.map(ptr))
    parallelRows(window.shape[0] * c, wh * ww) { p in
      let n = p / c
      if let rp, rp[n] == 0 { return }
      let (intoTop, intoLeft) = ic.map { (Int64($0[2 * n]), Int64($0[2 * n + 1])) } ?? (0, 0)
      advprune_paste_window(
        ip + p * ih * iw, Int64(ih), Int64(iw), intoTop, intoLeft, wp + p * wh * ww, Int64(wh), Int64(ww), Int64(wc[2 * n]),
        Int64(wc[2 * n + 1]), Int64(plane.height), Int64(plane.width))
    }
  }

  public func fmnStep(
    xAdv: Tensor, x: Tensor, grad: Tensor, losses: Tensor, flags: Tensor, state s: FMNState, parameters q: FMNStepParameters
  ) throws {
    let (batch, features) = OpShapes.fmn(xAdv: xAdv, x: x, grad: grad, losses: losses, flags: flags, state: s)
    let (ap, xp, gp, lp, fp) = (ptr(xAdv), ptr(x), ptr(grad), ptr(losses), ptr(flags))
    let (vp, ep, bp, wp) = (ptr(s.velocity), ptr(s.epsilons), ptr(s.bestNorms), ptr(s.worstNorms))
    parallelRows(batch, features) { n in
      let o = n * features
      let current = distance(UnsafePointer(ap + o), UnsafePointer(xp + o), features, q.norm)
      var (g2, gDual): (Float, Float) = (0, 0)
      for i in o..<(o + features) {
        let g = gp[i]
        g2 += g * g
        gDual = q.norm == .linf ? gDual + abs(g) : (q.norm == .l1 ? max(gDual, abs(g)) : gDual)
      }
      if q.norm == .l2 { gDual = g2.squareRoot() }
      var eps = ep[n]
      if fp[n] != 0 {
        eps = min(eps * (1 - q.gamma), bp[n])
      } else if bp[n] < Float.infinity {
        eps = eps * (1 + q.gamma)
      } else {
        eps = (current + abs(lp[n]) / max(gDual, 1e-12)) * (1 + q.gamma)
      }
      eps = min(eps, wp[n])
      ep[n] = eps
      let gScale = 1 / max(g2.squareRoot(), 1e-12)
      for i in o..<(o + features) {
        vp[i] = q.momentum * vp[i] + gp[i] * gScale
        ap[i] = (ap[i] - xp[i]) - q.alpha * vp[i]
      }
      projectOntoBall(ap + o, features, eps, q.norm)
      for i in o..<(o + features) { ap[i] = min(max(xp[i] + ap[i], 0), 1) }
    }
  }
}

/// Runs `body(row)` for every row, over the cores when the rows are many.
func parallelRows(_ rows: Int, _ features: Int, _ body: (Int) -> Void) {
  parallelRanges(rows, minimumPerThread: max(1, 32_768 / max(1, features))) { r in
    for n in r { body(n) }
  }
}

/// Index of the first largest value, ignoring index `skipping`.
@inline(__always)
func firstMaximum(_ z: UnsafePointer<Float>, _ classes: Int, skipping: Int) -> Int {
  var best = -1
  for c in 0..<classes where c != skipping && (best < 0 || z[c] > z[best]) { best = c }
  return best
}

/// Indices of the four largest logits (the first index on ties), fewer classes repeat the last.
func topFour(_ z: UnsafePointer<Float>, _ classes: Int) -> (Int, Int, Int, Int) {
  var picked = [-1, -1, -1, -1]
  for rank in 0..<min(4, classes) {
    var best = -1
    for c in 0..<classes where !picked[0..<rank].contains(c) && (best < 0 || z[c] > z[best]) { best = c }
    picked[rank] = best
  }
  if classes < 4 {
    for rank in classes..<4 { picked[rank] = picked[classes - 1] }
  }
  return (picked[0], picked[1], picked[2], picked[3])
}

/// `|a - b|_p` of two rows.
func distance(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int, _ norm: PerturbationNorm) -> Float {
  var total: Float = 0
  for i in 0..<count {
    let d = abs(a[i] - b[i])
    switch norm {
    case .linf: total = max(total, d)
    case .l2: total += d * d
    case .l1: total += d
    }
  }
  return norm == .l2 ? total.squareRoot() : total
}

/// Top-left corner of a square of `side` in a dimension of `size`, uniform over every position.
@inline(__always)
func squareOffset(_ u: Float, _ size: Int, _ side: Int) -> Int {
  min(Int(u * Float(size - side + 1)), size - side)
}

/// The draws of `squareProposal`, for the host: where a point's square goes.
public enum SquareDraws {
  /// Top-left corner of the square of side `side` that the L-inf proposal with `seed` puts on
  /// the point with data-set index `id` (images of `channels` x `height` x `width`).
  public static func corner(id: Int, channels: Int, height: Int, width: Int, side: Int, seed: UInt64) -> (top: Int, left: Int) {
    let base = UInt32(truncatingIfNeeded: id * (2 + channels))
    return (
      squareOffset(CounterRandom.unit(index: base, seed: seed), height, side),
      squareOffset(CounterRandom.unit(index: base &+ 1, seed: seed), width, side)
    )
  }
}

/// The point `p + t dir(w)` clipped to [0, 1], dir = sign(w) (L-inf) or w (L2): the minimal-norm
/// way to change `w.z` when the box is in the way.
@inline(__always)
func projected(_ p: Float, _ w: Float, _ t: Float, _ norm: PerturbationNorm) -> Float {
  let direction: Float = norm == .linf ? (w > 0 ? 1 : (w < 0 ? -1 : 0)) : w
  return min(max(p + t * direction, 0), 1)
}

/// The signed step t with `w.projected(p, t) = w.p - c` (the hyperplane through the target), by
/// bisection: `w.projected` is monotone in t. When the box cannot reach the hyperplane, the step
/// that gets closest (every coordinate at its bound). In C (`CKernels/boundary.c`) for its vectors.
@inline(__always)
func boundaryStep(_ p: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ count: Int, _ c: Float, _ norm: PerturbationNorm) -> Float {
  advprune_boundary_step(p, w, Int64(count), c, norm == .l2 ? 1 : 0)
}

/// Projects `d` onto the ball of radius `r` in place: L-inf clamps, L2 rescales, L1 soft-thresholds
/// with the threshold found by bisection (taken on the inside, so the result is never outside).
func projectOntoBall(_ d: UnsafeMutablePointer<Float>, _ count: Int, _ r: Float, _ norm: PerturbationNorm) {
  switch norm {
  case .linf:
    for i in 0..<count { d[i] = min(max(d[i], -r), r) }
  case .l2:
    var dd: Float = 0
    for i in 0..<count { dd += d[i] * d[i] }
    let shrink = min(1, r / (dd.squareRoot() + 1e-12))
    for i in 0..<count { d[i] *= shrink }
  case .l1:
    var (total, peak): (Float, Float) = (0, 0)
    for i in 0..<count {
      total += abs(d[i])
      peak = max(peak, abs(d[i]))
    }
    if total <= r { return }
    var (low, high): (Float, Float) = (0, peak)
    for _ in 0..<40 {
      let mid = (low + high) * 0.5
      var kept: Float = 0
      for i in 0..<count { kept += max(abs(d[i]) - mid, 0) }
      if kept > r { low = mid } else { high = mid }
    }
    for i in 0..<count { d[i] = d[i] > 0 ? max(d[i] - high, 0) : min(d[i] + high, 0) }
  }
}
