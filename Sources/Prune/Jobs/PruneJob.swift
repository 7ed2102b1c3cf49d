import Foundation
import GPU

/// `advprune prune`: one-shot pruning of a trained checkpoint, then masked adversarial fine-tuning.
public struct PruneJob {
  public var input: String
  /// For files without advprune metadata (saved from PyTorch): the architecture and width.
  public var architecture: Architecture?
  public var width: Double?
  public var criterion: Criterion
  public var structure: Structure = .unstructured
  public var locality: Locality
  public var sparsity: Double
  public var dataset: DatasetName?
  public var dataDirectory: String?
  public var trainLimit: Int?
  /// Fine-tuning recipe; its epochs may be 0 (prune only).
  public var finetune: TrainConfig
  public var output: String

  public init(
    input: String, criterion: Criterion, locality: Locality, sparsity: Double, dataset: DatasetName?, dataDirectory: String?, trainLimit: Int?,
    finetune: TrainConfig, output: String
  ) {
    self.input = input
    self.criterion = criterion
    self.locality = locality
    self.sparsity = sparsity
    self.dataset = dataset
    self.dataDirectory = dataDirectory
    self.trainLimit = trainLimit
    self.finetune = finetune
    self.output = output
  }

  public struct Result: Codable, Sendable {
    public let checkpoint: String
    public let backend: String
    public let criterion: String
    public let locality: String
    public let structure: String
    public let targetSparsity: Double
    public let sparsity: Double
    public let layers: [LayerSparsity]
    /// Filter pruning: channels kept per channel group.
    public let groups: [GroupSparsity]?
    public let finetune: [EpochSummary]
    public let seconds: Double
  }

  /// Rejects a target sparsity outside [0, 1) before any file is read.
  public static func check(sparsity: Double) throws {
    guard sparsity >= 0 && sparsity < 1 else {
      throw UserError.badValue(name: "--sparsity", value: "\(sparsity)", problem: "must be in [0, 1)")
    }
  }

  public func run(backend: Backend, progress: ProgressSink) throws -> Result {
    try Self.check(sparsity: sparsity)
    try finetune.validate()
    try checkWritable(output)
    let start = Date()
    let (model, meta) = try Checkpoint.load(path: input, backend: backend, architecture: architecture, width: width)
    let data = try resolveDataset(meta)
    try data.check(model.architecture)
    var groups: [GroupSparsity]?
    if structure == .filter {
      groups = try FilterPruner.prune(model: model, criterion: criterion, locality: locality, sparsity: sparsity, seed: finetune.seed)
    } else {
      try Pruner.prune(model: model, criterion: criterion, locality: locality, sparsity: sparsity, seed: finetune.seed)
    }
    let images = finetune.epochs > 0 ? try data.load(directory: dataDirectory, train: true, limit: trainLimit) : nil
    var metadata = meta
    metadata["pruned_from"] = (input as NSString).lastPathComponent
    metadata["prune_criterion"] = criterion.rawValue
    metadata["prune_locality"] = locality.rawValue
    metadata["prune_structure"] = structure.rawValue
    metadata["prune_target_sparsity"] = "\(sparsity)"
    metadata["finetune_lr"] = "\(finetune.sgd.learningRate)"
    var epochs: [EpochSummary] = []
    if let images {
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
    return Result(
      checkpoint: output, backend: backend.name, criterion: criterion.rawValue, locality: locality.rawValue, structure: structure.rawValue,
      targetSparsity: sparsity, sparsity: try model.sparsity(), layers: try model.layerSparsity(), groups: groups, finetune: epochs,
      seconds: Date().timeIntervalSince(start))
  }

  func resolveDataset(_ meta: [String: String]) throws -> DatasetName {
    try Checkpoint.dataset(dataset, metadata: meta, path: input)
  }
}
