// The pruning building blocks on the CPU reference backend (kernels/pruning_blocks.cl mirrors them).
extension CPUBackend {
  public func axpby(y: Tensor, x: Tensor, alpha: Float, beta: Float) throws {
    checkSameCount(y, x, op: "axpby")
    let (yp, xp) = (ptr(y), ptr(x))
    parallelRanges(y.count) { r in
      for i in r { yp[i] = alpha * xp[i] + beta * yp[i] }
    }
  }

  public func reduce(_ x: Tensor, into result: Tensor, _ reduction: Reduction) throws {
    precondition(result.count >= 1, "reduce: the result needs one entry")
    let xp = ptr(x)
    var total: Double = 0
    for i in 0..<x.count {
      let v = Double(xp[i])
      switch reduction {
      case .sum: total += v
      case .sumOfSquares: total += v * v
      case .sumOfAbsolutes: total += abs(v)
      case .maxAbsolute: total = max(total, abs(v))
      }
    }
    ptr(result)[0] = Float(total)
  }

  public func topKMask(mask: Tensor, scores: Tensor, keep: Int) throws {
    checkSameCount(mask, scores, op: "topKMask")
    precondition(keep >= 0 && keep <= scores.count, "topKMask: keep \(keep) outside 0...\(scores.count)")
    let (mp, sp) = (ptr(mask), ptr(scores))
    let order = (0..<scores.count).sorted { a, b in
      let (x, y) = (abs(sp[a]), abs(sp[b]))
      return x > y || (x == y && a < b)
    }
    mp.update(repeating: 0, count: scores.count)
    for i in order.prefix(keep) { mp[i] = 1 }
  }
}
