import Foundation
import XCTest

/// `advprune bench` and `advprune report` as a user runs them, a real SIGKILL included.
extension CLITests {
  static let tinyGrid = """
    name = "tiny"
    [data]
    train_limit = 64
    [train]
    epochs = 1
    steps = 2
    batch_size = 32
    [prune]
    sparsities = [0.5, 0.8]
    [[method]]
    name = "lwm"
    locality = "global"
    [evaluate]
    points = 16
    pgd_steps = 2
    autoattack = "none"
    curve_steps = 5
    """

  /// The table of a database without its timing columns (the last two), which differ between runs.
  func resultTable(_ db: String, in dir: String) throws -> String {
    let csv = dir + "/\(UUID().uuidString).csv"
    let run = try advprune(["report", db, "--csv", csv])
    XCTAssertEqual(run.status, 0, run.stderr)
    return try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n")
      .map { $0.split(separator: ",", omittingEmptySubsequences: false).dropLast(2).joined(separator: ",") }.joined(separator: "\n")
  }

  /// Two shards started together that share a checkpoint directory race for the dense model both
  /// need: it is trained once (the other waits on its lock, then reuses it), and the merged shards
  /// give the table of one unsharded run.
  func testTwoShardsRacingForOneDenseModelTrainItOnce() throws {
    _ = try requireData()
    let dir = try scratch()
    let config = dir + "/tiny.toml"
    try Self.tinyGrid.write(toFile: config, atomically: true, encoding: .utf8)
    XCTAssertEqual(try advprune(["bench", "run", config, "--db", dir + "/whole.sqlite", "--device", "cpu", "--quiet"]).status, 0)
    let shards = (1...2).map { i -> (Process, Pipe) in
      let process = Process()
      process.executableURL = executable
      process.arguments = [
        "bench", "run", config, "--db", dir + "/shard\(i).sqlite", "--checkpoints", dir + "/shared", "--shard", "\(i)/2", "--device", "cpu",
      ]
      let err = Pipe()
      process.standardOutput = FileHandle.nullDevice
      process.standardError = err
      return (process, err)
    }
    for (process, _) in shards { try process.run() }
    let logs = shards.map { process, out in
      let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
      process.waitUntilExit()
      XCTAssertEqual(process.terminationStatus, 0, text)
      return text
    }
    XCTAssert(logs.allSatisfy { $0.contains("  trained ") }, "both shards need the dense model: \(logs)")
    let trainings = logs.joined().components(separatedBy: "trained 1 epochs").count - 1
    XCTAssertEqual(trainings, 1, "the dense model is trained once: \(logs)")
    let merged = try advprune(["bench", "merge", dir + "/shard1.sqlite", dir + "/shard2.sqlite", "--into", dir + "/merged.sqlite"])
    XCTAssertEqual(merged.status, 0, merged.stderr)
    XCTAssertEqual(try resultTable(dir + "/merged.sqlite", in: dir), try resultTable(dir + "/whole.sqlite", in: dir))
  }

  func testABenchRunKilledMidwayResumesToTheSameResults() throws {
    _ = try requireData()
    let dir = try scratch()
    let config = dir + "/tiny.toml"
    try Self.tinyGrid.write(toFile: config, atomically: true, encoding: .utf8)
    let whole = try advprune(["bench", "run", config, "--db", dir + "/whole.sqlite", "--device", "cpu", "--quiet"])
    XCTAssertEqual(whole.status, 0, whole.stderr)
    XCTAssertTrue(whole.stdout.contains("3 cells, 3 finished now"), whole.stdout)

    // SIGKILL once the dense model's checkpoint exists: mid-cell, between steps or inside one.
    let killed = Process()
    killed.executableURL = executable
    killed.arguments = ["bench", "run", config, "--db", dir + "/killed.sqlite", "--device", "cpu", "--quiet"]
    killed.standardOutput = FileHandle.nullDevice
    killed.standardError = FileHandle.nullDevice
    try killed.run()
    let checkpoints = dir + "/killed.checkpoints"
    let deadline = Date().addingTimeInterval(120)
    while Date() < deadline {
      let files = (try? FileManager.default.contentsOfDirectory(atPath: checkpoints)) ?? []
      if files.contains(where: { $0.hasPrefix("after-") || $0.hasPrefix("dense-") && $0.hasSuffix(".safetensors") }) { break }
      usleep(50_000)
    }
    kill(killed.processIdentifier, SIGKILL)
    killed.waitUntilExit()
    XCTAssertEqual(killed.terminationReason, .uncaughtSignal, "the run finished before it could be killed")

    let status = try advprune(["bench", "status", config, "--db", dir + "/killed.sqlite"])
    XCTAssertEqual(status.status, 0, status.stderr)
    XCTAssertFalse(status.stdout.contains("3 done"), status.stdout)
    let resumed = try advprune(["bench", "run", config, "--db", dir + "/killed.sqlite", "--device", "cpu", "--quiet"])
    XCTAssertEqual(resumed.status, 0, resumed.stderr)
    XCTAssertEqual(try resultTable(dir + "/killed.sqlite", in: dir), try resultTable(dir + "/whole.sqlite", in: dir))
    let after = try advprune(["bench", "status", config, "--db", dir + "/killed.sqlite", "--json"])
    let object = try JSONSerialization.jsonObject(with: Data(after.stdout.utf8)) as? [String: Any]
    XCTAssertEqual(object?["done"] as? Int, 3)

    // Merging a database into another twice adds it once.
    let first = try advprune(["bench", "merge", dir + "/whole.sqlite", "--into", dir + "/all.sqlite"])
    XCTAssertEqual(first.status, 0, first.stderr)
    let second = try advprune(["bench", "merge", dir + "/whole.sqlite", "--into", dir + "/all.sqlite"])
    XCTAssertTrue(second.stdout.contains("added nothing"), second.stdout)
    XCTAssertEqual(try resultTable(dir + "/all.sqlite", in: dir), try resultTable(dir + "/whole.sqlite", in: dir))
  }

  func testBenchStoppedBySIGTERMSaysSoAndRunsOnLater() throws {
    _ = try requireData()
    let dir = try scratch()
    let config = dir + "/tiny.toml"
    try Self.tinyGrid.write(toFile: config, atomically: true, encoding: .utf8)
    XCTAssertEqual(try advprune(["bench", "run", config, "--db", dir + "/whole.sqlite", "--device", "cpu", "--quiet"]).status, 0)
    let arguments = ["bench", "run", config, "--db", dir + "/stopped.sqlite", "--device", "cpu", "--quiet"]
    let (stopped, stderr) = try runAndSignal(arguments, signal: SIGTERM) {
      !((try? FileManager.default.contentsOfDirectory(atPath: dir + "/stopped.checkpoints")) ?? []).isEmpty
    }
    XCTAssertEqual(stopped.terminationStatus, 143, stderr)
    XCTAssertTrue(stderr.contains("stopped by SIGTERM") && stderr.contains("the same bench run command"), stderr)
    XCTAssertEqual(try advprune(arguments).status, 0)
    XCTAssertEqual(try resultTable(dir + "/stopped.sqlite", in: dir), try resultTable(dir + "/whole.sqlite", in: dir))
  }

  /// A disk that fills up mid-run: one line, exit 2, and a database that still opens. Needs a
  /// small tmpfs (root); skips where mounting is not allowed.
  func testBenchOnAFullDiskStopsWithOneLineAndAnIntactDatabase() throws {
    _ = try requireData()
    let dir = try scratch()
    let small = dir + "/small"
    try FileManager.default.createDirectory(atPath: small, withIntermediateDirectories: true)
    let mount = Process()
    mount.executableURL = URL(fileURLWithPath: "/bin/mount")
    mount.arguments = ["-t", "tmpfs", "-o", "size=600k", "tmpfs", small]
    mount.standardError = FileHandle.nullDevice
    var mounted = (try? mount.run()) != nil
    if mounted {
      mount.waitUntilExit()
      mounted = mount.terminationStatus == 0
    }
    guard mounted else {
      // CI runs as root and sets ADVPRUNE_REQUIRE_TMPFS=1: there the test must not skip.
      if ProcessInfo.processInfo.environment["ADVPRUNE_REQUIRE_TMPFS"] == "1" {
        XCTFail("ADVPRUNE_REQUIRE_TMPFS=1 but a small tmpfs cannot be mounted here")
        return
      }
      throw XCTSkip("cannot mount a small tmpfs here (needs root): the full-disk case is not tested")
    }
    defer {
      let umount = Process()
      umount.executableURL = URL(fileURLWithPath: "/bin/umount")
      umount.arguments = [small]
      try? umount.run()
      umount.waitUntilExit()
    }
    let config = dir + "/tiny.toml"
    try Self.tinyGrid.write(toFile: config, atomically: true, encoding: .utf8)
    let run = try advprune(["bench", "run", config, "--db", small + "/r.sqlite", "--device", "cpu", "--quiet"])
    assertUserError(run, mentions: ["No space left on device"])
    let status = try advprune(["bench", "status", config, "--db", small + "/r.sqlite"])
    XCTAssertEqual(status.status, 0, status.stderr)
    XCTAssertTrue(status.stdout.contains("0 done"), status.stdout)
  }

  func testBenchRefusesBadConfigsAndDatabasesInOneLine() throws {
    let dir = try scratch()
    let config = dir + "/grid.toml"
    try Self.tinyGrid.replacingOccurrences(of: "pgd_steps = 2", with: "pgd_step = 2").write(toFile: config, atomically: true, encoding: .utf8)
    assertUserError(
      try advprune(["bench", "run", config, "--db", dir + "/r.sqlite"]), mentions: ["grid.toml:15", "evaluate.pgd_step", "unknown key"])
    assertUserError(try advprune(["bench", "status", dir + "/missing.toml"]), mentions: ["missing.toml", "cannot read"])
    try Self.tinyGrid.write(toFile: config, atomically: true, encoding: .utf8)
    try "not a database".write(toFile: dir + "/text.sqlite", atomically: true, encoding: .utf8)
    assertUserError(
      try advprune(["bench", "run", config, "--db", dir + "/text.sqlite", "--device", "cpu"]), mentions: ["text.sqlite", "not an SQLite database"])
    assertUserError(try advprune(["bench", "run", config, "--db", dir + "/no/such/dir/r.sqlite", "--device", "cpu"]), mentions: ["does not exist"])
    assertUserError(try advprune(["bench", "run", config, "--shard", "3/2"]), mentions: ["--shard", "3/2"])
    assertUserError(try advprune(["report", dir + "/none.sqlite", "--out", dir + "/report"]), mentions: ["none.sqlite", "no such results database"])
    let slurm = try advprune(["bench", "slurm", config, "--shards", "4", "--gpus", "0"])
    XCTAssertEqual(slurm.status, 0, slurm.stderr)
    XCTAssertTrue(slurm.stdout.contains("#SBATCH --array=1-4") && !slurm.stdout.contains("--gres"), slurm.stdout)
  }
}
