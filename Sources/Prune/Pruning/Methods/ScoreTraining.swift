import GPU

/// The score phase HYDRA and HARP share: weights frozen, one real score per weight, the forward
/// computing with `w * topk(|s|)` per layer and the gradient reaching the scores straight
/// through (`PruningState.scoreGradients`); scores and batch-norm parameters are what SGD steps.
class ScoreTraining: TrainingHooks {
  let weights: [Parameter]
  /// Top-k counts per layer (HARP moves them as its rates learn).
  var keep: [Int]

  /// Attaches HYDRA's scaled-magnitude scores `s = sqrt(6 / fan_in) * w / max|w|` (computed after
  /// the pretrained weights loaded, as the reference does) and makes them live at `keep`.
  init(model: Model, keep: [Int]) throws {
    weights = model.prunableParameters
    self.keep = keep
    let state = model.pruning
    for (p, k) in zip(weights, keep) {
      let w = try model.backend.download(p.value)
      let fanIn = Float(p.count / max(1, p.shape[0]))
      let largest = w.reduce(0) { max($0, abs($1)) }
      let scale = (6 / fanIn).squareRoot() / (largest > 0 ? largest : 1)
      try state.setScores(for: p, values: w.map { $0 * scale })
      try state.setLiveScores(keep: k, for: p.name)
    }
  }

  func optimised(_ model: Model) -> [Parameter] {
    weights.compactMap { model.pruning.scores[$0.name] } + model.batchNormParameters
  }

  // Every hook is implemented here (not left to the protocol's defaults) so HARP's overrides
  // are the ones the trainer calls.
  func afterBackward(_ model: Model, _ step: TrainingStep) throws -> Double { 0 }

  func afterStep(_ model: Model, _ step: TrainingStep) throws {
    try model.pruning.refreshLiveMasks()
  }

  func afterEpoch(_ model: Model, epoch: Int) throws {}

  /// Ends the phase: each layer's current top-k becomes a hard mask (pruned weights zeroed, their
  /// momentum cleared) and the scores stay in the state, frozen, for the checkpoint.
  static func freeze(_ model: Model) throws -> [LayerSparsity] {
    let state = model.pruning
    return try model.prunableParameters.map { p in
      try state.setLiveScores(keep: nil, for: p.name)
      guard let m = state.mask(for: p.name) else { preconditionFailure("\(p.name) has live scores but no mask") }
      let mask = try model.backend.download(m)
      try model.applyMask(mask, to: p)
      return LayerSparsity(name: p.name, weights: p.count, kept: mask.reduce(0) { $0 + Int($1) })
    }
  }

  /// How far the scores moved from where they started: mean |s_end - s_start| / mean |s_start|.
  static func relativeChange(_ model: Model, from start: [[Float]]) throws -> Double {
    var (moved, size) = (0.0, 0.0)
    for (p, s0) in zip(model.prunableParameters, start) {
      guard let s = model.pruning.scores[p.name] else { continue }
      for (a, b) in zip(try model.backend.download(s.value), s0) {
        moved += Double(abs(a - b))
        size += Double(abs(b))
      }
    }
    return size > 0 ? moved / size : 0
  }

  func initialScores(_ model: Model) throws -> [[Float]] {
    try weights.map { try model.backend.download(model.pruning.scores[$0.name]!.value) }
  }
}
