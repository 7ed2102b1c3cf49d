import GPU

/// Device buffers a TRADES step keeps between its passes.
final class TRADESBuffers {
  let clean = BufferSlot()
  let adversarialLogits = BufferSlot()
  let ce = BufferSlot()
  let kl = BufferSlot()
  let dClean = BufferSlot()
  let dKLClean = BufferSlot()
  let dAdversarial = BufferSlot()
  var accumulated: [ObjectIdentifier: Tensor] = [:]
}

extension Trainer {
  /// TRADES' adversarial batch for `x`: the inner maximisation from the model's eval-mode logits.
  func tradesAdversarial(x: Tensor, attack: TRADESAttack, seed: UInt64) throws -> Tensor {
    model.setTraining(false)
    let evalLogits = try model.forward(x)
    let clean = try trades.clean.get(evalLogits.shape, backend)
    try backend.copy(from: evalLogits, to: clean)
    return try attack.perturb(model: model, x: x, cleanLogits: clean, seed: seed)
  }

  /// One TRADES step on `x` and its adversarial batch `xAdv`:
  /// `CE(f(x), y) + beta * KL(softmax f(x) || softmax f(x'))`, with gradients through both passes. Our layers keep one forward's activations, so the adversarial pass is
  /// run again for its backward and the two parameter gradients are added; batch-norm running
  /// statistics therefore see three training-mode passes per step instead of PyTorch's two.
  func tradesStep(
    x: Tensor, xAdv: Tensor, labels: Tensor, hostLabels: [Int], beta: Float, hyper: SGDHyper
  ) throws -> (loss: Double, correct: Int) {
    let n = hostLabels.count
    let b = trades
    model.setTraining(true)
    let adv = try model.forward(xAdv)
    let advLogits = try b.adversarialLogits.get(adv.shape, backend)
    try backend.copy(from: adv, to: advLogits)
    let natural = try model.forward(x)
    let (ce, kl) = (try b.ce.get([n], backend), try b.kl.get([n], backend))
    let dNatural = try b.dClean.get(natural.shape, backend)
    let dKL = try b.dKLClean.get(natural.shape, backend)
    let dAdv = try b.dAdversarial.get(natural.shape, backend)
    try backend.softmaxCrossEntropy(losses: ce, dLogits: dNatural, logits: natural, labels: labels, scale: 1 / Float(n))
    try backend.softmaxKL(losses: kl, dP: dKL, dQ: dAdv, p: natural, q: advLogits, scale: beta / Float(n))
    try backend.add(out: dNatural, a: dNatural, b: dKL)
    let predictions = argmaxRows(try backend.download(natural), classes: natural.shape[1])
    try model.backward(dNatural, parameterGradients: true, inputGradient: false)
    for p in model.trainableParameters {
      let sum = try b.accumulated[ObjectIdentifier(p)] ?? backend.zeros(like: p.grad)
      b.accumulated[ObjectIdentifier(p)] = sum
      try backend.copy(from: p.grad, to: sum)
    }
    _ = try model.forward(xAdv)
    try model.backward(dAdv, parameterGradients: true, inputGradient: false)
    for p in model.trainableParameters {
      try backend.add(out: p.grad, a: p.grad, b: b.accumulated[ObjectIdentifier(p)]!)
      try backend.sgdStep(weight: p.value, grad: p.grad, velocity: p.velocity, mask: p.mask, hyper: hyper)
    }
    let (ceHost, klHost) = (try backend.download(ce), try backend.download(kl))
    let loss = zip(ceHost, klHost).reduce(0.0) { $0 + Double($1.0) + Double(beta) * Double($1.1) } / Double(n)
    guard loss.isFinite else { throw TrainingError.nonFiniteLoss }
    return (loss, zip(predictions, hostLabels).filter { $0 == $1 }.count)
  }
}
