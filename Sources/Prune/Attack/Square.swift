import GPU

/// The Square attack (Andriushchenko et al. 2020), score-based: it sees only logits.
///
/// L-inf starts from vertical stripes of +-eps (one sign per column and channel); each query
/// proposes changing one random square per point to +-eps per channel. L2 starts from a 5 x 5 grid
/// of pseudo-Gaussian tiles scaled to norm eps; each query moves the perturbation's energy of two
/// random squares into a fresh pseudo-Gaussian pattern in the first (`squareL2Proposal`). Either
/// keeps a proposal if the margin `z_y - max_{i != y} z_i` goes down. The square's area is
/// `p * H * W`, p halved at 10, 50, 200, 500, 1000, 2000, 4000, 6000 and 8000 of 10,000 (rescaled
/// to the query budget). Points stop once misclassified; the batch is compacted as they do. L-inf
/// proposals are evaluated on the windows they change (`WindowedForward`).
public final class SquareAttack: BoundedAttack {
  public let eps: Float
  public let norm: PerturbationNorm
  public let queries: Int
  public let pInit: Float
  public let name = "square"
  public var onProgress: ((Double) -> Void)?
  /// L-inf proposals are evaluated on the windows they change (`WindowedForward`) where the model
  /// starts with convolutions; off, every proposal runs the whole model (what tests compare with).
  public var windowed = true

  public init(eps: Float, norm: PerturbationNorm, queries: Int = 5000, pInit: Float = 0.8) {
    precondition(norm != .l1, "Square: L-inf and L2")
    self.eps = eps
    self.norm = norm
    self.queries = queries
    self.pInit = pInit
  }

  /// Share of the image a square covers after `query` of `total` queries.
  public static func squareShare(query: Int, total: Int, pInit: Float) -> Float {
    let progress = Int(Double(query) / Double(max(total, 1)) * 10_000)
    let halvings = [10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000].filter { progress > $0 }.count
    return pInit / Float(1 << halvings)
  }

  public func run(model: Model, batch: AttackBatch, seed: UInt64) throws -> AttackOutcome {
    let b = model.backend
    let (h, w) = (batch.pointShape[1], batch.pointShape[2])
    var outcome = AttackOutcome(unbroken: batch)
    var rows = Array(0..<batch.count)
    var current = batch
    var start = norm == .linf ? stripes(batch, seed: seed) : tiles(batch, seed: seed)
    var query = 0
    let windows = norm == .linf && windowed ? WindowedForward(model: model) : nil
    while !rows.isEmpty && query < queries {
      let n = current.count
      let (x, labels, ids) = try current.upload(b)
      let (best, proposal) = (try b.upload(start, shape: current.shape), try b.zeros(current.shape))
      let (bestMargins, margins, accepted) = (try b.zeros([n]), try b.zeros([n]), try b.zeros([n]))
      let bestLogits = try windows?.reset(best) ?? model.forward(best)
      try b.attackLoss(.margin, losses: bestMargins, dLogits: nil, logits: bestLogits, labels: labels, targets: nil, scale: 1)
      var left = n
      // Runs until a quarter of the batch is fooled, then compacts the batch to the rest.
      while query < queries && left * 4 > n * 3 {
        let side = sideLength(query, h, w)
        let draws = deriveSeed(seed, UInt64(query))
        let logits: Tensor
        if norm == .linf {
          try b.squareProposal(xNew: proposal, xBest: best, x: x, ids: ids, eps: eps, side: side, seed: draws)
          if let windows {
            let corners = current.ids.map {
              SquareDraws.corner(id: $0, channels: batch.pointShape[0], height: h, width: w, side: side, seed: draws)
            }
            logits = try windows.proposal(proposal, corners: corners, side: side)
          } else {
            logits = try model.forward(proposal)
          }
        } else {
          try b.squareL2Proposal(xNew: proposal, xBest: best, x: x, ids: ids, eps: eps, side: side, seed: draws)
          logits = try model.forward(proposal)
        }
        try b.attackLoss(.margin, losses: margins, dLogits: nil, logits: logits, labels: labels, targets: nil, scale: 1)
        try b.squareAccept(xBest: best, bestMargins: bestMargins, xNew: proposal, margins: margins, accepted: windows == nil ? nil : accepted)
        try windows?.accept(rows: accepted)
        query += 1
        if query % 20 == 0 {
          left = try b.download(bestMargins).filter { $0 > 0 }.count
          onProgress?(Double(query) / Double(queries))
        }
        if left == 0 { break }
      }
      let (found, points) = (try b.download(bestMargins), try b.download(best))
      let f = batch.features
      var keep: [Int] = []
      for k in 0..<n {
        if found[k] <= 0 {
          outcome.fooled[rows[k]] = true
          outcome.adversarial.setRow(rows[k], width: f, to: points.row(k, width: f))
        } else {
          keep.append(k)
        }
      }
      rows = keep.map { rows[$0] }
      current = current.subset(keep)
      start = points.rows(keep, width: f)
    }
    return outcome
  }

  /// Side of the square at `query`: sqrt(p H W) rounded, at least 1 (L-inf) or an odd 3 (L2, whose
  /// pattern needs a centre), below the image size.
  func sideLength(_ query: Int, _ h: Int, _ w: Int) -> Int {
    let share = Self.squareShare(query: query, total: queries, pInit: pInit)
    var side = Int((share * Float(h * w)).squareRoot().rounded())
    if norm == .l2 {
      side = max(side, 3)
      if side % 2 == 0 { side += 1 }
    }
    return min(max(side, 1), max(min(h, w) - 1, 1))
  }

  /// The L2 start: a grid of 5 x 5 pseudo-Gaussian tiles of side H/5 (centred), each with a random
  /// sign per channel and a random orientation, scaled to norm eps, clipped to [0, 1].
  func tiles(_ batch: AttackBatch, seed: UInt64) -> [Float] {
    let (c, h, w) = (batch.pointShape[0], batch.pointShape[1], batch.pointShape[2])
    let f = batch.features
    let side = max(h / 5, 1)
    let pattern = PseudoGaussianSquare(side: side)
    let margin = (h - side * 5) / 2
    var out = batch.x
    for (n, id) in batch.ids.enumerated() {
      var rng = SeededRNG.derive(seed, UInt64(id))
      var delta = [Float](repeating: 0, count: f)
      for top in stride(from: margin, through: h - side, by: side) {
        for left in stride(from: margin, through: w - side, by: side) {
          let transposed = rng.uniform(0, 1) < 0.5
          for channel in 0..<c {
            let sign: Float = rng.uniform(0, 1) < 0.5 ? -1 : 1
            for i in 0..<side {
              for j in 0..<side { delta[(channel * h + top + i) * w + left + j] += pattern.value(i, j, transposed: transposed) * sign }
            }
          }
        }
      }
      let size = delta.reduce(0) { $0 + $1 * $1 }.squareRoot()
      for i in 0..<f { out[n * f + i] = min(max(batch.x[n * f + i] + eps * delta[i] / (size + 1e-12), 0), 1) }
    }
    return out
  }

  /// The start: x + eps * s with one random sign s per (channel, column), clipped to [0, 1].
  func stripes(_ batch: AttackBatch, seed: UInt64) -> [Float] {
    let (c, h, w) = (batch.pointShape[0], batch.pointShape[1], batch.pointShape[2])
    var out = batch.x
    for (n, id) in batch.ids.enumerated() {
      var rng = SeededRNG.derive(seed, UInt64(id))
      for channel in 0..<c {
        for column in 0..<w {
          let sign: Float = rng.uniform(0, 1) < 0.5 ? -1 : 1
          for row in 0..<h {
            let i = ((n * c + channel) * h + row) * w + column
            out[i] = min(max(batch.x[i] + eps * sign, 0), 1)
          }
        }
      }
    }
    return out
  }
}
