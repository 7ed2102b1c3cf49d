import Foundation
import GPU

/// Robust ADMM pruning (Ye et al., ICCV 2019), cell A/U,S/L/solwm: the adversarial loss plus
/// `rho/2 sum_l ||W_l - Z_l + U_l||^2`, where Z is the projection of W + U onto the sparse set
/// and U the scaled dual; then a hard prune to the per-layer rate and masked fine-tuning.
///
/// Z starts as the projection of W and U at 0. Every `period` steps: `Z = proj(W + U)`,
/// `U += W - Z`, `rho *= 1.3`. The projection keeps each layer's largest |w| at the uniform rate
/// (filters: each conv's largest-L2 filters; the final structured prune goes by channel group so
/// `export --compact` can remove them). Z and U live in the pruning state (`_admm_z`, `_admm_u`).
public struct RADMM: PruningMethod {
  public var structure: Structure
  public var rho: Double
  /// Steps between ADMM updates; nil: four updates an epoch.
  public var period: Int?

  public init(structure: Structure = .unstructured, rho: Double = 1e-3, period: Int? = nil) throws {
    guard structure == .unstructured || structure == .filters else {
      throw UserError.badValue(name: "--structure", value: structure.rawValue, problem: "radmm prunes unstructured or filters")
    }
    self.structure = structure
    self.rho = rho
    self.period = period
  }

  public var name: String { "radmm" }
  public var cell: TaxonomyCell {
    TaxonomyCell(pipeline: .after, schedule: .oneShot, structures: [structure], localities: [.local], criterion: .solwm)
  }
  public var trainsWhilePruning: Bool { true }

  public func prune(_ context: PruningContext) throws -> PruningOutcome {
    let model = context.model
    let batches = context.data.map { ($0.count + context.training.batchSize - 1) / context.training.batchSize } ?? 1
    let hooks = try ADMMTraining(
      model: model, sparsity: context.sparsity, filters: structure == .filters, rho: rho, period: period ?? max(1, batches / 4),
      initialise: context.resume == nil)
    let distance0 = try hooks.distance()
    hooks.startDistance = distance0
    let history = try context.train(hooks)
    let distance = try hooks.distance()
    var outcome = PruningOutcome(
      history: history,
      details: [
        "w_minus_z_start": String(format: "%.5g", hooks.startDistance), "w_minus_z_end": String(format: "%.5g", distance),
        "updates": "\(hooks.updates)", "rho_final": String(format: "%.4g", hooks.rho),
      ])
    if structure == .filters {
      outcome.groups = try FilterPruner.prune(model: model, criterion: .lwm, locality: .local, sparsity: context.sparsity, seed: context.seed)
    } else {
      try Pruner.prune(model: model, criterion: .lwm, locality: .local, sparsity: context.sparsity, seed: context.seed)
    }
    return outcome
  }
}

/// R-ADMM's hooks: the proximal penalty's gradient after each backward, the Z/U/rho update every
/// `period` steps.
final class ADMMTraining: ResumableHooks {
  let weights: [Parameter]
  let keep: [Int]
  let filters: Bool
  let period: Int
  private(set) var rho: Double
  private(set) var updates = 0
  private var steps = 0
  /// ||W - Z|| when the phase began (a resumed phase reads it from the checkpoint).
  var startDistance = 0.0
  private let backend: Backend
  private let state: PruningState
  private let scratch: [Tensor]
  private let scratchMask: [Tensor]
  private let sum: Tensor

  /// With `initialise` false, Z and U are those of the model's pruning state (a resumed phase).
  init(model: Model, sparsity: Double, filters: Bool, rho: Double, period: Int, initialise: Bool = true) throws {
    // Filter mode projects conv filters only: linear layers are not pruned structurally.
    weights = model.prunableParameters.filter { !filters || $0.shape.count == 4 }
    keep =
      filters
      ? RateAllocation.uniformKeep(weights.map { $0.shape[0] }, sparsity: sparsity)
      : RateAllocation.uniformKeep(weights.map(\.count), sparsity: sparsity)
    self.filters = filters
    self.rho = rho
    self.period = period
    let backend = model.backend
    self.backend = backend
    state = model.pruning
    scratch = try weights.map { try backend.zeros(like: $0.value) }
    scratchMask = try weights.map { try backend.zeros(like: $0.value) }
    sum = try backend.zeros([1])
    let kept = weights.allSatisfy { state.auxiliary(.admmZ, for: $0.name) != nil && state.auxiliary(.admmU, for: $0.name) != nil }
    guard initialise || !kept else { return }
    for p in weights {
      state.setAuxiliary(.admmZ, try backend.zeros(like: p.value), for: p.name)
      state.setAuxiliary(.admmU, try backend.zeros(like: p.value), for: p.name)
    }
    try project()
  }

  var hookState: [String: String] {
    ["admm_rho": "\(rho)", "admm_updates": "\(updates)", "admm_steps": "\(steps)", "admm_start_distance": "\(startDistance)"]
  }

  func restore(_ saved: [String: String], model: Model) throws {
    guard let r = try numbers(saved, "admm_rho").first, let u = try numbers(saved, "admm_updates").first,
      let s = try numbers(saved, "admm_steps").first, let d = try numbers(saved, "admm_start_distance").first
    else { throw UserError.badValue(name: "checkpoint", value: "admm state", problem: "empty") }
    (rho, updates, steps, startDistance) = (r, Int(u), Int(s), d)
  }

  /// `Z = proj(W + U)` for every layer.
  private func project() throws {
    for (l, p) in weights.enumerated() {
      let z = state.auxiliary(.admmZ, for: p.name)!
      let u = state.auxiliary(.admmU, for: p.name)!
      try backend.add(out: scratch[l], a: p.value, b: u)
      if filters {
        try backend.write(Self.filterMask(try backend.download(scratch[l]), rows: p.shape[0], keep: keep[l]), to: scratchMask[l])
      } else {
        try backend.topKMask(mask: scratchMask[l], scores: scratch[l], keep: keep[l])
      }
      try backend.multiply(out: z, a: scratch[l], b: scratchMask[l])
    }
  }

  /// 1 on the `keep` rows (filters) of largest L2 norm, ties to the lower index.
  static func filterMask(_ values: [Float], rows: Int, keep: Int) -> [Float] {
    let width = values.count / rows
    let norms = (0..<rows).map { r in values[(r * width)..<((r + 1) * width)].reduce(Float(0)) { $0 + $1 * $1 } }
    let kept = Set((0..<rows).sorted { (norms[$0], -$0) > (norms[$1], -$1) }.prefix(keep))
    return (0..<values.count).map { kept.contains($0 / width) ? 1 : 0 }
  }

  /// `sum_l ||W_l - Z_l||` (how far the weights are from the sparse set).
  func distance() throws -> Double {
    var total = 0.0
    for (l, p) in weights.enumerated() {
      try backend.copy(from: p.value, to: scratch[l])
      try backend.axpby(y: scratch[l], x: state.auxiliary(.admmZ, for: p.name)!, alpha: -1, beta: 1)
      try backend.reduce(scratch[l], into: sum, .sumOfSquares)
      total += Double(try backend.download(sum)[0]).squareRoot()
    }
    return total
  }

  /// Adds `rho (W - Z + U)` to each weight's gradient; returns `rho/2 sum ||W - Z + U||^2`.
  func afterBackward(_ model: Model, _ step: TrainingStep) throws -> Double {
    var penalty = 0.0
    let r = Float(rho)
    for (l, p) in weights.enumerated() {
      try backend.copy(from: p.value, to: scratch[l])
      try backend.axpby(y: scratch[l], x: state.auxiliary(.admmZ, for: p.name)!, alpha: -1, beta: 1)
      try backend.axpby(y: scratch[l], x: state.auxiliary(.admmU, for: p.name)!, alpha: 1, beta: 1)
      try backend.axpby(y: p.grad, x: scratch[l], alpha: r, beta: 1)
      try backend.reduce(scratch[l], into: sum, .sumOfSquares)
      penalty += 0.5 * rho * Double(try backend.download(sum)[0])
    }
    return penalty
  }

  func afterStep(_ model: Model, _ step: TrainingStep) throws {
    steps += 1
    guard steps % period == 0 else { return }
    try project()
    for p in weights {
      let u = state.auxiliary(.admmU, for: p.name)!
      try backend.axpby(y: u, x: p.value, alpha: 1, beta: 1)
      try backend.axpby(y: u, x: state.auxiliary(.admmZ, for: p.name)!, alpha: -1, beta: 1)
    }
    rho *= 1.3
    updates += 1
  }
}
