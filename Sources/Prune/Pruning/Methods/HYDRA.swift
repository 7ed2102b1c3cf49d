import Foundation

/// HYDRA (Sehwag et al., NeurIPS 2020), cell A/U,S/L/lis: importance scores trained on the
/// adversarial loss with the weights frozen, the same share kept in every layer (top-k of |s|), or
/// with `filters` the same share of every channel group's channels (ranked by the L1 norm of their
/// filters' scores), then the kept weights fine-tuned with the scores frozen (`PruneJob`).
///
/// Reference defaults: scores start at `sqrt(6 / fan_in) * w / max|w|`, 20 score epochs of SGD
/// (lr 0.1, cosine, momentum 0.9), batch-norm parameters trainable, fine-tuning at lr 0.01.
public struct HYDRA: PruningMethod {
  public var structure: Structure

  public init(structure: Structure = .unstructured) {
    self.structure = structure
  }

  public var name: String { "hydra" }
  public var cell: TaxonomyCell {
    TaxonomyCell(pipeline: .after, schedule: .oneShot, structures: [structure], localities: [.local], criterion: .lis)
  }
  public var trainsWhilePruning: Bool { true }

  public func prune(_ context: PruningContext) throws -> PruningOutcome {
    let model = context.model
    let structured = structure.isStructured
    let sizes = ScoreUnit.units(of: model, structured: structured).map(\.size)
    let hooks = try ScoreTraining(
      model: model, structured: structured, keep: RateAllocation.uniformKeep(sizes, sparsity: context.sparsity), initialise: context.resume == nil)
    let start = try hooks.initialScores(model)
    let history = try context.train(hooks)
    let change = try hooks.relativeChange(model, from: start)
    let groups = try hooks.freeze(model)
    return PruningOutcome(groups: groups, history: history, details: ["score_change": String(format: "%.4f", change)])
  }
}
