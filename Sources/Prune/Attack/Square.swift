import GPU

/// The Square attack (Andriushchenko et al. 2020), L-inf, score-based: it sees only logits.
///
/// Starts from vertical stripes of +-eps (one sign per column and channel); each query proposes
/// changing one random square per point to +-eps per channel, and keeps it if the margin
/// `z_y - max_{i != y} z_i` goes down. The square's area is `p * H * W`, p halved at 10, 50, 200,
/// 500, 1000, 2000, 4000, 6000 and 8000 of 10,000 (rescaled to the query budget). Points stop once
/// misclassified; the batch is compacted as they do.
public final class SquareAttack: BoundedAttack {
  public let eps: Float
  public let norm: PerturbationNorm
  public let queries: Int
  public let pInit: Float
  public let name = "square"

  public init(eps: Float, norm: PerturbationNorm, queries: Int = 5000, pInit: Float = 0.8) {
    precondition(norm == .linf, "Square: L-inf only")
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
    var start = stripes(batch, seed: seed)
    var query = 0
    while !rows.isEmpty && query < queries {
      let n = current.count
      let (x, labels, ids) = try current.upload(b)
      let (best, proposal) = (try b.upload(start, shape: current.shape), try b.zeros(current.shape))
      let (bestMargins, margins) = (try b.zeros([n]), try b.zeros([n]))
      try b.attackLoss(.margin, losses: bestMargins, dLogits: nil, logits: try model.forward(best), labels: labels, targets: nil, scale: 1)
      var left = n
      // Runs until a quarter of the batch is fooled, then compacts the batch to the rest.
      while query < queries && left * 4 > n * 3 {
        let side = min(max(Int((squareShare(query) * Float(h * w)).squareRoot().rounded()), 1), max(min(h, w) - 1, 1))
        try b.squareProposal(xNew: proposal, xBest: best, x: x, ids: ids, eps: eps, side: side, seed: deriveSeed(seed, UInt64(query)))
        try b.attackLoss(.margin, losses: margins, dLogits: nil, logits: try model.forward(proposal), labels: labels, targets: nil, scale: 1)
        try b.squareAccept(xBest: best, bestMargins: bestMargins, xNew: proposal, margins: margins)
        query += 1
        if query % 20 == 0 { left = try b.download(bestMargins).filter { $0 > 0 }.count }
        if left == 0 { break }
      }
      let (found, points) = (try b.download(bestMargins), try b.download(best))
      let f = batch.features
      var keep: [Int] = []
      for k in 0..<n {
        if found[k] <= 0 {
          outcome.fooled[rows[k]] = true
          outcome.adversarial.replaceSubrange((rows[k] * f)..<((rows[k] + 1) * f), with: points[(k * f)..<((k + 1) * f)])
        } else {
          keep.append(k)
        }
      }
      rows = keep.map { rows[$0] }
      current = current.subset(keep)
      start = keep.flatMap { points[($0 * f)..<(($0 + 1) * f)] }
    }
    return outcome
  }

  private func squareShare(_ query: Int) -> Float { Self.squareShare(query: query, total: queries, pInit: pInit) }

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
