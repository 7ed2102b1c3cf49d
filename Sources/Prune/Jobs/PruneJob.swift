import Foundation
import GPU

/// `advprune prune`: a pruning method on a trained checkpoint (its own phase: score training,
/// ADMM, or nothing for one-shot criteria), then masked adversarial fine-tuning.
public struct PruneJob {
  public var input: String
  /// For files without advprune metadata (saved from PyTorch): the architecture and width.
  public var architecture: Architecture?
  public var width: Double?
  public var method: PruningMethod
  public var sparsity: Double
  public var dataset: DatasetName?
  public var dataDirectory: String?
  public var trainLimit: Int?
  /// The method's own phase (its epochs are `--prune-epochs`); ignored by one-shot methods.
  public var pruneTraining: TrainConfig?
  /// Fine-tuning recipe; its epochs may be 0 (prune only).
  public var finetune: TrainConfig
  public var output: String

  public init(
    input: String, method: PruningMethod, sparsity: Double, dataset: DatasetName?, dataDirectory: String?, trainLimit: Int?,
    finetune: TrainConfig, output: String
  ) {
    self.input = input
    self.method = method
    self.sparsity = sparsity
    self.dataset = dataset
    self.dataDirectory = dataDirectory
    self.trainLimit = trainLimit
    self.finetune = finetune
    self.output = output
  }

  /// One-shot pruning by `criterion` and `locality`, unstructured (what `advprune prune` did before methods).
  public init(
    input: String, criterion: Criterion, locality: Locality, sparsity: Double, dataset: DatasetName?, dataDirectory: String?, trainLimit: Int?,
    finetune: TrainConfig, output: String
  ) throws {
    self.init(
      input: input, method: try OneShotPruning(criterion: criterion, locality: locality, structure: .unstructured), sparsity: sparsity,
      dataset: dataset, dataDirectory: dataDirectory, trainLimit: trainLimit, finetune: finetune, output: output)
  }

  public struct Result: Codable, Sendable {
    public let checkpoint: String
    public let backend: String
    public let method: String
    /// The method's taxonomy cell, e.g. `A/U/L/lis`.
    public let cell: String
    public let criterion: String
    public let locality: String
    public let structure: String
    public let targetSparsity: Double
    public let sparsity: Double
    public let layers: [LayerSparsity]
    /// Filter pruning: channels kept per channel group.
    public let groups: [GroupSparsity]?
    /// The method's own phase (score training, ADMM), epoch by epoch.
    public let pruneEpochs: [EpochSummary]
    public let finetune: [EpochSummary]
    public let details: [String: String]
    public let pruneSeconds: Double
    public let seconds: Double
  }

  /// Rejects a target sparsity outside [0, 1) before any file is read.
  public static func check(sparsity: Double) throws {
    try Pruner.checkSparsity(sparsity)
  }

  /// Refuses a target the structure cannot reach because every layer (channel group) keeps at
  /// least one weight (channel): `round((1 - s) n) >= layers` over the prunable units.
  static func checkReachable(_ sparsity: Double, structure: Structure, model: Model) throws {
    let units =
      structure.isStructured
      ? model.architecture.channelGroups().map { model.parameter(named: $0.producers[0].conv + ".weight")!.shape[0] }
      : model.prunableParameters.map(\.count)
    let total = units.reduce(0, +)
    let keep = total - Int((sparsity * Double(total)).rounded())
    guard keep >= units.count else {
      let what = structure.isStructured ? "channels of \(units.count) channel groups" : "weights of \(units.count) layers"
      let most = 1 - Double(units.count) / Double(total)
      throw UserError.badValue(
        name: "--sparsity", value: "\(sparsity)",
        problem: "cannot be reached: it keeps \(keep) of \(total) \(what), and each keeps at least one (at most \(String(format: "%.6f", most)))")
    }
  }

  public func run(backend: Backend, progress: ProgressSink) throws -> Result {
    try Self.check(sparsity: sparsity)
    try finetune.validate()
    try pruneTraining?.validate()
    try checkWritable(output)
    let start = Date()
    let (model, meta) = try Checkpoint.load(path: input, backend: backend, architecture: architecture, width: width)
    let data = try resolveDataset(meta)
    try data.check(model.architecture)
    try Self.checkReachable(sparsity, structure: method.cell.structures.first ?? .unstructured, model: model)
    let phase = method.trainsWhilePruning ? pruneTraining : nil
    let needsImages = finetune.epochs > 0 || (phase?.epochs ?? 0) > 0
    let images = needsImages ? try data.load(directory: dataDirectory, train: true, limit: trainLimit) : nil
    var metadata = meta
    metadata["pruned_from"] = (input as NSString).lastPathComponent
    metadata["prune_method"] = method.name
    metadata["prune_cell"] = method.cell.code
    metadata["prune_criterion"] = method.cell.criterion.rawValue
    metadata["prune_locality"] = method.cell.localities.first?.rawValue ?? ""
    metadata["prune_structure"] = method.cell.structures.first?.rawValue ?? ""
    metadata["prune_target_sparsity"] = "\(sparsity)"
    metadata["finetune_lr"] = "\(finetune.sgd.learningRate)"
    var training = phase ?? finetune
    training.epochs = phase?.epochs ?? 0
    training.augmentation = data.augmentation
    let context = PruningContext(
      model: model, sparsity: sparsity, seed: finetune.seed, training: training, data: images, progress: progress
    ) { summary in
      metadata["prune_epochs"] = "\(summary.epoch)"
      try Checkpoint.save(model, metadata: metadata, to: output)
    }
    let outcome = try method.prune(context)
    let pruneSeconds = Date().timeIntervalSince(start)
    for (key, value) in outcome.details { metadata["\(method.name)_\(key)"] = value }
    var epochs: [EpochSummary] = []
    if let images, finetune.epochs > 0 {
      var augmented = finetune
      augmented.augmentation = data.augmentation
      epochs = try Trainer(model: model, config: augmented).train(data: images, progress: progress) { summary in
        metadata["finetune_epochs"] = "\(summary.epoch)"
        try Checkpoint.save(model, metadata: metadata, to: output)
      }
    } else {
      metadata["finetune_epochs"] = "0"
      try Checkpoint.save(model, metadata: metadata, to: output)
    }
    let cell = method.cell
    return Result(
      checkpoint: output, backend: backend.name, method: method.name, cell: cell.code, criterion: cell.criterion.rawValue,
      locality: cell.localities.first?.rawValue ?? "", structure: cell.structures.first?.rawValue ?? "", targetSparsity: sparsity,
      sparsity: try model.sparsity(), layers: try model.layerSparsity(), groups: outcome.groups, pruneEpochs: outcome.history, finetune: epochs,
      details: outcome.details, pruneSeconds: pruneSeconds, seconds: Date().timeIntervalSince(start))
  }

  func resolveDataset(_ meta: [String: String]) throws -> DatasetName {
    try Checkpoint.dataset(dataset, metadata: meta, path: input)
  }
}
