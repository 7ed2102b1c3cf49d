import GPU

/// What one learned keep rate or top-k count governs: a layer's weights (unstructured), or a channel
/// group's channels, ranked by the L1 norm of their filters' scores summed over the group's
/// producers (HYDRA's authors' advice for filters).
struct ScoreUnit {
  let name: String
  let weights: [Parameter]
  /// Weights (unstructured) or channels (structured) the unit has.
  let size: Int
  let group: ChannelGroup?

  static func units(of model: Model, structured: Bool) -> [ScoreUnit] {
    guard structured else { return model.prunableParameters.map { ScoreUnit(name: $0.name, weights: [$0], size: $0.count, group: nil) } }
    return model.architecture.channelGroups().map { g in
      let weights = g.producers.compactMap { model.parameter(named: $0.conv + ".weight") }
      return ScoreUnit(name: g.name, weights: weights, size: weights[0].shape[0], group: g)
    }
  }
}

/// The score phase HYDRA and HARP share: weights frozen, one real score per weight, the forward
/// computing with `w * mask(s)` (per layer the top-k of |s|; per channel group the top-k channels)
/// and the gradient reaching the scores straight through: `dL/ds = dL/dw_eff * w`. Scores and
/// batch-norm parameters are what SGD steps.
class ScoreTraining: TrainingHooks {
  let units: [ScoreUnit]
  /// Top-k counts per unit (HARP moves them as its rates learn).
  var keep: [Int]
  let backend: Backend
  var structured: Bool { units.first?.group != nil }

  /// Attaches HYDRA's scaled-magnitude scores `s = sqrt(6 / fan_in) * w / max|w|` (computed after
  /// the pretrained weights loaded, as the reference does) and makes them live at `keep`.
  /// With `initialise` false the scores already in the state are used (a resumed run).
  init(model: Model, structured: Bool, keep: [Int], initialise: Bool = true) throws {
    units = ScoreUnit.units(of: model, structured: structured)
    self.keep = keep
    backend = model.backend
    for p in units.flatMap(\.weights) where initialise || model.pruning.scores[p.name] == nil {
      try model.pruning.setScores(for: p, values: Self.scaledMagnitude(try backend.download(p.value), of: p))
    }
    try applyKeep(model)
  }

  static func scaledMagnitude(_ w: [Float], of p: Parameter) -> [Float] {
    let fanIn = Float(p.count / max(1, p.shape[0]))
    let largest = w.reduce(0) { max($0, abs($1)) }
    let scale = (6 / fanIn).squareRoot() / (largest > 0 ? largest : 1)
    return w.map { $0 * scale }
  }

  /// The scores the phase started from (the weights are frozen during it, so a resumed phase
  /// recomputes them).
  func initialScores(_ model: Model) throws -> [[Float]] {
    try units.flatMap(\.weights).map { Self.scaledMagnitude(try backend.download($0.value), of: $0) }
  }

  /// Unit sizes, for rate allocation.
  var sizes: [Int] { units.map(\.size) }

  /// Makes every unit's mask its current top-`keep`.
  func applyKeep(_ model: Model) throws {
    for (u, k) in zip(units, keep) {
      guard u.group != nil else {
        try model.pruning.setLiveScores(keep: k, for: u.weights[0].name)
        continue
      }
      let rows = try channelMask(model, u, keep: k)
      for p in u.weights { model.pruning.setMask(try backend.upload(Self.expand(rows, to: p), shape: p.shape), for: p.name) }
    }
  }

  /// 1 on the unit's `keep` channels of largest summed L1 score norm (ties to the lower index).
  func channelMask(_ model: Model, _ u: ScoreUnit, keep: Int) throws -> [Float] {
    var norms = [Float](repeating: 0, count: u.size)
    for p in u.weights {
      let s = try backend.download(model.pruning.scores[p.name]!.value)
      let width = p.count / u.size
      for c in 0..<u.size { norms[c] += s[(c * width)..<((c + 1) * width)].reduce(0) { $0 + abs($1) } }
    }
    return MaskAllocation.masks(scores: [norms], keep: [keep])[0]
  }

  static func expand(_ rows: [Float], to p: Parameter) -> [Float] {
    let width = p.count / rows.count
    return (0..<p.count).map { rows[$0 / width] }
  }

  func optimised(_ model: Model) -> [Parameter] {
    units.flatMap(\.weights).compactMap { model.pruning.scores[$0.name] } + model.batchNormParameters
  }

  // Every hook is implemented here (not left to the protocol's defaults) so HARP's overrides
  // are the ones the trainer calls.
  /// The straight-through gradient: the backward left `dL/dw_eff` in each weight's gradient, and
  /// `dL/ds = dL/dw_eff * w` (through the top-k and the absolute value unchanged, as HYDRA's
  /// reference code passes it).
  func afterBackward(_ model: Model, _ step: TrainingStep) throws -> Double {
    for p in units.flatMap(\.weights) { try backend.multiply(out: model.pruning.scores[p.name]!.grad, a: p.grad, b: p.value) }
    return 0
  }

  func afterStep(_ model: Model, _ step: TrainingStep) throws {
    if structured { try applyKeep(model) } else { try model.pruning.refreshLiveMasks() }
  }

  func afterEpoch(_ model: Model, epoch: Int) throws {}

  /// Ends the phase: the current masks become hard masks (pruned weights zeroed, momentum cleared;
  /// for channels also their biases and batch-norm entries, by `FilterPruner`) and the scores stay
  /// in the state, frozen, for the checkpoint. Returns the channel groups' outcome when structured.
  func freeze(_ model: Model) throws -> [GroupSparsity]? {
    let state = model.pruning
    guard structured else {
      for p in units.flatMap(\.weights) {
        try state.setLiveScores(keep: nil, for: p.name)
        guard let m = state.mask(for: p.name) else { preconditionFailure("\(p.name) has live scores but no mask") }
        try model.applyMask(try backend.download(m), to: p)
      }
      return nil
    }
    let rows = try zip(units, keep).map { try channelMask(model, $0, keep: $1) }
    for p in units.flatMap(\.weights) { state.setMask(nil, for: p.name) }
    return try FilterPruner.apply(rows, to: units.map { $0.group! }, model: model)
  }

  /// How far the scores moved from where they started: mean |s_end - s_start| / mean |s_start|.
  func relativeChange(_ model: Model, from start: [[Float]]) throws -> Double {
    var (moved, size) = (0.0, 0.0)
    for (p, s0) in zip(units.flatMap(\.weights), start) {
      for (a, b) in zip(try backend.download(model.pruning.scores[p.name]!.value), s0) {
        moved += Double(abs(a - b))
        size += Double(abs(b))
      }
    }
    return size > 0 ? moved / size : 0
  }

  func currentScores(_ model: Model) throws -> [[Float]] {
    try units.flatMap(\.weights).map { try backend.download(model.pruning.scores[$0.name]!.value) }
  }
}
