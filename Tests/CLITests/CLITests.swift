import Foundation
import XCTest

/// The `advprune` executable, run as a user runs it: exit codes, stdout/stderr, files left behind.
final class CLITests: XCTestCase {
  struct Run {
    let status: Int32
    let stdout: String
    let stderr: String
  }

  /// The binary next to the test bundle, in the same build products directory.
  var executable: URL {
    var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("advprune").path) && dir.path != "/" {
      dir = dir.deletingLastPathComponent()
    }
    return dir.appendingPathComponent("advprune")
  }

  func advprune(_ arguments: [String], environment: [String: String] = [:]) throws -> Run {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let (out, err) = (Pipe(), Pipe())
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return Run(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self), stderr: String(decoding: errData, as: UTF8.self))
  }

  func scratch() throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("advprune-cli-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
    return dir
  }

  func requireData() throws -> String {
    let dir = "/usr/share/datasets/fashion-mnist"
    if FileManager.default.fileExists(atPath: dir + "/t10k-images-idx3-ubyte.gz") { return dir }
    if ProcessInfo.processInfo.environment["ADVPRUNE_REQUIRE_DATA"] == "1" { XCTFail("Fashion-MNIST missing at \(dir)") }
    throw XCTSkip("Fashion-MNIST not installed")
  }

  func assertUserError(_ run: Run, mentions: [String], file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(run.status, 2, "exit status; stderr: \(run.stderr)", file: file, line: line)
    let lines = run.stderr.split(separator: "\n").filter { !$0.hasPrefix("device:") }
    XCTAssertEqual(lines.count, 1, "one error line expected: \(run.stderr)", file: file, line: line)
    for m in mentions { XCTAssert(run.stderr.contains(m), "stderr should mention '\(m)': \(run.stderr)", file: file, line: line) }
    XCTAssertFalse(run.stderr.contains("Fatal error"), file: file, line: line)
  }

  func testHelpListsEverySubcommand() throws {
    let run = try advprune(["--help"])
    XCTAssertEqual(run.status, 0)
    for sub in [
      "devices", "validate", "bench-kernel", "train", "prune", "attack", "demo", "profile", "predict", "export", "models", "taxonomy", "bench",
      "report",
    ] {
      XCTAssert(run.stdout.contains(sub), sub)
    }
  }

  /// The device line names the CPU loops' copy; ADVPRUNE_CPU_ISA picks a lower one, and a value
  /// it does not know is said, not silently dropped.
  func testTheDeviceLineNamesTheCPUCopyAndABadRequestIsSaid() throws {
    let args = ["profile", "--device", "cpu", "--batch-size", "2", "--batches", "1", "--warmup", "0", "--steps", "1", "--json"]
    let baseline = try advprune(args, environment: ["ADVPRUNE_CPU_ISA": "baseline"])
    XCTAssertEqual(baseline.status, 0, baseline.stderr)
    XCTAssert(baseline.stderr.contains("device: cpu backend, baseline x86-64 loops"), baseline.stderr)
    let typo = try advprune(args, environment: ["ADVPRUNE_CPU_ISA": "avx3"])
    XCTAssertEqual(typo.status, 0, typo.stderr)
    XCTAssert(typo.stderr.contains("ADVPRUNE_CPU_ISA=avx3 is not baseline, avx2 or avx512"), typo.stderr)
  }

  /// `profile --sparsity` times PGD-AT of a masked model (pruned first), and refuses a share
  /// outside [0, 1).
  func testProfileTimesAMaskedModel() throws {
    let run = try advprune([
      "profile", "--device", "cpu", "--batch-size", "2", "--batches", "1", "--warmup", "0", "--steps", "1", "--sparsity", "0.9",
    ])
    XCTAssertEqual(run.status, 0, run.stderr)
    XCTAssert(run.stdout.contains("smallcnn (90 % pruned, masked)"), run.stdout)
    assertUserError(try advprune(["profile", "--device", "cpu", "--sparsity", "1"]), mentions: ["--sparsity"])
  }

  func testSparseCrossoverTimesEveryLayerAtEveryDensity() throws {
    let run = try advprune(["profile", "--sparse-crossover", "--batch-size", "2", "--device", "cpu", "--json"])
    XCTAssertEqual(run.status, 0, run.stderr)
    let object = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
    let rows = object?["rows"] as? [[String: Any]] ?? []
    XCTAssertEqual(rows.compactMap { $0["layer"] as? String }, ["conv1", "conv2", "conv3", "conv4", "fc1", "fc2", "fc3"])
    for row in rows { XCTAssertEqual((row["sparseMilliseconds"] as? [Double])?.count, 6, "\(row)") }
    // conv2 reads a 26x26 plane for 24x24 outputs: 25 % scaled by 576 / 676.
    XCTAssertEqual(rows[1]["crossover"] as? Double ?? 0, 0.25 * 576 / 676, accuracy: 1e-12)
    XCTAssertEqual(object?["crossoverDensity"] as? Double, 0.25)
    assertUserError(try advprune(["profile", "--sparse-crossover", "--batch-size", "0", "--device", "cpu"]), mentions: ["--batch-size"])
  }

  func testDevicesJSONIsOneObject() throws {
    let run = try advprune(["devices", "--json"])
    XCTAssertEqual(run.status, 0, run.stderr)
    let object = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
    XCTAssertEqual((object?["backends"] as? [String])?.first, "cpu")
  }

  func testValidatePassesOnOpenCL() throws {
    let run = try advprune(["validate", "--device", "opencl", "--json"])
    if run.status == 2 && ProcessInfo.processInfo.environment["ADVPRUNE_REQUIRE_OPENCL"] != "1" {
      throw XCTSkip("no OpenCL device: \(run.stderr)")
    }
    XCTAssertEqual(run.status, 0, run.stdout + run.stderr)
    let object = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
    XCTAssertEqual(object?["passed"] as? Bool, true)
    XCTAssertGreaterThan((object?["ops"] as? [Any])?.count ?? 0, 10)
  }

  /// On the CPU, validate checks the backend's fast paths (Winograd) against its reference loops.
  func testValidatePassesOnTheCPU() throws {
    let run = try advprune(["validate", "--device", "cpu", "--json"])
    XCTAssertEqual(run.status, 0, run.stdout + run.stderr)
    let object = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
    XCTAssertEqual(object?["device"] as? String, "cpu")
    XCTAssertEqual(object?["passed"] as? Bool, true)
    XCTAssertGreaterThan((object?["ops"] as? [Any])?.count ?? 0, 10)
  }

  /// The workbench validates both engines against the CPU reference and reports rates as JSON.
  func testBenchKernelValidatesAndTimesBothEngines() throws {
    let run = try advprune([
      "bench-kernel", "conv-backward-data", "--models", "smallcnn", "--batch", "2", "--repeats", "1", "--device", "opencl", "--json",
    ])
    XCTAssertEqual(run.status, 0, run.stdout + run.stderr)
    let object = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
    let results = object?["results"] as? [[String: Any]] ?? []
    XCTAssertEqual(results.count, 8, "4 SmallCNN convs x 2 engines")
    XCTAssertEqual(Set(results.compactMap { $0["variant"] as? String }), ["native", "clblast"])
    for r in results {
      XCTAssertEqual(r["passed"] as? Bool, true, "\(r)")
      XCTAssertGreaterThan(r["gflops"] as? Double ?? 0, 0)
    }
    XCTAssertGreaterThan(object?["peakGflops"] as? Double ?? 0, 0)
    assertUserError(try advprune(["bench-kernel", "conv", "--device", "opencl"]), mentions: ["conv"])
    assertUserError(try advprune(["bench-kernel", "--variant", "fast", "--device", "opencl"]), mentions: ["fast"])
    assertUserError(try advprune(["bench-kernel", "--set", "pix=3", "--device", "opencl"]), mentions: ["pix=3"])
    assertUserError(try advprune(["bench-kernel", "--set", "tm=17", "--device", "opencl"]), mentions: ["tm=17", "multiple of 16"])
    assertUserError(try advprune(["bench-kernel", "--device", "cpu"]), mentions: ["--device"])
  }

  /// `profile --kernels` times every kernel and transfer from events read after the batch, names
  /// each convolution by shape and pass with its GFLOP/s, and covers CLBlast's calls whole.
  func testProfileKernelsSeesConvolutionsTransfersAndCLBlast() throws {
    for engine in ["native", "clblast"] {
      let run = try advprune([
        "profile", "--device", "opencl", "--batch-size", "2", "--steps", "1", "--batches", "1", "--warmup", "0", "--kernels", "--engine", engine,
        "--json",
      ])
      XCTAssertEqual(run.status, 0, run.stderr)
      let object = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
      let rows = object?["kernels"] as? [[String: Any]] ?? []
      let names = rows.compactMap { $0["name"] as? String }
      XCTAssert(names.contains("transfer: device -> host"), "\(names)")
      let gemmLike = rows.filter { ($0["name"] as? String ?? "").hasPrefix(engine == "native" ? "winograd_gemm fwd C32 26x26->32" : "clblast_sgemm") }
      XCTAssertFalse(gemmLike.isEmpty, "\(engine): \(names)")
      XCTAssertGreaterThan(gemmLike.first?["gflops"] as? Double ?? 0, 0)
    }
    // --set compiles the kernels with other tunables: without Winograd the 3x3 layers run on the implicit GEMM.
    let run = try advprune([
      "profile", "--device", "opencl", "--batch-size", "2", "--steps", "1", "--batches", "1", "--warmup", "0", "--kernels", "--set", "winograd=0",
      "--json",
    ])
    XCTAssertEqual(run.status, 0, run.stderr)
    let object = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
    let names = (object?["kernels"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
    XCTAssert(names.contains("conv_igemm fwd C32 26x26->32 k3s1"), "\(names)")
    XCTAssertFalse(names.contains { $0.hasPrefix("winograd") }, "\(names)")
    assertUserError(try advprune(["profile", "--device", "opencl", "--set", "pix=3"]), mentions: ["pix=3"])
    assertUserError(try advprune(["profile", "--device", "cpu", "--set", "pix=4"]), mentions: ["--set", "opencl"])
  }

  func testBadInputsGiveOneLineAndExitTwo() throws {
    let dir = try scratch()
    assertUserError(try advprune(["attack", dir + "/missing.safetensors", "--device", "cpu"]), mentions: ["missing.safetensors"])
    let corrupt = dir + "/corrupt.safetensors"
    try Data([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]).write(to: URL(fileURLWithPath: corrupt))
    assertUserError(try advprune(["attack", corrupt, "--device", "cpu"]), mentions: ["corrupt.safetensors"])
    let out = dir + "/never.safetensors"
    assertUserError(try advprune(["train", "--arch", "resnet99", "--out", out, "--device", "cpu"]), mentions: ["resnet99"])
    assertUserError(try advprune(["train", "--dataset", "imagenet", "--out", out, "--device", "cpu"]), mentions: ["imagenet"])
    assertUserError(try advprune(["train", "--data-dir", dir, "--out", out, "--device", "cpu"]), mentions: [dir])
    assertUserError(try advprune(["prune", corrupt, "--sparsity", "1.5", "--out", out, "--device", "cpu"]), mentions: ["--sparsity", "1.5"])
    assertUserError(try advprune(["train", "--out", out, "--device", "tpu"]), mentions: ["tpu"])
    assertUserError(try advprune(["export", corrupt, "--compact", "--out", out, "--device", "cpu"]), mentions: ["corrupt.safetensors"])
    assertUserError(
      try advprune(["train", "--dataset", "svhn", "--arch", "resnet18", "--data-dir", dir, "--out", out, "--device", "cpu"]),
      mentions: ["train_32x32.mat", "housenumbers"])
    // A malformed command line is bad input too: exit 2, ArgumentParser's message and usage.
    for arguments in [["prune", corrupt, "--structure", "blocky", "--sparsity", "0.5", "--out", out], ["attack"], ["frobnicate"]] {
      let run = try advprune(arguments)
      XCTAssertEqual(run.status, 2, "\(arguments): \(run.stderr)")
      XCTAssert(run.stderr.contains("Error:") && !run.stderr.contains("Fatal error"), run.stderr)
    }
    let svhn = try scratch()
    try Data(Array("MATLAB 5.0 MAT-file".utf8) + [UInt8](repeating: 0x20, count: 107) + Array("IM".utf8) + [14, 0, 0, 0, 0, 1, 0, 0])
      .write(to: URL(fileURLWithPath: svhn + "/train_32x32.mat"))
    assertUserError(
      try advprune(["train", "--dataset", "svhn", "--arch", "resnet18", "--data-dir", svhn, "--out", out, "--device", "cpu"]),
      mentions: ["train_32x32.mat", "truncated"])
    XCTAssertFalse(FileManager.default.fileExists(atPath: out), "a failed command left an output file")
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).sorted(), ["corrupt.safetensors"], "no partial or temporary files")
  }

  func testTaxonomyListsTheSurveysMethodsAndWhatRuns() throws {
    let run = try advprune(["taxonomy", "--json"])
    XCTAssertEqual(run.status, 0, run.stderr)
    let rows = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [[String: Any]])
    XCTAssertEqual(rows.count, 26)
    let implemented = rows.filter { $0["run"] is String }.compactMap { $0["name"] as? String }.sorted()
    XCTAssertEqual(implemented, ["FlyingBird", "HARP", "HYDRA", "Li20", "R-ADMM", "RST", "RobustBird", "TwinRep"])
    XCTAssertEqual(rows.first { $0["name"] as? String == "FlyingBird" }?["run"] as? String, "advprune train --method flyingbird --sparsity S")
    XCTAssertEqual(rows.first { $0["name"] as? String == "HARP" }?["cell"] as? String, "A/U,S/G/lis")
    let text = try advprune(["taxonomy"])
    XCTAssert(text.stdout.contains("FlyingBird") && text.stdout.contains("--method hydra"), text.stdout)
  }

  /// A learned-score method through the CLI on a slice of the real data, and its bad input.
  func testPruneWithANamedMethod() throws {
    let data = try requireData()
    let dir = try scratch()
    let dense = dir + "/dense.safetensors"
    let out = dir + "/harp.safetensors"
    let train = try advprune(["train", "--data-dir", data, "--train-limit", "64", "--epochs", "1", "--steps", "1", "--out", dense, "--device", "cpu"])
    XCTAssertEqual(train.status, 0, train.stderr)
    let run = try advprune([
      "prune", dense, "--method", "harp", "--sparsity", "0.9", "--prune-epochs", "1", "--finetune-epochs", "1", "--train-limit", "64", "--steps",
      "1", "--out", out, "--device", "cpu", "--json",
    ])
    XCTAssertEqual(run.status, 0, run.stderr)
    let result = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
    XCTAssertEqual(result["cell"] as? String, "A/U/G/lis")
    XCTAssertEqual(result["sparsity"] as? Double ?? 0, 0.9, accuracy: 1e-4)
    XCTAssertEqual((result["pruneEpochs"] as? [Any])?.count, 1)
    let base = ["prune", dense, "--sparsity", "0.9", "--out", dir + "/never.safetensors", "--device", "cpu"]
    assertUserError(try advprune(base + ["--method", "obd"]), mentions: ["--method", "obd"])
    assertUserError(try advprune(base + ["--method", "harp", "--gamma", "big"]), mentions: ["--gamma", "big"])
    assertUserError(try advprune(base + ["--method", "hydra", "--rho", "0.1"]), mentions: ["--rho", "radmm"])
    assertUserError(try advprune(base + ["--method", "hydra", "--structure", "kernels"]), mentions: ["--structure", "kernels"])
    assertUserError(try advprune(base + ["--criterion", "lamp", "--locality", "local"]), mentions: ["lamp"])
    assertUserError(try advprune(base + ["--method", "lwm", "--prune-epochs", "2"]), mentions: ["--prune-epochs"])
    XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/never.safetensors"))
  }

  /// Pruning while training through the CLI, and its bad input.
  func testTrainWithADuringTrainingMethod() throws {
    let data = try requireData()
    let dir = try scratch()
    let out = dir + "/gmp.safetensors"
    let base = ["train", "--data-dir", data, "--train-limit", "64", "--steps", "1", "--device", "cpu"]
    let run = try advprune(base + ["--method", "gmp", "--sparsity", "0.75", "--epochs", "2", "--prune-every", "1", "--out", out, "--json"])
    XCTAssertEqual(run.status, 0, run.stderr)
    let result = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
    XCTAssertEqual(result["cell"] as? String, "D/U/L/lwm")
    XCTAssertEqual(result["sparsity"] as? Double ?? 0, 0.75, accuracy: 1e-4)
    let never = dir + "/never.safetensors"
    assertUserError(try advprune(base + ["--method", "hydra", "--sparsity", "0.9", "--out", never]), mentions: ["hydra", "advprune prune"])
    assertUserError(
      try advprune(base + ["--method", "gmp", "--sparsity", "0.9", "--epochs", "2", "--prune-end", "3", "--out", never]), mentions: ["--prune-end"])
    assertUserError(
      try advprune(base + ["--method", "flyingbird", "--sparsity", "0.9", "--death-rate", "half", "--out", never]), mentions: ["--death-rate"])
    assertUserError(try advprune(base + ["--death-rate", "0.3", "--out", never]), mentions: ["--death-rate", "--method"])
    assertUserError(try advprune(base + ["--method", "gmp", "--out", never]), mentions: ["--sparsity"])
    XCTAssertFalse(FileManager.default.fileExists(atPath: never))
  }

  func testCorruptDatasetFileIsNamed() throws {
    let dir = try scratch()
    for name in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"] {
      try Data([0, 0, 8, 3, 0, 0, 0, 9]).write(to: URL(fileURLWithPath: "\(dir)/\(name)"))
    }
    let out = dir + "/m.safetensors"
    let run = try advprune(["train", "--data-dir", dir, "--out", out, "--device", "cpu", "--epochs", "1"])
    assertUserError(run, mentions: ["train-images-idx3-ubyte"])
    XCTAssertFalse(FileManager.default.fileExists(atPath: out))
  }

  /// train -> prune -> attack on a slice of the real data, through the CLI, with --json.
  func testTrainPruneAttackEndToEnd() throws {
    let data = try requireData()
    let dir = try scratch()
    let dense = dir + "/dense.safetensors"
    let pruned = dir + "/pruned.safetensors"
    let log = dir + "/log.jsonl"
    let train = try advprune([
      "train", "--data-dir", data, "--train-limit", "256", "--epochs", "1", "--steps", "2", "--log-json", log, "--test-limit", "40", "--out", dense,
      "--device", "cpu", "--json",
    ])
    XCTAssertEqual(train.status, 0, train.stderr)
    let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
    XCTAssertEqual(lines.count, 1)
    XCTAssertEqual((try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])?["holdout_points"] as? Int, 40)
    let trained = try JSONSerialization.jsonObject(with: Data(train.stdout.utf8)) as? [String: Any]
    XCTAssertEqual(trained?["trainImages"] as? Int, 256)
    let prune = try advprune([
      "prune", dense, "--sparsity", "0.9", "--locality", "local", "--finetune-epochs", "1", "--train-limit", "128", "--steps", "2", "--out", pruned,
      "--device", "cpu", "--json",
    ])
    XCTAssertEqual(prune.status, 0, prune.stderr)
    let p = try JSONSerialization.jsonObject(with: Data(prune.stdout.utf8)) as? [String: Any]
    XCTAssertEqual(p?["sparsity"] as? Double ?? 0, 0.9, accuracy: 0.001)
    let attack = try advprune(["attack", pruned, "--test-limit", "50", "--steps", "3", "--device", "cpu", "--json"])
    XCTAssertEqual(attack.status, 0, attack.stderr)
    let a = try JSONSerialization.jsonObject(with: Data(attack.stdout.utf8)) as? [String: Any]
    let evaluation = a?["evaluation"] as? [String: Any]
    XCTAssertEqual(evaluation?["points"] as? Int, 50)
    XCTAssertLessThanOrEqual(evaluation?["robustCorrect"] as? Int ?? 99, evaluation?["cleanCorrect"] as? Int ?? -1)
    try assertEvaluationCommands(checkpoint: pruned, directory: dir)
    try assertPyTorchSemanticsAgree(checkpoint: pruned, dataDirectory: data)
  }

  /// The ensemble with per-point output, eps 0, FMN, and the attack command's bad input.
  func assertEvaluationCommands(checkpoint: String, directory: String) throws {
    let perPoint = directory + "/points.json"
    let ensemble = try advprune([
      "attack", checkpoint, "--attack", "autoattack", "--version", "fast", "--steps", "4", "--targets", "2", "--n", "30", "--per-point", perPoint,
      "--device", "cpu", "--json",
    ])
    XCTAssertEqual(ensemble.status, 0, ensemble.stderr)
    let evaluation = (try JSONSerialization.jsonObject(with: Data(ensemble.stdout.utf8)) as? [String: Any])?["evaluation"] as? [String: Any]
    let robust = evaluation?["robustAccuracy"] as? Double ?? -1
    XCTAssertEqual(evaluation?["robustCorrect"] as? Int ?? -1, Int((robust * 30).rounded()), "accuracies are fractions")
    XCTAssertEqual((evaluation?["stages"] as? [[String: Any]])?.compactMap { $0["name"] as? String }, ["apgd-ce", "apgd-t"])
    let points = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: perPoint))) as? [String: Any]
    let flags = points?["robust"] as? [Bool] ?? []
    XCTAssertEqual(flags.count, 30)
    XCTAssertEqual(flags.filter { $0 }.count, evaluation?["robustCorrect"] as? Int)
    let zero = try advprune(["attack", checkpoint, "--attack", "apgd-ce", "--eps", "0", "--steps", "3", "--n", "30", "--device", "cpu", "--json"])
    XCTAssertEqual(zero.status, 0, zero.stderr)
    let z = (try JSONSerialization.jsonObject(with: Data(zero.stdout.utf8)) as? [String: Any])?["evaluation"] as? [String: Any]
    XCTAssertEqual(z?["robustAccuracy"] as? Double, z?["cleanAccuracy"] as? Double, "eps 0 gives exactly the clean accuracy")
    let fmn = try advprune([
      "attack", checkpoint, "--attack", "fmn", "--norm", "l2", "--eps", "1", "--steps", "10", "--n", "20", "--device", "cpu", "--json",
    ])
    XCTAssertEqual(fmn.status, 0, fmn.stderr)
    let m = (try JSONSerialization.jsonObject(with: Data(fmn.stdout.utf8)) as? [String: Any])?["minimumNorm"] as? [String: Any]
    XCTAssertEqual(m?["points"] as? Int, 20)
    XCTAssertEqual(m?["norm"] as? String, "l2")
    assertUserError(try advprune(["attack", checkpoint, "--eps=-0.1", "--device", "cpu"]), mentions: ["--eps", "-0.1"])
    assertUserError(try advprune(["attack", checkpoint, "--eps", "1.5", "--device", "cpu"]), mentions: ["--eps", "1.5"])
    assertUserError(try advprune(["attack", checkpoint, "--n", "20000", "--device", "cpu"]), mentions: ["--n", "20000"])
    assertUserError(try advprune(["attack", checkpoint, "--attack", "pgd", "--norm", "l1", "--device", "cpu"]), mentions: ["--norm", "l1"])
    for arguments in [["--attack", "cw"], ["--version", "turbo"], ["--norm", "l3"]] {
      let run = try advprune(["attack", checkpoint, "--device", "cpu"] + arguments)
      XCTAssertEqual(run.status, 2, "\(arguments): \(run.stderr)")
      XCTAssert(run.stderr.contains(arguments[1]), run.stderr)
    }
  }

  /// ResNet18 (narrow) on a CIFAR-10 directory written in the published binary layout:
  /// TRADES training with augmentation and batch norm, filter pruning, compaction, attack — the
  /// survey's pipeline end to end.
  func testResNet18OnCIFAR10Files() throws {
    let dir = try scratch()
    var rng = SystemRandomNumberGenerator()
    for name in (1...5).map({ "data_batch_\($0).bin" }) + ["test_batch.bin"] {
      var bytes: [UInt8] = []
      for r in 0..<8 {
        bytes.append(UInt8(r % 10))
        bytes += (0..<3072).map { _ in UInt8.random(in: 0...255, using: &rng) }
      }
      try Data(bytes).write(to: URL(fileURLWithPath: dir + "/" + name))
    }
    let dense = dir + "/r.safetensors"
    let train = try advprune([
      "train", "--dataset", "cifar10", "--data-dir", dir, "--arch", "resnet18", "--width", "0.125", "--adv", "trades", "--epochs", "1", "--steps",
      "1", "--batch-size", "16", "--lr-schedule", "cosine", "--out", dense, "--device", "cpu", "--json",
    ])
    XCTAssertEqual(train.status, 0, train.stderr)
    let pruned = dir + "/p.safetensors"
    let prune = try advprune([
      "prune", dense, "--structure", "structured", "--sparsity", "0.5", "--finetune-epochs", "1", "--steps", "1", "--data-dir", dir, "--out", pruned,
      "--device", "cpu", "--json",
    ])
    XCTAssertEqual(prune.status, 0, prune.stderr)
    let groups = (try JSONSerialization.jsonObject(with: Data(prune.stdout.utf8)) as? [String: Any])?["groups"] as? [[String: Any]] ?? []
    XCTAssertEqual(groups.count, 12, "4 residual streams + 8 block-internal groups")
    let compact = dir + "/c.safetensors"
    let export = try advprune(["export", pruned, "--compact", "--out", compact, "--device", "cpu", "--json"])
    XCTAssertEqual(export.status, 0, export.stderr)
    let e = try JSONSerialization.jsonObject(with: Data(export.stdout.utf8)) as? [String: Any] ?? [:]
    XCTAssertLessThan(e["parametersAfter"] as? Int ?? .max, (e["parametersBefore"] as? Int ?? 0))
    XCTAssertLessThan(e["macsAfter"] as? Int ?? .max, (e["macsBefore"] as? Int ?? 0))
    let attack = try advprune(["attack", compact, "--data-dir", dir, "--n", "8", "--steps", "2", "--device", "cpu", "--json", "--sparse", "on"])
    XCTAssertEqual(attack.status, 0, attack.stderr)
    let attackJSON = try JSONSerialization.jsonObject(with: Data(attack.stdout.utf8)) as? [String: Any]
    XCTAssertEqual(attackJSON?["path"] as? String, "sparse", "--sparse on computes every layer sparse")
    // predict --kernels: the timed pass's kernels, the sparse ones among them.
    let profiled = try advprune(["predict", compact, "--data-dir", dir, "--n", "8", "--device", "opencl", "--sparse", "on", "--kernels", "--json"])
    if profiled.status == 2 && ProcessInfo.processInfo.environment["ADVPRUNE_REQUIRE_OPENCL"] != "1" {
      print("no OpenCL device, predict --kernels not tested: \(profiled.stderr)")
    } else {
      XCTAssertEqual(profiled.status, 0, profiled.stderr)
      let report = try JSONSerialization.jsonObject(with: Data(profiled.stdout.utf8)) as? [String: Any]
      XCTAssertEqual((report?["predict"] as? [String: Any])?["path"] as? String, "sparse")
      let names = (report?["kernels"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
      XCTAssert(names.contains { $0.hasPrefix("sparse_") } && names.contains("transfer: device -> host"), "\(names)")
      // On a CPU device (the grid form) the activations stay on the grid from the stem on.
      if names.contains("sparse_grid_rows") {
        XCTAssertEqual((report?["predict"] as? [String: Any])?["gridRuns"] as? Int, 1)
        XCTAssert(names.contains("sparse_grid_ends"), "\(names)")
      }
    }
    let evaluation = attackJSON?["evaluation"] as? [String: Any]
    XCTAssert((evaluation?["attack"] as? String ?? "").contains("eps 0.031"), "CIFAR-10's default eps is 8/255: \(evaluation ?? [:])")
    // The whole L2 ensemble (Square L2 on three channels) and a curve with its AutoAttack marker.
    let ensemble = try advprune([
      "attack", compact, "--data-dir", dir, "--n", "8", "--attack", "autoattack", "--norm", "l2", "--eps", "0.5", "--steps", "2", "--targets", "1",
      "--queries", "5", "--device", "cpu", "--json",
    ])
    XCTAssertEqual(ensemble.status, 0, ensemble.stderr)
    let stages = ((try JSONSerialization.jsonObject(with: Data(ensemble.stdout.utf8)) as? [String: Any])?["evaluation"] as? [String: Any])?["stages"]
    XCTAssertEqual((stages as? [[String: Any]])?.compactMap { $0["name"] as? String }, ["apgd-ce", "apgd-t", "fab-t", "square"])
    let svg = dir + "/curve.svg"
    let curve = try advprune([
      "curve", dense, compact, "--data-dir", dir, "--n", "8", "--steps", "5", "--no-tune", "--autoattack", "fast", "--out", svg, "--csv",
      dir + "/curve.csv",
      "--device", "cpu", "--json",
    ])
    XCTAssertEqual(curve.status, 0, curve.stderr)
    XCTAssert(try String(contentsOfFile: svg, encoding: .utf8).contains("<svg"))
    XCTAssertEqual(try String(contentsOfFile: dir + "/curve.csv", encoding: .utf8).split(separator: "\n").first?.split(separator: ",").count, 3)
    assertUserError(try advprune(["curve", dense, "--data-dir", dir, "--norm", "l2", "--out", svg, "--device", "cpu"]), mentions: ["--eps", "l2"])
    assertUserError(try advprune(["curve", dense, "--data-dir", dir, "--out", dir + "/missing/c.svg", "--device", "cpu"]), mentions: ["missing"])
    try assertTorchLoadsResNet18(checkpoint: compact, cifarDirectory: dir)
  }

  /// A state_dict saved by PyTorch (no advprune metadata, int64 BN counters) is used as it is once
  /// the architecture is named.
  func testPyTorchFileNeedsOnlyTheArchitecture() throws {
    let data = try requireData()
    let dir = try scratch()
    let ours = dir + "/ours.safetensors"
    let train = try advprune([
      "train", "--data-dir", data, "--train-limit", "64", "--epochs", "1", "--adv", "none", "--out", ours, "--device", "cpu", "--quiet",
    ])
    XCTAssertEqual(train.status, 0, train.stderr)
    // Rewrite it as PyTorch's save_file would: same tensors, no metadata, no momentum buffers.
    let bytes = try Data(contentsOf: URL(fileURLWithPath: ours))
    let headerLength = bytes.prefix(8).withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
    var header = try JSONSerialization.jsonObject(with: bytes.subdata(in: 8..<(8 + headerLength))) as! [String: Any]
    header.removeValue(forKey: "__metadata__")
    for key in header.keys where key.hasSuffix("_momentum") { header.removeValue(forKey: key) }
    let newHeader = try JSONSerialization.data(withJSONObject: header)
    var length = UInt64(newHeader.count).littleEndian
    let torch = dir + "/torch.safetensors"
    var out = Data(bytes: &length, count: 8)
    out.append(newHeader)
    out.append(bytes.subdata(in: (8 + headerLength)..<bytes.count))
    try out.write(to: URL(fileURLWithPath: torch))
    let without = try advprune(["attack", torch, "--dataset", "fashion-mnist", "--data-dir", data, "--n", "20", "--device", "cpu"])
    assertUserError(without, mentions: ["torch.safetensors", "--arch"])
    let with = try advprune([
      "attack", torch, "--arch", "smallcnn", "--dataset", "fashion-mnist", "--data-dir", data, "--n", "20", "--steps", "2", "--device", "cpu",
      "--json",
    ])
    XCTAssertEqual(with.status, 0, with.stderr)
    let wrong = try advprune([
      "attack", torch, "--arch", "resnet18", "--dataset", "fashion-mnist", "--data-dir", data, "--n", "20", "--device", "cpu",
    ])
    assertUserError(wrong, mentions: ["torch.safetensors", "does not fit resnet18"])
  }

  /// Logits of `advprune predict` on the first `n` test images.
  func predictedLogits(_ checkpoint: String, n: Int, _ extra: [String] = []) throws -> [[Double]] {
    let predict = try advprune(["predict", checkpoint, "--n", "\(n)", "--device", "cpu", "--json"] + extra)
    XCTAssertEqual(predict.status, 0, predict.stderr)
    return (try JSONSerialization.jsonObject(with: Data(predict.stdout.utf8)) as? [String: Any])?["logits"] as? [[Double]] ?? []
  }

  /// Runs a script of Tests/interop with python3.
  func interop(_ script: String, _ arguments: [String]) throws -> (status: Int32, stdout: Data, stderr: String) {
    let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("interop/" + script).path
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", path] + arguments
    let (out, err) = (Pipe(), Pipe())
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return (process.terminationStatus, data, errors)
  }

  func assertSameLogits(_ ours: [[Double]], _ reference: Data, count: Int, file: StaticString = #filePath, line: UInt = #line) throws {
    let theirs = try JSONSerialization.jsonObject(with: reference) as? [[Double]] ?? []
    XCTAssertEqual(ours.count, count, file: file, line: line)
    XCTAssertEqual(theirs.count, count, file: file, line: line)
    for (a, b) in zip(ours.joined(), theirs.joined()) { XCTAssertEqual(a, b, accuracy: 1e-4 + 1e-4 * abs(b), file: file, line: line) }
  }

  /// PyTorch itself (where python3 has torch) loads the file strictly into a CIFAR ResNet18 built
  /// with the metadata's channel counts and gives our logits.
  func assertTorchLoadsResNet18(checkpoint: String, cifarDirectory: String) throws {
    let ours = try predictedLogits(checkpoint, n: 8, ["--data-dir", cifarDirectory])
    let run = try interop("torch_resnet18_check.py", [checkpoint, cifarDirectory, "8"])
    if run.status == 3 {
      if ProcessInfo.processInfo.environment["ADVPRUNE_REQUIRE_TORCH"] == "1" { return XCTFail("ADVPRUNE_REQUIRE_TORCH=1 but python3 has no torch") }
      throw XCTSkip("python3 has no torch: the PyTorch load check of a compacted ResNet18 did not run")
    }
    XCTAssertEqual(run.status, 0, run.stderr)
    try assertSameLogits(ours, run.stdout, count: 8)
  }

  /// `advprune predict` against the numpy transcription of PyTorch's SmallCNN forward
  /// (Tests/interop/smallcnn_reference.py): same logits, so a PyTorch user gets our model.
  func assertPyTorchSemanticsAgree(checkpoint: String, dataDirectory: String) throws {
    let ours = try predictedLogits(checkpoint, n: 20)
    let run = try interop("smallcnn_reference.py", [checkpoint, dataDirectory, "20"])
    guard run.status == 0 else {
      if ProcessInfo.processInfo.environment["ADVPRUNE_REQUIRE_NUMPY"] == "1" { return XCTFail("python3 with numpy is required: \(run.stderr)") }
      throw XCTSkip("python3 with numpy unavailable")
    }
    try assertSameLogits(ours, run.stdout, count: 20)
  }
}
