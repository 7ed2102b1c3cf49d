import Foundation
import GPU

/// Auto-PGD (Croce & Hein 2020): PGD with momentum 0.75 and a step size per point that halves
/// at checkpoints when progress stalls, restarting from the best point found.
///
/// `loss` `.crossEntropy` is APGD-CE, `.dlr` APGD-DLR, `.targetedDLR` APGD-T (run once per target:
/// the 2nd..(targets + 1)-th largest clean logits). Every iterate that misclassifies is kept.
public final class APGDAttack: BoundedAttack, TargetBatching {
  public let eps: Float
  public let norm: PerturbationNorm
  public let loss: AttackLoss
  public let iterations: Int
  public let restarts: Int
  public let targets: Int
  /// Share of loss increases since the last checkpoint under which the step halves.
  public let oscillationThreshold: Float = 0.75
  public let momentum: Float = 0.75
  public var onProgress: ((Double) -> Void)?
  public var rowBudget = 0

  public init(eps: Float, norm: PerturbationNorm, loss: AttackLoss, iterations: Int = 100, restarts: Int = 1, targets: Int = 9) {
    precondition(norm != .l1, "APGD: L-inf and L2 only")
    precondition([.crossEntropy, .dlr, .targetedDLR].contains(loss), "APGD: CE, DLR or targeted DLR")
    self.eps = eps
    self.norm = norm
    self.loss = loss
    self.iterations = iterations
    self.restarts = restarts
    self.targets = targets
  }

  public var name: String {
    switch loss {
    case .crossEntropy: "apgd-ce"
    case .targetedDLR: "apgd-t"
    default: "apgd-dlr"
    }
  }

  /// 0-based iterations after which the step size is checked: with p_0 = 0, p_1 = 0.22,
  /// p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06), at ceil(p_j N) - 1 (21, 40, 56, ... for N = 100).
  public static func checkpoints(iterations n: Int) -> [Int] {
    var length = max(Int(0.22 * Double(n)), 1)
    let (step, shortest) = (max(Int(0.03 * Double(n)), 1), max(Int(0.06 * Double(n)), 1))
    var (at, result) = (0, [Int]())
    while at + length <= n {
      at += length
      result.append(at - 1)
      length = max(length - step, shortest)
    }
    return result
  }

  public func run(model: Model, batch: AttackBatch, seed: UInt64) throws -> AttackOutcome {
    var outcome = AttackOutcome(unbroken: batch)
    for restart in 0..<restarts {
      let left = outcome.fooled.indices.filter { !outcome.fooled[$0] }
      if left.isEmpty { break }
      let sub = batch.subset(left)
      let restartSeed = deriveSeed(seed, UInt64(restart))
      let found: AttackOutcome
      if loss.isTargeted {
        found = try overTargets(targets, batch: sub, rowBudget: rowBudget) { b, t, ranks in
          // Each rank's rows start where that rank alone would (its own seed).
          let one = b.subset(Array(0..<(b.count / ranks.count)))
          let start = ranks.flatMap { randomStart(one, eps: eps, norm: norm, seed: deriveSeed(restartSeed, UInt64($0))) }
          return try self.once(model: model, batch: b, targets: t, start: start)
        }
      } else {
        found = try once(model: model, batch: sub, targets: nil, start: randomStart(sub, eps: eps, norm: norm, seed: restartSeed))
      }
      outcome.merge(found, rows: left, features: batch.features)
    }
    return outcome
  }

  /// One run of `iterations` steps from `start` (a random point of the ball per row).
  func once(model: Model, batch: AttackBatch, targets: [Int]?, start: [Float]) throws -> AttackOutcome {
    let b = model.backend
    let n = batch.count
    let (x, labels, _) = try batch.upload(b)
    let targetTensor = try targets.map { try b.upload($0.map(Float.init), shape: [n]) }
    let xAdv = try b.upload(start, shape: batch.shape)
    let (previous, xBest, gradBest, xFound) = (try b.zeros(batch.shape), try b.zeros(batch.shape), try b.zeros(batch.shape), try b.zeros(batch.shape))
    let (losses, bestLosses, previousLosses) = (try b.zeros([n]), try b.zeros([n]), try b.zeros([n]))
    let (increases, improved, flags, found, halve) = (try b.zeros([n]), try b.zeros([n]), try b.zeros([n]), try b.zeros([n]), try b.zeros([n]))
    let stepSizes = try b.upload([Float](repeating: 2 * eps, count: n), shape: [n])
    let dLogitsSlot = BufferSlot()

    /// Forward and backward at x_adv; records misclassified iterates; returns the input gradient.
    func evaluate() throws -> Tensor {
      let logits = try model.forward(xAdv)
      let dLogits = try dLogitsSlot.get(logits.shape, b)
      try b.attackLoss(loss, losses: losses, dLogits: dLogits, logits: logits, labels: labels, targets: targetTensor, scale: 1)
      try b.misclassified(flags: flags, logits: logits, labels: labels)
      try b.selectRows(destination: found, source: flags, where: flags)
      try b.selectRows(destination: xFound, source: xAdv, where: flags)
      let g = try model.inputGradient(dLogits)
      return g
    }

    try b.copy(from: xAdv, to: previous)
    var grad = try evaluate()
    try b.copy(from: losses, to: bestLosses)
    try b.copy(from: losses, to: previousLosses)
    try b.copy(from: xAdv, to: xBest)
    try b.copy(from: grad, to: gradBest)
    var bestAtLastCheck = try b.download(bestLosses)
    var reducedAtLastCheck = [Bool](repeating: false, count: n)
    var hostSteps = [Float](repeating: 2 * eps, count: n)
    let checks = Set(Self.checkpoints(iterations: iterations))
    var lastCheck = -1
    for i in 0..<iterations {
      try b.apgdStep(
        xAdv: xAdv, xPrevious: previous, x: x, grad: grad, stepSizes: stepSizes, momentum: i == 0 ? 1 : momentum, eps: eps, norm: norm)
      grad = try evaluate()
      if i % 10 == 9, !loss.isTargeted { onProgress?(Double(i + 1) / Double(iterations)) }
      try b.apgdTrack(losses: losses, bestLosses: bestLosses, previousLosses: previousLosses, increases: increases, improved: improved)
      try b.selectRows(destination: xBest, source: xAdv, where: improved)
      try b.selectRows(destination: gradBest, source: grad, where: improved)
      guard checks.contains(i) else { continue }
      let period = Float(i - lastCheck)
      lastCheck = i
      let (counts, best) = (try b.download(increases), try b.download(bestLosses))
      var halving = [Float](repeating: 0, count: n)
      for k in 0..<n {
        let oscillating = counts[k] <= oscillationThreshold * period
        let stalled = !reducedAtLastCheck[k] && bestAtLastCheck[k] >= best[k]
        reducedAtLastCheck[k] = oscillating || stalled
        if reducedAtLastCheck[k] {
          halving[k] = 1
          hostSteps[k] /= 2
        }
      }
      bestAtLastCheck = best
      try b.write(hostSteps, to: stepSizes)
      try b.write(halving, to: halve)
      try b.selectRows(destination: xAdv, source: xBest, where: halve)
      try b.selectRows(destination: grad, source: gradBest, where: halve)
      try b.fill(increases, value: 0)
      if !(try downloadFlags(found, b).contains(false)) { break }
    }
    return AttackOutcome(fooled: try downloadFlags(found, b), adversarial: try b.download(xFound))
  }
}

/// A random point of the eps-ball around each point, clipped to [0, 1]: AutoAttack's start,
/// `x + eps * t / |t|` with t uniform in [-1, 1]^D (L-inf: divided by max |t|, L2: by |t|_2).
/// Drawn per point from its id, so it does not depend on batching.
func randomStart(_ batch: AttackBatch, eps: Float, norm: PerturbationNorm, seed: UInt64) -> [Float] {
  let f = batch.features
  var out = batch.x
  for (n, id) in batch.ids.enumerated() {
    var rng = SeededRNG.derive(seed, UInt64(id))
    let t = rng.uniformArray(f)
    let size: Float = norm == .linf ? t.map(abs).max() ?? 1 : t.reduce(0) { $0 + $1 * $1 }.squareRoot()
    for i in 0..<f { out[n * f + i] = min(max(batch.x[n * f + i] + eps * t[i] / max(size, 1e-12), 0), 1) }
  }
  return out
}
