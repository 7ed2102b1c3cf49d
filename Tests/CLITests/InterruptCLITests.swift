import Foundation
import XCTest

/// `advprune train` stopped for real: SIGKILL at several moments, and SIGTERM.
extension CLITests {
  func trainArguments(_ out: String) -> [String] {
    ["train", "--train-limit", "256", "--epochs", "2", "--steps", "2", "--batch-size", "32", "--device", "cpu", "--quiet", "--out", out]
  }

  /// Starts `advprune` and sends `signal` once `ready` holds (polled), or after `timeout`.
  func runAndSignal(_ arguments: [String], signal: Int32, after ready: () -> Bool, timeout: Double = 60) throws -> (Process, String) {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    let err = Pipe()
    process.standardOutput = FileHandle.nullDevice
    process.standardError = err
    try process.run()
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && !ready() && Date() < deadline { usleep(20_000) }
    kill(process.processIdentifier, signal)
    let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return (process, stderr)
  }

  func testTrainingKilledAtSeveralPointsResumesBitForBit() throws {
    _ = try requireData()
    let dir = try scratch()
    let straight = try advprune(trainArguments(dir + "/straight.safetensors"))
    XCTAssertEqual(straight.status, 0, straight.stderr)
    let reference = try Data(contentsOf: URL(fileURLWithPath: dir + "/straight.safetensors"))
    // Kill points: as soon as a checkpoint exists, and after further delays (mid-epoch, between
    // epochs, maybe inside a checkpoint write: the write is atomic, so any of them is safe).
    for (k, delay) in [0.0, 0.4, 1.2, 2.5].enumerated() {
      let out = dir + "/killed-\(k).safetensors"
      var firstSeen: Date?
      let (killed, _) = try runAndSignal(trainArguments(out) + ["--checkpoint-every", "1"], signal: SIGKILL) {
        if firstSeen == nil && FileManager.default.fileExists(atPath: out) { firstSeen = Date() }
        return firstSeen.map { Date().timeIntervalSince($0) >= delay } ?? false
      }
      XCTAssertFalse(killed.isRunning)
      let resumed = try advprune(trainArguments(out) + ["--resume"])
      XCTAssertEqual(resumed.status, 0, "kill point \(k): \(resumed.stderr)")
      XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out)), reference, "kill point \(k): the resumed run differs")
    }
  }

  func testSIGTERMCheckpointsTheStepAndExits143() throws {
    _ = try requireData()
    let dir = try scratch()
    _ = try advprune(trainArguments(dir + "/straight.safetensors"))
    let out = dir + "/stopped.safetensors"
    let (stopped, stderr) = try runAndSignal(trainArguments(out), signal: SIGTERM) { FileManager.default.fileExists(atPath: out) }
    XCTAssertEqual(stopped.terminationStatus, 143, stderr)
    XCTAssertTrue(stderr.contains("stopped by SIGTERM after epoch") && stderr.contains("--resume"), stderr)
    let resumed = try advprune(trainArguments(out) + ["--resume"])
    XCTAssertEqual(resumed.status, 0, resumed.stderr)
    XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out)), try Data(contentsOf: URL(fileURLWithPath: dir + "/straight.safetensors")))
  }

  /// `prune` stopped for real: SIGTERM while fine-tuning (exit 143 with the resume command),
  /// SIGKILL while fine-tuning, and SIGKILL inside HYDRA's score phase; each `--resume` ends with
  /// the bytes of an uninterrupted run.
  func testPruneStoppedForRealResumesToTheSameBytes() throws {
    _ = try requireData()
    let dir = try scratch()
    let dense = dir + "/dense.safetensors"
    XCTAssertEqual(try advprune(trainArguments(dense)).status, 0)
    func prune(_ method: String, _ out: String) -> [String] {
      [
        "prune", dense, "--method", method, "--sparsity", "0.8", "--finetune-epochs", method == "lwm" ? "3" : "1", "--train-limit", "256",
        "--steps", "2", "--batch-size", "32", "--device", "cpu", "--quiet", "--checkpoint-every", "2", "--out", out,
      ] + (method == "hydra" ? ["--prune-epochs", "3"] : [])
    }
    for (method, signal) in [("lwm", SIGTERM), ("lwm", SIGKILL), ("hydra", SIGKILL)] {
      let reference = dir + "/\(method)-straight.safetensors"
      if !FileManager.default.fileExists(atPath: reference) {
        let straight = try advprune(prune(method, reference))
        XCTAssertEqual(straight.status, 0, straight.stderr)
      }
      let out = dir + "/\(method)-stopped-\(signal).safetensors"
      var seen: Date?
      let (stopped, stderr) = try runAndSignal(prune(method, out), signal: signal) {
        if seen == nil && FileManager.default.fileExists(atPath: out) { seen = Date() }
        return seen.map { Date().timeIntervalSince($0) > 0.5 } ?? false
      }
      if signal == SIGTERM {
        XCTAssertEqual(stopped.terminationStatus, 143, stderr)
        XCTAssertTrue(stderr.contains("stopped by SIGTERM") && stderr.contains("--resume"), stderr)
      }
      if method == "hydra" {
        let meta = try String(contentsOfFile: out, encoding: .isoLatin1)
        XCTAssert(meta.contains("\"prune_epochs\"") && !meta.contains("\"finetune_epochs\""), "killed inside the score phase")
      }
      let resumed = try advprune(prune(method, out) + ["--resume"])
      XCTAssertEqual(resumed.status, 0, resumed.stderr)
      XCTAssertEqual(
        try Data(contentsOf: URL(fileURLWithPath: out)), try Data(contentsOf: URL(fileURLWithPath: reference)),
        "\(method) \(signal): the resumed run differs")
    }
  }
}
