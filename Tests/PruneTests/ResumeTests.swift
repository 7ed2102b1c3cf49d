import GPU
import XCTest

@testable import Prune

final class ResumeTests: XCTestCase {
  func job(_ dir: String, epochs: Int, out: String) throws -> TrainJob {
    let config = TrainConfig(
      epochs: epochs, batchSize: 64, sgd: SGDHyper(learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4, nesterov: true),
      attack: PGDConfig(eps: 0.1, alpha: 0.025, steps: 2), seed: 3, schedule: .cosine)
    return TrainJob(
      architecture: .smallcnn, dataset: .fashionMNIST, dataDirectory: try FashionMNISTFixture.directory(), trainLimit: 256, config: config,
      output: dir + "/" + out)
  }

  /// A run killed after its first epoch and resumed ends bit-identical to an uninterrupted run.
  func testResumeContinuesBitForBit() throws {
    let dir = try temporaryDirectory(self)
    let cpu = CPUBackend()
    let straight = try job(dir, epochs: 2, out: "straight.safetensors")
    // The trainer reports an epoch's end just before checkpointing it, so at the second report the
    // file holds exactly what a run killed during epoch 2 would leave behind.
    let snapshot = SnapshotAtSecondEpoch(source: straight.output, copy: dir + "/killed.safetensors")
    _ = try straight.run(backend: cpu, progress: snapshot)
    var resumed = try job(dir, epochs: 2, out: "killed.safetensors")
    resumed.resume = true
    let result = try resumed.run(backend: cpu, progress: SilentProgress())
    XCTAssertEqual(result.resumedFromEpoch, 1)
    XCTAssertEqual(result.epochs.map(\.epoch), [2])
    let a = try Safetensors.read(path: dir + "/straight.safetensors")
    let b = try Safetensors.read(path: dir + "/killed.safetensors")
    XCTAssertEqual(a.tensors.keys.sorted(), b.tensors.keys.sorted())
    for name in a.tensors.keys { XCTAssertEqual(a.tensors[name], b.tensors[name], name) }
    XCTAssert(a.tensors.keys.contains("fc1.weight_momentum"))
  }

  /// A stop requested mid-epoch (SIGINT / SIGTERM in the CLI) checkpoints the step it interrupts;
  /// resumed from there, a plain run and a GMP run (whose schedule counts steps) end bit-identical.
  func testAStopMidEpochCheckpointsThatStepAndResumesBitForBit() throws {
    let dir = try temporaryDirectory(self)
    let cpu = CPUBackend()
    defer { StopRequest.reset() }
    for method in [nil, try TrainingMethods.make(method: "gmp", sparsity: 0.8, locality: nil, structure: .unstructured, options: [:])] {
      let tag = method?.name ?? "dense"
      var straight = try job(dir, epochs: 2, out: "\(tag)-straight.safetensors")
      straight.method = method
      _ = try straight.run(backend: cpu, progress: SilentProgress())
      var stopped = try job(dir, epochs: 2, out: "\(tag)-stopped.safetensors")
      stopped.method = method
      // Steps 1-4 of 4 per epoch: stop during the second epoch's second step.
      XCTAssertThrowsError(try stopped.run(backend: cpu, progress: StopAtStep(6))) { error in
        XCTAssertEqual(error as? TrainingError, .interrupted(signal: SIGTERM, at: "epoch 2, step 2 of 4", saved: true))
      }
      StopRequest.reset()
      let meta = try Safetensors.read(path: stopped.output).metadata
      XCTAssertEqual(meta["epochs"], "1")
      XCTAssertEqual(meta["batches_done"], "2")
      stopped.resume = true
      let result = try stopped.run(backend: cpu, progress: SilentProgress())
      XCTAssertEqual(result.resumedFromEpoch, 1)
      let a = try Safetensors.read(path: straight.output)
      let b = try Safetensors.read(path: stopped.output)
      XCTAssertEqual(a.tensors.keys.sorted(), b.tensors.keys.sorted(), tag)
      for name in a.tensors.keys { XCTAssertEqual(a.tensors[name], b.tensors[name], "\(tag) \(name)") }
    }
  }

  /// `checkpointEvery` rewrites the checkpoint inside an epoch: what a SIGKILL would leave.
  func testCheckpointEveryStepsSavesInsideTheEpoch() throws {
    let dir = try temporaryDirectory(self)
    var j = try job(dir, epochs: 1, out: "m.safetensors")
    j.checkpointEvery = 1
    let snapshot = SnapshotAtStep(3, source: j.output, copy: dir + "/killed.safetensors")
    _ = try j.run(backend: CPUBackend(), progress: snapshot)
    // The progress of step 3 is reported before its checkpoint: the copy holds step 2.
    XCTAssertEqual(try Safetensors.read(path: dir + "/killed.safetensors").metadata["batches_done"], "2")
    var resumed = try job(dir, epochs: 1, out: "killed.safetensors")
    resumed.resume = true
    _ = try resumed.run(backend: CPUBackend(), progress: SilentProgress())
    let a = try Safetensors.read(path: j.output)
    let b = try Safetensors.read(path: resumed.output)
    for name in a.tensors.keys { XCTAssertEqual(a.tensors[name], b.tensors[name], name) }
    j.checkpointEvery = 0
    XCTAssertThrowsError(try j.run(backend: CPUBackend(), progress: SilentProgress())) { XCTAssert("\($0)".contains("--checkpoint-every"), "\($0)") }
  }

  func testResumeRefusesAnotherRecipe() throws {
    let dir = try temporaryDirectory(self)
    _ = try job(dir, epochs: 1, out: "m.safetensors").run(backend: CPUBackend(), progress: SilentProgress())
    var longer = try job(dir, epochs: 2, out: "m.safetensors")
    longer.resume = true
    XCTAssertThrowsError(try longer.run(backend: CPUBackend(), progress: SilentProgress())) {
      XCTAssert("\($0)".contains("epochs_planned"), "\($0)")
    }
  }

  func testLogJSONHasOneLinePerEpoch() throws {
    let dir = try temporaryDirectory(self)
    var j = try job(dir, epochs: 2, out: "m.safetensors")
    j.logJSON = dir + "/log.jsonl"
    j.holdoutPoints = 50
    _ = try j.run(backend: CPUBackend(), progress: SilentProgress())
    let lines = try String(contentsOfFile: dir + "/log.jsonl", encoding: .utf8).split(separator: "\n")
    XCTAssertEqual(lines.count, 2)
    let first = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any]
    XCTAssertEqual(first?["epoch"] as? Int, 1)
    for key in ["loss", "lr", "grad_norm", "holdout_clean_accuracy", "holdout_robust_accuracy", "images_per_second"] {
      XCTAssertNotNil(first?[key], key)
    }
    XCTAssertLessThan(first?["lr"] as? Double ?? 1, 0.05, "cosine schedule lowers the rate")
  }

  func testSchedules() {
    XCTAssertEqual(LRSchedule.cosine.factor(progress: 0), 1)
    XCTAssertEqual(LRSchedule.cosine.factor(progress: 0.5), 0.5, accuracy: 1e-12)
    XCTAssertEqual(LRSchedule.multistep.factor(progress: 0.6), 0.1)
    XCTAssertEqual(LRSchedule.multistep.factor(progress: 0.8), 0.01, accuracy: 1e-12)
    XCTAssertEqual(LRSchedule.warmup.factor(progress: 0.2), 0.5, accuracy: 1e-12)
    XCTAssertEqual(LRSchedule.warmup.factor(progress: 0.7), 0.5, accuracy: 1e-12)
    XCTAssertEqual(LRSchedule.constant.factor(progress: 0.9), 1)
  }

  func testNesterovMatchesPyTorch() throws {
    // g = 0.5 + 0.1*2 = 0.7; v = 0.9*1 + 0.7 = 1.6; w = 2 - 0.1*(0.7 + 0.9*1.6) = 1.786.
    let cpu = CPUBackend()
    let (w, v) = (try cpu.upload([2], shape: [1]), try cpu.upload([1], shape: [1]))
    try cpu.sgdStep(
      weight: w, grad: try cpu.upload([0.5], shape: [1]), velocity: v, mask: nil,
      hyper: SGDHyper(learningRate: 0.1, momentum: 0.9, weightDecay: 0.1, nesterov: true))
    XCTAssertEqual(try cpu.download(w)[0], 1.786, accuracy: 1e-6)
  }

  /// `prune` stopped while fine-tuning resumes with the method's masks and ends bit-identical to an
  /// uninterrupted run: stopped right after HYDRA's score phase it does not train scores again;
  /// stopped after a fine-tuning epoch it continues with the next. Another recipe is refused.
  func testPruneResumesItsFineTuningBitForBit() throws {
    let dir = try temporaryDirectory(self)
    let cpu = CPUBackend()
    _ = try job(dir, epochs: 1, out: "dense.safetensors").run(backend: cpu, progress: SilentProgress())
    let finetune = try job(dir, epochs: 2, out: "unused").config
    for (name, copyAt, resumedEpochs) in [("hydra", "epoch 1/2", [1, 2]), ("lwm", "epoch 2/2", [2])] {
      let method = try PruningMethods.make(method: name, criterion: .lwm, locality: nil, structure: .unstructured, options: [:])
      func prune(_ out: String) throws -> PruneJob {
        var j = PruneJob(
          input: dir + "/dense.safetensors", method: method, sparsity: 0.8, dataset: .fashionMNIST,
          dataDirectory: try FashionMNISTFixture.directory(),
          trainLimit: 256, finetune: finetune, output: dir + "/" + out)
        if method.trainsWhilePruning { j.pruneTraining = PruningMethods.phase(of: method, finetune: finetune, epochs: 1, learningRate: nil) }
        return j
      }
      let straight = try prune("\(name)-straight.safetensors")
      _ = try straight.run(backend: cpu, progress: SnapshotAtLine(copyAt, source: straight.output, copy: dir + "/\(name)-killed.safetensors"))
      var resumed = try prune("\(name)-killed.safetensors")
      resumed.resume = true
      let result = try resumed.run(backend: cpu, progress: SilentProgress())
      XCTAssertEqual(result.finetune.map(\.epoch), resumedEpochs, name)
      XCTAssertEqual(result.pruneEpochs.count, 0, "\(name): the method's phase is not run again")
      let a = try Safetensors.read(path: straight.output)
      let b = try Safetensors.read(path: resumed.output)
      XCTAssertEqual(a.tensors.keys.sorted(), b.tensors.keys.sorted(), name)
      for key in a.tensors.keys { XCTAssertEqual(a.tensors[key], b.tensors[key], "\(name) \(key)") }
      XCTAssertEqual(a.metadata, b.metadata, name)
    }
    var other = PruneJob(
      input: dir + "/dense.safetensors",
      method: try PruningMethods.make(method: "lwm", criterion: .lwm, locality: nil, structure: .unstructured, options: [:]),
      sparsity: 0.9, dataset: .fashionMNIST, dataDirectory: try FashionMNISTFixture.directory(), trainLimit: 256, finetune: finetune,
      output: dir + "/lwm-killed.safetensors")
    other.resume = true
    XCTAssertThrowsError(try other.run(backend: cpu, progress: SilentProgress())) {
      XCTAssert("\($0)".contains("prune_target_sparsity = 0.8, this run asks for 0.9"), "\($0)")
    }
  }

  /// `prune` stopped inside a method's own phase continues it: HYDRA's scores, HARP's scores and
  /// learned rates, R-ADMM's Z, U and rho come back from the checkpoint, at an epoch boundary,
  /// (HARP, with `checkpointEvery`) in the middle of an epoch, and for HARP's channel variant; each
  /// ends bit-identical.
  func testPruneResumesInsideTheMethodsPhaseBitForBit() throws {
    let dir = try temporaryDirectory(self)
    let cpu = CPUBackend()
    _ = try job(dir, epochs: 1, out: "dense.safetensors").run(backend: cpu, progress: SilentProgress())
    let finetune = try job(dir, epochs: 1, out: "unused").config
    for (name, stop, structure) in [
      ("hydra", "epoch", Structure.unstructured), ("harp", "epoch", .unstructured), ("radmm", "epoch", .unstructured),
      ("harp", "step", .unstructured),
      ("harp", "channels", .channels),
    ] {
      let method = try PruningMethods.make(method: name, criterion: .lwm, locality: nil, structure: structure, options: [:])
      func prune(_ out: String) throws -> PruneJob {
        var j = PruneJob(
          input: dir + "/dense.safetensors", method: method, sparsity: 0.8, dataset: .fashionMNIST,
          dataDirectory: try FashionMNISTFixture.directory(),
          trainLimit: 256, finetune: finetune, output: dir + "/" + out)
        j.pruneTraining = PruningMethods.phase(of: method, finetune: finetune, epochs: 2, learningRate: nil)
        j.checkpointEvery = 1
        return j
      }
      let straight = try prune("\(name)-\(stop)-straight.safetensors")
      let killed = dir + "/\(name)-\(stop)-killed.safetensors"
      // 256 images in batches of 64: 4 steps per epoch; step 7 is inside the second phase epoch.
      let snapshot: ProgressSink =
        stop != "step"
        ? SnapshotAtLine("epoch 2/2", source: straight.output, copy: killed) : SnapshotAtStep(7, source: straight.output, copy: killed)
      let reference = try straight.run(backend: cpu, progress: snapshot)
      var resumed = try prune("\(name)-\(stop)-killed.safetensors")
      resumed.resume = true
      let result = try resumed.run(backend: cpu, progress: SilentProgress())
      XCTAssertEqual(result.pruneEpochs.map(\.epoch), [2], "\(name) \(stop): continues in the phase's second epoch")
      XCTAssertEqual(result.details, reference.details, "\(name) \(stop)")
      let a = try Safetensors.read(path: straight.output)
      let b = try Safetensors.read(path: resumed.output)
      XCTAssertEqual(a.tensors.keys.sorted(), b.tensors.keys.sorted(), name)
      for key in a.tensors.keys { XCTAssertEqual(a.tensors[key], b.tensors[key], "\(name) \(stop) \(key)") }
      XCTAssertEqual(a.metadata, b.metadata, "\(name) \(stop)")
    }
  }

  /// A device lost mid-run (injected: kernel launches fail with CL_OUT_OF_RESOURCES from the middle
  /// of the second epoch) stops the run with an error naming the device; the first epoch's
  /// checkpoint is intact and, resumed on a healthy device, ends where an uninterrupted run does.
  func testADeviceLostMidRunKeepsTheFinishedEpochAndResumes() throws {
    let dir = try temporaryDirectory(self)
    let device = try OpenCLFixture.backend().device
    func small(_ epochs: Int, _ out: String) throws -> TrainJob {
      var j = try job(dir, epochs: epochs, out: out)
      j.trainLimit = 64
      return j
    }
    let calibration = try OpenCLBackend(device: device)
    _ = try small(1, "one.safetensors").run(backend: calibration, progress: SilentProgress())
    let failing = try OpenCLBackend(device: device)
    failing.failLaunchesAfter = calibration.launches * 3 / 2
    XCTAssertThrowsError(try small(2, "lost.safetensors").run(backend: failing, progress: SilentProgress())) { error in
      guard case CLError.device(let name, _, let code, _) = error else { return XCTFail("got \(error)") }
      XCTAssertEqual(name, device.name)
      XCTAssertEqual(code, -5)
      XCTAssert("\(error)".contains("failed or was lost") && "\(error)".contains("train --resume"), "\(error)")
    }
    XCTAssertEqual(try Safetensors.read(path: dir + "/lost.safetensors").metadata["epochs"], "1")
    var resumed = try small(2, "lost.safetensors")
    resumed.resume = true
    XCTAssertEqual(try resumed.run(backend: try OpenCLBackend(device: device), progress: SilentProgress()).resumedFromEpoch, 1)
    _ = try small(2, "straight.safetensors").run(backend: try OpenCLBackend(device: device), progress: SilentProgress())
    let a = try Safetensors.read(path: dir + "/straight.safetensors")
    let b = try Safetensors.read(path: dir + "/lost.safetensors")
    XCTAssertEqual(a.tensors.keys.sorted(), b.tensors.keys.sorted())
    for name in a.tensors.keys { XCTAssertEqual(a.tensors[name], b.tensors[name], name) }
  }
}

/// Copies the checkpoint when the second epoch reports its end (before it is saved).
final class SnapshotAtSecondEpoch: ProgressSink {
  let source: String
  let copy: String
  private var epochs = 0

  init(source: String, copy: String) {
    self.source = source
    self.copy = copy
  }

  func update(_ update: ProgressUpdate) {}

  func finish(_ line: String) {
    epochs += 1
    if epochs == 2 { try? FileManager.default.copyItem(atPath: source, toPath: copy) }
  }
}

/// Requests a stop (as the CLI's SIGTERM handler does) when the run reports its `step`-th step.
/// Copies `source` to `copy` when a finished line starts with `prefix` (before that epoch's
/// checkpoint is written): what a run killed at that moment leaves behind.
final class SnapshotAtLine: ProgressSink {
  let prefix: String
  let source: String
  let copy: String
  init(_ prefix: String, source: String, copy: String) {
    self.prefix = prefix
    self.source = source
    self.copy = copy
  }
  func update(_ update: ProgressUpdate) {}
  func finish(_ line: String) {
    if line.hasPrefix(prefix) && !FileManager.default.fileExists(atPath: copy) { try? FileManager.default.copyItem(atPath: source, toPath: copy) }
  }
}

final class StopAtStep: ProgressSink {
  let step: Int
  private var seen = 0
  init(_ step: Int) { self.step = step }
  func update(_ update: ProgressUpdate) {
    seen += 1
    if seen == step { StopRequest.pendingSignal = SIGTERM }
  }
  func finish(_ line: String) {}
}

/// Copies the checkpoint when the run reports its `step`-th step (before that step's checkpoint).
final class SnapshotAtStep: ProgressSink {
  let step: Int
  let source: String
  let copy: String
  private var seen = 0
  init(_ step: Int, source: String, copy: String) {
    self.step = step
    self.source = source
    self.copy = copy
  }
  func update(_ update: ProgressUpdate) {
    seen += 1
    if seen == step { try? FileManager.default.copyItem(atPath: source, toPath: copy) }
  }
  func finish(_ line: String) {}
}

/// A diverging run stops with the epoch and step named and leaves the finished epoch's checkpoint.
final class DivergenceTests: XCTestCase {
  func testDivergenceNamesWhereItHappenedAndKeepsTheLastCheckpoint() throws {
    let dir = try temporaryDirectory(self)
    let cpu = CPUBackend()
    let data = syntheticImages(count: 64, seed: 30)
    let model = try responsiveSmallCNN(backend: cpu, seed: 31)
    let config = TrainConfig(epochs: 3, batchSize: 16, sgd: SGDHyper(learningRate: 1e-3, momentum: 0), attack: nil, seed: 1)
    let out = dir + "/m.safetensors"
    var epochs = 0
    let metadata = ["arch": "smallcnn", "dataset": "fashion-mnist"]
    let run = {
      try Trainer(model: model, config: config).train(data: data, progress: SilentProgress()) { _ in
        epochs += 1
        try Checkpoint.save(model, metadata: metadata, to: out)
        // Poison the weights after the first epoch: the next step's loss is not finite.
        if epochs == 1 { try cpu.fill(model.parameter(named: "fc3.weight")!.value, value: .nan) }
      }
    }
    XCTAssertThrowsError(try run()) { error in
      XCTAssertEqual(error as? TrainingError, .diverged(epoch: 2, step: 1, steps: 4, learningRate: 1e-3))
      XCTAssert("\(error)".contains("epoch 2, step 1 of 4") && "\(error)".contains("lower --lr"), "\(error)")
    }
    let saved = try Checkpoint.load(path: out, backend: cpu).model
    XCTAssert(try cpu.download(saved.parameter(named: "fc3.weight")!.value).allSatisfy(\.isFinite), "the finished epoch's checkpoint is intact")
  }
}
