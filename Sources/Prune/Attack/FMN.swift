import Foundation
import GPU

/// Settings of a Fast Minimum-Norm run (Pintor et al. 2021).
public struct FMNConfig: Equatable, Sendable, Codable {
  public var norm: PerturbationNorm
  public var steps: Int
  /// What the step descends: the margin (the paper's), or CE / DLR ascended.
  public var loss: AttackLoss
  /// Step size, cosine-annealed from `alphaInit` to `alphaInit / 100`.
  public var alphaInit: Float
  /// Momentum of the normalised gradient (0: the paper's plain step).
  public var momentum: Float
  /// Radius adaptation, cosine-annealed from `gammaInit` to `gammaFinal`.
  public var gammaInit: Float = 0.05
  public var gammaFinal: Float = 0.001

  public init(norm: PerturbationNorm, steps: Int = 200, loss: AttackLoss = .margin, alphaInit: Float = 1, momentum: Float = 0) {
    self.norm = norm
    self.steps = steps
    self.loss = loss
    self.alphaInit = alphaInit
    self.momentum = momentum
  }

  public var summary: String {
    "\(loss.rawValue), alpha0 \(alphaInit), momentum \(momentum), \(steps) steps"
  }
}

extension PerturbationNorm: Codable {}
extension AttackLoss: Codable {}

/// FMN: per point, the smallest perturbation (in `norm`) that misclassifies it. Each step moves
/// delta along the normalised gradient of the loss, then projects it onto a radius eps that shrinks
/// while adversarial and grows (or jumps to a linear estimate of the boundary) while not. Returns
/// the smallest adversarial distance seen over all iterates, +inf where none was adversarial.
public final class FMNAttack {
  public let config: FMNConfig

  public init(config: FMNConfig) { self.config = config }

  public struct Result {
    /// Minimal distance per point (+inf: not fooled within the steps).
    public var distances: [Float]
    /// The adversarial point of each distance (the clean input where none).
    public var adversarial: [Float]
  }

  public func run(model: Model, batch: AttackBatch) throws -> Result {
    let b = model.backend
    let c = config
    let n = batch.count
    let (x, labels, _) = try batch.upload(b)
    let xAdv = try b.zeros(batch.shape)
    try b.copy(from: x, to: xAdv)
    let worst = (0..<n).map { k in
      let row = batch.x[(k * batch.features)..<((k + 1) * batch.features)].map { max($0, 1 - $0) }
      return distanceOf(Array(row), c.norm)
    }
    let state = FMNState(
      velocity: try b.zeros(batch.shape), epsilons: try b.upload([Float](repeating: .infinity, count: n), shape: [n]),
      bestNorms: try b.upload([Float](repeating: .infinity, count: n), shape: [n]), best: try b.zeros(batch.shape),
      worstNorms: try b.upload(worst, shape: [n]))
    try b.copy(from: x, to: state.best)
    let (losses, flags) = (try b.zeros([n]), try b.zeros([n]))
    let dLogitsSlot = BufferSlot()
    let targets = c.loss.isTargeted ? try b.upload(batch.targets(rank: 2).map(Float.init), shape: [n]) : nil
    for i in 0...c.steps {
      let logits = try model.forward(xAdv)
      try b.misclassified(flags: flags, logits: logits, labels: labels)
      try b.keepSmallestAdversarial(xAdv: xAdv, x: x, flags: flags, bestNorms: state.bestNorms, best: state.best, norm: c.norm, beta: 1)
      if i == c.steps { break }
      let dLogits = try dLogitsSlot.get(logits.shape, b)
      // The step descends: margins as they are, CE and DLR with their sign flipped.
      try b.attackLoss(c.loss, losses: losses, dLogits: dLogits, logits: logits, labels: labels, targets: targets, scale: -c.loss.ascentSign)
      let g = try model.inputGradient(dLogits)
      let cosine = Float((1 + cos(Double.pi * Double(i) / Double(c.steps))) / 2)
      let alpha = c.alphaInit / 100 + (c.alphaInit - c.alphaInit / 100) * cosine
      let gamma = c.gammaFinal + (c.gammaInit - c.gammaFinal) * cosine
      try b.fmnStep(
        xAdv: xAdv, x: x, grad: g, losses: losses, flags: flags, state: state,
        parameters: FMNStepParameters(norm: c.norm, alpha: alpha, gamma: gamma, momentum: c.momentum))
    }
    return Result(distances: try b.download(state.bestNorms), adversarial: try b.download(state.best))
  }
}

/// `|v|_p` of a host vector.
func distanceOf(_ v: [Float], _ norm: PerturbationNorm) -> Float {
  switch norm {
  case .linf: v.reduce(0) { max($0, abs($1)) }
  case .l2: v.reduce(0) { $0 + $1 * $1 }.squareRoot()
  case .l1: v.reduce(0) { $0 + abs($1) }
  }
}
