import GPU

/// FAB-T (Croce & Hein 2020), targeted, as in the standard AutoAttack: for each target t (the 2nd..
/// (targets + 1)-th largest clean logits), 100 steps that project the current point and the original
/// one onto the linearised boundary between y and t (within [0, 1]), step between the two projections
/// with a bias toward the original (alpha_max 0.1, overshoot eta 1.05), and once misclassified move
/// back toward x (beta 0.9) to shrink the perturbation. A point is fooled only if the smallest
/// misclassified iterate is within eps.
public final class FABAttack: BoundedAttack, TargetBatching {
  public let eps: Float
  public let norm: PerturbationNorm
  public let iterations: Int
  public let targets: Int
  public let alphaMax: Float = 0.1
  public let eta: Float = 1.05
  public let beta: Float = 0.9
  public let name = "fab-t"
  public var onProgress: ((Double) -> Void)?
  public var rowBudget = 0

  public init(eps: Float, norm: PerturbationNorm, iterations: Int = 100, targets: Int = 9) {
    precondition(norm != .l1, "FAB: L-inf and L2 only")
    self.eps = eps
    self.norm = norm
    self.iterations = iterations
    self.targets = targets
  }

  public func run(model: Model, batch: AttackBatch, seed: UInt64) throws -> AttackOutcome {
    let (outcome, _) = try minimalPerturbations(model: model, batch: batch)
    return outcome
  }

  /// The outcome within eps, and the smallest distance found per point over all targets (+inf where none).
  public func minimalPerturbations(model: Model, batch: AttackBatch) throws -> (AttackOutcome, [Float]) {
    var distances = [Float](repeating: .infinity, count: batch.count)
    let rowOf = Dictionary(uniqueKeysWithValues: batch.ids.enumerated().map { ($1, $0) })
    let outcome = try overTargets(targets, batch: batch, rowBudget: rowBudget) { sub, t, _ in
      let (found, norms) = try self.once(model: model, batch: sub, targets: t)
      for (k, id) in sub.ids.enumerated() { distances[rowOf[id]!] = min(distances[rowOf[id]!], norms[k]) }
      return found
    }
    return (outcome, distances)
  }

  func once(model: Model, batch: AttackBatch, targets: [Int]) throws -> (AttackOutcome, [Float]) {
    let b = model.backend
    let n = batch.count
    let (x, labels, _) = try batch.upload(b)
    let targetTensor = try b.upload(targets.map(Float.init), shape: [n])
    let (xAdv, best) = (try b.zeros(batch.shape), try b.zeros(batch.shape))
    try b.copy(from: x, to: xAdv)
    try b.copy(from: x, to: best)
    let (margins, flags) = (try b.zeros([n]), try b.zeros([n]))
    let bestNorms = try b.upload([Float](repeating: .infinity, count: n), shape: [n])
    let dLogitsSlot = BufferSlot()
    for _ in 0..<iterations {
      let logits = try model.forward(xAdv)
      let dLogits = try dLogitsSlot.get(logits.shape, b)
      // f = z_y - z_t is zero on the boundary between y and t; FAB linearises it.
      try b.attackLoss(.targetedMargin, losses: margins, dLogits: dLogits, logits: logits, labels: labels, targets: targetTensor, scale: 1)
      let g = try model.inputGradient(dLogits)
      try b.fabStep(xAdv: xAdv, x: x, grad: g, difference: margins, norm: norm, alphaMax: alphaMax, eta: eta)
      try b.misclassified(flags: flags, logits: try model.forward(xAdv), labels: labels)
      try b.keepSmallestAdversarial(xAdv: xAdv, x: x, flags: flags, bestNorms: bestNorms, best: best, norm: norm, beta: beta)
    }
    let norms = try b.download(bestNorms)
    return (AttackOutcome(fooled: norms.map { $0 <= eps }, adversarial: try b.download(best)), norms)
  }
}
