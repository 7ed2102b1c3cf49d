import Foundation
import GPU

/// Robust scratch tickets (Fu et al., NeurIPS 2021), cell B/U/L/lis: a randomly initialised network
/// already holds a robust subnetwork. The weights are frozen at signed constants
/// `±sqrt(2 / fan_in)` (random signs), batch norm stays non-affine (scale 1, shift 0, not trained),
/// and only edge-popup scores (kaiming-uniform, `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`) are trained on
/// the adversarial loss; each layer keeps the top-k of |s| (the same share everywhere), with the
/// gradient passed straight through as in HYDRA. After the last epoch the masks become hard masks.
public struct RST: TrainingMethod {
  public var sparsity: Double
  /// `scaled` divides the constants by sqrt(keep share), edge-popup's `scale_fan` (default `dense`).
  public var sparseInit: SparseInit = .dense

  public var name: String { "rst" }
  public var cell: TaxonomyCell {
    TaxonomyCell(pipeline: .before, schedule: .oneShot, structures: [.unstructured], localities: [.local], criterion: .lis)
  }
  public var settings: String { "rst s=\(sparsity)" + (sparseInit == .dense ? "" : " init=\(sparseInit.rawValue)") }

  public func hooks(model: Model, epochs: Int, batchesPerEpoch: Int, seed: UInt64, resuming: Bool) throws -> TrainingHooks {
    let params = model.prunableParameters
    let keep = RateAllocation.uniformKeep(params.map(\.count), sparsity: sparsity)
    let fresh = !(resuming && params.allSatisfy { model.pruning.scores[$0.name] != nil })
    if fresh {
      for (l, p) in params.enumerated() {
        var rng = SeededRNG.derive(seed ^ 0x257, UInt64(l))
        let fanIn = Float(p.count / max(1, p.shape[0]))
        let share = sparseInit == .scaled ? Float(keep[l]) / Float(max(1, p.count)) : 1
        let c = (2 / (fanIn * share)).squareRoot()
        try model.backend.write((0..<p.count).map { _ in rng.next() & 1 == 0 ? c : -c }, to: p.value)
        try model.pruning.setScores(for: p, values: rng.uniformArray(p.count, -1 / fanIn.squareRoot(), 1 / fanIn.squareRoot()))
      }
    }
    return try RSTHooks(model: model, keep: keep, epochs: epochs)
  }
}

final class RSTHooks: ScoreTraining {
  let epochs: Int

  init(model: Model, keep: [Int], epochs: Int) throws {
    self.epochs = epochs
    try super.init(model: model, structured: false, keep: keep, initialise: false)
  }

  /// Only the scores: weights are frozen and batch norm stays non-affine.
  override func optimised(_ model: Model) -> [Parameter] {
    units.flatMap(\.weights).compactMap { model.pruning.scores[$0.name] }
  }

  override func afterEpoch(_ model: Model, epoch: Int) throws {
    if epoch + 1 == epochs { _ = try freeze(model) }
  }
}
