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
  /// Checkpoints the phase: after each epoch, every `checkpointEvery` steps and at a stop request,
  /// with the position (epochs done, batches of the next done) and the hooks' own numbers.
  public let checkpoint: (_ epochs: Int, _ batches: Int, _ hookState: [String: String]) throws -> Void
  public var checkpointEvery: Int?
  /// A stopped phase to continue: its tensors (scores, ADMM's Z and U, momentum) are already in the
  /// model; the method must not initialise them again.
  public var resume: PhaseResume?

  public init(
    model: Model, sparsity: Double, seed: UInt64, training: TrainConfig, data: LabeledImages?, progress: ProgressSink,
    checkpoint: @escaping (_ epochs: Int, _ batches: Int, _ hookState: [String: String]) throws -> Void = { _, _, _ in }
  ) {
    self.model = model
    self.sparsity = sparsity
    self.seed = seed
    self.training = training
    self.data = data
    self.progress = progress
    self.checkpoint = checkpoint
  }

  /// Runs the method's phase with `hooks` (from where `resume` stopped); nothing when it has no epochs.
  func train(_ hooks: TrainingHooks) throws -> [EpochSummary] {
    guard let data, training.epochs > 0 else { return [] }
    let numbers = { (hooks as? ResumableHooks)?.hookState ?? [:] }
    if let resume { try (hooks as? ResumableHooks)?.restore(resume.hookState, model: model) }
    let trainer = Trainer(model: model, config: training, hooks: hooks)
    trainer.checkpointEvery = checkpointEvery
    trainer.midEpochCheckpoint = { epoch, done in try checkpoint(epoch, done, numbers()) }
    return try trainer.train(data: data, firstEpoch: resume?.epoch ?? 0, firstBatch: resume?.batch ?? 0, progress: progress) { summary in
      try checkpoint(summary.epoch, 0, numbers())
    }
  }
}

/// Where a method's phase stopped: epochs done, batches of the next done, the hooks' own numbers.
public struct PhaseResume: Sendable {
  public var epoch: Int
  public var batch: Int
  public var hookState: [String: String]
}

/// Hooks with numbers of their own (HARP's learned rates, ADMM's rho) that a checkpoint carries so
/// that a phase resumes bit for bit; their tensors live in the model's pruning state.
protocol ResumableHooks: TrainingHooks {
  var hookState: [String: String] { get }
  func restore(_ state: [String: String], model: Model) throws
}

extension ResumableHooks {
  /// Decodes the numbers `state` wrote; a missing or garbled one is a damaged checkpoint.
  func numbers(_ state: [String: String], _ key: String) throws -> [Double] {
    guard let text = state[key] else { throw UserError.badValue(name: "checkpoint", value: key, problem: "missing from the phase state") }
    let values = text.split(separator: ",").map { Double($0) }
    guard values.allSatisfy({ $0 != nil }) else { throw UserError.badValue(name: "checkpoint", value: key, problem: "not a list of numbers") }
    return values.map { $0! }
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
