import Foundation

/// `advprune bench status`: which cells of a grid are done, running, failed or left, with an ETA.
public struct BenchStatus: Codable, Sendable {
  public struct Cell: Codable, Sendable {
    public let id: String
    public let title: String
    public let kind: String
    public let architecture: String
    public let sparsity: Double?
    public let seed: UInt64
    /// done, running, failed, partial (model made, evaluations left) or left.
    public let state: String
    public let seconds: Double?
    public let failure: String?
  }

  public let config: String
  public let database: String
  public let cells: Int
  public let done: Int
  public let running: Int
  public let failed: Int
  public let left: Int
  /// A run holds the database's lock now.
  public let active: Bool
  /// Mean time of a finished cell times the cells not done (nil before the first finishes).
  public let etaSeconds: Double?
  public let states: [Cell]

  public static func read(config: BenchConfig, database: String, shard: Shard?) throws -> BenchStatus {
    let plan = try BenchPlan(config)
    let cells = shard.map { plan.shard($0.index, of: $0.count) } ?? plan.cells
    let store = FileManager.default.fileExists(atPath: database) ? try ResultsStore(path: database, create: false) : nil
    let active = RunLock.isHeld(database: database)
    let current =
      try store?.query("SELECT current_cell FROM runs WHERE status = 'running' AND current_cell IS NOT NULL").compactMap { $0["current_cell"].text }
      ?? []
    var states: [Cell] = []
    for cell in cells {
      let model = try store?.model(of: cell.id)
      let evaluations = try store?.evaluationsDone(of: cell.id) ?? [:]
      let complete = model != nil && cell.evaluations.allSatisfy { evaluations[$0.key] != nil }
      let failure = try store?.failures(of: cell.id).last
      let state: String
      if complete {
        state = "done"
      } else if active && current.contains(cell.id) {
        state = "running"
      } else if failure != nil {
        state = "failed"
      } else {
        state = model != nil ? "partial" : "left"
      }
      let seconds = complete ? (model?.seconds ?? 0) + cell.evaluations.compactMap { evaluations[$0.key] }.reduce(0, +) : nil
      states.append(
        Cell(
          id: cell.id, title: cell.title, kind: cell.spec.kind.rawValue, architecture: cell.spec.architecture, sparsity: cell.spec.sparsity,
          seed: cell.spec.seed, state: state, seconds: seconds, failure: complete ? nil : failure))
    }
    func count(_ s: String) -> Int { states.filter { $0.state == s }.count }
    let times = states.compactMap(\.seconds)
    let notDone = states.count - count("done")
    let eta = times.isEmpty || notDone == 0 ? (notDone == 0 ? 0 : nil) : times.reduce(0, +) / Double(times.count) * Double(notDone)
    return BenchStatus(
      config: config.path, database: database, cells: states.count, done: count("done"), running: count("running"), failed: count("failed"),
      left: count("left") + count("partial"), active: active, etaSeconds: eta, states: states)
  }
}

/// `advprune bench merge`: shard databases combined into one, idempotently (a cell, metric or
/// run already there is kept, never duplicated).
public enum BenchMerge {
  public struct Summary: Codable, Sendable {
    public let into: String
    public let sources: [String]
    /// Rows added per table.
    public let added: [String: Int]
  }

  static let tables = ["runs", "cells", "models", "layers", "metrics", "distances", "checks", "failures"]

  public static func merge(_ sources: [String], into target: String) throws -> Summary {
    for source in sources { _ = try ResultsStore(path: source, create: false) }
    try checkWritable(target)
    let lock = try RunLock(database: target)
    defer { withExtendedLifetime(lock) {} }
    let store = try ResultsStore(path: target)
    var added: [String: Int] = [:]
    for source in sources {
      if (try? FileManager.default.destinationOfSymbolicLink(atPath: source)) == target || source == target { continue }
      try store.guarded {
        try store.db.query("ATTACH DATABASE ? AS source", [.text(source)])
        defer { try? store.db.execute("DETACH DATABASE source") }
        try store.db.transaction {
          for table in tables {
            let before = try store.db.query("SELECT count(*) AS n FROM main.\(table)")[0]["n"].int ?? 0
            try store.db.execute("INSERT OR IGNORE INTO main.\(table) SELECT * FROM source.\(table)")
            let after = try store.db.query("SELECT count(*) AS n FROM main.\(table)")[0]["n"].int ?? 0
            added[table, default: 0] += after - before
          }
        }
      }
    }
    return Summary(into: target, sources: sources, added: added)
  }
}

/// `advprune bench slurm`: a Slurm job-array script, one array task per shard, each writing its own
/// database; the merge command to run when they are done is printed at its end.
public struct SlurmScript {
  public var config: String
  public var shards: Int
  public var databasePrefix: String
  public var executable: String
  public var device: String?
  public var partition: String?
  public var time: String
  public var cpus: Int
  public var gpus: Int

  public init(config: String, shards: Int, databasePrefix: String, executable: String, time: String = "24:00:00", cpus: Int = 8, gpus: Int = 1) {
    self.config = config
    self.shards = shards
    self.databasePrefix = databasePrefix
    self.executable = executable
    self.time = time
    self.cpus = cpus
    self.gpus = gpus
  }

  public var text: String {
    let name = ((config as NSString).lastPathComponent as NSString).deletingPathExtension
    var lines = [
      "#!/bin/bash",
      "# advprune benchmark \(name): \(shards) shards as one Slurm job array (written by advprune bench slurm).",
      "#SBATCH --job-name=advprune-\(name)",
      "#SBATCH --array=1-\(shards)",
      "#SBATCH --cpus-per-task=\(cpus)",
      "#SBATCH --time=\(time)",
      "#SBATCH --output=\(databasePrefix)-%a.log",
    ]
    if gpus > 0 { lines.append("#SBATCH --gres=gpu:\(gpus)") }
    if let partition { lines.append("#SBATCH --partition=\(partition)") }
    lines += [
      "set -euo pipefail",
      "shard=\"${SLURM_ARRAY_TASK_ID:?run this script with sbatch}\"",
      "# Each task writes its own database; a resubmitted task skips the cells its database holds.",
      "# Shards share one checkpoint directory: each dense model is trained once, by the first shard needing it.",
      "\(shellQuoted(executable)) bench run \(shellQuoted(config)) --db \(shellQuoted(databasePrefix))-\"$shard\".sqlite --shard \"$shard\"/\(shards)"
        + " --checkpoints \(shellQuoted(databasePrefix)).checkpoints" + (device.map { " --device \(shellQuoted($0))" } ?? ""),
      "# When every task has finished:",
      "#   \(executable) bench merge \(databasePrefix)-*.sqlite --into \(databasePrefix).sqlite",
      "",
    ]
    return lines.joined(separator: "\n")
  }
}

/// A word for a POSIX shell: kept as is when it is plain, single-quoted otherwise.
func shellQuoted(_ word: String) -> String {
  let plain = word.allSatisfy { $0.isLetter || $0.isNumber || "-_./=:@%+,".contains($0) }
  return plain && !word.isEmpty ? word : "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
