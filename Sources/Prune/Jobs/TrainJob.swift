import Foundation
import GPU

/// `advprune train`: adversarial (or natural) training from scratch, checkpointed every epoch.
public struct TrainJob {
  public var architecture: Architecture
  public var dataset: DatasetName
  public var dataDirectory: String?
  public var trainLimit: Int?
  public var config: TrainConfig
  public var output: String

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
    public let epochs: [EpochSummary]
    public let seconds: Double
  }

  public func run(backend: Backend, progress: ProgressSink) throws -> Result {
    try config.validate()
    try dataset.check(architecture)
    try checkWritable(output)
    let data = try dataset.load(directory: dataDirectory, train: true, limit: trainLimit)
    let model = try architecture.build(backend: backend, seed: config.seed)
    let start = Date()
    let trainer = Trainer(model: model, config: config)
    let epochs = try trainer.train(data: data, progress: progress) { summary in
      try Checkpoint.save(model, metadata: provenance(epochsDone: summary.epoch, images: data.count), to: output)
    }
    if config.epochs == 0 { try Checkpoint.save(model, metadata: provenance(epochsDone: 0, images: data.count), to: output) }
    return Result(checkpoint: output, backend: backend.name, trainImages: data.count, epochs: epochs, seconds: Date().timeIntervalSince(start))
  }

  func provenance(epochsDone: Int, images: Int) -> [String: String] {
    var meta = trainingMetadata(config, dataset: dataset, images: images)
    meta["epochs"] = "\(epochsDone)"
    return meta
  }
}

/// The recipe of a training run as checkpoint metadata strings.
func trainingMetadata(_ config: TrainConfig, dataset: DatasetName, images: Int) -> [String: String] {
  var meta = [
    "dataset": dataset.rawValue, "train_images": "\(images)", "seed": "\(config.seed)",
    "batch_size": "\(config.batchSize)", "lr": "\(config.sgd.learningRate)", "momentum": "\(config.sgd.momentum)",
    "weight_decay": "\(config.sgd.weightDecay)", "adv": "none",
  ]
  if let a = config.attack {
    meta["adv"] = "pgd"
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
