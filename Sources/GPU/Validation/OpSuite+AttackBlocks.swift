// Parity cases of the attack building blocks: each runs a few iterations on random state, so a
// disagreement in a branch (bisection, acceptance, radius rule) shows up in the outputs.
extension OpSuite {
  static func attackBlockCases() -> [OpCase] {
    let (n, classes) = (7, 10)
    let shape = [n, 2, 4, 5]
    let count = shape.reduce(1, *)
    let labels: (inout SeededRNG) -> [Float] = { rng in (0..<n).map { _ in Float(Int(rng.next() % UInt64(classes))) } }
    var cases = AttackLoss.allCases.map { loss in
      OpCase(
        op: "attack_loss", shape: "\(loss.rawValue) [\(n),\(classes)]", atol: 1e-5, rtol: 1e-4,
        inputs: { rng in [rng.uniformArray(n * classes, -4, 4), labels(&rng), labels(&rng)] },
        run: { b, v in
          let (losses, d) = (try b.zeros([n]), try b.zeros([n, classes]))
          try b.attackLoss(
            loss, losses: losses, dLogits: d, logits: try b.upload(v[0], shape: [n, classes]), labels: try b.upload(v[1], shape: [n]),
            targets: try b.upload(v[2], shape: [n]), scale: 0.5)
          let flags = try b.zeros([n])
          try b.misclassified(flags: flags, logits: try b.upload(v[0], shape: [n, classes]), labels: try b.upload(v[1], shape: [n]))
          return try [losses, d, flags].map(b.download)
        })
    }
    cases.append(
      OpCase(
        op: "select_rows", shape: "\(shape)", atol: 0, rtol: 0,
        inputs: { rng in [rng.uniformArray(count), rng.uniformArray(count), (0..<n).map { _ in rng.uniform(0, 1) < 0.5 ? 0 : 1 }] },
        run: { b, v in
          let destination = try b.upload(v[0], shape: shape)
          try b.selectRows(destination: destination, source: try b.upload(v[1], shape: shape), where: try b.upload(v[2], shape: [n]))
          return [try b.download(destination)]
        }))
    for norm in [PerturbationNorm.linf, .l2] {
      let eps: Float = norm == .linf ? 0.1 : 0.5
      cases.append(
        OpCase(
          op: "apgd_step", shape: "\(shape) \(norm.rawValue) x3 + track", atol: 1e-5, rtol: 1e-4,
          inputs: { rng in
            [
              rng.uniformArray(count, 0, 1), rng.uniformArray(count, -eps, eps), rng.uniformArray(count), rng.uniformArray(n, 0.01, 0.2),
              rng.uniformArray(n * 4),
            ]
          },
          run: { b, v in
            let x = try b.upload(v[0], shape: shape)
            let (xAdv, previous) = (try b.zeros(shape), try b.zeros(shape))
            try b.pgdProject(xAdv: xAdv, x: x, delta: try b.upload(v[1], shape: shape), eps: eps, norm: norm)
            try b.copy(from: xAdv, to: previous)
            let (g, eta) = (try b.upload(v[2], shape: shape), try b.upload(v[3], shape: [n]))
            for momentum: Float in [1, 0.75, 0.75] {
              try b.apgdStep(xAdv: xAdv, xPrevious: previous, x: x, grad: g, stepSizes: eta, momentum: momentum, eps: eps, norm: norm)
            }
            let l = v[4]
            let (best, prev, inc, imp) = (
              try b.upload(Array(l[0..<n]), shape: [n]), try b.upload(Array(l[n..<2 * n]), shape: [n]), try b.zeros([n]), try b.zeros([n])
            )
            try b.apgdTrack(
              losses: try b.upload(Array(l[2 * n..<3 * n]), shape: [n]), bestLosses: best, previousLosses: prev, increases: inc, improved: imp)
            return try [xAdv, previous, best, prev, inc, imp].map(b.download)
          }))
      cases.append(
        OpCase(
          op: "fab_step", shape: "\(shape) \(norm.rawValue) x2 + keep smallest", atol: 1e-4, rtol: 1e-3,
          inputs: { rng in
            [
              rng.uniformArray(count, 0, 1), rng.uniformArray(count, -0.2, 0.2), rng.uniformArray(count), rng.uniformArray(n, -2, 2),
              (0..<n).map { _ in rng.uniform(0, 1) < 0.6 ? 1 : 0 },
            ]
          },
          run: { b, v in
            let x = try b.upload(v[0], shape: shape)
            let xAdv = try b.zeros(shape)
            try b.pgdProject(xAdv: xAdv, x: x, delta: try b.upload(v[1], shape: shape), eps: 1, norm: .linf)
            let (g, df) = (try b.upload(v[2], shape: shape), try b.upload(v[3], shape: [n]))
            for _ in 0..<2 { try b.fabStep(xAdv: xAdv, x: x, grad: g, difference: df, norm: norm, alphaMax: 0.1, eta: 1.05) }
            let (norms, best) = (try b.upload([Float](repeating: .infinity, count: n), shape: [n]), try b.zeros(shape))
            try b.keepSmallestAdversarial(
              xAdv: xAdv, x: x, flags: try b.upload(v[4], shape: [n]), bestNorms: norms, best: best, norm: norm, beta: 0.9)
            return try [xAdv, norms, best].map(b.download)
          }))
    }
    cases.append(
      OpCase(
        op: "square", shape: "\(shape) side 2, x3", atol: 0, rtol: 0,
        inputs: { rng in [rng.uniformArray(count, 0, 1), rng.uniformArray(n * 3, -1, 1)] },
        run: { b, v in
          let x = try b.upload(v[0], shape: shape)
          let (best, proposal) = (try b.zeros(shape), try b.zeros(shape))
          try b.copy(from: x, to: best)
          let margins = try b.upload([Float](repeating: 1, count: n), shape: [n])
          let ids = try b.upload((0..<n).map { Float(3 * $0 + 1) }, shape: [n])
          let accepted = try b.zeros([n])
          for k in 0..<3 {
            try b.squareProposal(xNew: proposal, xBest: best, x: x, ids: ids, eps: 0.1, side: 2, seed: UInt64(k) * 977)
            try b.squareAccept(
              xBest: best, bestMargins: margins, xNew: proposal, margins: try b.upload(Array(v[1][(k * n)..<((k + 1) * n)]), shape: [n]),
              accepted: accepted)
          }
          return try [best, margins, accepted].map(b.download)
        }))
    // Plane, crop and window sizes: SmallCNN-like short rows, and rows past 8, 16 and 32 floats
    // (the CPU backend copies each length class differently).
    for (plane, crop, window) in [((6, 5), (4, 3), (3, 2)), ((5, 40), (4, 36), (3, 11)), ((4, 24), (3, 22), (2, 20))] {
      let (planeFloats, windowFloats) = (2 * plane.0 * plane.1, 2 * window.0 * window.1)
      cases.append(
        OpCase(
          op: "crop_paste_windows", shape: "[\(n), 2, \(plane.0), \(plane.1)] windows \(crop.0)x\(crop.1) and \(window.0)x\(window.1)",
          atol: 0, rtol: 0,
          inputs: { rng in
            // Corners from off the plane's top-left to past its bottom-right.
            let corners = (0..<n).flatMap { _ in
              [Float(Int(rng.uniform(Float(-crop.0), Float(plane.0 + 1)))), Float(Int(rng.uniform(Float(-crop.1), Float(plane.1 + 1))))]
            }
            return [rng.uniformArray(n * planeFloats), corners, rng.uniformArray(n * windowFloats)]
          },
          run: { b, v in
            let x = try b.upload(v[0], shape: [n, 2, plane.0, plane.1])
            let corners = try b.upload(v[1], shape: [n, 2])
            let cropped = try b.zeros([n, 2, crop.0, crop.1])
            try b.cropWindows(out: cropped, x: x, corners: corners)
            // The window placed one row and column into the crop, pasted into the crop and, for
            // every other row, into the plane.
            let inner = try b.upload(v[1].map { $0 + 1 }, shape: [n, 2])
            let values = try b.upload(v[2], shape: [n, 2, window.0, window.1])
            try b.pasteWindows(into: cropped, intoCorners: corners, window: values, windowCorners: inner, plane: plane, rows: nil)
            let rows = try b.upload((0..<n).map { Float($0 % 2) }, shape: [n])
            try b.pasteWindows(into: x, intoCorners: nil, window: values, windowCorners: inner, plane: plane, rows: rows)
            return try [cropped, x].map(b.download)
          }))
    }
    cases.append(
      OpCase(
        op: "square_l2", shape: "[\(n), 2, 7, 7] side 3 and 5, x3", atol: 1e-5, rtol: 1e-4,
        inputs: { rng in [rng.uniformArray(n * 98, 0, 1), rng.uniformArray(n * 98, -0.2, 0.2), rng.uniformArray(n * 3, -1, 1)] },
        run: { b, v in
          let shape = [n, 2, 7, 7]
          let x = try b.upload(v[0], shape: shape)
          let (best, proposal) = (try b.zeros(shape), try b.zeros(shape))
          try b.pgdProject(xAdv: best, x: x, delta: try b.upload(v[1], shape: shape), eps: 1, norm: .linf)
          let margins = try b.upload([Float](repeating: 1, count: n), shape: [n])
          let ids = try b.upload((0..<n).map { Float(2 * $0 + 5) }, shape: [n])
          for k in 0..<3 {
            try b.squareL2Proposal(xNew: proposal, xBest: best, x: x, ids: ids, eps: 0.8, side: k == 1 ? 5 : 3, seed: UInt64(k) * 131 + 7)
            try b.squareAccept(
              xBest: best, bestMargins: margins, xNew: proposal, margins: try b.upload(Array(v[2][(k * n)..<((k + 1) * n)]), shape: [n]))
          }
          return try [proposal, best, margins].map(b.download)
        }))
    for norm in PerturbationNorm.allCases {
      cases.append(
        OpCase(
          op: "fmn_step", shape: "\(shape) \(norm.rawValue) x3", atol: 1e-4, rtol: 1e-3,
          inputs: { rng in
            [
              rng.uniformArray(count, 0, 1), rng.uniformArray(count), rng.uniformArray(n, -2, 2),
              (0..<n).map { _ in rng.uniform(0, 1) < 0.5 ? 1 : 0 },
            ]
          },
          run: { b, v in
            let x = try b.upload(v[0], shape: shape)
            let xAdv = try b.zeros(shape)
            try b.copy(from: x, to: xAdv)
            let state = FMNState(
              velocity: try b.zeros(shape), epsilons: try b.upload([Float](repeating: .infinity, count: n), shape: [n]),
              bestNorms: try b.upload([Float](repeating: .infinity, count: n), shape: [n]), best: try b.zeros(shape),
              worstNorms: try b.upload([Float](repeating: 3, count: n), shape: [n]))
            let (g, l, f) = (try b.upload(v[1], shape: shape), try b.upload(v[2], shape: [n]), try b.upload(v[3], shape: [n]))
            let q = FMNStepParameters(norm: norm, alpha: norm == .linf ? 0.05 : 0.5, gamma: 0.05, momentum: 0.5)
            for _ in 0..<3 {
              try b.keepSmallestAdversarial(xAdv: xAdv, x: x, flags: f, bestNorms: state.bestNorms, best: state.best, norm: norm, beta: 1)
              try b.fmnStep(xAdv: xAdv, x: x, grad: g, losses: l, flags: f, state: state, parameters: q)
            }
            return try [xAdv, state.velocity, state.epsilons, state.bestNorms, state.best].map(b.download)
          }))
    }
    return cases
  }
}
