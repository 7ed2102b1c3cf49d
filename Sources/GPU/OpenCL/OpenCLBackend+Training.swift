// Loss, optimiser and attack steps on OpenCL (kernels/loss.cl, optimizer.cl, attack.cl).
extension OpenCLBackend {
  public func softmaxCrossEntropy(losses: Tensor, dLogits: Tensor?, logits: Tensor, labels: Tensor, scale: Float) throws {
    let (n, classes) = OpShapes.loss(losses: losses, dLogits: dLogits, logits: logits, labels: labels)
    try launch(
      "softmax_xent", items: n,
      [
        .buffer(losses), .buffer(dLogits ?? losses), .buffer(logits), .buffer(labels), .int(classes), .float(scale),
        .int(dLogits == nil ? 0 : 1), .int(n),
      ])
  }

  public func sgdStep(weight: Tensor, grad: Tensor, velocity: Tensor, mask: Tensor?, hyper: SGDHyper) throws {
    checkSameCount(weight, grad, op: "sgdStep")
    checkSameCount(weight, velocity, op: "sgdStep")
    if let mask { checkSameCount(weight, mask, op: "sgdStep") }
    try launch(
      "sgd_step", items: weight.count,
      [
        .buffer(weight), .buffer(grad), .buffer(velocity), .buffer(mask ?? grad), .float(hyper.learningRate),
        .float(hyper.momentum), .float(hyper.weightDecay), .int(mask == nil ? 0 : 1), .int(hyper.nesterov ? 1 : 0), .int(weight.count),
      ])
  }

  public func pgdStep(xAdv: Tensor, x: Tensor, grad: Tensor, alpha: Float, eps: Float, norm: PerturbationNorm) throws {
    let (batch, features) = OpShapes.attack(xAdv: xAdv, x: x, other: grad, op: "pgdStep")
    switch norm {
    case .linf:
      try launch("pgd_step_linf", items: x.count, [.buffer(xAdv), .buffer(x), .buffer(grad), .float(alpha), .float(eps), .int(x.count)])
    case .l1:
      preconditionFailure("pgdStep: L1 balls are for minimum-norm attacks only")
    case .l2:
      try launch("pgd_step_l2", items: batch, [.buffer(xAdv), .buffer(x), .buffer(grad), .float(alpha), .float(eps), .int(features), .int(batch)])
    }
  }

  public func pgdProject(xAdv: Tensor, x: Tensor, delta: Tensor, eps: Float, norm: PerturbationNorm) throws {
    let (batch, features) = OpShapes.attack(xAdv: xAdv, x: x, other: delta, op: "pgdProject")
    switch norm {
    case .linf:
      try launch("pgd_project_linf", items: x.count, [.buffer(xAdv), .buffer(x), .buffer(delta), .float(eps), .int(x.count)])
    case .l1:
      preconditionFailure("pgdProject: L1 balls are for minimum-norm attacks only")
    case .l2:
      try launch("pgd_project_l2", items: batch, [.buffer(xAdv), .buffer(x), .buffer(delta), .float(eps), .int(features), .int(batch)])
    }
  }
}

extension OpenCLBackend {
  public func softmaxKL(losses: Tensor, dP: Tensor?, dQ: Tensor?, p: Tensor, q: Tensor, scale: Float) throws {
    precondition(p.rank == 2 && p.shape == q.shape, "softmaxKL: logits \(p.shape) and \(q.shape) must be the same [N, C]")
    let (n, classes) = (p.shape[0], p.shape[1])
    precondition(losses.count == n, "softmaxKL: losses must have \(n) entries")
    try launch(
      "softmax_kl", items: n,
      [
        .buffer(losses), .buffer(dP ?? losses), .buffer(dQ ?? losses), .buffer(p), .buffer(q), .int(classes), .float(scale),
        .int(dP == nil ? 0 : 1), .int(dQ == nil ? 0 : 1), .int(n),
      ])
  }
}
