import Foundation
import GPU

/// `advprune attack`: clean and PGD robust accuracy of a checkpoint on the test set.
public struct AttackJob {
  public var input: String
  /// For files without advprune metadata (saved from PyTorch): the architecture and width.
  public var architecture: Architecture?
  public var width: Double?
  public var dataset: DatasetName?
  public var dataDirectory: String?
  public var points: Int
  public var attack: PGDConfig
  public var batchSize: Int
  public var seed: UInt64

  public init(input: String, dataset: DatasetName?, dataDirectory: String?, points: Int, attack: PGDConfig, batchSize: Int = 200, seed: UInt64) {
    self.input = input
    self.dataset = dataset
    self.dataDirectory = dataDirectory
    self.points = points
    self.attack = attack
    self.batchSize = batchSize
    self.seed = seed
  }

  public struct Result: Codable, Sendable {
    public let checkpoint: String
    public let backend: String
    public let architecture: String
    public let sparsity: Double
    public let evaluation: RobustnessResult
  }

  public func run(backend: Backend, progress: ProgressSink) throws -> Result {
    try attack.validate()
    if points < 1 { throw UserError.badValue(name: "--n", value: "\(points)", problem: "must be >= 1") }
    if batchSize < 1 { throw UserError.badValue(name: "--batch-size", value: "\(batchSize)", problem: "must be >= 1") }
    let (model, meta) = try Checkpoint.load(path: input, backend: backend, architecture: architecture, width: width)
    let name: DatasetName
    if let dataset {
      name = dataset
    } else if let stored = meta["dataset"] {
      name = try DatasetName(parsing: stored)
    } else {
      throw UserError.badCheckpoint(path: input, problem: "no dataset in its metadata; name one with --dataset")
    }
    try name.check(model.architecture)
    let test = try name.load(directory: dataDirectory, train: false, limit: points)
    let result = try evaluateRobustness(model: model, data: test, count: points, attack: attack, batchSize: batchSize, seed: seed, progress: progress)
    progress.finish(
      String(format: "%@: clean %.2f%%  robust %.2f%% (%d points, %@)", (input as NSString).lastPathComponent, 100 * result.cleanAccuracy, 100 * result.robustAccuracy, result.points, result.attack))
    return Result(checkpoint: input, backend: backend.name, architecture: model.architecture.rawValue, sparsity: try model.sparsity(), evaluation: result)
  }
}
