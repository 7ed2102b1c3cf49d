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
/// Scores come from the criterion; masks from `MaskAllocation`. Pruned weights are set to zero and
/// their masks attached, so masked fine-tuning keeps them at zero.
public enum Pruner {
  /// Scores per prunable parameter; already-pruned weights score -inf.
  public static func scores(model: Model, criterion: Criterion, seed: UInt64) throws -> [[Float]] {
    var rng = SeededRNG.derive(seed, 0x5C0)
    return try model.prunableParameters.map { p in
      let w = try model.backend.download(p.value)
      let m = try p.mask.map(model.backend.download) ?? [Float](repeating: 1, count: w.count)
      let raw: [Float]
      switch criterion {
      case .magnitude: raw = w.map(abs)
      case .random: raw = rng.uniformArray(w.count, 0, 1)
      }
      return zip(raw, m).map { $1 == 0 ? -.infinity : $0 }
    }
  }

  @discardableResult
  public static func prune(model: Model, criterion: Criterion, locality: Locality, sparsity: Double, seed: UInt64) throws -> [LayerSparsity] {
    guard sparsity >= 0 && sparsity < 1 else {
      throw UserError.badValue(name: "--sparsity", value: "\(sparsity)", problem: "must be in [0, 1)")
    }
    let masks = MaskAllocation.masks(scores: try scores(model: model, criterion: criterion, seed: seed), sparsity: sparsity, locality: locality)
    let backend = model.backend
    var report: [LayerSparsity] = []
    for (p, mask) in zip(model.prunableParameters, masks) {
      let m = try backend.upload(mask, shape: p.shape)
      p.mask = m
      try backend.multiply(out: p.value, a: p.value, b: m)
      try backend.fill(p.velocity, value: 0)
      report.append(LayerSparsity(name: p.name, weights: p.count, kept: mask.reduce(0) { $0 + Int($1) }))
    }
    return report
  }
}
