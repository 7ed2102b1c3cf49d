/// Shape contracts of the ops, checked identically by both backends before any work is queued.
enum OpShapes {
  static func linear(y: Tensor, x: Tensor, weight: Tensor, bias: Tensor?, op: String) -> (n: Int, inputs: Int, outputs: Int) {
    precondition(weight.rank == 2, "\(op): weight must be [O, I], got \(weight.shape)")
    let outputs = weight.shape[0]
    let inputs = weight.shape[1]
    precondition(x.count % inputs == 0, "\(op): input \(x.shape) does not split into rows of \(inputs)")
    let n = x.count / inputs
    precondition(y.count == n * outputs, "\(op): output \(y.shape) is not [\(n), \(outputs)]")
    if let bias { precondition(bias.count == outputs, "\(op): bias \(bias.shape) is not [\(outputs)]") }
    return (n, inputs, outputs)
  }

  static func conv(x: Tensor, weight: Tensor, y: Tensor, bias: Tensor?, geometry g: ConvGeometry, op: String) {
    precondition(x.count == g.inputShape.reduce(1, *), "\(op): input \(x.shape) does not match \(g)")
    checkShape(weight, g.weightShape, "weight", op: op)
    precondition(y.count == g.outputShape.reduce(1, *), "\(op): output \(y.shape) does not match \(g)")
    if let bias { precondition(bias.count == g.outChannels, "\(op): bias \(bias.shape) is not [\(g.outChannels)]") }
  }

  static func sparseConv(x: Tensor, y: Tensor, bias: Tensor?, weights: SparseConvWeights, geometry g: ConvGeometry, op: String) {
    weights.check(g, op)
    precondition(x.count == g.inputShape.reduce(1, *), "\(op): input \(x.shape) does not match \(g)")
    precondition(y.count == g.outputShape.reduce(1, *), "\(op): output \(y.shape) does not match \(g)")
    if let bias { precondition(bias.count == g.outChannels, "\(op): bias \(bias.shape) is not [\(g.outChannels)]") }
  }

  /// Channels of an NCHW tensor on `layout`'s planes, and whether `grid` holds them.
  static func residentPlanes(nchw: Tensor, grid: Tensor, layout r: ResidentGrid, op: String) -> Int {
    precondition(
      nchw.rank == 4 && nchw.shape[0] == r.batch && nchw.shape[2] == r.height && nchw.shape[3] == r.width,
      "\(op): \(nchw.shape) is not a batch of \(r.batch) \(r.height)x\(r.width) planes")
    residentGrid(grid, channels: nchw.shape[1], layout: r, op: op)
    return nchw.shape[1]
  }

  static func residentGrid(_ grid: Tensor, channels: Int, layout r: ResidentGrid, op: String) {
    precondition(grid.count >= r.floats(channels: channels), "\(op): grid of \(grid.count) floats is short of \(channels) channels")
  }

  /// The conv a resident grid's step runs, with its buffers checked.
  static func residentConv(
    out: Tensor, source: Tensor, weights: SparseConvWeights, bias: Tensor?, residual: Tensor?, layout r: ResidentGrid, op: String
  ) -> ConvGeometry {
    let g = r.geometry(inChannels: weights.inChannels, outChannels: weights.outChannels)
    residentConv(out: out, source: source, weights: weights, bias: bias, geometry: g, from: r, to: r, op: op)
    if let residual { residentGrid(residual, channels: g.outChannels, layout: r, op: op) }
    return g
  }

  /// A conv between two resident grids, with its buffers checked.
  static func residentConv(
    out: Tensor, source: Tensor, weights: SparseConvWeights, bias: Tensor?, geometry g: ConvGeometry, from: ResidentGrid, to: ResidentGrid,
    op: String
  ) {
    weights.check(g, op)
    precondition(g.padding <= 1, "\(op): a resident grid holds one ring of padding, \(g) needs \(g.padding)")
    precondition(
      g.batch == from.batch && g.height == from.height && g.width == from.width && g.batch == to.batch && g.outHeight == to.height
        && g.outWidth == to.width, "\(op): \(g) does not go from \(from) to \(to)")
    residentGrid(source, channels: g.inChannels, layout: from, op: op)
    residentGrid(out, channels: g.outChannels, layout: to, op: op)
    if let bias { precondition(bias.count == g.outChannels, "\(op): bias \(bias.shape) is not [\(g.outChannels)]") }
  }

  /// (N*C planes, H, W) of a 2x2 pooling input.
  static func pool(x: Tensor, y: Tensor, op: String) -> (planes: Int, height: Int, width: Int) {
    precondition(x.rank == 4, "\(op): input must be NCHW, got \(x.shape)")
    let (h, w) = (x.shape[2], x.shape[3])
    precondition(h % 2 == 0 && w % 2 == 0, "\(op): height and width must be even, got \(h)x\(w)")
    precondition(y.count == x.count / 4, "\(op): output \(y.shape) is not a quarter of \(x.shape)")
    return (x.shape[0] * x.shape[1], h, w)
  }

  /// (N*C planes, H, W) of a k x k average pooling input.
  static func avgPool(x: Tensor, y: Tensor, kernel k: Int, op: String) -> (planes: Int, height: Int, width: Int) {
    precondition(x.rank == 4 && k >= 1, "\(op): input must be NCHW with k >= 1, got \(x.shape), k \(k)")
    let (h, w) = (x.shape[2], x.shape[3])
    precondition(h % k == 0 && w % k == 0, "\(op): \(h)x\(w) is not a multiple of \(k)")
    precondition(y.count == x.count / (k * k), "\(op): output \(y.shape) does not fit \(x.shape) pooled by \(k)")
    return (x.shape[0] * x.shape[1], h, w)
  }

  /// (N, C, H*W) of a batch-norm input, with every per-channel tensor of C entries.
  static func batchNorm(x: Tensor, channelTensors: [Tensor], op: String) -> (n: Int, c: Int, hw: Int) {
    precondition(x.rank == 4 || x.rank == 2, "\(op): input must be [N, C, H, W] or [N, C], got \(x.shape)")
    let (n, c) = (x.shape[0], x.shape[1])
    for t in channelTensors { precondition(t.count == c, "\(op): per-channel tensor \(t.shape) is not [\(c)]") }
    return (n, c, x.count / max(1, n * c))
  }

  static func loss(losses: Tensor, dLogits: Tensor?, logits: Tensor, labels: Tensor) -> (n: Int, classes: Int) {
    precondition(logits.rank == 2, "softmaxCrossEntropy: logits must be [N, C], got \(logits.shape)")
    let (n, classes) = (logits.shape[0], logits.shape[1])
    precondition(labels.count == n && losses.count == n, "softmaxCrossEntropy: labels/losses must have \(n) entries")
    if let dLogits { checkSameCount(dLogits, logits, op: "softmaxCrossEntropy") }
    return (n, classes)
  }

  /// (batch, features per sample) of an attack step.
  static func attack(xAdv: Tensor, x: Tensor, other: Tensor, op: String) -> (batch: Int, features: Int) {
    precondition(x.rank >= 2, "\(op): inputs must be batched, got \(x.shape)")
    checkShape(xAdv, x.shape, "x_adv", op: op)
    checkSameCount(other, x, op: op)
    return (x.shape[0], x.count / x.shape[0])
  }
}

extension OpShapes {
  /// (N, classes) of a per-sample reduction of logits with one label per row.
  static func rows(_ logits: Tensor, labels: Tensor, op: String) -> (n: Int, classes: Int) {
    precondition(logits.rank == 2, "\(op): logits must be [N, C], got \(logits.shape)")
    precondition(labels.count == logits.shape[0], "\(op): labels must have \(logits.shape[0]) entries")
    return (logits.shape[0], logits.shape[1])
  }

  static func attackLoss(
    _ loss: AttackLoss, losses: Tensor, dLogits: Tensor?, logits: Tensor, labels: Tensor, targets: Tensor?
  ) -> (n: Int, classes: Int) {
    let (n, classes) = rows(logits, labels: labels, op: "attackLoss")
    precondition(losses.count == n, "attackLoss: losses must have \(n) entries")
    precondition(classes >= loss.minimumClasses, "attackLoss: \(loss.rawValue) needs at least \(loss.minimumClasses) classes")
    precondition(!loss.isTargeted || targets?.count == n, "attackLoss: \(loss.rawValue) needs one target per sample")
    if let dLogits { checkSameCount(dLogits, logits, op: "attackLoss") }
    return (n, classes)
  }

  /// Row width of a row selection: one flag per row of both tensors.
  static func selectRows(destination: Tensor, source: Tensor, flags: Tensor) -> Int {
    checkSameCount(destination, source, op: "selectRows")
    precondition(flags.count > 0 && destination.count % flags.count == 0, "selectRows: \(destination.shape) does not split into \(flags.count) rows")
    return destination.count / flags.count
  }

  /// (C, H, W) of a Square proposal.
  /// (planes per sample, window height, width) of a window op; `other` is the tensor of planes.
  static func windows(window: Tensor, other: Tensor, corners: [Tensor?], rows: Tensor?, op: String) -> (c: Int, h: Int, w: Int) {
    precondition(window.rank == 4 && other.rank == 4, "\(op): NCHW tensors, got \(window.shape) and \(other.shape)")
    precondition(window.shape[0] == other.shape[0] && window.shape[1] == other.shape[1], "\(op): \(window.shape) and \(other.shape) differ in N or C")
    for c in corners.compactMap({ $0 }) { precondition(c.count == 2 * window.shape[0], "\(op): corners must be [N, 2], got \(c.shape)") }
    if let rows { precondition(rows.count == window.shape[0], "\(op): one row flag per sample") }
    return (window.shape[1], window.shape[2], window.shape[3])
  }

  static func square(xNew: Tensor, xBest: Tensor, x: Tensor, ids: Tensor, side: Int) -> (c: Int, h: Int, w: Int) {
    precondition(x.rank == 4, "squareProposal: inputs must be NCHW, got \(x.shape)")
    precondition(ids.count == x.shape[0], "squareProposal: one id per sample")
    checkShape(xNew, x.shape, "x_new", op: "squareProposal")
    checkShape(xBest, x.shape, "x_best", op: "squareProposal")
    precondition(side >= 1 && side <= min(x.shape[2], x.shape[3]), "squareProposal: side \(side) does not fit \(x.shape)")
    return (x.shape[1], x.shape[2], x.shape[3])
  }

  static func fmn(xAdv: Tensor, x: Tensor, grad: Tensor, losses: Tensor, flags: Tensor, state: FMNState) -> (batch: Int, features: Int) {
    let (batch, features) = attack(xAdv: xAdv, x: x, other: grad, op: "fmnStep")
    for t in [state.velocity, state.best] { checkSameCount(t, x, op: "fmnStep") }
    for t in [losses, flags, state.epsilons, state.bestNorms, state.worstNorms] {
      precondition(t.count == batch, "fmnStep: per-sample tensors must have \(batch) entries, got \(t.shape)")
    }
    return (batch, features)
  }
}
