// The attack building blocks on OpenCL (kernels/attack_blocks.cl); shapes are checked by the same
// OpShapes contracts as the CPU reference before anything is queued.
extension OpenCLBackend {
  public func attackLoss(
    _ loss: AttackLoss, losses: Tensor, dLogits: Tensor?, logits: Tensor, labels: Tensor, targets: Tensor?, scale: Float
  ) throws {
    let (n, classes) = OpShapes.attackLoss(loss, losses: losses, dLogits: dLogits, logits: logits, labels: labels, targets: targets)
    if loss == .crossEntropy {
      return try softmaxCrossEntropy(losses: losses, dLogits: dLogits, logits: logits, labels: labels, scale: scale)
    }
    try launch(
      "attack_loss", items: n,
      [
        .buffer(losses), .buffer(dLogits ?? losses), .buffer(logits), .buffer(labels), .buffer(targets ?? labels),
        .int(loss.code), .int(classes), .float(scale), .int(dLogits == nil ? 0 : 1), .int(n),
      ])
  }

  public func misclassified(flags: Tensor, logits: Tensor, labels: Tensor) throws {
    let (n, classes) = OpShapes.rows(logits, labels: labels, op: "misclassified")
    precondition(flags.count == n, "misclassified: flags must have \(n) entries")
    try launch("misclassified", items: n, [.buffer(flags), .buffer(logits), .buffer(labels), .int(classes), .int(n)])
  }

  public func selectRows(destination: Tensor, source: Tensor, where flags: Tensor) throws {
    let width = OpShapes.selectRows(destination: destination, source: source, flags: flags)
    try launch(
      "select_rows", items: destination.count,
      [.buffer(destination), .buffer(source), .buffer(flags), .int(width), .int(destination.count)])
  }

  public func apgdStep(
    xAdv: Tensor, xPrevious: Tensor, x: Tensor, grad: Tensor, stepSizes: Tensor, momentum: Float, eps: Float,
    norm: PerturbationNorm
  ) throws {
    let (batch, features) = OpShapes.attack(xAdv: xAdv, x: x, other: grad, op: "apgdStep")
    checkSameCount(xPrevious, x, op: "apgdStep")
    precondition(stepSizes.count == batch, "apgdStep: one step size per sample")
    let args: [Arg] = [
      .buffer(xAdv), .buffer(xPrevious), .buffer(x), .buffer(grad), .buffer(stepSizes), .float(momentum), .float(eps), .int(features),
    ]
    switch norm {
    case .linf: try launch("apgd_step_linf", items: x.count, args + [.int(x.count)])
    case .l2: try launch("apgd_step_l2", items: batch, args + [.int(batch)])
    case .l1: preconditionFailure("apgdStep: L1 balls are for minimum-norm attacks only")
    }
  }

  public func apgdTrack(losses: Tensor, bestLosses: Tensor, previousLosses: Tensor, increases: Tensor, improved: Tensor) throws {
    for t in [bestLosses, previousLosses, increases, improved] { checkSameCount(t, losses, op: "apgdTrack") }
    try launch(
      "apgd_track", items: losses.count,
      [.buffer(losses), .buffer(bestLosses), .buffer(previousLosses), .buffer(increases), .buffer(improved), .int(losses.count)])
  }

  public func fabStep(
    xAdv: Tensor, x: Tensor, grad: Tensor, difference: Tensor, norm: PerturbationNorm, alphaMax: Float, eta: Float
  ) throws {
    let (batch, features) = OpShapes.attack(xAdv: xAdv, x: x, other: grad, op: "fabStep")
    precondition(difference.count == batch, "fabStep: one logit difference per sample")
    precondition(norm != .l1, "fabStep: L-inf and L2 only")
    try launch(
      "fab_step", items: batch,
      [
        .buffer(xAdv), .buffer(x), .buffer(grad), .buffer(difference), .int(norm.code), .float(alphaMax), .float(eta),
        .int(features), .int(batch),
      ])
  }

  public func keepSmallestAdversarial(
    xAdv: Tensor, x: Tensor, flags: Tensor, bestNorms: Tensor, best: Tensor, norm: PerturbationNorm, beta: Float
  ) throws {
    let (batch, features) = OpShapes.attack(xAdv: xAdv, x: x, other: best, op: "keepSmallestAdversarial")
    precondition(flags.count == batch && bestNorms.count == batch, "keepSmallestAdversarial: one flag and norm per sample")
    try launch(
      "keep_smallest_adversarial", items: batch,
      [
        .buffer(xAdv), .buffer(x), .buffer(flags), .buffer(bestNorms), .buffer(best), .int(norm.code), .float(beta),
        .int(features), .int(batch),
      ])
  }

  public func squareProposal(xNew: Tensor, xBest: Tensor, x: Tensor, ids: Tensor, eps: Float, side: Int, seed: UInt64) throws {
    let (c, h, w) = OpShapes.square(xNew: xNew, xBest: xBest, x: x, ids: ids, side: side)
    try launch(
      "square_proposal", items: x.count,
      [
        .buffer(xNew), .buffer(xBest), .buffer(x), .buffer(ids), .float(eps), .int(side), .int(c), .int(h), .int(w),
        .uint(UInt32(truncatingIfNeeded: seed)), .uint(UInt32(truncatingIfNeeded: seed >> 32)), .int(x.count),
      ])
  }

  public func squareAccept(xBest: Tensor, bestMargins: Tensor, xNew: Tensor, margins: Tensor, accepted: Tensor?) throws {
    let width = OpShapes.selectRows(destination: xBest, source: xNew, flags: bestMargins)
    checkSameCount(margins, bestMargins, op: "squareAccept")
    if let accepted { checkSameCount(accepted, margins, op: "squareAccept") }
    try launch(
      "square_accept", items: margins.count,
      [
        .buffer(xBest), .buffer(bestMargins), .buffer(xNew), .buffer(margins), .buffer(accepted ?? margins), .int(accepted == nil ? 0 : 1),
        .int(width), .int(margins.count),
      ])
  }

  public func cropWindows(out: Tensor, x: Tensor, corners: Tensor) throws {
    let (c, oh, ow) = OpShapes.windows(window: out, other: x, corners: [corners], rows: nil, op: "cropWindows")
    try launch(
      "crop_windows", items: out.count,
      [.buffer(out), .buffer(x), .buffer(corners), .int(c), .int(x.shape[2]), .int(x.shape[3]), .int(oh), .int(ow), .int(out.count)])
  }

  public func pasteWindows(
    into: Tensor, intoCorners: Tensor?, window: Tensor, windowCorners: Tensor, plane: (height: Int, width: Int), rows: Tensor?
  ) throws {
    let (c, wh, ww) = OpShapes.windows(window: window, other: into, corners: [intoCorners, windowCorners], rows: rows, op: "pasteWindows")
    // Absent optional buffers are stood in for by windowCorners, with a flag saying so.
    try launch(
      "paste_windows", items: window.count,
      [
        .buffer(into), .buffer(intoCorners ?? windowCorners), .buffer(window), .buffer(windowCorners), .buffer(rows ?? windowCorners),
        .int(intoCorners == nil ? 0 : 1), .int(rows == nil ? 0 : 1), .int(c), .int(into.shape[2]), .int(into.shape[3]), .int(wh), .int(ww),
        .int(plane.height), .int(plane.width), .int(window.count),
      ])
  }

  public func fmnStep(
    xAdv: Tensor, x: Tensor, grad: Tensor, losses: Tensor, flags: Tensor, state s: FMNState, parameters q: FMNStepParameters
  ) throws {
    let (batch, features) = OpShapes.fmn(xAdv: xAdv, x: x, grad: grad, losses: losses, flags: flags, state: s)
    try launch(
      "fmn_step", items: batch,
      [
        .buffer(xAdv), .buffer(x), .buffer(grad), .buffer(losses), .buffer(flags), .buffer(s.velocity), .buffer(s.epsilons),
        .buffer(s.bestNorms), .buffer(s.worstNorms), .int(q.norm.code), .float(q.alpha), .float(q.gamma), .float(q.momentum),
        .int(features), .int(batch),
      ])
  }
}

extension OpenCLBackend {
  public func squareL2Proposal(xNew: Tensor, xBest: Tensor, x: Tensor, ids: Tensor, eps: Float, side: Int, seed: UInt64) throws {
    let (c, h, w) = OpShapes.square(xNew: xNew, xBest: xBest, x: x, ids: ids, side: side)
    precondition(c <= 4, "squareL2Proposal: at most 4 channels")
    try launch(
      "square_l2_proposal", items: x.shape[0],
      [
        .buffer(xNew), .buffer(xBest), .buffer(x), .buffer(ids), .float(eps), .int(side), .int(c), .int(h), .int(w),
        .uint(UInt32(truncatingIfNeeded: seed)), .uint(UInt32(truncatingIfNeeded: seed >> 32)), .int(x.shape[0]),
      ])
  }
}
