import GPU

/// Settings of a PGD attack (Madry et al.): `steps` signed-gradient (L-inf) or normalised-gradient
/// (L2) ascent steps of size `alpha` on `loss`, projected onto the eps-ball and [0, 1].
/// FGSM is one step of alpha = eps from x.
public struct PGDConfig: Equatable, Sendable {
  public var eps: Float
  public var alpha: Float
  public var steps: Int
  public var norm: PerturbationNorm
  /// Start at a uniform random point of the ball (L-inf: U(-eps, eps) per pixel) instead of x.
  public var randomStart: Bool
  /// Independent random starts; a point counts as broken if any restart breaks it.
  public var restarts: Int
  /// Cross-entropy (ascended), DLR (ascended) or the margin (descended).
  public var loss: AttackLoss

  public init(
    eps: Float, alpha: Float, steps: Int, norm: PerturbationNorm = .linf, randomStart: Bool = true, restarts: Int = 1,
    loss: AttackLoss = .crossEntropy
  ) {
    self.eps = eps
    self.alpha = alpha
    self.steps = steps
    self.norm = norm
    self.randomStart = randomStart
    self.restarts = restarts
    self.loss = loss
  }

  /// FGSM (Goodfellow et al.): one signed step of eps from the clean point.
  public static func fgsm(eps: Float, norm: PerturbationNorm = .linf, loss: AttackLoss = .crossEntropy) -> PGDConfig {
    PGDConfig(eps: eps, alpha: eps, steps: 1, norm: norm, randomStart: false, restarts: 1, loss: loss)
  }

  /// Rejects values no attack can run with, naming the option.
  public func validate() throws {
    if !(eps >= 0 && eps.isFinite) { throw UserError.badValue(name: "--eps", value: "\(eps)", problem: "must be a finite number >= 0") }
    if !(alpha >= 0 && alpha.isFinite) { throw UserError.badValue(name: "--alpha", value: "\(alpha)", problem: "must be >= 0") }
    if steps < 0 { throw UserError.badValue(name: "--steps", value: "\(steps)", problem: "must be >= 0") }
    if restarts < 1 { throw UserError.badValue(name: "--restarts", value: "\(restarts)", problem: "must be >= 1") }
    if norm == .l1 { throw UserError.badValue(name: "--norm", value: "l1", problem: "PGD takes linf or l2 (l1 is for --attack fmn)") }
    if loss.isTargeted { throw UserError.badValue(name: "--loss", value: loss.rawValue, problem: "PGD takes ce, dlr or margin") }
  }
}

/// Runs PGD on the device: every step is a forward, a backward to the input and one fused
/// `pgdStep` kernel; misclassified iterates are recorded on the device too.
public final class PGDAttack: BoundedAttack {
  public let config: PGDConfig
  let backend: Backend
  private let adversarial = BufferSlot()
  private let delta = BufferSlot()
  private let losses = BufferSlot()
  private let dLogits = BufferSlot()
  public var onProgress: ((Double) -> Void)?

  public init(config: PGDConfig, backend: Backend) {
    self.config = config
    self.backend = backend
  }

  public var eps: Float { config.eps }
  public var norm: PerturbationNorm { config.norm }
  public var name: String {
    config.steps == 1 && !config.randomStart && config.alpha == config.eps ? "fgsm" : "pgd-\(config.steps)"
  }

  /// The adversarial batch for training: the last iterate of one run (the model must be in
  /// eval mode; the returned tensor is reused by the next call).
  public func perturb(model: Model, x: Tensor, labels: Tensor, seed: UInt64) throws -> Tensor {
    try iterate(model: model, x: x, labels: labels, seed: seed, record: nil)
  }

  /// For evaluation: which points some iterate of some restart misclassified, and that iterate.
  /// Every iterate is checked (the logits of step k are those the gradient is taken at), so a
  /// success is never lost.
  public func run(model: Model, batch: AttackBatch, seed: UInt64) throws -> AttackOutcome {
    let b = backend
    let (x, labels, _) = try batch.upload(b)
    let record = (found: try b.zeros([batch.count]), points: try b.zeros(batch.shape), flags: try b.zeros([batch.count]))
    try b.copy(from: x, to: record.points)
    for restart in 0..<config.restarts {
      // Evaluation draws each point's start from its index, so results do not depend on batching.
      let startSeed = deriveSeed(seed, UInt64(restart))
      let start = batch.ids.flatMap { id in
        var rng = SeededRNG.derive(startSeed, UInt64(id))
        return rng.uniformArray(batch.features, -config.eps, config.eps)
      }
      try iterate(model: model, x: x, labels: labels, seed: startSeed, record: record, start: start)
      if !(try downloadFlags(record.found, b).contains(false)) { break }
    }
    return AttackOutcome(fooled: try downloadFlags(record.found, b), adversarial: try b.download(record.points))
  }

  @discardableResult
  private func iterate(
    model: Model, x: Tensor, labels: Tensor, seed: UInt64, record: (found: Tensor, points: Tensor, flags: Tensor)?, start: [Float]? = nil
  ) throws -> Tensor {
    let c = config
    // A training loop's attack folds batch norm for its steps (`Model.evaluating`).
    return try model.evaluating {
      let xAdv = try adversarial.get(x.shape, backend)
      if c.randomStart && c.eps > 0 {
        let d = try delta.get(x.shape, backend)
        if let start {
          try backend.write(start, to: d)
        } else {
          try backend.randomUniform(d, low: -c.eps, high: c.eps, seed: seed)
        }
        try backend.pgdProject(xAdv: xAdv, x: x, delta: d, eps: c.eps, norm: c.norm)
      } else {
        try backend.copy(from: x, to: xAdv)
      }
      let n = x.shape[0]
      func track(_ logits: Tensor) throws {
        guard let record else { return }
        try backend.misclassified(flags: record.flags, logits: logits, labels: labels)
        try backend.selectRows(destination: record.found, source: record.flags, where: record.flags)
        try backend.selectRows(destination: record.points, source: xAdv, where: record.flags)
      }
      for _ in 0..<c.steps {
        let logits = try model.forward(xAdv)
        try track(logits)
        let l = try losses.get([n], backend)
        let d = try dLogits.get(logits.shape, backend)
        try backend.attackLoss(c.loss, losses: l, dLogits: d, logits: logits, labels: labels, targets: nil, scale: c.loss.ascentSign)
        try backend.pgdStep(xAdv: xAdv, x: x, grad: try model.inputGradient(d), alpha: c.alpha, eps: c.eps, norm: c.norm)
      }
      if record != nil { try track(try model.forward(xAdv)) }
      return xAdv
    }
  }
}

/// Index of the largest entry of each row (first one on ties).
public func argmaxRows(_ values: [Float], classes: Int) -> [Int] {
  stride(from: 0, to: values.count, by: classes).map { start in
    var best = 0
    for c in 1..<classes where values[start + c] > values[start + best] { best = c }
    return best
  }
}
