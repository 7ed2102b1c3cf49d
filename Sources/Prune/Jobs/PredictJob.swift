import Foundation
import GPU

/// `advprune predict`: logits and predicted classes of a checkpoint on the first N test images
/// (for inspection, and for checking a model against another framework's forward pass).
public struct PredictJob {
  public var input: String
  public var architecture: Architecture?
  public var dataset: DatasetName?
  public var dataDirectory: String?
  public var points: Int
  /// Filter-pruned models run compacted unless `off`.
  public var compact = CompactMode.auto
  public var sparse = SparseMode.auto
  /// Called right before the timed pass (after the untimed first one): where a profiler starts.
  public var measuring: (() throws -> Void)?
  /// Times every step of the timed pass (`Model.timeSteps`).
  public var layerTimes = false

  public init(input: String, architecture: Architecture?, dataset: DatasetName?, dataDirectory: String?, points: Int) {
    self.input = input
    self.architecture = architecture
    self.dataset = dataset
    self.dataDirectory = dataDirectory
    self.points = points
  }

  public struct Result: Codable, Sendable {
    public let checkpoint: String
    /// "masked", "compact", "sparse" or "compact+sparse", as in `AttackJob.Result`.
    public let path: String
    /// Wall time of a forward pass over all N images (one batch), timed after an untimed first
    /// pass that allocates the buffers, so it can be compared with another framework's.
    public let seconds: Double
    /// Runs of sparse layers the pass kept on the grid (`Model.inference`); 0 where it copied
    /// each layer's activations on and off.
    public let gridRuns: Int
    public let labels: [Int]
    public let predictions: [Int]
    public let logits: [[Float]]
    /// Each step's time in the timed pass, when asked.
    public let layerTimes: [StepTime]?
    public var accuracy: Double { labels.isEmpty ? 0 : Double(zip(labels, predictions).filter { $0 == $1 }.count) / Double(labels.count) }
  }

  public func run(backend: Backend) throws -> Result {
    if points < 1 { throw UserError.badValue(name: "--n", value: "\(points)", problem: "must be >= 1") }
    let (loaded, test, _) = try loadForEvaluation(
      path: input, architecture: architecture, width: nil, dataset: dataset, dataDirectory: dataDirectory, points: points, compact: compact,
      sparse: sparse,
      backend: backend)
    let model = loaded.model
    model.setTraining(false)
    let (x, _, labels) = try BatchUploader(data: test, backend: backend).upload(0..<test.count)
    _ = try backend.download(try model.inference(x))
    try measuring?()
    model.timeSteps(layerTimes)
    let start = Date()
    let out = try model.inference(x)
    let flat = try backend.download(out)
    let seconds = Date().timeIntervalSince(start)
    let stepTimes = model.stepTimes
    model.timeSteps(false)
    let classes = out.shape[1]
    let rows = (0..<test.count).map { Array(flat[($0 * classes)..<(($0 + 1) * classes)]) }
    return Result(
      checkpoint: input, path: loaded.path, seconds: seconds, gridRuns: model.gridRuns, labels: labels,
      predictions: argmaxRows(flat, classes: classes), logits: rows, layerTimes: stepTimes)
  }
}
