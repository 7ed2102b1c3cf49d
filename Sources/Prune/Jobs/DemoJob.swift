import Foundation
import GPU

/// `advprune demo`: the embedded default job, end to end — PGD-AT of SmallCNN on Fashion-MNIST,
/// global magnitude pruning to 90 %, masked adversarial fine-tuning, PGD-40 evaluation of both.
public struct DemoJob {
  public var dataDirectory: String?
  /// Training images used (the first N of the train split); nil for all 60,000.
  public var trainLimit: Int?
  public var epochs: Int
  public var finetuneEpochs: Int
  public var sparsity: Double
  public var evalPoints: Int
  public var workDirectory: String
  public var seed: UInt64

  /// The documented subset that finishes in well under 15 minutes on a 2-core CPU.
  public static let quick = DemoJob(
    dataDirectory: nil, trainLimit: 20_000, epochs: 2, finetuneEpochs: 1, sparsity: 0.9, evalPoints: 1000, workDirectory: "runs/demo", seed: 0)

  public init(
    dataDirectory: String?, trainLimit: Int?, epochs: Int, finetuneEpochs: Int, sparsity: Double, evalPoints: Int, workDirectory: String, seed: UInt64
  ) {
    self.dataDirectory = dataDirectory
    self.trainLimit = trainLimit
    self.epochs = epochs
    self.finetuneEpochs = finetuneEpochs
    self.sparsity = sparsity
    self.evalPoints = evalPoints
    self.workDirectory = workDirectory
    self.seed = seed
  }

  public struct Result: Codable, Sendable {
    public let backend: String
    public let train: TrainJob.Result
    public let dense: AttackJob.Result
    public let prune: PruneJob.Result
    public let pruned: AttackJob.Result
    public let seconds: Double
    /// Adversarial-training throughput (images/s, each image attacked with PGD-10), over all epochs.
    public let trainImagesPerSecond: Double
  }

  public func run(backend: Backend, progress: ProgressSink) throws -> Result {
    let start = Date()
    do {
      try FileManager.default.createDirectory(atPath: workDirectory, withIntermediateDirectories: true)
    } catch {
      throw UserError.cannotWrite(path: workDirectory, problem: "cannot create directory: \(error.localizedDescription)")
    }
    let (arch, dataset) = (Architecture.smallcnn, DatasetName.fashionMNIST)
    let recipe = Recipe.defaults(for: arch, on: dataset)
    let dense = (workDirectory as NSString).appendingPathComponent("smallcnn-pgd.safetensors")
    let pruned = (workDirectory as NSString).appendingPathComponent("smallcnn-pgd-lwm-global-\(Int(sparsity * 100)).safetensors")
    let config = TrainConfig(epochs: epochs, batchSize: recipe.batchSize, sgd: recipe.sgd, attack: recipe.attack, seed: seed)
    let train = try TrainJob(
      architecture: arch, dataset: dataset, dataDirectory: dataDirectory, trainLimit: trainLimit, config: config, output: dense
    )
    .run(backend: backend, progress: progress)
    let evaluate = { (path: String) in
      try AttackJob(
        input: path, dataset: dataset, dataDirectory: dataDirectory, points: evalPoints, plan: AttackPlan(pgd: recipe.evaluation), seed: seed
      )
      .run(backend: backend, progress: progress)
    }
    let denseEval = try evaluate(dense)
    var finetune = config
    finetune.epochs = finetuneEpochs
    finetune.sgd.learningRate = recipe.finetuneLearningRate
    let prune = try PruneJob(
      input: dense, criterion: .lwm, locality: .global, sparsity: sparsity, dataset: dataset, dataDirectory: dataDirectory,
      trainLimit: trainLimit, finetune: finetune, output: pruned
    ).run(backend: backend, progress: progress)
    let prunedEval = try evaluate(pruned)
    let trainSeconds = train.epochs.reduce(0) { $0 + $1.seconds }
    return Result(
      backend: backend.name, train: train, dense: denseEval, prune: prune, pruned: prunedEval, seconds: Date().timeIntervalSince(start),
      trainImagesPerSecond: trainSeconds > 0 ? Double(train.trainImages * train.epochs.count) / trainSeconds : 0)
  }
}
