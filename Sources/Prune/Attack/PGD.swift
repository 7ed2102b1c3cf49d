import GPU

/// Settings of a PGD attack (Madry et al.): `steps` signed-gradient (L-inf) or normalised-gradient
/// (L2) ascent steps of size `alpha` on the cross-entropy, projected onto the eps-ball and [0, 1].
public struct PGDConfig: Equatable, Sendable {
  public var eps: Float
  public var alpha: Float
  public var steps: Int
  public var norm: PerturbationNorm
  /// Start at a uniform random point of the ball (L-inf: U(-eps, eps) per pixel) instead of x.
  public var randomStart: Bool
  /// Independent random starts; a point counts as broken if any restart breaks it.
  public var restarts: Int

  public init(eps: Float, alpha: Float, steps: Int, norm: PerturbationNorm = .linf, randomStart: Bool = true, restarts: Int = 1) {
    self.eps = eps
    self.alpha = alpha
    self.steps = steps
    self.norm = norm
    self.randomStart = randomStart
    self.restarts = restarts
  }

  /// Rejects values no attack can run with, naming the option.
  public func validate() throws {
    if !(eps >= 0 && eps.isFinite) { throw UserError.badValue(name: "--eps", value: "\(eps)", problem: "must be a finite number >= 0") }
    if !(alpha > 0 && alpha.isFinite) { throw UserError.badValue(name: "--alpha", value: "\(alpha)", problem: "must be > 0") }
    if steps < 0 { throw UserError.badValue(name: "--steps", value: "\(steps)", problem: "must be >= 0") }
    if restarts < 1 { throw UserError.badValue(name: "--restarts", value: "\(restarts)", problem: "must be >= 1") }
  }
}

/// Runs PGD on the device: every step is a forward, a backward to the input and one fused
/// `pgdStep` kernel; nothing but logits (when tracking success) crosses to the host.
public final class PGDAttack {
  public let config: PGDConfig
  let backend: Backend
  private let adversarial = BufferSlot()
  private let delta = BufferSlot()
  private let losses = BufferSlot()
  private let dLogits = BufferSlot()

  public init(config: PGDConfig, backend: Backend) {
    self.config = config
    self.backend = backend
  }

  /// The adversarial batch for training: the last iterate of one run (the model must be in
  /// eval mode; the returned tensor is reused by the next call).
  public func perturb(model: Model, x: Tensor, labels: Tensor, seed: UInt64) throws -> Tensor {
    var unused: [Bool] = []
    return try run(model: model, x: x, labels: labels, seed: seed, track: nil, fooled: &unused)
  }

  /// For evaluation: which points some iterate of some restart misclassified. Every iterate is
  /// checked (the logits of step k are those the gradient is taken at), so a success is never lost.
  public func fooled(model: Model, x: Tensor, labels: Tensor, hostLabels: [Int], seed: UInt64) throws -> [Bool] {
    var fooled = [Bool](repeating: false, count: hostLabels.count)
    for restart in 0..<config.restarts {
      try run(model: model, x: x, labels: labels, seed: seed &+ UInt64(restart) &* 0x9E37_79B9, track: hostLabels, fooled: &fooled)
      if !fooled.contains(false) { break }
    }
    return fooled
  }

  @discardableResult
  private func run(model: Model, x: Tensor, labels: Tensor, seed: UInt64, track: [Int]?, fooled: inout [Bool]) throws -> Tensor {
    let c = config
    let wasTraining = model.isTraining
    model.setTraining(false)
    defer { model.setTraining(wasTraining) }
    let xAdv = try adversarial.get(x.shape, backend)
    if c.randomStart && c.eps > 0 {
      let d = try delta.get(x.shape, backend)
      try backend.randomUniform(d, low: -c.eps, high: c.eps, seed: seed)
      try backend.pgdProject(xAdv: xAdv, x: x, delta: d, eps: c.eps, norm: c.norm)
    } else {
      try backend.copy(from: x, to: xAdv)
    }
    let n = x.shape[0]
    for _ in 0..<c.steps {
      let logits = try model.forward(xAdv)
      if let track { try mark(logits, track, &fooled) }
      let l = try losses.get([n], backend)
      let d = try dLogits.get(logits.shape, backend)
      try backend.softmaxCrossEntropy(losses: l, dLogits: d, logits: logits, labels: labels, scale: 1)
      guard let g = try model.backward(d, parameterGradients: false, inputGradient: true) else { break }
      try backend.pgdStep(xAdv: xAdv, x: x, grad: g, alpha: c.alpha, eps: c.eps, norm: c.norm)
    }
    if let track { try mark(try model.forward(xAdv), track, &fooled) }
    return xAdv
  }

  private func mark(_ logits: Tensor, _ labels: [Int], _ flags: inout [Bool]) throws {
    let predictions = argmaxRows(try backend.download(logits), classes: logits.shape[1])
    for (i, p) in predictions.enumerated() where p != labels[i] { flags[i] = true }
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
