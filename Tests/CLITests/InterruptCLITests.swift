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

  /// `prune` stopped by SIGTERM while fine-tuning: exit 143 with the resume command, and `--resume`
  /// ends with the bytes of an uninterrupted run; SIGKILL mid-fine-tuning, the same.
  func testPruneStoppedWhileFineTuningResumesToTheSameBytes() throws {
    _ = try requireData()
    let dir = try scratch()
    let dense = dir + "/dense.safetensors"
    XCTAssertEqual(try advprune(trainArguments(dense)).status, 0)
    func prune(_ out: String) -> [String] {
      [
        "prune", dense, "--method", "lwm", "--sparsity", "0.8", "--finetune-epochs", "3", "--train-limit", "256", "--steps", "2", "--batch-size",
        "32", "--device", "cpu", "--quiet", "--checkpoint-every", "2", "--out", out,
      ]
    }
    let straight = try advprune(prune(dir + "/straight.safetensors"))
    XCTAssertEqual(straight.status, 0, straight.stderr)
    let reference = try Data(contentsOf: URL(fileURLWithPath: dir + "/straight.safetensors"))
    for (signal, status) in [(SIGTERM, Int32(143)), (SIGKILL, Int32(9))] {
      let out = dir + "/stopped-\(signal).safetensors"
      var seen: Date?
      let (stopped, stderr) = try runAndSignal(prune(out), signal: signal) {
        if seen == nil && FileManager.default.fileExists(atPath: out) { seen = Date() }
        return seen.map { Date().timeIntervalSince($0) > 0.5 } ?? false
      }
      if signal == SIGTERM {
        XCTAssertEqual(stopped.terminationStatus, status, stderr)
        XCTAssertTrue(stderr.contains("stopped by SIGTERM") && stderr.contains("--resume"), stderr)
      }
      let resumed = try advprune(prune(out) + ["--resume"])
      XCTAssertEqual(resumed.status, 0, resumed.stderr)
      XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out)), reference, "signal \(signal): the resumed run differs")
    }
  }
}
