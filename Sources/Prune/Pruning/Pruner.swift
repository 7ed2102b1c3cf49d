import GPU

/// Per-layer outcome of a pruning step, for the report.
public struct LayerSparsity: Codable, Sendable {
  public let name: String
  public let weights: Int
  public let kept: Int
  public var sparsity: Double { weights == 0 ? 0 : Double(weights - kept) / Double(weights) }
}

/// One-shot unstructured pruning of a model's conv and linear weights.
///
/// Scores come from the criterion, per-layer counts from the locality (`RateAllocation`), masks
/// from `MaskAllocation`. Pruned weights are set to zero and their masks attached, so masked
/// fine-tuning keeps them at zero.
public enum Pruner {
  /// Criteria that score weights from the weights alone (the others are learned by a method).
  public static let oneShotCriteria: [Criterion] = [.lwm, .lamp, .random]

  /// Scores per prunable parameter; already-pruned weights score -inf.
  public static func scores(model: Model, criterion: Criterion, seed: UInt64) throws -> [[Float]] {
    var rng = SeededRNG.derive(seed, 0x5C0)
    return try model.prunableParameters.map { p in
      let w = try model.backend.download(p.value)
      let m = try model.mask(of: p).map(model.backend.download) ?? [Float](repeating: 1, count: w.count)
      let raw: [Float]
      switch criterion {
      case .lwm: raw = w.map(abs)
      case .lamp: raw = lampScores(w)
      case .random: raw = rng.uniformArray(w.count, 0, 1)
      default: preconditionFailure("\(criterion) is not a one-shot criterion")
      }
      return zip(raw, m).map { $1 == 0 ? -.infinity : $0 }
    }
  }

  /// LAMP (Lee et al. 2021): with a layer's weights sorted by w^2 ascending,
  /// `score(u) = w_u^2 / sum_{v >= u} w_v^2`. The largest weight scores 1, so under one global
  /// threshold no layer is emptied; within a layer the order is the magnitude order.
  public static func lampScores(_ w: [Float]) -> [Float] {
    let squares = w.map { Double($0) * Double($0) }
    let order = squares.indices.sorted { (squares[$0], $0) < (squares[$1], $1) }
    var scores = [Float](repeating: 0, count: w.count)
    var suffix = 0.0
    for i in order.reversed() {
      suffix += squares[i]
      scores[i] = suffix > 0 ? Float(squares[i] / suffix) : 0
    }
    return scores
  }

  @discardableResult
  public static func prune(model: Model, criterion: Criterion, locality: Locality, sparsity: Double, seed: UInt64) throws -> [LayerSparsity] {
    try checkSparsity(sparsity)
    let scores = try scores(model: model, criterion: criterion, seed: seed)
    return try apply(MaskAllocation.masks(scores: scores, sparsity: sparsity, locality: locality), to: model)
  }

  /// Attaches per-layer masks to the prunable weights (their values and momentum zeroed there).
  @discardableResult
  public static func apply(_ masks: [[Float]], to model: Model, resetMomentum: Bool = true) throws -> [LayerSparsity] {
    try zip(model.prunableParameters, masks).map { p, mask in
      try model.applyMask(mask, to: p, resetMomentum: resetMomentum)
      return LayerSparsity(name: p.name, weights: p.count, kept: mask.reduce(0) { $0 + Int($1) })
    }
  }

  static func checkSparsity(_ sparsity: Double) throws {
    guard sparsity >= 0 && sparsity < 1 else {
      throw UserError.badValue(name: "--sparsity", value: "\(sparsity)", problem: "must be in [0, 1)")
    }
  }
}
