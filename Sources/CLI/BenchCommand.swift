import ArgumentParser
import Foundation
import GPU
import Prune

struct Bench: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Run a benchmark grid (TOML) into an SQLite results database; resumable, shardable, mergeable.",
    discussion: """
      bench run CONFIG --db results.sqlite trains each dense model once, prunes it with every method and \
      sparsity of the config, evaluates every cell, and commits each finished step; run it again after \
      a stop and it skips what is done. `advprune report` turns the database into a leaderboard.
      """,
    subcommands: [BenchRun.self, BenchStatusCommand.self, BenchSlurm.self, BenchMergeCommand.self])
}

struct BenchRun: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "run", abstract: "Run the cells of a grid that the database does not hold yet.")

  @Argument(help: "Grid config (.toml), e.g. bench/smoke.toml.") var config: String
  @Option(help: "Results database (SQLite; created if missing).") var db: String = "results.sqlite"
  @Option(help: "Directory of the cells' checkpoints (default: next to the database, <db>.checkpoints).") var checkpoints: String?
  @Option(help: "Run only shard I of N (1-based): a fixed share of the cells, chosen by cell id.") var shard: String?
  @OptionGroup var common: CommonOptions

  func run() throws {
    try reportingErrors(resume: "the same bench run command (it skips what is done)") {
      GracefulStop.install()
      let grid = try BenchConfig.load(path: config)
      let share = try shard.map(Shard.init(parsing:))
      let backend = try common.backend()
      let runner = BenchRunner(
        config: grid, database: db, checkpoints: checkpoints, shard: share, environment: benchEnvironment(backend))
      let progress = common.progress()
      let summary = try runner.run(backend: backend, progress: progress) { line in
        if !common.quiet { progress.finish(line) }
      }
      if common.json { try printJSON(summary) }
      let line = String(
        format: "%@: %d cells, %d finished now, %d already done, %d failed; %@ (%@)", db, summary.cells, summary.finished, summary.skipped,
        summary.failed,
        formatDuration(summary.seconds), "advprune report \(db) --out report/")
      if !common.json { print(line) }
      for failure in summary.failures { printErr("failed: \(failure)") }
      if summary.failed > 0 { throw ExitCode(1) }
    }
  }
}

struct BenchStatusCommand: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "status", abstract: "Done / running / failed / left cells of a grid, with an ETA.")

  @Argument(help: "Grid config (.toml).") var config: String
  @Option(help: "Results database.") var db: String = "results.sqlite"
  @Option(help: "Only shard I of N.") var shard: String?
  @Flag(help: "One JSON object on stdout.") var json = false
  @Flag(help: "List every cell.") var cells = false

  func run() throws {
    try reportingErrors {
      let status = try BenchStatus.read(config: try BenchConfig.load(path: config), database: db, shard: try shard.map(Shard.init(parsing:)))
      if json { return try printJSON(status) }
      if cells {
        for c in status.states {
          let sparsity = c.sparsity.map { String(format: "%5.1f%%", 100 * $0) } ?? "     -"
          print(
            "\(c.state.padding(toLength: 8, withPad: " ", startingAt: 0)) \(c.id)  \(sparsity)  \(c.title) \(c.architecture) seed \(c.seed)"
              + (c.failure.map { "  (\($0))" } ?? ""))
        }
      }
      let eta = status.etaSeconds.map { "ETA \(formatDuration($0))" } ?? "ETA unknown until a cell finishes"
      print(
        "\(status.cells) cells: \(status.done) done, \(status.running) running, \(status.failed) failed, \(status.left) left; \(eta)"
          + (status.active ? " (a run is active)" : ""))
    }
  }
}

struct BenchSlurm: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "slurm", abstract: "Write a Slurm job-array script: one shard per array task, each into its own database.")

  @Argument(help: "Grid config (.toml).") var config: String
  @Option(help: "Number of shards (array tasks).") var shards: Int
  @Option(help: "Databases are PREFIX-1.sqlite ... PREFIX-N.sqlite; merged into PREFIX.sqlite.") var dbPrefix: String = "results"
  @Option(help: "Backend of each task (e.g. opencl).") var device: String?
  @Option(help: "Slurm partition.") var partition: String?
  @Option(help: "Wall-clock limit per task.") var time: String = "24:00:00"
  @Option(help: "CPUs per task.") var cpus: Int = 8
  @Option(help: "GPUs per task (0: none).") var gpus: Int = 1
  @Option(help: "Write the script here instead of stdout.") var out: String?

  func run() throws {
    try reportingErrors {
      guard shards >= 1 else { throw UserError.badValue(name: "--shards", value: "\(shards)", problem: "must be >= 1") }
      _ = try BenchPlan(try BenchConfig.load(path: config))
      // Array tasks may start elsewhere than here: the executable by its absolute path.
      let executable = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
      var script = SlurmScript(
        config: config, shards: shards, databasePrefix: dbPrefix, executable: executable, time: time, cpus: cpus, gpus: gpus)
      script.device = device
      script.partition = partition
      guard let out else { return print(script.text, terminator: "") }
      guard FileManager.default.createFile(atPath: out, contents: script.text.data(using: .utf8), attributes: [.posixPermissions: 0o755]) else {
        throw UserError.cannotWrite(path: out, problem: "cannot create the file")
      }
      print("wrote \(out): sbatch \(out)")
    }
  }
}

struct BenchMergeCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "merge", abstract: "Combine shard databases into one (idempotent: merging twice adds nothing).")

  @Argument(help: "Shard databases.") var sources: [String]
  @Option(help: "The combined database (created if missing).") var into: String
  @Flag(help: "One JSON object on stdout.") var json = false

  func run() throws {
    try reportingErrors {
      let summary = try BenchMerge.merge(sources, into: into)
      if json { return try printJSON(summary) }
      let added = summary.added.sorted { $0.key < $1.key }.filter { $0.value > 0 }.map { "\($0.value) \($0.key)" }
      print("merged \(sources.count) databases into \(into): added \(added.isEmpty ? "nothing (already there)" : added.joined(separator: ", "))")
    }
  }
}

/// Where and with what a run ran, for the results database.
func benchEnvironment(_ backend: Backend) -> ResultsStore.Environment {
  var system = utsname()
  uname(&system)
  func text<T>(_ field: T) -> String { withUnsafeBytes(of: field) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) } }
  let driver = (backend as? OpenCLBackend).map { "\($0.device.platformVersion); driver \($0.device.driverVersion)" } ?? "none (CPU backend)"
  return ResultsStore.Environment(
    host: ProcessInfo.processInfo.hostName, os: "\(text(system.sysname)) \(text(system.release)) \(text(system.machine))", backend: backend.name,
    device: backend.name, driver: driver, version: AdvPrune.configuration.version, commit: gitCommit())
}

/// The commit of the checkout the executable was built in, when it was built in one.
func gitCommit() -> String {
  let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
  let process = Process()
  process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
  process.arguments = ["git", "-C", executable.path, "rev-parse", "--short", "HEAD"]
  let pipe = Pipe()
  process.standardOutput = pipe
  process.standardError = FileHandle.nullDevice
  guard (try? process.run()) != nil else { return "unknown" }
  process.waitUntilExit()
  let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
  return process.terminationStatus == 0 && !out.isEmpty ? out : "unknown"
}
