// Parity cases of the pruning building blocks. The top-k scores are quantised so that ties at the
// threshold are common: the exact count and the lower-index-first rule are what is tested.
extension OpSuite {
  static func pruningBlockCases() -> [OpCase] {
    let count = 1000
    var cases = [
      OpCase(
        op: "axpby", shape: "[\(count)]", atol: 1e-6, rtol: 1e-5,
        inputs: { rng in [rng.uniformArray(count), rng.uniformArray(count)] },
        run: { b, v in
          let y = try b.upload(v[0], shape: [count])
          try b.axpby(y: y, x: try b.upload(v[1], shape: [count]), alpha: 0.3, beta: -1.7)
          return [try b.download(y)]
        })
    ]
    for reduction in Reduction.allCases {
      cases.append(
        OpCase(
          op: "reduce", shape: "[\(count * 37)] \(reduction)", atol: 1e-3, rtol: 1e-4,
          inputs: { rng in [rng.uniformArray(count * 37, -2, 1)] },
          run: { b, v in
            let result = try b.zeros([1])
            try b.reduce(try b.upload(v[0], shape: [count * 37]), into: result, reduction)
            return [try b.download(result)]
          }))
    }
    for keep in [0, 1, 137, 500, 999, count] {
      cases.append(
        OpCase(
          op: "top_k_mask", shape: "[\(count)] keep \(keep), ties", atol: 0, rtol: 0,
          inputs: { rng in [(0..<count).map { _ in Float(Int(rng.uniform(-20, 20))) / 4 }] },
          run: { b, v in
            let mask = try b.zeros([count])
            try b.topKMask(mask: mask, scores: try b.upload(v[0], shape: [count]), keep: keep)
            return [try b.download(mask)]
          }))
    }
    return cases
  }
}
