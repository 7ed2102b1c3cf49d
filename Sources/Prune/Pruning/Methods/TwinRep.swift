import Foundation
import GPU

/// TwinRep (Li et al., AAAI 2023), cell D/U,S/G/relwm: every prunable weight is trained as a product
/// `w * a` with a twin factor a (ones at the start, weight decay on both), which drives unimportant
/// products toward zero; after epoch `pruneEpoch` (a tenth of the run by default) one global
/// threshold on |w * a| (filters: the RMS of each channel's products, summed over its channel
/// group's producers) prunes to the target in one shot, and training goes on with the mask fixed.
/// At the end the twins are folded into the weights, so the checkpoint is a plain masked model.
public struct TwinRep: TrainingMethod {
  public var sparsity: Double
  public var structure: Structure
  /// nil: a tenth of the run, at least one epoch.
  public var pruneEpoch: Int?

  public var name: String { "twinrep" }
  public var cell: TaxonomyCell {
    TaxonomyCell(pipeline: .during, schedule: .oneShot, structures: [structure], localities: [.global], criterion: .relwm)
  }
  public var settings: String { "twinrep s=\(sparsity) \(structure.rawValue) prune=\(pruneEpoch.map(String.init) ?? "auto")" }

  func pruningEpoch(_ epochs: Int) -> Int { pruneEpoch ?? max(1, Int((Double(epochs) / 10).rounded())) }

  public func check(epochs: Int, batchesPerEpoch: Int) throws {
    let at = pruningEpoch(epochs)
    guard epochs >= 2 else {
      throw UserError.badValue(name: "--epochs", value: "\(epochs)", problem: "twinrep needs at least 2: it prunes after an epoch and trains on")
    }
    guard at >= 1 && at < epochs else {
      throw UserError.badValue(
        name: "--prune-epoch", value: "\(at)", problem: "must leave training after it: between 1 and \(epochs - 1) for \(epochs) epochs")
    }
  }

  public func hooks(model: Model, epochs: Int, batchesPerEpoch: Int, seed: UInt64, resuming: Bool) throws -> TrainingHooks {
    let state = model.pruning
    for p in model.prunableParameters where state.twins[p.name] == nil { try state.setTwin(for: p) }
    return TwinRepHooks(method: self, epochs: epochs)
  }
}

final class TwinRepHooks: TrainingHooks {
  let method: TwinRep
  let epochs: Int

  init(method: TwinRep, epochs: Int) {
    self.method = method
    self.epochs = epochs
  }

  func optimised(_ model: Model) -> [Parameter] {
    model.trainableParameters + model.prunableParameters.compactMap { model.pruning.twins[$0.name] }
  }

  /// The backward left `g = dL/d(w a m)` in each weight's gradient: `dL/da = g w`, `dL/dw = g a`
  /// (the mask is applied by the optimiser).
  func afterBackward(_ model: Model, _ step: TrainingStep) throws -> Double {
    for p in model.prunableParameters {
      guard let twin = model.pruning.twins[p.name] else { continue }
      try model.backend.multiply(out: twin.grad, a: p.grad, b: p.value)
      try model.backend.multiply(out: p.grad, a: p.grad, b: twin.value)
    }
    return 0
  }

  func afterEpoch(_ model: Model, epoch: Int) throws {
    if epoch + 1 == method.pruningEpoch(epochs) { try prune(model) }
    if epoch + 1 == epochs { try model.pruning.foldTwins(model) }
  }

  private func prune(_ model: Model) throws {
    let backend = model.backend
    let params = model.prunableParameters
    var products: [String: [Float]] = [:]
    for p in params {
      let twin = try backend.download(model.pruning.twins[p.name]!.value)
      products[p.name] = zip(try backend.download(p.value), twin).map { $0 * $1 }
    }
    if method.structure == .filters {
      let groups = model.architecture.channelGroups()
      let scores = groups.map { g -> [Float] in
        let weights = g.producers.compactMap { model.parameter(named: $0.conv + ".weight") }
        let channels = weights[0].shape[0]
        return (0..<channels).map { c in
          weights.reduce(Float(0)) { sum, p in
            let width = p.count / channels
            let row = products[p.name]![(c * width)..<((c + 1) * width)]
            return sum + (row.reduce(0) { $0 + $1 * $1 } / Float(width)).squareRoot()
          }
        }
      }
      try FilterPruner.apply(
        MaskAllocation.masks(scores: scores, sparsity: method.sparsity, locality: .global), to: groups, model: model, resetMomentum: false)
    } else {
      let scores = params.map { products[$0.name]!.map(abs) }
      try Pruner.apply(MaskAllocation.masks(scores: scores, sparsity: method.sparsity, locality: .global), to: model, resetMomentum: false)
    }
  }
}
