/// One-shot pruning after training from a criterion that needs no training (LWM, LAMP, random),
/// any locality, unstructured or by filters (channels): the named methods `lwm`, `lamp` and
/// `random`, and every free combination of those cell values.
public struct OneShotPruning: PruningMethod {
  public let criterion: Criterion
  public let locality: Locality
  public let structure: Structure

  /// Refuses combinations that make no sense, with the reason.
  public init(criterion: Criterion, locality: Locality, structure: Structure) throws {
    guard Pruner.oneShotCriteria.contains(criterion) else {
      let by = ["lis": "hydra (local) or harp (global)", "solwm": "radmm"][criterion.rawValue]
      throw UserError.badValue(
        name: "--criterion", value: criterion.rawValue,
        problem: "is learned by a method, not computed in one shot" + (by.map { "; run --method \($0)" } ?? "; no advprune method learns it yet"))
    }
    if structure == .kernels {
      throw UserError.badValue(name: "--structure", value: "kernels", problem: "kernel pruning is in the taxonomy but not implemented")
    }
    if criterion == .lamp && structure.isStructured {
      throw UserError.badValue(
        name: "--criterion", value: "lamp", problem: "LAMP ranks single weights; use lwm or random with --structure \(structure)")
    }
    if criterion == .lamp && locality == .local {
      throw UserError.badValue(
        name: "--criterion", value: "lamp",
        problem:
          "LAMP only changes how layers compare (its scores keep each layer's magnitude order), so with --locality local it is lwm; use --locality global"
      )
    }
    self.criterion = criterion
    self.locality = locality
    self.structure = structure
  }

  public var name: String { criterion.rawValue }
  public var cell: TaxonomyCell {
    TaxonomyCell(pipeline: .after, schedule: .oneShot, structures: [structure], localities: [locality], criterion: criterion)
  }
  public var trainsWhilePruning: Bool { false }

  public func prune(_ context: PruningContext) throws -> PruningOutcome {
    let m = context.model
    if structure.isStructured {
      return PruningOutcome(
        groups: try FilterPruner.prune(model: m, criterion: criterion, locality: locality, sparsity: context.sparsity, seed: context.seed))
    }
    try Pruner.prune(model: m, criterion: criterion, locality: locality, sparsity: context.sparsity, seed: context.seed)
    return PruningOutcome()
  }
}
