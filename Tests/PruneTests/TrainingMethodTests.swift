import Foundation
import GPU
import XCTest

@testable import Prune

/// The methods that prune while training (GMP, FlyingBird): their schedules and sparsity at every
/// step, resume bit for bit, both backends, every architecture, and their bad input.
final class TrainingMethodTests: XCTestCase {
  /// Forwards to a method's hooks and records the sparsity and masks after every step.
  final class Recorder: TrainingHooks {
    let inner: TrainingHooks
    var sparsity: [Double] = []
    var masks: [[Float]] = []

    init(_ inner: TrainingHooks) { self.inner = inner }

    func optimised(_ model: Model) -> [Parameter] { inner.optimised(model) }
    func afterBackward(_ model: Model, _ step: TrainingStep) throws -> Double { try inner.afterBackward(model, step) }
    func afterStep(_ model: Model, _ step: TrainingStep) throws {
      try inner.afterStep(model, step)
      sparsity.append(try model.sparsity())
      masks.append(try model.prunableParameters.flatMap { p in try model.mask(of: p).map(model.backend.download) ?? [] })
    }
    func afterEpoch(_ model: Model, epoch: Int) throws { try inner.afterEpoch(model, epoch: epoch) }
  }

  func config(epochs: Int, seed: UInt64 = 3) -> TrainConfig {
    TrainConfig(
      epochs: epochs, batchSize: 16, sgd: SGDHyper(learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4),
      attack: PGDConfig(eps: 0.1, alpha: 0.05, steps: 1), seed: seed)
  }

  /// Trains `model` with `method` on `data`; returns the recorder.
  @discardableResult
  func train(_ model: Model, _ method: TrainingMethod, epochs: Int, data: LabeledImages) throws -> Recorder {
    let batches = (data.count + 15) / 16
    try method.check(epochs: epochs, batchesPerEpoch: batches)
    try method.prepare(model: model, data: data, config: config(epochs: epochs), progress: SilentProgress())
    let recorder = Recorder(try method.hooks(model: model, epochs: epochs, batchesPerEpoch: batches, seed: 3, resuming: false))
    _ = try Trainer(model: model, config: config(epochs: epochs), hooks: recorder).train(data: data, progress: SilentProgress())
    return recorder
  }

  func gmp(_ s: Double, locality: Locality = .local, structure: Structure = .unstructured, options: [String: String] = [:]) throws -> TrainingMethod {
    try TrainingMethods.make(method: "gmp", sparsity: s, locality: locality, structure: structure, options: options)
  }

  func testGMPFollowsTheCubicSchedule() throws {
    let model = try responsiveSmallCNN(backend: CPUBackend(), seed: 1)
    let method = try gmp(0.8, locality: .global, options: ["prune-end": "2", "prune-every": "1"])
    let recorder = try train(model, method, epochs: 3, data: syntheticImages(count: 64, seed: 1))
    let total = Double(try model.prunableCounts().total)
    let layers = Double(model.prunableParameters.count)
    for (i, s) in recorder.sparsity.enumerated() {
      let want = (method as! GMP).target(afterStep: i + 1, batchesPerEpoch: 4, epochs: 3)
      XCTAssertEqual(s, want, accuracy: layers / total, "step \(i + 1)")
    }
    XCTAssertEqual(recorder.sparsity[3], 0.8 * (1 - pow(0.5, 3)), accuracy: 1e-4, "half-way: s (1 - 1/8)")
    XCTAssertEqual(recorder.sparsity.last!, 0.8, accuracy: 1e-5, "the target, held after the schedule's end")
    XCTAssertEqual(Array(recorder.sparsity.suffix(4)), [Double](repeating: recorder.sparsity.last!, count: 4))
    // Masks only grow, and pruned weights stay zero.
    for (a, b) in zip(recorder.masks, recorder.masks.dropFirst()) where !a.isEmpty {
      XCTAssert(zip(a, b).allSatisfy { $0 == 1 || $1 == 0 }, "a pruned weight came back")
    }
    for p in model.prunableParameters {
      let (w, m) = (try model.backend.download(p.value), try model.backend.download(model.mask(of: p)!))
      XCTAssert(zip(w, m).allSatisfy { $1 == 1 || $0 == 0 }, p.name)
    }
  }

  func testGMPFiltersRemoveWholeChannels() throws {
    let model = try Architecture.smallcnn.build(backend: CPUBackend(), seed: 2, width: 0.25)
    try train(model, try gmp(0.5, structure: .filters, options: ["prune-end": "1"]), epochs: 1, data: syntheticImages(count: 32, seed: 2))
    let logits = try evalLogits(model, seed: 9)
    let outcome = try Compaction.compact(model)
    XCTAssertEqual(outcome.channels.values.reduce(0, +), 24, "half of 48 channels left")
    let compact = try Architecture.smallcnn.build(backend: CPUBackend(), seed: 0, width: 0.25, channels: outcome.channels)
    try Checkpoint.assign(outcome.tensors, to: compact, path: "compact")
    assertClose(try evalLogits(compact, seed: 9), logits, atol: 1e-4, rtol: 1e-4, "compact logits")
  }

  func testFlyingBirdHoldsItsSparsityWhileTheMaskMoves() throws {
    let model = try responsiveSmallCNN(backend: CPUBackend(), seed: 4)
    let method = try TrainingMethods.make(
      method: "flyingbird", sparsity: 0.9, locality: nil, structure: .unstructured, options: ["update-every": "2"])
    let recorder = try train(model, method, epochs: 2, data: syntheticImages(count: 64, seed: 4))
    let (total, kept) = try model.prunableCounts()
    let target = method as! FlyingBird
    XCTAssertEqual(kept, target.keepCounts(model).reduce(0, +))
    XCTAssertEqual(Double(total - kept) / Double(total), 0.9, accuracy: Double(model.prunableParameters.count) / Double(total))
    XCTAssertEqual(Set(recorder.sparsity).count, 1, "the sparsity never moves: \(Set(recorder.sparsity))")
    // 8 steps, an update every 2 (never at the last step): the mask moves at steps 2, 4, 6 only.
    for t in 2...8 {
      let moved = recorder.masks[t - 1] != recorder.masks[t - 2]
      XCTAssertEqual(moved, [2, 4, 6].contains(t), "step \(t)")
    }
    for p in model.prunableParameters {
      let (w, m) = (try model.backend.download(p.value), try model.backend.download(model.mask(of: p)!))
      XCTAssert(zip(w, m).allSatisfy { $1 == 1 || $0 == 0 }, p.name)
    }
  }

  func testTwinRepPrunesOnceThenHoldsItsMaskAndFoldsTheTwins() throws {
    let model = try responsiveSmallCNN(backend: CPUBackend(), seed: 5)
    let method = try TrainingMethods.make(method: "twinrep", sparsity: 0.9, locality: nil, structure: .unstructured, options: ["prune-epoch": "1"])
    let recorder = try train(model, method, epochs: 3, data: syntheticImages(count: 64, seed: 5))
    XCTAssert(recorder.masks.prefix(3).allSatisfy(\.isEmpty), "no mask before the pruning epoch ends")
    let fixed = recorder.masks[4]
    XCTAssert(recorder.masks.dropFirst(4).allSatisfy { $0 == fixed }, "the mask is fixed after its pruning point")
    XCTAssertEqual(recorder.sparsity.last!, 0.9, accuracy: Double(model.prunableParameters.count) / Double(try model.prunableCounts().total))
    XCTAssert(model.pruning.twins.isEmpty, "twins folded into the weights at the end")
    for p in model.prunableParameters {
      let (w, m) = (try model.backend.download(p.value), try model.backend.download(model.mask(of: p)!))
      XCTAssert(zip(w, m).allSatisfy { $1 == 1 || $0 == 0 }, p.name)
    }
    let filters = try Architecture.smallcnn.build(backend: CPUBackend(), seed: 2, width: 0.25)
    try train(
      filters, try TrainingMethods.make(method: "twinrep", sparsity: 0.5, locality: nil, structure: .filters, options: [:]), epochs: 2,
      data: syntheticImages(count: 32, seed: 2))
    XCTAssertEqual(try Compaction.compact(filters).channels.values.reduce(0, +), 24, "half of 48 channels, globally")
  }

  /// The product rule TwinRep's hooks apply: `dL/dw = g a`, `dL/da = g w`, by central differences.
  func testTwinRepGradientsMatchFiniteDifferences() throws {
    let cpu = CPUBackend()
    let model = try responsiveSmallCNN(backend: cpu, seed: 6)
    var rng = SeededRNG(seed: 6)
    for p in model.prunableParameters { try model.pruning.setTwin(for: p, values: rng.uniformArray(p.count, 0.5, 1.5)) }
    model.setTraining(false)
    let x = try cpu.upload(rng.uniformArray(2 * 784, 0, 1), shape: [2, 1, 28, 28])
    let labels = try cpu.upload([3, 7], shape: [2])
    let (losses, dLogits) = (try cpu.zeros([2]), try cpu.zeros([2, 10]))
    func loss() throws -> Double {
      try cpu.softmaxCrossEntropy(losses: losses, dLogits: nil, logits: try model.forward(x), labels: labels, scale: 0.5)
      return try cpu.download(losses).reduce(0) { $0 + Double($1) } / 2
    }
    try cpu.softmaxCrossEntropy(losses: losses, dLogits: dLogits, logits: try model.forward(x), labels: labels, scale: 0.5)
    try model.backward(dLogits, parameterGradients: true, inputGradient: false)
    let hooks = TwinRepHooks(method: TwinRep(sparsity: 0.5, structure: .unstructured, pruneEpoch: 1), epochs: 2)
    _ = try hooks.afterBackward(model, .single(SGDHyper(learningRate: 0.1)))
    for name in ["conv2.weight", "fc2.weight"] {
      let w = model.parameter(named: name)!
      let twin = model.pruning.twins[name]!
      for (label, tensor, grad) in [("w", w.value, w.grad), ("twin", twin.value, twin.grad)] {
        let values = try cpu.download(tensor)
        let analytic = try cpu.download(grad)
        let probe = Array(stride(from: 7, to: values.count, by: values.count / 6))
        let numeric = try centralDifferences(probe.map { values[$0] }) { picked in
          var v = values
          for (i, value) in zip(probe, picked) { v[i] = value }
          try cpu.write(v, to: tensor)
          defer { try? cpu.write(values, to: tensor) }
          return try loss()
        }
        assertClose(probe.map { analytic[$0] }, numeric, atol: 2e-3, rtol: 2e-2, "\(name) \(label)")
      }
    }
  }

  func testRSTTrainsOnlyScoresOverFrozenSignedConstants() throws {
    let model = try Architecture.smallcnn.build(backend: CPUBackend(), seed: 3, width: 0.5)
    let method = try TrainingMethods.make(method: "rst", sparsity: 0.7, locality: nil, structure: .unstructured, options: [:])
    let batches = 4
    let hooks = try method.hooks(model: model, epochs: 2, batchesPerEpoch: batches, seed: 3, resuming: false)
    let weights = try model.prunableParameters.map { try model.backend.download($0.value) }
    let others = try model.trainableParameters.filter { !$0.isPrunable }.map { try model.backend.download($0.value) }
    for (p, w) in zip(model.prunableParameters, weights) {
      let c = (2 / Float(p.count / p.shape[0])).squareRoot()
      XCTAssert(w.allSatisfy { abs(abs($0) - c) < 1e-6 }, "\(p.name): signed constants")
    }
    let scores = try model.prunableParameters.map { try model.backend.download(model.pruning.scores[$0.name]!.value) }
    _ = try Trainer(model: model, config: config(epochs: 2), hooks: hooks).train(
      data: syntheticImages(count: 64, seed: 3), progress: SilentProgress())
    for (p, w) in zip(model.prunableParameters, weights) {
      let m = try model.backend.download(model.mask(of: p)!)
      XCTAssertEqual(try model.backend.download(p.value), zip(w, m).map { $0 * $1 }, "\(p.name): weights never change")
    }
    XCTAssertEqual(try model.trainableParameters.filter { !$0.isPrunable }.map { try model.backend.download($0.value) }, others, "biases, BN fixed")
    XCTAssertNotEqual(try model.prunableParameters.map { try model.backend.download(model.pruning.scores[$0.name]!.value) }, scores)
    XCTAssertEqual(try model.layerSparsity().map(\.kept), RateAllocation.uniformKeep(model.prunableParameters.map(\.count), sparsity: 0.7))
    XCTAssert(model.pruning.liveScores.isEmpty, "hard masks at the end")
  }

  func testLi20RewindsTheTicketToTheInitialisation() throws {
    let model = try responsiveSmallCNN(backend: CPUBackend(), seed: 4)
    let initial = try model.prunableParameters.map { try model.backend.download($0.value) }
    let method = try TrainingMethods.make(method: "li20", sparsity: 0.8, locality: nil, structure: .unstructured, options: [:])
    try method.prepare(model: model, data: syntheticImages(count: 64, seed: 4), config: config(epochs: 1), progress: SilentProgress())
    for (p, w0) in zip(model.prunableParameters, initial) {
      let m = try model.backend.download(model.mask(of: p)!)
      XCTAssertEqual(try model.backend.download(p.value), zip(w0, m).map { $0 * $1 }, "\(p.name): rewound to its initial values")
    }
    let (total, kept) = try model.prunableCounts()
    XCTAssertEqual(total - kept, Int((0.8 * Double(total)).rounded()))
    XCTAssert(try model.layerSparsity().allSatisfy { $0.kept > 0 })
  }

  func testEarlyBirdEmergesWhenTheWindowsMasksAgree() {
    var bird = EarlyBirdWindow(size: 3, threshold: 0.1)
    let base: [[Float]] = [[1, 0, 1, 0, 1], [0, 1, 1, 1, 0]]
    XCTAssertFalse(bird.push(base))
    XCTAssertFalse(bird.push(base), "two masks: the window of three is not full")
    XCTAssertTrue(bird.push(base))
    XCTAssertEqual(bird.distances, [0, 0])
    var moved = base
    moved[1][0] = 1
    moved[1][1] = 0
    XCTAssertFalse(bird.push(moved), "2 of 10 entries differ: 0.2 > 0.1")
    XCTAssertEqual(bird.distances, [0.2, 0.2])
    XCTAssertFalse(bird.push(moved), "the oldest mask in the window still differs")
    XCTAssertTrue(bird.push(moved))
  }

  /// The search stops where the bird emerged; the ticket keeps the trained weights (no rewind) at
  /// the exact global sparsity, and the optimiser starts afresh.
  func testRobustBirdPrunesTheTrainedWeightsWhereTheBirdEmerged() throws {
    final class Lines: ProgressSink {
      var lines: [String] = []
      func update(_ update: ProgressUpdate) {}
      func finish(_ line: String) { lines.append(line) }
    }
    let data = syntheticImages(count: 48, seed: 5)
    for (threshold, epochsRun) in [(1.0, 2), (0.0, 4)] {
      let model = try responsiveSmallCNN(backend: CPUBackend(), seed: 5)
      let initial = try model.prunableParameters.map { try model.backend.download($0.value) }
      let method = try TrainingMethods.make(
        method: "robustbird", sparsity: 0.8, locality: nil, structure: .unstructured,
        options: ["search-epochs": "4", "eb-window": "2", "eb-threshold": "\(threshold)"])
      try method.check(epochs: 1, batchesPerEpoch: 3)
      let progress = Lines()
      try method.prepare(model: model, data: data, config: config(epochs: 1), progress: progress)
      XCTAssertEqual(progress.lines.filter { $0.hasPrefix("epoch ") }.count, epochsRun, "threshold \(threshold): \(progress.lines)")
      XCTAssert(progress.lines.last!.contains(threshold == 1 ? "early bird at epoch 2" : "no early bird within 4 epochs"), progress.lines.last!)
      let (total, kept) = try model.prunableCounts()
      XCTAssertEqual(total - kept, Int((0.8 * Double(total)).rounded()))
      var moved = 0
      for (p, w0) in zip(model.prunableParameters, initial) {
        let m = try model.backend.download(model.mask(of: p)!)
        let w = try model.backend.download(p.value)
        XCTAssert(zip(w, m).allSatisfy { $1 != 0 || $0 == 0 }, "\(p.name): pruned weights are zero")
        moved += zip(zip(w, w0), m).filter { $1 != 0 && $0.0 != $0.1 }.count
        XCTAssert(try model.backend.download(p.velocity).allSatisfy { $0 == 0 }, "\(p.name): momentum starts afresh")
      }
      XCTAssertGreaterThan(moved, 0, "the ticket keeps the searched weights")
    }
    XCTAssertThrowsError(try RobustBird(sparsity: 0.9, searchEpochs: 3, window: 5).check(epochs: 10, batchesPerEpoch: 4)) {
      XCTAssert("\($0)".contains("--search-epochs"), "\($0)")
    }
    XCTAssertThrowsError(try RobustBird(sparsity: 0.9).check(epochs: 2, batchesPerEpoch: 4)) { XCTAssert("\($0)".contains("--eb-window")) }
  }

  func testERKGivesSmallLayersMoreDensity() throws {
    let model = try Architecture.smallcnn.build(backend: CPUBackend(), seed: 1)
    let keep = FlyingBird(sparsity: 0.9, erk: true, every: nil, deathRate: 0.5, regrowth: .random).keepCounts(model)
    let density = zip(keep, model.prunableParameters).map { Double($0) / Double($1.count) }
    XCTAssertGreaterThan(density[0], density[4], "conv1 (288 weights) denser than fc1 (204,800)")
    XCTAssertEqual(Double(keep.reduce(0, +)), 0.1 * Double(model.prunableParameters.reduce(0) { $0 + $1.count }), accuracy: 8)
  }

  /// `train --method NAME` at 80 % on 256 Fashion-MNIST images in batches of 64.
  func methodJob(_ name: String, _ options: [String: String], epochs: Int, output: String) throws -> TrainJob {
    var c = config(epochs: epochs)
    c.batchSize = 64
    var j = TrainJob(
      architecture: .smallcnn, dataset: .fashionMNIST, dataDirectory: try FashionMNISTFixture.directory(), trainLimit: 256, config: c, output: output)
    j.method = try TrainingMethods.make(method: name, sparsity: 0.8, locality: nil, structure: .unstructured, options: options)
    return j
  }

  /// A run killed after its first epoch and resumed ends with the same weights and masks.
  func testResumeContinuesTheMaskScheduleBitForBit() throws {
    for (name, options) in [
      ("gmp", ["prune-end": "2", "prune-every": "3"]), ("flyingbird", ["update-every": "3"]), ("twinrep", ["prune-epoch": "1"]),
    ] {
      let dir = try temporaryDirectory(self)
      func job(_ out: String) throws -> TrainJob { try methodJob(name, options, epochs: 2, output: dir + "/" + out) }
      let straight = try job("straight.safetensors")
      _ = try straight.run(backend: CPUBackend(), progress: SnapshotAtSecondEpoch(source: straight.output, copy: dir + "/killed.safetensors"))
      var resumed = try job("killed.safetensors")
      resumed.resume = true
      XCTAssertEqual(try resumed.run(backend: CPUBackend(), progress: SilentProgress()).resumedFromEpoch, 1)
      let a = try Safetensors.read(path: dir + "/straight.safetensors")
      let b = try Safetensors.read(path: dir + "/killed.safetensors")
      XCTAssertEqual(a.tensors.keys.sorted(), b.tensors.keys.sorted(), name)
      XCTAssert(a.tensors.keys.contains("fc1.weight_mask"), name)
      XCTAssertFalse(a.tensors.keys.contains("fc1.weight_twin"), "\(name): twins are folded in at the end")
      for key in a.tensors.keys { XCTAssertEqual(a.tensors[key], b.tensors[key], "\(name) \(key)") }
      var plain = try job("killed.safetensors")
      plain.method = nil
      plain.resume = true
      XCTAssertThrowsError(try plain.run(backend: CPUBackend(), progress: SilentProgress())) { XCTAssert("\($0)".contains("--method"), "\($0)") }
    }
  }

  /// A run stopped inside the work before the first epoch — RobustBird's search (between epochs,
  /// mid-epoch, and after the bird emerged but before the prune) and Li20's ticket phase —
  /// continues it and ends with the same bytes as an uninterrupted run.
  func testAStopBeforeTheFirstEpochResumesBitForBit() throws {
    let cases: [(String, [String: String], String, (String, String) -> ProgressSink)] = [
      ("robustbird", ["search-epochs": "3", "eb-window": "2", "eb-threshold": "0"], "epoch", { SnapshotAtLine("epoch 2/3", source: $0, copy: $1) }),
      ("robustbird", ["search-epochs": "3", "eb-window": "2", "eb-threshold": "0"], "step", { SnapshotAtStep(6, source: $0, copy: $1) }),
      (
        "robustbird", ["search-epochs": "3", "eb-window": "2", "eb-threshold": "1"], "emerged",
        { SnapshotAtLine("robustbird:", source: $0, copy: $1) }
      ),
      ("li20", ["ticket-epochs": "2"], "ticket", { SnapshotAtLine("epoch 2/2", source: $0, copy: $1) }),
    ]
    for (name, options, stop, snapshot) in cases {
      let dir = try temporaryDirectory(self)
      func job(_ out: String) throws -> TrainJob {
        var j = try methodJob(name, options, epochs: 1, output: dir + "/" + out)
        j.checkpointEvery = 1
        return j
      }
      let straight = try job("straight.safetensors")
      _ = try straight.run(backend: CPUBackend(), progress: snapshot(straight.output, dir + "/killed.safetensors"))
      let stopped = try Safetensors.read(path: dir + "/killed.safetensors").metadata
      XCTAssertNotNil(stopped["prepare_epochs"], "\(name) \(stop): stopped before the first epoch")
      var resumed = try job("killed.safetensors")
      resumed.resume = true
      _ = try resumed.run(backend: CPUBackend(), progress: SilentProgress())
      let a = try Safetensors.read(path: dir + "/straight.safetensors")
      let b = try Safetensors.read(path: dir + "/killed.safetensors")
      XCTAssertEqual(a.tensors.keys.sorted(), b.tensors.keys.sorted(), "\(name) \(stop)")
      for key in a.tensors.keys { XCTAssertEqual(a.tensors[key], b.tensors[key], "\(name) \(stop) \(key)") }
      XCTAssertEqual(a.metadata, b.metadata, "\(name) \(stop)")
    }
  }

  /// Two epochs of every method on the reference and on OpenCL, with OpenCL's convolutions on the
  /// implicit GEMM: its Winograd rounds differently (about 1e-6 relative per layer), which
  /// training grows to 3e-4 absolute in places, and this test is about the methods' logic.
  func testEveryMethodAgreesOnOpenCLAndRunsOnEveryArchitecture() throws {
    let shared = try OpenCLFixture.backend()
    let gpu = try OpenCLBackend(device: shared.device, tunables: shared.tunables.setting("winograd=0"))
    let data = syntheticImages(count: 32, seed: 6)
    let optionsFor = [
      "gmp": ["prune-end": "1", "prune-every": "1"], "flyingbird": ["update-every": "1"], "twinrep": ["prune-epoch": "1"], "rst": [:], "li20": [:],
      "robustbird": ["search-epochs": "2", "eb-window": "2"],
    ]
    for name in TrainingMethods.names {
      let options = optionsFor[name]!
      var results: [[Float]] = []
      for backend in [CPUBackend.reference() as Backend, gpu] {
        let model = try responsiveSmallCNN(backend: backend, seed: 7)
        try train(
          model, try TrainingMethods.make(method: name, sparsity: 0.8, locality: nil, structure: .unstructured, options: options), epochs: 2,
          data: data)
        results.append(try model.prunableParameters.flatMap { try backend.download($0.value) })
      }
      let differ = zip(results[0], results[1]).filter { ($0 == 0) != ($1 == 0) }.count
      XCTAssertLessThanOrEqual(Double(differ) / Double(results[0].count), 0.002, "\(name): masks agree (\(differ) differ)")
      let both = zip(results[0], results[1]).filter { $0 != 0 && $1 != 0 }
      assertClose(both.map(\.1), both.map(\.0), atol: 1e-4, rtol: 1e-3, "\(name) weights")
    }
    for (arch, width) in [(Architecture.resnet18, 0.0625), (.vgg16, 0.0625)] {
      var rng = SeededRNG(seed: 8)
      let images = LabeledImages(
        images: rng.uniformArray(4 * 3 * 32 * 32, 0, 1), labels: [1, 2, 3, 4], channels: 3, height: 32, width: 32, classCount: 10)
      for name in TrainingMethods.names {
        let model = try arch.build(backend: CPUBackend(), seed: 1, width: width)
        try train(
          model, try TrainingMethods.make(method: name, sparsity: 0.9, locality: nil, structure: .unstructured, options: optionsFor[name]!),
          epochs: 2,
          data: images)
        let (total, kept) = try model.prunableCounts()
        XCTAssertEqual(Double(total - kept) / Double(total), 0.9, accuracy: Double(model.prunableParameters.count) / Double(total), "\(arch) \(name)")
      }
    }
  }

  func testBadInputIsRefusedWithTheReason() throws {
    func refusal(_ method: String, structure: Structure = .unstructured, locality: Locality? = nil, _ options: [String: String] = [:]) -> String {
      do {
        _ = try TrainingMethods.make(method: method, sparsity: 0.9, locality: locality, structure: structure, options: options)
        return "accepted"
      } catch { return "\(error)" }
    }
    XCTAssert(refusal("hydra").contains("advprune prune"))
    XCTAssert(refusal("gmp", ["update-every": "3"]).contains("flyingbird"))
    XCTAssert(refusal("gmp", ["prune-every": "0.5"]).contains("--prune-every"))
    XCTAssert(refusal("flyingbird", structure: .filters).contains("--structure"))
    XCTAssert(refusal("flyingbird", locality: .local).contains("--locality"))
    XCTAssert(refusal("flyingbird", ["regrowth": "magic"]).contains("--regrowth"))
    XCTAssert(refusal("twinrep", locality: .local).contains("--locality"))
    XCTAssert(refusal("li20", ["ticket-epochs": "0"]).contains("--ticket-epochs"))
    XCTAssert(refusal("robustbird", ["eb-window": "1"]).contains("--eb-window"))
    XCTAssert(refusal("robustbird", ["eb-threshold": "1.5"]).contains("--eb-threshold"))
    XCTAssert(refusal("robustbird", locality: .local).contains("--locality"))
    XCTAssertThrowsError(try TwinRep(sparsity: 0.9, structure: .unstructured, pruneEpoch: 2).check(epochs: 2, batchesPerEpoch: 4)) {
      XCTAssert("\($0)".contains("--prune-epoch"))
    }
    let late = try gmp(0.9, options: ["prune-end": "5"])
    XCTAssertThrowsError(try late.check(epochs: 4, batchesPerEpoch: 10)) { XCTAssert("\($0)".contains("within 4 epochs")) }
    XCTAssertNoThrow(try late.check(epochs: 5, batchesPerEpoch: 10))
  }
}
