import Foundation
import GPU

/// `advprune train`: adversarial (or natural) training, checkpointed atomically after every epoch
/// (weights, masks, batch-norm statistics and SGD momentum), resumable with `resume`.
public struct TrainJob {
  public var architecture: Architecture
  public var width: Double = 1
  public var dataset: DatasetName
  public var dataDirectory: String?
  public var trainLimit: Int?
  public var config: TrainConfig
  public var output: String
  /// Continue a run whose checkpoint `output` already holds some of the epochs.
  public var resume = false
  /// Start from this checkpoint's weights (ours, or PyTorch's for `architecture`).
  public var initialWeights: String?
  /// Append one JSON line per epoch here.
  public var logJSON: String?
  /// Test images used for the per-epoch clean/robust accuracy in the JSON log.
  public var holdoutPoints = 500
  /// A method that prunes while training (GMP, FlyingBird); nil trains densely.
  public var method: TrainingMethod?
  /// Also checkpoint every N steps inside an epoch (a stop then loses at most N - 1 steps).
  public var checkpointEvery: Int?

  public init(architecture: Architecture, dataset: DatasetName, dataDirectory: String?, trainLimit: Int?, config: TrainConfig, output: String) {
    self.architecture = architecture
    self.dataset = dataset
    self.dataDirectory = dataDirectory
    self.trainLimit = trainLimit
    self.config = config
    self.output = output
  }

  public struct Result: Codable, Sendable {
    public let checkpoint: String
    public let backend: String
    public let trainImages: Int
    /// Epochs run by this invocation (a resumed run skips those already done).
    public let epochs: [EpochSummary]
    public let resumedFromEpoch: Int
    public let seconds: Double
    /// With a method: its cell, and the sparsity and per-layer table it ended with.
    public let method: String?
    public let cell: String?
    public let sparsity: Double?
    public let layers: [LayerSparsity]?
  }

  public func run(backend: Backend, progress: ProgressSink) throws -> Result {
    try config.validate()
    try dataset.check(architecture)
    try checkWritable(output)
    if let logJSON { try checkWritable(logJSON) }
    let data = try dataset.load(directory: dataDirectory, train: true, limit: trainLimit)
    let batches = (data.count + config.batchSize - 1) / config.batchSize
    try method?.check(epochs: config.epochs, batchesPerEpoch: batches)
    if let every = checkpointEvery, every < 1 {
      throw UserError.badValue(name: "--checkpoint-every", value: "\(every)", problem: "must be >= 1 (steps)")
    }
    let (model, firstEpoch, firstBatch, kept) = try startingPoint(backend: backend, images: data.count)
    let fresh = firstEpoch == 0 && firstBatch == 0
    let holdout = logJSON == nil ? nil : try dataset.load(directory: dataDirectory, train: false, limit: holdoutPoints)
    let start = Date()
    var augmented = config
    augmented.augmentation = dataset.augmentation
    if let method, fresh, kept?["prepared"] != "true" {
      try prepare(method, model: model, data: data, config: augmented, kept: kept, backend: backend, progress: progress)
    }
    let hooks = try method?.hooks(model: model, epochs: config.epochs, batchesPerEpoch: batches, seed: config.seed, resuming: resume && !fresh)
    let trainer = Trainer(model: model, config: augmented, hooks: hooks)
    trainer.checkpointEvery = checkpointEvery
    trainer.midEpochCheckpoint = { epoch, done in
      try Checkpoint.save(model, metadata: provenance(epochsDone: epoch, images: data.count, batchesDone: done), to: output, optimizer: true)
    }
    let epochs = try trainer.train(data: data, firstEpoch: firstEpoch, firstBatch: firstBatch, progress: progress) { summary in
      try Checkpoint.save(model, metadata: provenance(epochsDone: summary.epoch, images: data.count), to: output, optimizer: true)
      if let logJSON, let holdout { try appendLog(summary, model: model, holdout: holdout, path: logJSON) }
    }
    if firstEpoch == 0 && config.epochs == 0 {
      try Checkpoint.save(model, metadata: provenance(epochsDone: 0, images: data.count), to: output, optimizer: true)
    }
    return Result(
      checkpoint: output, backend: backend.name, trainImages: data.count, epochs: epochs, resumedFromEpoch: firstEpoch,
      seconds: Date().timeIntervalSince(start), method: method?.name, cell: method?.cell.code, sparsity: method == nil ? nil : try model.sparsity(),
      layers: method == nil ? nil : try model.layerSparsity())
  }

  /// The method's work before the first epoch, checkpointed (keys `prepare_*`) and continued from a
  /// checkpoint `kept` that stopped inside it; then a checkpoint that says it is done.
  func prepare(
    _ method: TrainingMethod, model: Model, data: LabeledImages, config: TrainConfig, kept: [String: String]?, backend: Backend,
    progress: ProgressSink
  ) throws {
    var phase = PreparePhase()
    phase.checkpointEvery = checkpointEvery
    if let kept, let epoch = kept["prepare_epochs"].flatMap(Int.init), let batch = kept["prepare_batches_done"].flatMap(Int.init) {
      (phase.epoch, phase.batch) = (max(0, epoch), max(0, batch))
      phase.state = Dictionary(
        uniqueKeysWithValues: kept.filter { $0.key.hasPrefix("prepare_state_") }.map { (String($0.key.dropFirst(14)), $0.value) })
      let start = try startingPoint(backend: backend, images: data.count, fresh: true).0
      phase.initial = try start.parameters.map { try backend.download($0.value) }
    }
    phase.checkpoint = { epochs, batches, state in
      var meta = provenance(epochsDone: 0, images: data.count)
      meta["prepare_epochs"] = "\(epochs)"
      meta["prepare_batches_done"] = "\(batches)"
      for (key, value) in state { meta["prepare_state_" + key] = value }
      try Checkpoint.save(model, metadata: meta, to: output, optimizer: true)
    }
    guard method.preparesBeforeTraining else { return try method.prepare(model: model, data: data, config: config, progress: progress, phase: phase) }
    try method.prepare(model: model, data: data, config: config, progress: progress, phase: phase)
    var meta = provenance(epochsDone: 0, images: data.count)
    meta["prepared"] = "true"
    try Checkpoint.save(model, metadata: meta, to: output, optimizer: true)
  }

  /// A fresh model, one from `initialWeights`, or the run stored in `output` when resuming (with
  /// the epoch and, for a mid-epoch checkpoint, the batch it continues from, and its metadata).
  /// `fresh` ignores the stored run (the model a resumed run started from).
  func startingPoint(backend: Backend, images: Int, fresh: Bool = false) throws -> (Model, Int, Int, [String: String]?) {
    if resume && !fresh && FileManager.default.fileExists(atPath: output) {
      let (model, meta) = try Checkpoint.load(path: output, backend: backend)
      let wanted = provenance(epochsDone: 0, images: images)
      for (key, value) in wanted where key != "epochs" && key != "batches_done" && meta[key] != value {
        throw UserError.badCheckpoint(
          path: output, problem: "cannot resume: it was trained with \(key) = \(meta[key] ?? "nothing"), this run asks for \(value)")
      }
      if method == nil, let earlier = meta["method"] {
        throw UserError.badCheckpoint(path: output, problem: "cannot resume: it was trained with --method (\(earlier)), this run has none")
      }
      guard let done = meta["epochs"].flatMap(Int.init), done >= 0 else {
        throw UserError.badCheckpoint(path: output, problem: "cannot resume: no epoch count in its metadata")
      }
      let batches = meta["batches_done"].flatMap(Int.init) ?? 0
      return done >= config.epochs ? (model, config.epochs, 0, meta) : (model, done, max(batches, 0), meta)
    }
    if let initialWeights {
      let (model, _) = try Checkpoint.load(path: initialWeights, backend: backend, architecture: architecture, width: width)
      guard model.architecture == architecture else {
        throw UserError.badCheckpoint(path: initialWeights, problem: "holds a \(model.architecture.rawValue), not a \(architecture.rawValue)")
      }
      for p in model.parameters { try backend.fill(p.velocity, value: 0) }
      return (model, 0, 0, nil)
    }
    return (try architecture.build(backend: backend, seed: config.seed, width: width), 0, 0, nil)
  }

  func provenance(epochsDone: Int, images: Int, batchesDone: Int = 0) -> [String: String] {
    var meta = trainingMetadata(config, dataset: dataset, images: images)
    meta["epochs"] = "\(epochsDone)"
    meta["batches_done"] = "\(batchesDone)"
    meta["epochs_planned"] = "\(config.epochs)"
    meta["width"] = "\(width)"
    if let initialWeights { meta["init"] = (initialWeights as NSString).lastPathComponent }
    if let method {
      meta["method"] = method.settings
      meta["prune_cell"] = method.cell.code
    }
    return meta
  }

  /// One JSON line: the epoch's training numbers and clean/robust accuracy on the held-out slice.
  func appendLog(_ summary: EpochSummary, model: Model, holdout: LabeledImages, path: String) throws {
    let eval = try evaluateRobustness(
      model: model, data: holdout, count: holdout.count, attack: config.attack, seed: config.seed, progress: SilentProgress())
    let record: [String: Any] = [
      "epoch": summary.epoch, "loss": summary.loss, "train_accuracy": summary.accuracy, "lr": summary.learningRate,
      "grad_norm": summary.gradientNorm, "images_per_second": summary.imagesPerSecond, "seconds": summary.seconds,
      "holdout_points": eval.points, "holdout_clean_accuracy": eval.cleanAccuracy,
      "holdout_robust_accuracy": eval.robustAccuracy, "holdout_attack": eval.attack,
    ]
    var line = try JSONSerialization.data(withJSONObject: record, options: [.sortedKeys])
    line.append(0x0A)
    guard
      let handle = FileHandle(forWritingAtPath: path)
        ?? {
          FileManager.default.createFile(atPath: path, contents: nil)
          return FileHandle(forWritingAtPath: path)
        }()
    else {
      throw UserError.cannotWrite(path: path, problem: "cannot open for appending")
    }
    defer { try? handle.close() }
    try handle.seekToEnd()
    try handle.write(contentsOf: line)
  }
}

/// The recipe of a training run as checkpoint metadata strings.
func trainingMetadata(_ config: TrainConfig, dataset: DatasetName, images: Int) -> [String: String] {
  var meta = [
    "dataset": dataset.rawValue, "train_images": "\(images)", "seed": "\(config.seed)",
    "batch_size": "\(config.batchSize)", "lr": "\(config.sgd.learningRate)", "momentum": "\(config.sgd.momentum)",
    "weight_decay": "\(config.sgd.weightDecay)", "nesterov": "\(config.sgd.nesterov)", "lr_schedule": config.schedule.rawValue,
    "adv": "none",
  ]
  if let a = config.attack {
    meta["adv"] = config.tradesBeta.map { "trades beta \($0)" } ?? "pgd"
    meta["adv_norm"] = a.norm.rawValue
    meta["adv_eps"] = "\(a.eps)"
    meta["adv_alpha"] = "\(a.alpha)"
    meta["adv_steps"] = "\(a.steps)"
  }
  return meta
}

/// Fails early, before hours of work, when the output's directory does not exist.
func checkWritable(_ path: String) throws {
  let dir = (path as NSString).deletingLastPathComponent
  var isDir: ObjCBool = false
  if !dir.isEmpty && !(FileManager.default.fileExists(atPath: dir, isDirectory: &isDir) && isDir.boolValue) {
    throw UserError.cannotWrite(path: path, problem: "directory \(dir) does not exist")
  }
}
