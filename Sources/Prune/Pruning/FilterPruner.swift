import GPU

/// Per-group outcome of filter pruning, for the report.
public struct GroupSparsity: Codable, Sendable {
  public let name: String
  public let channels: Int
  public let kept: Int
  public var sparsity: Double { channels == 0 ? 0 : Double(channels - kept) / Double(channels) }
}

/// Structured (filter) pruning: removes whole output channels of the convs, one channel group
/// (`ChannelGroup`) at a time, so that `advprune export --compact` can take them out physically.
///
/// A channel's magnitude score is the mean |w| of its filter times sqrt(fan-in), averaged over
/// its producers: magnitude relative to the kaiming scale sqrt(2 / fan-in) the filters start at,
/// so `global` can rank layers of different fan-in together (raw magnitudes would strip the
/// widest-fan-in layer first, whatever it learned); `random` draws it. Sparsity is
/// the share of channels removed, per group (`local`) or over all groups (`global`); each group
/// keeps at least one. A removed channel gets zero masks on its filters, conv biases and
/// batch-norm scale and shift, so it outputs exactly zero and masked fine-tuning keeps it so.
public enum FilterPruner {
  @discardableResult
  public static func prune(
    model: Model, criterion: Criterion, locality: Locality, sparsity: Double, seed: UInt64, resetMomentum: Bool = true
  ) throws -> [GroupSparsity] {
    guard sparsity >= 0 && sparsity < 1 else {
      throw UserError.badValue(name: "--sparsity", value: "\(sparsity)", problem: "must be in [0, 1)")
    }
    let groups = model.architecture.channelGroups()
    var rng = SeededRNG.derive(seed, 0xF17)
    let scores = try groups.map { try channelScores(model: model, group: $0, criterion: criterion, rng: &rng) }
    return try apply(
      MaskAllocation.masks(scores: scores, sparsity: sparsity, locality: locality), to: groups, model: model, resetMomentum: resetMomentum)
  }

  /// Removes the channels whose entry in `keep` is 0 from each group: their filters, conv biases and
  /// batch-norm scale and shift get zero masks (values and momentum zeroed).
  @discardableResult
  static func apply(_ keep: [[Float]], to groups: [ChannelGroup], model: Model, resetMomentum: Bool = true) throws -> [GroupSparsity] {
    for (group, channelMask) in zip(groups, keep) {
      for name in group.producedTensors {
        guard let p = model.parameter(named: name), p.isTrainable else { continue }
        try applyRows(channelMask, to: p, model: model, resetMomentum: resetMomentum)
      }
    }
    return zip(groups, keep).map { GroupSparsity(name: $0.name, channels: $1.count, kept: $1.reduce(0) { $0 + Int($1) }) }
  }

  /// Scores of the group's channels; channels whose filters are all zero already score -inf.
  static func channelScores(model: Model, group: ChannelGroup, criterion: Criterion, rng: inout SeededRNG) throws -> [Float] {
    let weights = try group.producers.map { producer -> (values: [Float], rows: Int) in
      guard let p = model.parameter(named: producer.conv + ".weight") else {
        preconditionFailure("channel group \(group.name) names \(producer.conv), which \(model.architecture.rawValue) lacks")
      }
      return (try model.backend.download(p.value), p.shape[0])
    }
    let channels = weights[0].rows
    let random = rng.uniformArray(channels, 0, 1)
    return (0..<channels).map { k in
      var score: Float = 0
      var alive = false
      for (values, rows) in weights {
        let fanIn = values.count / rows
        var sum: Float = 0
        for w in values[(k * fanIn)..<((k + 1) * fanIn)] {
          sum += abs(w)
          alive = alive || w != 0
        }
        score += sum / Float(fanIn).squareRoot() / Float(weights.count)
      }
      guard alive else { return -.infinity }
      return criterion == .random ? random[k] : score
    }
  }

  /// Multiplies rows of `p` (dimension 0) into its mask and value; resets its momentum.
  static func applyRows(_ rowMask: [Float], to p: Parameter, model: Model, resetMomentum: Bool = true) throws {
    let width = p.count / max(1, rowMask.count)
    var mask = try model.mask(of: p).map(model.backend.download) ?? [Float](repeating: 1, count: p.count)
    for (k, keep) in rowMask.enumerated() where keep == 0 {
      for i in (k * width)..<((k + 1) * width) { mask[i] = 0 }
    }
    try model.applyMask(mask, to: p, resetMomentum: resetMomentum)
  }
}
