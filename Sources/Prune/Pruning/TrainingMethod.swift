import GPU

/// A method that prunes while `advprune train` trains (pipeline D, or B when it prunes at the
/// start): it gives the trainer hooks that move the masks, and everything it needs to resume lives
/// in the model's pruning state (saved with every epoch's checkpoint) or follows from the step.
public protocol TrainingMethod {
  var name: String { get }
  var cell: TaxonomyCell { get }
  /// The settings that determine the run, for the checkpoint's metadata (a resumed run must match).
  var settings: String { get }
  /// Refuses, before any work, a run that cannot reach the method's target (a schedule that ends
  /// after the last epoch, an update period longer than the run).
  func check(epochs: Int, batchesPerEpoch: Int) throws
  /// Hooks for training `model`; `resuming` when its masks came from the run's checkpoint.
  func hooks(model: Model, epochs: Int, batchesPerEpoch: Int, seed: UInt64, resuming: Bool) throws -> TrainingHooks
  /// Whether it works before the first epoch (Li20's ticket, RobustBird's search).
  var preparesBeforeTraining: Bool { get }
  /// Work before the first epoch of a fresh run, checkpointed through `phase` and continued from it
  /// when a run stopped there; nothing by default.
  func prepare(model: Model, data: LabeledImages, config: TrainConfig, progress: ProgressSink, phase: PreparePhase) throws
}

extension TrainingMethod {
  public func check(epochs: Int, batchesPerEpoch: Int) throws {}
  public var preparesBeforeTraining: Bool { false }
  public func prepare(model: Model, data: LabeledImages, config: TrainConfig, progress: ProgressSink, phase: PreparePhase) throws {}

  /// Work before the first epoch without checkpoints (tests).
  public func prepare(model: Model, data: LabeledImages, config: TrainConfig, progress: ProgressSink) throws {
    try prepare(model: model, data: data, config: config, progress: progress, phase: PreparePhase())
  }
}

/// A method's work before the first epoch as `train` runs it: where a stopped run left it, the
/// model the run started from (Li20 rewinds to it), and how to checkpoint it.
public struct PreparePhase {
  /// Epochs of the phase done, and batches of the next.
  public var epoch = 0
  public var batch = 0
  /// The method's own numbers saved with the last checkpoint.
  public var state: [String: String] = [:]
  /// Every parameter of the model the run started from, when the model given is a resumed one.
  public var initial: [[Float]]?
  /// Saves the model with the position (epochs, batches) and the method's numbers.
  public var checkpoint: (_ epochs: Int, _ batches: Int, _ state: [String: String]) throws -> Void = { _, _, _ in }
  public var checkpointEvery: Int?

  public init() {}

  /// Trains the phase's epochs with `trainer` from where it stopped, checkpointing mid-epoch (with
  /// `state()`); `afterEpoch` runs after each epoch and checkpoints it itself.
  func train(
    _ trainer: Trainer, data: LabeledImages, progress: ProgressSink, state: @escaping () -> [String: String],
    afterEpoch: (EpochSummary) throws -> Void
  )
    throws
  {
    trainer.checkpointEvery = checkpointEvery
    trainer.midEpochCheckpoint = { epoch, done in try checkpoint(epoch, done, state()) }
    _ = try trainer.train(data: data, firstEpoch: epoch, firstBatch: batch, progress: progress, afterEpoch: afterEpoch)
  }
}

/// Counts a step's place in the whole run: steps are numbered from 1 over all epochs.
extension TrainingStep {
  var globalStep: Int { epoch * batches + batch + 1 }
}

/// The methods `advprune train --method` runs.
public enum TrainingMethods {
  public static let names = ["gmp", "flyingbird", "twinrep", "rst", "li20", "robustbird"]
  public static let optionOwners = [
    "prune-start": ["gmp"], "prune-end": ["gmp"], "prune-every": ["gmp"], "densities": ["flyingbird"], "update-every": ["flyingbird"],
    "death-rate": ["flyingbird"], "regrowth": ["flyingbird"], "prune-epoch": ["twinrep"], "ticket-epochs": ["li20"],
    "search-epochs": ["robustbird"], "eb-window": ["robustbird"], "eb-threshold": ["robustbird"],
    "sparse-init": ["flyingbird", "rst", "li20"],
  ]

  public static func make(method: String, sparsity: Double, locality: Locality?, structure: Structure, options: [String: String]) throws
    -> TrainingMethod
  {
    let name = method.lowercased()
    let refuse = MethodOptions.refuse
    if PruningMethods.names.contains(name) {
      throw refuse("--method", method, "prunes a trained model: run it with advprune prune; train runs \(names.joined(separator: ", "))")
    }
    let options = try MethodOptions(options, owners: optionOwners, method: name)
    try Pruner.checkSparsity(sparsity)
    switch name {
    case "gmp":
      guard structure == .unstructured || structure == .filters else {
        throw refuse("--structure", structure.rawValue, "gmp prunes unstructured or filters")
      }
      return GMP(
        sparsity: sparsity, locality: locality ?? .local, structure: structure,
        startEpoch: try options.count("prune-start", minimum: 0, "a whole epoch >= 0") ?? 0,
        endEpoch: try options.count("prune-end", minimum: 1, "a whole epoch >= 1"),
        every: try options.count("prune-every", minimum: 1, "a whole number of steps >= 1"))
    case "flyingbird":
      guard structure == .unstructured else { throw refuse("--structure", structure.rawValue, "flyingbird prunes single weights") }
      if let locality, locality != .global { throw refuse("--locality", locality.rawValue, "flyingbird allocates densities (ERK) globally") }
      let densities = options["densities"] ?? "erk"
      guard ["erk", "uniform"].contains(densities) else { throw refuse("--densities", densities, "expected erk or uniform") }
      let regrowth = options["regrowth"] ?? "random"
      guard let growth = FlyingBird.Regrowth(rawValue: regrowth) else { throw refuse("--regrowth", regrowth, "expected random or gradient") }
      return FlyingBird(
        sparsity: sparsity, erk: densities == "erk",
        every: try options.count("update-every", minimum: 1, "a whole number of steps >= 1"),
        deathRate: try options.number("death-rate", { $0 > 0 && $0 < 1 }, "a share in (0, 1)") ?? 0.5, regrowth: growth,
        sparseInit: try SparseInit.parse(options))
    case "rst":
      guard structure == .unstructured else { throw refuse("--structure", structure.rawValue, "rst prunes single weights") }
      if let locality, locality != .local { throw refuse("--locality", locality.rawValue, "rst keeps the same share of every layer (local)") }
      return RST(sparsity: sparsity, sparseInit: try SparseInit.parse(options))
    case "li20":
      guard structure == .unstructured else { throw refuse("--structure", structure.rawValue, "li20 prunes single weights") }
      if let locality, locality != .global { throw refuse("--locality", locality.rawValue, "li20 ranks all layers together (global)") }
      return Li20(
        sparsity: sparsity, ticketEpochs: try options.count("ticket-epochs", minimum: 1, "a whole number >= 1") ?? 1,
        sparseInit: try SparseInit.parse(options))
    case "robustbird":
      guard structure == .unstructured else { throw refuse("--structure", structure.rawValue, "robustbird prunes single weights") }
      if let locality, locality != .global { throw refuse("--locality", locality.rawValue, "robustbird ranks all layers together (global)") }
      return RobustBird(
        sparsity: sparsity, searchEpochs: try options.count("search-epochs", minimum: 1, "a whole number of epochs >= 1"),
        window: try options.count("eb-window", minimum: 2, "a whole number of epochs >= 2") ?? 5,
        threshold: try options.number("eb-threshold", { $0 >= 0 && $0 <= 1 }, "a share in [0, 1]") ?? 0.08)
    case "twinrep":
      guard structure == .unstructured || structure == .filters else {
        throw refuse("--structure", structure.rawValue, "twinrep prunes unstructured or filters")
      }
      if let locality, locality != .global { throw refuse("--locality", locality.rawValue, "twinrep ranks all layers together (global)") }
      return TwinRep(
        sparsity: sparsity, structure: structure, pruneEpoch: try options.count("prune-epoch", minimum: 1, "a whole epoch >= 1"))
    default:
      throw refuse("--method", method, "unknown for train; known: \(names.joined(separator: ", "))")
    }
  }
}
