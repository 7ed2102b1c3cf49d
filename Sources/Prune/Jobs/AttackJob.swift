import Foundation
import GPU

/// `advprune attack`: clean and robust accuracy of a checkpoint on the first N test points under
/// one attack, the AutoAttack ensemble, or FMN's minimal distances; optionally the sanity checks.
public struct AttackJob {
  public var input: String
  /// For files without advprune metadata (saved from PyTorch): the architecture and width.
  public var architecture: Architecture?
  public var width: Double?
  public var dataset: DatasetName?
  public var dataDirectory: String?
  public var points: Int
  public var plan: AttackPlan
  public var batchSize: Int
  public var seed: UInt64
  /// FMN only: the step rule search before the run.
  public var tune: FMNTuning?
  /// Writes every point's outcome as JSON here.
  public var perPointPath: String?
  public var checks = false
  /// Filter-pruned models run compacted unless `off`.
  public var compact = CompactMode.auto
  public var sparse = SparseMode.auto
  /// Times every step of the model over the whole evaluation (`Model.timeSteps`).
  public var layerTimes = false

  public init(
    input: String, dataset: DatasetName?, dataDirectory: String?, points: Int, plan: AttackPlan, batchSize: Int = 200, seed: UInt64
  ) {
    self.input = input
    self.dataset = dataset
    self.dataDirectory = dataDirectory
    self.points = points
    self.plan = plan
    self.batchSize = batchSize
    self.seed = seed
  }

  public struct Result: Codable, Sendable {
    public let checkpoint: String
    public let backend: String
    public let architecture: String
    public let sparsity: Double
    /// The model that ran: "masked", "compact" (structured pruning's removed channels gone),
    /// "sparse" (layers computing with their nonzeros only) or "compact+sparse".
    public let path: String
    /// Bounded attacks (nil for FMN).
    public let evaluation: RobustnessResult?
    /// FMN (nil for bounded attacks).
    public let minimumNorm: MinimumNormResult?
    public let checks: [SanityCheck]?
    /// Each step's time over the evaluation (the clean pass, FMN's tuning, the attacks and their
    /// verification; not the sanity checks), when asked.
    public let layerTimes: [StepTime]?
  }

  public func run(backend: Backend, progress: ProgressSink) throws -> Result {
    if points < 1 { throw UserError.badValue(name: "--n", value: "\(points)", problem: "must be >= 1") }
    if batchSize < 1 { throw UserError.badValue(name: "--batch-size", value: "\(batchSize)", problem: "must be >= 1") }
    if let perPointPath { try checkWritable(perPointPath) }
    let (loaded, test, _) = try loadForEvaluation(
      path: input, architecture: architecture, width: width, dataset: dataset, dataDirectory: dataDirectory, points: points, compact: compact,
      sparse: sparse,
      backend: backend)
    let model = loaded.model
    model.timeSteps(layerTimes)
    try plan.validate(classes: test.classCount, pointChannels: test.channels)
    if points > test.count {
      throw UserError.badValue(name: "--n", value: "\(points)", problem: "the test set has only \(test.count) points")
    }
    if loaded.path != "masked" { progress.finish(loaded.summary) }
    let evaluation = RobustnessEvaluation(model: model, data: test, count: points, batchSize: batchSize, seed: seed)
    let name = (input as NSString).lastPathComponent
    var bounded: RobustnessResult?
    var minimal: MinimumNormResult?
    var perPoint: [[String: Any]] = []
    if plan.kind == .fmn {
      let config = FMNConfig(norm: plan.norm, steps: plan.steps ?? 200, loss: plan.loss ?? .margin, alphaInit: plan.alpha ?? 1)
      let result = try evaluation.minimumNorm(config: config, eps: plan.eps, tune: tune, progress: progress)
      minimal = result
      perPoint = (0..<result.points).map { i in
        [
          "index": i, "label": test.labels[i], "clean": evaluation.correct[i], "robust": result.distances[i] > plan.eps,
          "distance": result.distances[i].isFinite ? Double(result.distances[i]) : "inf",
        ]
      }
    } else {
      let attacks = plan.attacks(backend: backend)
      let result = try evaluation.run(attacks: attacks, description: plan.description(of: attacks), progress: progress)
      bounded = result
      progress.finish(
        String(
          format: "%@: clean %.2f%%  robust %.2f%% (%d points, %@)", name, 100 * result.cleanAccuracy, 100 * result.robustAccuracy, result.points,
          result.attack))
      perPoint = evaluation.outcomes.map { o in
        var entry: [String: Any] = ["index": o.index, "label": o.label, "clean": o.clean, "robust": o.robust]
        if let by = o.brokenBy { entry["brokenBy"] = by }
        if let d = o.distance { entry["distance"] = Double(d) }
        return entry
      }
    }
    if let perPointPath { try writePerPoint(perPoint, to: perPointPath) }
    let stepTimes = model.stepTimes
    model.timeSteps(false)
    var checkResults: [SanityCheck]?
    if checks {
      checkResults = try SanityChecks(evaluation: evaluation, plan: plan, progress: progress).run(bounded: bounded, minimumNorm: minimal)
    }
    return Result(
      checkpoint: input, backend: backend.name, architecture: model.architecture.rawValue, sparsity: loaded.sparsity, path: loaded.path,
      evaluation: bounded, minimumNorm: minimal, checks: checkResults, layerTimes: stepTimes)
  }

  /// `{"checkpoint", "eps", "norm", "robust": [Bool], "points": [{index, label, clean, robust, ...}]}`.
  func writePerPoint(_ entries: [[String: Any]], to path: String) throws {
    let document: [String: Any] = [
      "checkpoint": input, "eps": Double("\(plan.eps)") ?? Double(plan.eps), "norm": plan.norm.rawValue, "attack": plan.kind.rawValue,
      "robust": entries.map { $0["robust"] as! Bool }, "points": entries,
    ]
    try writeAtomically(try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys]), to: path)
  }
}

/// A checkpoint's model (compacted under `compact`), its data set (`dataset` overrides the
/// metadata's; files from PyTorch name their architecture) and that data set's first `points` test points.
func loadForEvaluation(
  path: String, architecture: Architecture?, width: Double?, dataset: DatasetName?, dataDirectory: String?, points: Int, compact: CompactMode,
  sparse: SparseMode, backend: Backend
) throws -> (EvaluationModel, LabeledImages, DatasetName) {
  let (model, meta) = try Checkpoint.load(path: path, backend: backend, architecture: architecture, width: width)
  let name = try Checkpoint.dataset(dataset, metadata: meta, path: path)
  try name.check(model.architecture)
  return (try EvaluationModel(model, mode: compact, sparse: sparse), try name.load(directory: dataDirectory, train: false, limit: points), name)
}
