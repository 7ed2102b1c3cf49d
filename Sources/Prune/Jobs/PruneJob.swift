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
  /// Continue the run kept in `output` from its last checkpoint: inside the method's phase, or in
  /// fine-tuning with the phase's masks (the phase is not run again).
  public var resume = false
  /// Also checkpoint every N steps inside an epoch (of the phase and of fine-tuning).
  public var checkpointEvery: Int?

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
    if let every = checkpointEvery, every < 1 {
      throw UserError.badValue(name: "--checkpoint-every", value: "\(every)", problem: "must be >= 1 (steps)")
    }
    let start = Date()
    let (input, inputMeta) = try Checkpoint.load(path: self.input, backend: backend, architecture: architecture, width: width)
    let data = try resolveDataset(inputMeta)
    try data.check(input.architecture)
    try Self.checkReachable(sparsity, structure: method.cell.structures.first ?? .unstructured, model: input)
    let phase = method.trainsWhilePruning ? pruneTraining : nil
    let needsImages = finetune.epochs > 0 || (phase?.epochs ?? 0) > 0
    let images = needsImages ? try data.load(directory: dataDirectory, train: true, limit: trainLimit) : nil
    let wanted = provenance(dataset: data, images: images?.count ?? 0)
    var metadata = inputMeta.filter { !Self.progressKeys.contains($0.key) && !$0.key.hasPrefix(Self.phaseStatePrefix) }.merging(wanted) { $1 }
    var model = input
    var outcome = PruningOutcome()
    var (firstEpoch, firstBatch) = (0, 0)
    var phaseResume: PhaseResume?
    var phaseDone = false
    switch try resumePoint(backend: backend, wanted: wanted, progress: progress) {
    case .fineTuning(let kept, let meta, let epoch, let batch):
      (model, metadata, firstEpoch, firstBatch, phaseDone) = (kept, meta, epoch, batch, true)
      let prefix = method.name + "_"
      outcome.details = Dictionary(
        uniqueKeysWithValues: metadata.filter { $0.key.hasPrefix(prefix) }.map { (String($0.key.dropFirst(prefix.count)), $0.value) })
    case .phase(let kept, let meta, let resume):
      (model, metadata, phaseResume) = (kept, meta, resume)
    case nil: break
    }
    if !phaseDone {
      var training = phase ?? finetune
      training.epochs = phase?.epochs ?? 0
      training.augmentation = data.augmentation
      let model = model
      var context = PruningContext(
        model: model, sparsity: sparsity, seed: finetune.seed, training: training, data: images, progress: progress
      ) { epochs, batches, hookState in
        metadata["prune_epochs"] = "\(epochs)"
        metadata["prune_batches_done"] = "\(batches)"
        for (key, value) in hookState { metadata[Self.phaseStatePrefix + key] = value }
        try Checkpoint.save(model, metadata: metadata, to: output, optimizer: true)
      }
      context.checkpointEvery = checkpointEvery
      context.resume = phaseResume
      outcome = try method.prune(context)
      metadata = metadata.filter { !$0.key.hasPrefix(Self.phaseStatePrefix) && $0.key != "prune_batches_done" }
      for (key, value) in outcome.details { metadata["\(method.name)_\(key)"] = value }
      // The phase is done: from here a stopped run resumes with these masks instead of pruning again.
      metadata["finetune_epochs"] = "0"
      try Checkpoint.save(model, metadata: metadata, to: output, optimizer: true)
    }
    let pruneSeconds = Date().timeIntervalSince(start)
    var epochs: [EpochSummary] = []
    if let images, finetune.epochs > firstEpoch {
      var augmented = finetune
      augmented.augmentation = data.augmentation
      let trainer = Trainer(model: model, config: augmented)
      trainer.checkpointEvery = checkpointEvery
      trainer.midEpochCheckpoint = { epoch, done in
        metadata["finetune_epochs"] = "\(epoch)"
        metadata["finetune_batches_done"] = "\(done)"
        try Checkpoint.save(model, metadata: metadata, to: output, optimizer: true)
      }
      epochs = try trainer.train(data: images, firstEpoch: firstEpoch, firstBatch: firstBatch, progress: progress) { summary in
        metadata["finetune_epochs"] = "\(summary.epoch)"
        metadata["finetune_batches_done"] = "0"
        try Checkpoint.save(model, metadata: metadata, to: output, optimizer: true)
      }
    }
    let cell = method.cell
    return Result(
      checkpoint: output, backend: backend.name, method: method.name, cell: cell.code, criterion: cell.criterion.rawValue,
      locality: cell.localities.first?.rawValue ?? "", structure: cell.structures.first?.rawValue ?? "", targetSparsity: sparsity,
      sparsity: try model.sparsity(), layers: try model.layerSparsity(), groups: outcome.groups, pruneEpochs: outcome.history, finetune: epochs,
      details: outcome.details, pruneSeconds: pruneSeconds, seconds: Date().timeIntervalSince(start))
  }

  /// Where a run is, kept in its output's metadata (dropped from an input that was pruned before).
  static let progressKeys: Set<String> = ["prune_epochs", "prune_batches_done", "finetune_epochs", "finetune_batches_done"]
  /// Metadata keys of a method's own numbers while its phase runs (HARP's rates, ADMM's rho).
  static let phaseStatePrefix = "phase_"

  /// Where a stopped run continues.
  enum ResumePoint {
    /// The phase finished: its masks are in the model; fine-tuning continues at (epoch, batch).
    case fineTuning(Model, [String: String], Int, Int)
    /// Inside the method's phase: its tensors are in the model, the rest in the resume.
    case phase(Model, [String: String], PhaseResume)
  }

  /// What determines the pruned model: the input, the method and target, the fine-tuning recipe.
  func provenance(dataset: DatasetName, images: Int) -> [String: String] {
    var meta = [
      "pruned_from": (input as NSString).lastPathComponent, "prune_method": method.name, "prune_cell": method.cell.code,
      "prune_criterion": method.cell.criterion.rawValue, "prune_locality": method.cell.localities.first?.rawValue ?? "",
      "prune_structure": method.cell.structures.first?.rawValue ?? "", "prune_target_sparsity": "\(sparsity)",
      "finetune_lr": "\(finetune.sgd.learningRate)", "finetune_epochs_planned": "\(finetune.epochs)",
      // Every option of the method (HARP's gamma, R-ADMM's rho, ...) and its phase's recipe.
      "prune_settings": String(describing: method),
    ]
    if method.trainsWhilePruning, let phase = pruneTraining {
      meta["prune_phase_epochs_planned"] = "\(phase.epochs)"
      for (key, value) in trainingMetadata(phase, dataset: dataset, images: images) { meta["prune_phase_recipe_" + key] = value }
    }
    for (key, value) in trainingMetadata(finetune, dataset: dataset, images: images) { meta["finetune_recipe_" + key] = value }
    return meta
  }

  /// The run kept in `output` when resuming it (refused when it was made differently); nil to prune
  /// from the start.
  func resumePoint(backend: Backend, wanted: [String: String], progress: ProgressSink) throws -> ResumePoint? {
    guard resume, FileManager.default.fileExists(atPath: output) else { return nil }
    let (model, meta) = try Checkpoint.load(path: output, backend: backend)
    for (key, value) in wanted.sorted(by: { $0.key < $1.key }) where meta[key] != value {
      throw UserError.badCheckpoint(
        path: output, problem: "cannot resume: it was pruned with \(key) = \(meta[key] ?? "nothing"), this run asks for \(value)")
    }
    if let done = meta["finetune_epochs"].flatMap(Int.init), done >= 0 {
      let batches = done >= finetune.epochs ? 0 : max(0, meta["finetune_batches_done"].flatMap(Int.init) ?? 0)
      return .fineTuning(model, meta, min(done, finetune.epochs), batches)
    }
    guard let epochs = meta["prune_epochs"].flatMap(Int.init), epochs >= 0, let batches = meta["prune_batches_done"].flatMap(Int.init), batches >= 0
    else {
      progress.finish("\(output): no position to continue from in its metadata; pruning again")
      return nil
    }
    let numbers = meta.filter { $0.key.hasPrefix(Self.phaseStatePrefix) }
    let hookState = Dictionary(uniqueKeysWithValues: numbers.map { (String($0.key.dropFirst(Self.phaseStatePrefix.count)), $0.value) })
    return .phase(model, meta, PhaseResume(epoch: epochs, batch: batches, hookState: hookState))
  }

  func resolveDataset(_ meta: [String: String]) throws -> DatasetName {
    try Checkpoint.dataset(dataset, metadata: meta, path: input)
  }
}
