import Foundation

/// HYDRA (Sehwag et al., NeurIPS 2020), cell A/U/L/lis: importance scores trained on the
/// adversarial loss with the weights frozen, the same share kept in every layer (top-k of |s|),
/// then the kept weights fine-tuned with the scores frozen (`PruneJob`'s fine-tuning).
///
/// Reference defaults: scores start at `sqrt(6 / fan_in) * w / max|w|`, 20 score epochs of SGD
/// (lr 0.1, cosine, momentum 0.9), batch-norm parameters trainable, fine-tuning at lr 0.01.
public struct HYDRA: PruningMethod {
  public init() {}

  public var name: String { "hydra" }
  public var cell: TaxonomyCell {
    TaxonomyCell(pipeline: .after, schedule: .oneShot, structures: [.unstructured], localities: [.local], criterion: .lis)
  }
  public var trainsWhilePruning: Bool { true }

  public func prune(_ context: PruningContext) throws -> PruningOutcome {
    let model = context.model
    let keep = RateAllocation.uniformKeep(model.prunableParameters.map(\.count), sparsity: context.sparsity)
    let hooks = try ScoreTraining(model: model, keep: keep)
    let start = try hooks.initialScores(model)
    let history = try context.train(hooks)
    let change = try ScoreTraining.relativeChange(model, from: start)
    _ = try ScoreTraining.freeze(model)
    return PruningOutcome(history: history, details: ["score_change": String(format: "%.4f", change)])
  }
}
