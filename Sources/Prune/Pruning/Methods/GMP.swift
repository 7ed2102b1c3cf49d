import Foundation
import GPU

/// Gradual magnitude pruning during adversarial training (Zhu & Gupta 2017), cell D/U,S/L,G/lwm:
/// the simple "during" baseline. From step t0 to t1 the sparsity follows the cubic schedule
/// `s_t = s (1 - (1 - (t - t0) / (t1 - t0))^3)`, pruning the lowest-magnitude weights (filters) at
/// every `every` steps and at t1; the masks only grow, and pruned weights stay zero.
public struct GMP: TrainingMethod {
  public var sparsity: Double
  public var locality: Locality
  public var structure: Structure
  public var startEpoch: Int
  /// nil: three quarters of the run (at least one epoch).
  public var endEpoch: Int?
  /// Steps between pruning events; nil: a quarter epoch.
  public var every: Int?

  public var name: String { "gmp" }
  public var cell: TaxonomyCell {
    TaxonomyCell(pipeline: .during, schedule: .iterative, structures: [structure], localities: [locality], criterion: .lwm)
  }
  public var settings: String {
    "gmp s=\(sparsity) \(structure.rawValue) \(locality.rawValue) start=\(startEpoch) end=\(endEpoch.map(String.init) ?? "auto") every=\(every.map(String.init) ?? "auto")"
  }

  func end(_ epochs: Int) -> Int { endEpoch ?? max(1, (3 * epochs + 3) / 4) }

  public func check(epochs: Int, batchesPerEpoch: Int) throws {
    let last = end(epochs)
    guard last <= epochs else {
      throw UserError.badValue(name: "--prune-end", value: "\(last)", problem: "the schedule cannot reach the target within \(epochs) epochs")
    }
    guard startEpoch < last else {
      throw UserError.badValue(name: "--prune-start", value: "\(startEpoch)", problem: "must come before the schedule's end (epoch \(last))")
    }
  }

  /// Sparsity the schedule asks for after global step `t` (steps numbered from 1).
  func target(afterStep t: Int, batchesPerEpoch: Int, epochs: Int) -> Double {
    let (t0, t1) = (Double(startEpoch * batchesPerEpoch), Double(end(epochs) * batchesPerEpoch))
    let progress = min(1, max(0, (Double(t) - t0) / (t1 - t0)))
    return sparsity * (1 - pow(1 - progress, 3))
  }

  public func hooks(model: Model, epochs: Int, batchesPerEpoch: Int, seed: UInt64, resuming: Bool) throws -> TrainingHooks {
    GMPHooks(method: self, epochs: epochs, batches: batchesPerEpoch, seed: seed)
  }
}

final class GMPHooks: TrainingHooks {
  let method: GMP
  let epochs: Int
  let batches: Int
  let every: Int
  let seed: UInt64

  init(method: GMP, epochs: Int, batches: Int, seed: UInt64) {
    self.method = method
    self.epochs = epochs
    self.batches = batches
    every = method.every ?? max(1, batches / 4)
    self.seed = seed
  }

  func afterStep(_ model: Model, _ step: TrainingStep) throws {
    let t = step.globalStep
    let (t0, t1) = (method.startEpoch * batches, method.end(epochs) * batches)
    guard t > t0 && t <= t1 && ((t - t0) % every == 0 || t == t1) else { return }
    let s = method.target(afterStep: t, batchesPerEpoch: batches, epochs: epochs)
    if method.structure == .filters {
      try FilterPruner.prune(model: model, criterion: .lwm, locality: method.locality, sparsity: s, seed: seed, resetMomentum: false)
    } else {
      let scores = try Pruner.scores(model: model, criterion: .lwm, seed: seed)
      try Pruner.apply(MaskAllocation.masks(scores: scores, sparsity: s, locality: method.locality), to: model, resetMomentum: false)
    }
  }
}
