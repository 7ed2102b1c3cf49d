import Foundation
import GPU

/// The boosting ticket of Li et al. (2020), cell B/U/G/lwm: train briefly with FGSM adversarial
/// training (`ticketEpochs`, one step of 1.25 eps from a random start), prune globally by each
/// weight's magnitude relative to its layer's mean magnitude, rewind every weight and batch-norm
/// statistic to the initialisation, and then PGD-train the sparse network (the run's own epochs,
/// masks fixed). The ticket is found before the first epoch; the run's checkpoints carry its masks.
public struct Li20: TrainingMethod {
  public var sparsity: Double
  public var ticketEpochs: Int
  /// How the rewound sparse network's kept weights are scaled (the reference: `dense`).
  public var sparseInit: SparseInit = .dense

  public var name: String { "li20" }
  public var cell: TaxonomyCell {
    TaxonomyCell(pipeline: .before, schedule: .oneShot, structures: [.unstructured], localities: [.global], criterion: .lwm)
  }
  public var settings: String { "li20 s=\(sparsity) ticket=\(ticketEpochs)" + (sparseInit == .dense ? "" : " init=\(sparseInit.rawValue)") }

  public var preparesBeforeTraining: Bool { true }

  public func prepare(model: Model, data: LabeledImages, config: TrainConfig, progress: ProgressSink, phase: PreparePhase) throws {
    let backend = model.backend
    let initial = try phase.initial ?? model.parameters.map { try backend.download($0.value) }
    var ticket = config
    ticket.epochs = ticketEpochs
    ticket.tradesBeta = nil
    if let pgd = config.attack { ticket.attack = PGDConfig(eps: pgd.eps, alpha: 1.25 * pgd.eps, steps: 1, norm: pgd.norm) }
    let noNumbers: () -> [String: String] = { [:] }
    try phase.train(Trainer(model: model, config: ticket), data: data, progress: progress, state: noNumbers) { summary in
      try phase.checkpoint(summary.epoch, 0, [:])
    }
    let scores = try model.prunableParameters.map { p -> [Float] in
      let w = try backend.download(p.value).map(abs)
      let mean = w.reduce(0, +) / Float(max(1, w.count))
      return w.map { mean > 0 ? $0 / mean : 0 }
    }
    let masks = MaskAllocation.masks(scores: scores, sparsity: sparsity, locality: .global)
    for (p, values) in zip(model.parameters, initial) {
      try backend.write(values, to: p.value)
      try backend.fill(p.velocity, value: 0)
    }
    try Pruner.apply(masks, to: model)
    try sparseInit.apply(to: model)
  }

  public func hooks(model: Model, epochs: Int, batchesPerEpoch: Int, seed: UInt64, resuming: Bool) throws -> TrainingHooks { Li20Hooks() }
}

/// After the ticket, Li20 trains plainly with the masks held.
final class Li20Hooks: TrainingHooks {}
