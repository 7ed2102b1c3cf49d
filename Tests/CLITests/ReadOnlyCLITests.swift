import Foundation
import XCTest

/// A read-only output directory, before the work and in the middle of it: one line naming the
/// file, exit 2, and what was finished kept. Root writes anywhere, so when the tests run as root
/// (CI) the child runs as `nobody` through `setpriv`.
extension CLITests {
  /// The command line prefix that runs `advprune` as a user whom directory permissions bind.
  func unprivileged() throws -> [String] {
    guard getuid() == 0 else { return [executable.path] }
    guard FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else {
      if ProcessInfo.processInfo.environment["ADVPRUNE_REQUIRE_READONLY"] == "1" {
        XCTFail("ADVPRUNE_REQUIRE_READONLY=1 but /usr/bin/setpriv is missing (util-linux)")
      }
      throw XCTSkip("running as root without setpriv: a read-only directory cannot be tested")
    }
    return ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", executable.path]
  }

  func directory(_ path: String, mode: Int) throws {
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
  }

  func testAReadOnlyDirectoryStopsWithOneLineAndKeepsFinishedWork() throws {
    _ = try requireData()
    let command = try unprivileged()
    let dir = try scratch()
    try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir)
    try directory(dir + "/ro", mode: 0o555)
    func start(_ arguments: [String]) throws -> (Process, Pipe) {
      let process = Process()
      process.executableURL = URL(fileURLWithPath: command[0])
      process.arguments = Array(command.dropFirst()) + arguments
      let err = Pipe()
      process.standardOutput = FileHandle.nullDevice
      process.standardError = err
      try process.run()
      return (process, err)
    }
    func finish(_ process: Process, _ err: Pipe) -> Run {
      let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
      process.waitUntilExit()
      return Run(status: process.terminationStatus, stdout: "", stderr: stderr)
    }
    func run(_ arguments: [String]) throws -> Run {
      let (process, err) = try start(arguments)
      return finish(process, err)
    }

    // Refused before any work: train's checkpoint, bench's database.
    assertUserError(try run(trainArguments(dir + "/ro/m.safetensors")), mentions: ["ro/m.safetensors", "Permission denied"])
    let config = dir + "/tiny.toml"
    try Self.tinyGrid.write(toFile: config, atomically: true, encoding: .utf8)
    assertUserError(
      try run(["bench", "run", config, "--db", dir + "/ro/r.sqlite", "--device", "cpu", "--quiet"]), mentions: ["ro/r.", "permission"])
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/ro"), [], "nothing half-written")

    // Made read-only mid-run, once the first epoch's checkpoint exists.
    try directory(dir + "/rw", mode: 0o777)
    let out = dir + "/rw/m.safetensors"
    let fourEpochs = [
      "train", "--train-limit", "256", "--epochs", "4", "--steps", "2", "--batch-size", "32", "--device", "cpu", "--quiet", "--out", out,
    ]
    let (process, err) = try start(fourEpochs)
    let deadline = Date().addingTimeInterval(120)
    while process.isRunning && !FileManager.default.fileExists(atPath: out) && Date() < deadline { usleep(20_000) }
    try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: dir + "/rw")
    let stopped = finish(process, err)
    try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir + "/rw")
    assertUserError(stopped, mentions: ["m.safetensors", "Permission denied"])
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/rw"), ["m.safetensors"], "no temporary file left")
    let resumed = try advprune(fourEpochs + ["--resume", "--json"])
    XCTAssertEqual(resumed.status, 0, resumed.stderr)
    XCTAssert(resumed.stdout.contains("\"resumedFromEpoch\" : 1"), "continues after the kept epoch: \(resumed.stdout)")
  }
}
