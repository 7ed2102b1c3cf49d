import GPU

/// Device buffers a TRADES step keeps between its passes.
final class TRADESBuffers {
  let clean = BufferSlot()
  let naturalLogits = BufferSlot()
  let ce = BufferSlot()
  let kl = BufferSlot()
  let dClean = BufferSlot()
  let dKLClean = BufferSlot()
  let dAdversarial = BufferSlot()
  var accumulated: [ObjectIdentifier: Tensor] = [:]
}

extension Trainer {
  /// TRADES' adversarial batch for `x`: the inner maximisation from the model's eval-mode logits,
  /// with batch norm folded for its passes (`Model.evaluating`).
  func tradesAdversarial(x: Tensor, attack: TRADESAttack, seed: UInt64) throws -> Tensor {
    try model.evaluating {
      let evalLogits = try model.forward(x)
      let clean = try trades.clean.get(evalLogits.shape, backend)
      try backend.copy(from: evalLogits, to: clean)
      return try attack.perturb(model: model, x: x, cleanLogits: clean, seed: seed)
    }
  }

  /// One TRADES step on `x` and its adversarial batch `xAdv`:
  /// `CE(f(x), y) + beta * KL(softmax f(x) || softmax f(x'))`, with gradients through both passes.
  /// Training-mode passes run natural, adversarial, natural, as in the TRADES reference code
  /// (which evaluates `model(x_natural)` twice), so batch-norm running statistics move as they do
  /// there. Our layers keep one forward's activations: the adversarial backward runs right after
  /// its forward, and the second natural pass (same weights, same batch statistics) serves the
  /// natural backward.
  func tradesStep(
    x: Tensor, xAdv: Tensor, labels: Tensor, hostLabels: [Int], beta: Float, step: TrainingStep
  ) throws -> (loss: Double, correct: Int) {
    let n = hostLabels.count
    let b = trades
    model.setTraining(true)
    let first = try model.forward(x)
    let natural = try b.naturalLogits.get(first.shape, backend)
    try backend.copy(from: first, to: natural)
    let adv = try model.forward(xAdv)
    let (ce, kl) = (try b.ce.get([n], backend), try b.kl.get([n], backend))
    let dNatural = try b.dClean.get(natural.shape, backend)
    let dKL = try b.dKLClean.get(natural.shape, backend)
    let dAdv = try b.dAdversarial.get(natural.shape, backend)
    try backend.softmaxCrossEntropy(losses: ce, dLogits: dNatural, logits: natural, labels: labels, scale: 1 / Float(n))
    try backend.softmaxKL(losses: kl, dP: dKL, dQ: dAdv, p: natural, q: adv, scale: beta / Float(n))
    try backend.add(out: dNatural, a: dNatural, b: dKL)
    let predictions = argmaxRows(try backend.download(natural), classes: natural.shape[1])
    try model.backward(dAdv, parameterGradients: true, inputGradient: false)
    for p in model.trainableParameters {
      let sum = try b.accumulated[ObjectIdentifier(p)] ?? backend.zeros(like: p.grad)
      b.accumulated[ObjectIdentifier(p)] = sum
      try backend.copy(from: p.grad, to: sum)
    }
    _ = try model.forward(x)
    try model.backward(dNatural, parameterGradients: true, inputGradient: false)
    for p in model.trainableParameters {
      try backend.add(out: p.grad, a: p.grad, b: b.accumulated[ObjectIdentifier(p)]!)
    }
    let penalty = try update(step)
    let (ceHost, klHost) = (try backend.download(ce), try backend.download(kl))
    let loss = zip(ceHost, klHost).reduce(0.0) { $0 + Double($1.0) + Double(beta) * Double($1.1) } / Double(n) + penalty
    guard loss.isFinite else { throw TrainingError.nonFiniteLoss }
    return (loss, zip(predictions, hostLabels).filter { $0 == $1 }.count)
  }
}
