import GPU

/// What a pruning method works with: the model, the target, and (for methods that train scores,
/// rates or ADMM's auxiliaries) the data and the recipe of that phase.
public struct PruningContext {
  public let model: Model
  public let sparsity: Double
  public let seed: UInt64
  /// The method's own training phase (`--prune-epochs` epochs of it; 0 for one-shot methods).
  public let training: TrainConfig
  /// The training images; nil when the phase has no epochs.
  public let data: LabeledImages?
  public let progress: ProgressSink
  /// Called after each epoch of the method's phase (checkpointing).
  public let afterEpoch: (EpochSummary) throws -> Void

  public init(
    model: Model, sparsity: Double, seed: UInt64, training: TrainConfig, data: LabeledImages?, progress: ProgressSink,
    afterEpoch: @escaping (EpochSummary) throws -> Void = { _ in }
  ) {
    self.model = model
    self.sparsity = sparsity
    self.seed = seed
    self.training = training
    self.data = data
    self.progress = progress
    self.afterEpoch = afterEpoch
  }

  /// Runs the method's phase with `hooks`; nothing when it has no epochs.
  func train(_ hooks: TrainingHooks) throws -> [EpochSummary] {
    guard let data, training.epochs > 0 else { return [] }
    return try Trainer(model: model, config: training, hooks: hooks).train(data: data, progress: progress, afterEpoch: afterEpoch)
  }
}

/// What a method leaves behind besides the masks.
public struct PruningOutcome: Sendable {
  /// Filter pruning: channels kept per channel group.
  public var groups: [GroupSparsity]?
  /// The method's phase, epoch by epoch.
  public var history: [EpochSummary] = []
  /// Method-specific numbers for the report and the checkpoint metadata (`<method>_<key>`).
  public var details: [String: String] = [:]

  public init(groups: [GroupSparsity]? = nil, history: [EpochSummary] = [], details: [String: String] = [:]) {
    self.groups = groups
    self.history = history
    self.details = details
  }
}

/// A pruning method: a taxonomy cell and the steps that leave the model with hard masks at the
/// target sparsity (then `PruneJob` fine-tunes with the masks held).
public protocol PruningMethod {
  /// The `--method` name (or a free cell's description).
  var name: String { get }
  var cell: TaxonomyCell { get }
  /// Whether it trains (scores, rates, auxiliaries) and so needs data and `--prune-epochs`.
  var trainsWhilePruning: Bool { get }
  func prune(_ context: PruningContext) throws -> PruningOutcome
}
