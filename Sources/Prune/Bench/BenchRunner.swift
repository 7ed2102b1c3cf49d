import Foundation
import GPU

/// `advprune bench run`: every cell of a grid (or of one shard) that the results database does
/// not hold yet, each step (train or prune, then each evaluation) committed as it finishes.
public struct BenchRunner {
  public var config: BenchConfig
  public var database: String
  /// Where the cells' checkpoints go (one file per cell id).
  public var checkpoints: String
  public var shard: Shard?
  public var environment: ResultsStore.Environment

  public init(config: BenchConfig, database: String, checkpoints: String? = nil, shard: Shard?, environment: ResultsStore.Environment) {
    self.config = config
    self.database = database
    self.checkpoints = checkpoints ?? Self.defaultCheckpoints(database: database)
    self.shard = shard
    self.environment = environment
  }

  /// `results.sqlite` keeps its checkpoints in `results.checkpoints/`.
  public static func defaultCheckpoints(database: String) -> String {
    (database as NSString).deletingPathExtension + ".checkpoints"
  }

  public struct Summary: Codable, Sendable {
    public let run: String
    public let cells: Int
    /// Cells finished by earlier runs, skipped.
    public let skipped: Int
    public let finished: Int
    public let failed: Int
    public let failures: [String]
    public let seconds: Double
  }

  public func run(backend: Backend, progress: ProgressSink, log: (String) -> Void) throws -> Summary {
    let plan = try BenchPlan(config)
    let cells = shard.map { plan.shard($0.index, of: $0.count) } ?? plan.cells
    try checkWritable(database)
    do {
      try FileManager.default.createDirectory(atPath: checkpoints, withIntermediateDirectories: true)
    } catch {
      throw UserError.cannotWrite(path: checkpoints, problem: "cannot create the checkpoint directory (\(error.localizedDescription))")
    }
    let lock = try RunLock(database: database)
    defer { withExtendedLifetime(lock) {} }
    let store = try ResultsStore(path: database)
    let runID = UUID().uuidString.lowercased()
    try store.beginRun(id: runID, config: config, shard: shard, environment: environment)
    do {
      return try runCells(cells, plan: plan, store: store, runID: runID, backend: backend, progress: progress, log: log)
    } catch {
      // The run's row says why it stopped (a second run would otherwise only see "interrupted").
      if case TrainingError.interrupted = error {} else { try? store.finishRun(id: runID, status: "stopped: \(error)") }
      throw error
    }
  }

  func runCells(
    _ cells: [BenchCell], plan: BenchPlan, store: ResultsStore, runID: String, backend: Backend, progress: ProgressSink, log: (String) -> Void
  ) throws -> Summary {
    let start = Date()
    var skipped = 0
    var finished = 0
    var failures: [String] = []
    var cellSeconds: [Double] = []
    let byID = Dictionary(plan.cells.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
    for (k, cell) in cells.enumerated() {
      try store.register(cell)
      let done = try store.evaluationsDone(of: cell.id)
      let hasModel = try store.model(of: cell.id) != nil
      let todo = cell.evaluations.filter { done[$0.key] == nil }
      if hasModel && todo.isEmpty {
        skipped += 1
        continue
      }
      if let signal = StopRequest.signal {
        try store.finishRun(id: runID, status: "interrupted")
        throw TrainingError.interrupted(signal: signal, at: "\(k) of \(cells.count) cells", saved: true)
      }
      let left = cells.count - k
      let eta =
        cellSeconds.isEmpty ? "" : String(format: ", ETA %@", formatDuration(cellSeconds.reduce(0, +) / Double(cellSeconds.count) * Double(left)))
      log("[\(k + 1)/\(cells.count)] \(describe(cell))\(eta)")
      try store.setCurrent(run: runID, cell: cell.id)
      let cellStart = Date()
      do {
        let checkpoint = try ensureModel(cell, plan: byID, store: store, run: runID, backend: backend, progress: progress, log: log)
        for evaluation in todo {
          try StopRequest.check(at: "the model of cell \(k + 1) of \(cells.count)", saved: true)
          try evaluate(cell, evaluation, checkpoint: checkpoint, store: store, run: runID, backend: backend, progress: progress, log: log)
        }
        finished += 1
        cellSeconds.append(Date().timeIntervalSince(cellStart))
      } catch let error as UserError {
        // The store or the disk failing stops the run (finished steps are kept); a cell's own problem does not.
        if case .badDatabase = error { throw error }
        if case .cannotWrite = error { throw error }
        failures.append("\(describe(cell)): \(error)")
        log("  failed: \(error)")
        try store.recordFailure(cell: cell.id, step: "cell", message: "\(error)", run: runID)
      } catch let error as TrainingError {
        if case .interrupted = error {
          try store.finishRun(id: runID, status: "interrupted")
          throw error
        }
        failures.append("\(describe(cell)): \(error)")
        log("  failed: \(error)")
        try store.recordFailure(cell: cell.id, step: "cell", message: "\(error)", run: runID)
      }
    }
    try store.finishRun(id: runID, status: failures.isEmpty ? "finished" : "finished with failures")
    return Summary(
      run: runID, cells: cells.count, skipped: skipped, finished: finished, failed: failures.count, failures: failures,
      seconds: Date().timeIntervalSince(start))
  }

  func describe(_ cell: BenchCell) -> String {
    let s = cell.spec
    let sparsity = s.sparsity.map { String(format: " %g%%", 100 * $0) } ?? ""
    return "\(cell.title)\(sparsity) \(s.architecture) \(s.dataset) seed \(s.seed) [\(cell.id)]"
  }

  func checkpointPath(_ cell: BenchCell) -> String {
    (checkpoints as NSString).appendingPathComponent("\(cell.spec.kind.rawValue)-\(cell.id).safetensors")
  }

  /// The cell's checkpoint, made now if the database has none (its dense parent first).
  func ensureModel(
    _ cell: BenchCell, plan: [String: BenchCell], store: ResultsStore, run: String, backend: Backend, progress: ProgressSink, log: (String) -> Void
  ) throws -> String {
    if let done = try store.model(of: cell.id) { return done.checkpoint }
    let s = cell.spec
    let dataset = try DatasetName(parsing: s.dataset)
    let architecture = try Architecture(parsing: s.architecture)
    let directory = config.dataDirectories[dataset]
    let output = checkpointPath(cell)
    switch s.kind {
    case .dense, .during:
      // Shards sharing --checkpoints train each model once: the others wait here, then resume a
      // finished checkpoint (no epochs left).
      let lock = try RunLock(waitingFor: output)
      defer { withExtendedLifetime(lock) {} }
      var job = TrainJob(
        architecture: architecture, dataset: dataset, dataDirectory: directory, trainLimit: s.trainLimit, config: s.recipe.config(seed: s.seed),
        output: output)
      job.width = s.width
      // A run killed mid-training continues from its last finished epoch.
      job.resume = true
      if let method = s.method, let sparsity = s.sparsity { job.method = try method.training(sparsity: sparsity) }
      let result = try job.run(backend: backend, progress: progress)
      try store.recordModel(
        cell: cell.id, checkpoint: output, sparsity: result.sparsity ?? 0, seconds: result.seconds, details: [:], layers: result.layers ?? [],
        run: run)
      log(String(format: "  trained %d epochs in %.0f s", result.epochs.count, result.seconds))
    case .after:
      guard let parentID = s.parent, let parent = plan[parentID] else {
        throw UserError.badValue(name: "cell", value: cell.id, problem: "its dense model is not in the grid")
      }
      try store.register(parent)
      let dense = try ensureModel(parent, plan: plan, store: store, run: run, backend: backend, progress: progress, log: log)
      guard let method = s.method, let sparsity = s.sparsity else { preconditionFailure("an after-training cell has a method and a sparsity") }
      let pruning = try method.pruning()
      let finetune = s.recipe.config(seed: s.seed)
      var job = PruneJob(
        input: dense, method: pruning, sparsity: sparsity, dataset: dataset, dataDirectory: directory, trainLimit: s.trainLimit, finetune: finetune,
        output: output)
      if pruning.trainsWhilePruning {
        job.pruneTraining = PruningMethods.phase(
          of: pruning, finetune: finetune, epochs: s.pruneEpochs ?? PruningMethods.defaultPruneEpochs, learningRate: s.pruneLR.map(Float.init))
      }
      // A run killed while fine-tuning continues from its last epoch, with the method's masks.
      job.resume = true
      let result = try job.run(backend: backend, progress: progress)
      try store.recordModel(
        cell: cell.id, checkpoint: output, sparsity: result.sparsity, seconds: result.seconds, details: result.details, layers: result.layers,
        run: run)
      log(String(format: "  pruned to %.2f%% in %.0f s", 100 * result.sparsity, result.seconds))
    }
    return output
  }

  func evaluate(
    _ cell: BenchCell, _ evaluation: EvaluationSpec, checkpoint: String, store: ResultsStore, run: String, backend: Backend, progress: ProgressSink,
    log: (String) -> Void
  ) throws {
    var plan = evaluation.plan
    if plan.kind == .fmn { plan.steps = evaluation.steps }
    let dataset = try DatasetName(parsing: cell.spec.dataset)
    var job = AttackJob(
      input: checkpoint, dataset: dataset, dataDirectory: config.dataDirectories[dataset], points: evaluation.points, plan: plan,
      batchSize: evaluation.batchSize, seed: evaluation.seed)
    job.checks = evaluation.checks
    let result = try job.run(backend: backend, progress: progress)
    var record: ResultsStore.MetricRecord
    if let m = result.minimumNorm {
      record = .init(
        cell: cell.id, evaluation: evaluation, cleanAccuracy: m.cleanAccuracy, robustAccuracy: m.robustAccuracy,
        description: "fmn \(m.norm) \(m.config.steps) steps", stages: nil, medianDistance: m.medianDistance.map(Double.init), seconds: m.seconds,
        distances: m.distances, checks: result.checks)
    } else if let e = result.evaluation {
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.sortedKeys]
      record = .init(
        cell: cell.id, evaluation: evaluation, cleanAccuracy: e.cleanAccuracy, robustAccuracy: e.robustAccuracy, description: e.attack,
        stages: String(data: try encoder.encode(e.stages), encoding: .utf8), medianDistance: nil, seconds: e.seconds, distances: nil,
        checks: result.checks)
    } else {
      preconditionFailure("an attack job returns a bounded or a minimum-norm result")
    }
    try store.recordMetric(record, run: run)
    let failed = (result.checks ?? []).filter { !$0.passed }.map(\.name)
    log(
      String(
        format: "  %@: clean %.1f%%, robust %.1f%% (%.0f s)%@", evaluation.key, 100 * record.cleanAccuracy, 100 * record.robustAccuracy,
        record.seconds,
        failed.isEmpty ? "" : "; sanity checks failed: " + failed.joined(separator: ", ")))
  }
}

/// "42 s", "7 min", "2.5 h".
public func formatDuration(_ seconds: Double) -> String {
  if seconds < 90 { return String(format: "%.0f s", seconds) }
  if seconds < 5400 { return String(format: "%.0f min", seconds / 60) }
  return String(format: "%.1f h", seconds / 3600)
}
