import GPU

/// TRADES' inner maximisation (Zhang et al. 2019): starting from `x + 0.001 * noise`, PGD steps
/// that maximise `KL(softmax f(x) || softmax f(x'))`, projected onto the eps-ball and [0, 1].
/// The noise is uniform with standard deviation 0.001 (the reference draws a Gaussian).
public final class TRADESAttack {
  public let config: PGDConfig
  let backend: Backend
  private let adversarial = BufferSlot()
  private let noise = BufferSlot()
  private let losses = BufferSlot()
  private let dLogits = BufferSlot()

  public init(config: PGDConfig, backend: Backend) {
    self.config = config
    self.backend = backend
  }

  /// The adversarial batch for `x`, whose eval-mode logits are `cleanLogits` (kept fixed).
  public func perturb(model: Model, x: Tensor, cleanLogits: Tensor, seed: UInt64) throws -> Tensor {
    // Eval mode for its steps (`Model.evaluating`; the TRADES trainer folds batch norm before).
    try model.evaluating {
      let xAdv = try adversarial.get(x.shape, backend)
      let start = try noise.get(x.shape, backend)
      let spread = Float(0.001 * 3.0.squareRoot())
      try backend.randomUniform(start, low: -spread, high: spread, seed: seed)
      try backend.pgdProject(xAdv: xAdv, x: x, delta: start, eps: config.eps, norm: config.norm)
      for _ in 0..<config.steps {
        let logits = try model.forward(xAdv)
        let d = try dLogits.get(logits.shape, backend)
        try backend.softmaxKL(losses: try losses.get([x.shape[0]], backend), dP: nil, dQ: d, p: cleanLogits, q: logits, scale: 1)
        guard let g = try model.backward(d, parameterGradients: false, inputGradient: true) else { break }
        try backend.pgdStep(xAdv: xAdv, x: x, grad: g, alpha: config.alpha, eps: config.eps, norm: config.norm)
      }
      return xAdv
    }
  }
}
