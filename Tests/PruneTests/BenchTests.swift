import Foundation
import GPU
import XCTest

@testable import Prune

/// The benchmark grid: config checking, cell identity, the results store, resume, shards, merge and
/// the report, on a grid small enough for a test (SmallCNN on 64 Fashion-MNIST images).
final class BenchTests: XCTestCase {
  static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

  /// Two after-training methods at two sparsities, a dense model, every kind of evaluation.
  static let tinyGrid = """
    name = "tiny"
    seeds = [0]
    [data]
    train_limit = 64
    [train]
    architectures = ["smallcnn"]
    epochs = 1
    steps = 2
    batch_size = 32
    [prune]
    sparsities = [0.5, 0.8]
    finetune_epochs = 1
    [[method]]
    name = "lwm"
    locality = "global"
    [[method]]
    criterion = "random"
    locality = "local"
    label = "random local"
    [evaluate]
    points = 16
    batch_size = 16
    pgd_steps = 2
    autoattack = "none"
    curve_steps = 5
    attacks = ["fgsm"]
    """

  func environment() -> ResultsStore.Environment {
    .init(host: "test", os: "test", backend: "cpu", device: "cpu", driver: "none", version: "test", commit: "test")
  }

  func testTheBundledConfigsParseAndPlanTheirGrids() throws {
    for (file, dense) in [("smoke", 1), ("fashion-mnist-smallcnn", 1), ("cifar10-resnet18", 1), ("cifar10-vgg16", 1)] {
      let config = try BenchConfig.load(path: "\(Self.packageRoot)/bench/\(file).toml")
      let plan = try BenchPlan(config)
      XCTAssertEqual(plan.cells.filter { $0.spec.kind == .dense }.count, dense * config.seeds.count, file)
      XCTAssertGreaterThan(plan.cells.count, 2, file)
      if file != "smoke" {
        let named = Set(plan.cells.compactMap(\.spec.method?.name))
        XCTAssertEqual(named, Set(PruningMethods.names + TrainingMethods.names), "\(file) names every implemented method")
      }
      // Every after-training cell's dense model is planned before it.
      for (i, cell) in plan.cells.enumerated() where cell.spec.kind == .after {
        XCTAssertTrue(plan.cells[..<i].contains { $0.id == cell.spec.parent }, file)
      }
    }
    let smoke = try BenchPlan(try BenchConfig.load(path: "\(Self.packageRoot)/bench/smoke.toml"))
    XCTAssertEqual(smoke.cells.count, 5)
    XCTAssertEqual(Set(smoke.cells.compactMap(\.spec.method?.name)), ["lwm", "hydra"])
  }

  func testACellsIdentityIsStableAndFollowsWhatDeterminesIt() throws {
    let a = try BenchPlan(try BenchConfig.parse(Self.tinyGrid, path: "a.toml"))
    let b = try BenchPlan(try BenchConfig.parse(Self.tinyGrid, path: "b.toml"))
    XCTAssertEqual(a.cells.map(\.id), b.cells.map(\.id))
    XCTAssertEqual(Set(a.cells.map(\.id)).count, a.cells.count)
    // A label is for the report only; an epoch more is another model.
    let relabelled = try BenchPlan(try BenchConfig.parse(Self.tinyGrid.replacingOccurrences(of: "random local\"", with: "rnd\""), path: "c.toml"))
    XCTAssertEqual(relabelled.cells.map(\.id), a.cells.map(\.id))
    XCTAssertEqual(Set(a.cells.map(\.title)).intersection(["random local", "rnd"]), ["random local"], "the label is the title")
    XCTAssertEqual(Set(relabelled.cells.map(\.title)).intersection(["random local", "rnd"]), ["rnd"])
    let longer = try BenchPlan(
      try BenchConfig.parse(Self.tinyGrid.replacingOccurrences(of: "epochs = 1\nsteps", with: "epochs = 2\nsteps"), path: "d.toml"))
    XCTAssertTrue(Set(longer.cells.map(\.id)).isDisjoint(with: a.cells.map(\.id)))
    // A cell's evaluations are keyed by every setting.
    XCTAssertEqual(
      a.cells[0].evaluations.map(\.key), ["pgd-2 linf eps 0.1 n 16 seed 0", "fmn-5 linf eps 0.1 n 16 seed 0", "fgsm-1 linf eps 0.1 n 16 seed 0"])
    // Fewer targets for the targeted attacks: in their keys and plans only.
    let targeted = try BenchPlan(
      try BenchConfig.parse(Self.tinyGrid.replacingOccurrences(of: "[\"fgsm\"]", with: "[\"fgsm\", \"apgd-t\"]\ntargets = 3"), path: "e.toml"))
    XCTAssertEqual(
      targeted.cells[0].evaluations.map(\.key).suffix(2), ["fgsm-1 linf eps 0.1 n 16 seed 0", "apgd-t-100 linf eps 0.1 n 16 seed 0 targets 3"])
    XCTAssertEqual(targeted.cells[0].evaluations.last?.plan.targets, 3)
    // Shards split the cells without overlap.
    let shards = (1...3).map { a.shard($0, of: 3).map(\.id) }
    XCTAssertEqual(Set(shards.flatMap { $0 }), Set(a.cells.map(\.id)))
    XCTAssertEqual(shards.map(\.count).reduce(0, +), a.cells.count)
  }

  func testBadConfigsNameTheLineAndTheKey() throws {
    func refusal(_ text: String) -> String {
      do {
        _ = try BenchConfig.parse(text, path: "grid.toml")
        return "accepted"
      } catch {
        return "\(error)"
      }
    }
    let unknownKey = refusal(Self.tinyGrid.replacingOccurrences(of: "steps = 2", with: "steps = 2\nepoch = 3"))
    XCTAssertTrue(unknownKey.hasPrefix("grid.toml:9: train.epoch: unknown key"), unknownKey)
    let unknownMethod = refusal(Self.tinyGrid.replacingOccurrences(of: "name = \"lwm\"", with: "name = \"lwn\""))
    XCTAssertTrue(unknownMethod.hasPrefix("grid.toml:14: method.name: 'lwn': unknown"), unknownMethod)
    let badOption = refusal(Self.tinyGrid.replacingOccurrences(of: "name = \"lwm\"", with: "name = \"harp\"\ngamma = -1"))
    XCTAssertTrue(badOption.hasPrefix("grid.toml:15: method.gamma: '-1"), badOption)
    let otherMethodsOption = refusal(Self.tinyGrid.replacingOccurrences(of: "name = \"lwm\"", with: "name = \"lwm\"\nrho = 0.1"))
    XCTAssertTrue(otherMethodsOption.contains("method.rho") && otherMethodsOption.contains("radmm"), otherMethodsOption)
    let wrongType = refusal(Self.tinyGrid.replacingOccurrences(of: "points = 16", with: "points = \"many\""))
    XCTAssertTrue(wrongType.hasPrefix("grid.toml:") && wrongType.contains("evaluate.points: expected a whole number"), wrongType)
    let badSparsity = refusal(Self.tinyGrid.replacingOccurrences(of: "[0.5, 0.8]", with: "[0.5, 1.5]"))
    XCTAssertTrue(badSparsity.contains("prune.sparsities: 1.5 is not in (0, 1)"), badSparsity)
    let badAttack = refusal(Self.tinyGrid.replacingOccurrences(of: "[\"fgsm\"]", with: "[\"fgsm\", \"autoattack\"]"))
    XCTAssertTrue(badAttack.hasPrefix("grid.toml:26: evaluate.attacks: 'autoattack': expected fgsm"), badAttack)
    let targets = refusal(Self.tinyGrid.replacingOccurrences(of: "[\"fgsm\"]", with: "[\"fgsm\"]\ntargets = 12"))
    XCTAssertTrue(targets.contains("evaluate.targets: 12: at most 9"), targets)
    let syntax = refusal("name = \"x\"\n[train\nepochs = 1\n")
    XCTAssertTrue(syntax.hasPrefix("grid.toml:2: syntax:"), syntax)
    XCTAssertTrue(refusal("name = \"x\"\n").contains("no [[method]] tables"))
    // Found by scripts/fuzz.sh in TOMLKit's toml++ (process aborts): one-line errors here.
    for text in ["[[[", "a = [}", "[a]]", "[]", "[a b]", "[a.]"] {
      XCTAssertTrue(refusal("name = \"x\"\n\(text)\n").hasPrefix("grid.toml:2: syntax: "), text)
    }
  }

  func testTheTOMLReaderReadsTOMLAndNamesTheLineOfEveryError() throws {
    let text = #"""
      # comment
      title = "a \"quoted\" \u00e9 string"   # trailing comment
      literal = 'C:\path'
      ints = [1, -2, +3, 1_000, 0x1F, 0o17, 0b101]
      floats = [0.5, -1e-3, 2E2, 6.02e+23, inf, -inf]
      flag = true
      nested = [[1, 2], ["a"], [],]
      multi = """
      line one
      line two\
         joined"""
      raw = '''
      keep \n'''
      dotted.key = 3
      inline = { a = 1, b.c = "x" }
      [server]
      port = 80
      [server.tls]
      on = false
      [[method]]
      name = "lwm"
      [[method]]
      name = "hydra"
      [method.options]
      gamma = 2
      """#
    let t = try TOMLReader.parse(text)
    XCTAssertEqual(t["title"]?.string, "a \"quoted\" é string")
    XCTAssertEqual(t["literal"]?.string, #"C:\path"#)
    XCTAssertEqual(t["ints"]?.array?.compactMap(\.int), [1, -2, 3, 1000, 31, 15, 5])
    XCTAssertEqual(t["floats"]?.array?.compactMap(\.double), [0.5, -1e-3, 200, 6.02e23, .infinity, -.infinity])
    XCTAssertEqual(t["flag"]?.bool, true)
    XCTAssertEqual(t["nested"]?.array?.count, 3)
    XCTAssertEqual(t["multi"]?.string, "line one\nline twojoined")
    XCTAssertEqual(t["raw"]?.string, #"keep \n"#)
    XCTAssertEqual(t["dotted"]?.table?["key"]?.int, 3)
    XCTAssertEqual(t["inline"]?.table?["b"]?.table?["c"]?.string, "x")
    XCTAssertEqual(t["server"]?.table?["tls"]?.table?["on"]?.bool, false)
    let methods = t["method"]?.array?.compactMap(\.table) ?? []
    XCTAssertEqual(methods.map { $0["name"]?.string }, ["lwm", "hydra"])
    XCTAssertEqual(methods[1]["options"]?.table?["gamma"]?.int, 2)
    XCTAssertEqual(t.lines["flag"], 6)
    XCTAssertEqual(methods[1].line, 22)

    func error(_ text: String) -> String {
      do {
        _ = try TOMLReader.parse(text)
        return "accepted"
      } catch let e as TOMLSyntaxError {
        return "\(e.line): \(e.message)"
      } catch {
        return "\(error)"
      }
    }
    XCTAssertEqual(error("a = 1\na = 2"), "2: the key 'a' is set twice")
    XCTAssertEqual(error("[t]\nx = 1\n[t]"), "3: the table 't' is defined twice")
    XCTAssertEqual(error("a = \"open\nb = 1"), "1: a string is not closed on its line")
    XCTAssertEqual(error("a = 1979-05-27"), "1: '1979-05-27': dates and times are not used in advprune configs")
    XCTAssertEqual(error("a = hello"), "1: 'hello' is not a value (strings need quotes)")
    XCTAssertEqual(error("a = 1 b = 2"), "1: expected the end of the line, found 'b'")
    XCTAssertEqual(error("a = 01"), "1: '01' is not a value (strings need quotes)")
    XCTAssertEqual(error("a = 1\na.b = 2"), "2: 'a' is already a value, not a table")
    XCTAssertEqual(error("x = [" + String(repeating: "[", count: 100)), "1: values nested deeper than 64")
    XCTAssertEqual(error("a = 99999999999999999999"), "1: '99999999999999999999' is not a value (strings need quotes)")
    XCTAssertTrue(error("x = { a = 1,\n b = 2 }").hasPrefix("1: "), error("x = { a = 1,\n b = 2 }"))
  }

  func testTheStoreRefusesAnotherSchemaAForeignDatabaseAndASecondWriter() throws {
    let dir = try temporaryDirectory(self)
    let path = dir + "/r.sqlite"
    _ = try ResultsStore(path: path)
    let raw = try SQLiteDatabase(path: path)
    try raw.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    XCTAssertThrowsError(try ResultsStore(path: path)) { error in
      XCTAssertTrue("\(error)".contains("schema version 99"), "\(error)")
    }
    let foreign = dir + "/foreign.sqlite"
    try SQLiteDatabase(path: foreign).execute("CREATE TABLE photos(id INTEGER)")
    XCTAssertThrowsError(try ResultsStore(path: foreign)) { error in
      XCTAssertTrue("\(error)".contains("not an advprune results database"), "\(error)")
    }
    let text = dir + "/text.sqlite"
    try "hello".write(toFile: text, atomically: true, encoding: .utf8)
    XCTAssertThrowsError(try ResultsStore(path: text)) { error in XCTAssertTrue("\(error)".contains("text.sqlite"), "\(error)") }
    let lock = try RunLock(database: dir + "/s.sqlite")
    XCTAssertTrue(RunLock.isHeld(database: dir + "/s.sqlite"))
    XCTAssertThrowsError(try RunLock(database: dir + "/s.sqlite")) { error in
      XCTAssertTrue("\(error)".contains("another advprune bench run is writing it"), "\(error)")
    }
    withExtendedLifetime(lock) {}
  }

  func testAGridRunsResumesShardsMergesAndReports() throws {
    _ = try FashionMNISTFixture.directory()
    let dir = try temporaryDirectory(self)
    let config = try BenchConfig.parse(Self.tinyGrid, path: "tiny.toml")
    let backend = CPUBackend()
    func run(_ db: String, shard: Shard? = nil) throws -> BenchRunner.Summary {
      try BenchRunner(config: config, database: db, checkpoints: dir + "/ckpt", shard: shard, environment: environment())
        .run(backend: backend, progress: SilentProgress()) { _ in }
    }
    let all = dir + "/all.sqlite"
    let first = try run(all)
    XCTAssertEqual(first.cells, 5)
    XCTAssertEqual(first.finished, 5)
    XCTAssertEqual(first.failed, 0)
    // Everything is there: a second run does nothing.
    XCTAssertEqual(try run(all).skipped, 5)

    // A run killed after a cell's model but before one of its evaluations redoes only that evaluation.
    let store = try ResultsStore(path: all)
    let cell = try BenchPlan(config).cells[2]
    let modelFinished = try store.query("SELECT finished FROM models WHERE cell = ?", [.text(cell.id)])[0]["finished"]
    try store.query("DELETE FROM metrics WHERE cell = ? AND evaluation LIKE 'fmn%'", [.text(cell.id)])
    let resumed = try run(all)
    XCTAssertEqual(resumed.finished, 1)
    XCTAssertEqual(resumed.skipped, 4)
    XCTAssertEqual(try store.query("SELECT finished FROM models WHERE cell = ?", [.text(cell.id)])[0]["finished"], modelFinished)
    let status = try BenchStatus.read(config: config, database: all, shard: nil)
    XCTAssertEqual(status.done, 5)
    XCTAssertEqual(status.left, 0)

    // Two shards merged give the same table as the unsharded run; merging again adds nothing.
    let shardDBs = [dir + "/s1.sqlite", dir + "/s2.sqlite"]
    XCTAssertEqual(try run(shardDBs[0], shard: try Shard(parsing: "1/2")).failed, 0)
    XCTAssertEqual(try run(shardDBs[1], shard: try Shard(parsing: "2/2")).failed, 0)
    let merged = dir + "/merged.sqlite"
    _ = try BenchMerge.merge(shardDBs, into: merged)
    let again = try BenchMerge.merge(shardDBs, into: merged)
    XCTAssertEqual(again.added.values.reduce(0, +), 0)
    func table(_ db: String) throws -> String {
      // Times differ between runs; everything else must not.
      try BenchReport(database: db).csv().split(separator: "\n").map {
        $0.split(separator: ",", omittingEmptySubsequences: false).dropLast(2).joined(separator: ",")
      }
      .joined(separator: "\n")
    }
    XCTAssertEqual(try table(merged), try table(all))
    XCTAssertEqual(try table(all).split(separator: "\n").count, 1 + 5 * 3)

    // The report: the leaderboard's rows, its plots, Markdown and CSV.
    let report = try BenchReport(database: all)
    XCTAssertEqual(report.data.rows.count, 5)
    let files = try report.write(to: dir + "/report")
    let html = try String(contentsOfFile: files[0], encoding: .utf8)
    XCTAssertEqual(html.components(separatedBy: "<tr class=\"row").count - 1, 5)
    XCTAssertTrue(html.contains("random local") && html.contains("lwm global"))
    XCTAssertTrue(files.contains { $0.hasSuffix("curves-fashion-mnist-smallcnn-50.svg") })
    XCTAssertTrue(files.contains { $0.hasSuffix("layers-fashion-mnist-smallcnn-80.svg") })
    for file in files.dropFirst() { XCTAssertTrue(html.contains((file as NSString).lastPathComponent), file) }
    XCTAssertFalse(html.contains("http://") || html.contains("https://"), "the page must work offline")
    XCTAssertEqual(report.markdown().split(separator: "\n").filter { $0.hasPrefix("| A/") || $0.hasPrefix("| dense") }.count, 5)
    // The global-vs-local question is answerable: lwm global vs random local is not a pair, so it says what is missing.
    let answers = SurveyQuestions.answers(report.data.rows)
    XCTAssertTrue(answers.contains { $0.question.contains("global or local") && $0.answer.hasPrefix("not answerable") })

    // A new label is shown at once; the cells stay done.
    let relabelled = try BenchConfig.parse(Self.tinyGrid.replacingOccurrences(of: "random local\"", with: "rnd\""), path: "tiny.toml")
    let rerun = try BenchRunner(config: relabelled, database: all, checkpoints: dir + "/ckpt", shard: nil, environment: environment())
      .run(backend: backend, progress: SilentProgress()) { _ in }
    XCTAssertEqual(rerun.skipped, 5)
    XCTAssertTrue(try BenchReport(database: all).markdown().contains("| rnd |"))
  }

  /// A device lost mid-grid (injected on OpenCL) stops the run with the device named and its row
  /// saying why; the cells finished before it are kept, and the same command on a healthy device
  /// finishes the grid with the table of a run that was never interrupted.
  func testADeviceLostMidGridStopsTheRunAndKeepsFinishedCells() throws {
    _ = try FashionMNISTFixture.directory()
    let device = try OpenCLFixture.backend().device
    let dir = try temporaryDirectory(self)
    let config = try BenchConfig.parse(Self.tinyGrid, path: "tiny.toml")
    func run(_ name: String, on backend: OpenCLBackend) throws -> BenchRunner.Summary {
      try BenchRunner(config: config, database: "\(dir)/\(name).sqlite", checkpoints: "\(dir)/\(name).ckpt", shard: nil, environment: environment())
        .run(backend: backend, progress: SilentProgress()) { _ in }
    }
    let healthy = try OpenCLBackend(device: device)
    XCTAssertEqual(try run("straight", on: healthy).finished, 5)
    let failing = try OpenCLBackend(device: device)
    failing.failLaunchesAfter = healthy.launches / 2
    XCTAssertThrowsError(try run("lost", on: failing)) { error in
      XCTAssert("\(error)".contains("OpenCL device \(device.name)") && "\(error)".contains("was lost"), "\(error)")
    }
    let store = try ResultsStore(path: dir + "/lost.sqlite")
    XCTAssertGreaterThan(try store.query("SELECT count(*) AS n FROM models")[0]["n"].int ?? 0, 0, "cells finished before the fault are kept")
    XCTAssert(try store.query("SELECT status FROM runs")[0]["status"].text?.hasPrefix("stopped: OpenCL device") == true)
    let again = try run("lost", on: try OpenCLBackend(device: device))
    XCTAssertEqual(again.failed, 0)
    XCTAssertGreaterThan(again.skipped + again.finished, 0)
    func table(_ name: String) throws -> [String] {
      try BenchReport(database: "\(dir)/\(name).sqlite").csv().split(separator: "\n").map {
        $0.split(separator: ",", omittingEmptySubsequences: false).dropLast(2).joined(separator: ",")
      }
    }
    XCTAssertEqual(try table("lost"), try table("straight"))
  }

  func testTheSlurmScriptRunsOneShardPerArrayTask() {
    var script = SlurmScript(config: "bench/full.toml", shards: 8, databasePrefix: "out/results", executable: "/opt/advprune")
    script.device = "opencl"
    let text = script.text
    XCTAssertTrue(text.hasPrefix("#!/bin/bash\n"))
    XCTAssertTrue(text.contains("#SBATCH --array=1-8\n"))
    XCTAssertTrue(text.contains("#SBATCH --gres=gpu:1\n"))
    XCTAssertTrue(
      text.contains(
        "/opt/advprune bench run bench/full.toml --db out/results-\"$shard\".sqlite --shard \"$shard\"/8 --checkpoints out/results.checkpoints --device opencl\n"
      ), text)
    XCTAssertTrue(text.contains("bench merge out/results-*.sqlite --into out/results.sqlite"))
    XCTAssertEqual(shellQuoted("a b'c"), "'a b'\\''c'")
  }
}
