import Foundation
import GPU
import XCTest

@testable import Prune

/// Evaluations compute pruned layers with their nonzeros only: the same logits and input
/// gradients as the masked model, on both backends, with the dense path on request.
final class SparseEvaluationTests: XCTestCase {
  func assertSameFunction(_ run: Model, _ reference: Model, seed: UInt64, _ what: String, file: StaticString = #filePath, line: UInt = #line) throws {
    let (got, want) = (try evalOutputs(run, seed: seed), try evalOutputs(reference, seed: seed))
    assertClose(got.logits, want.logits, atol: 1e-4, rtol: 1e-4, "\(what) logits", file: file, line: line)
    assertClose(got.inputGradient, want.inputGradient, atol: 1e-5, rtol: 1e-3, "\(what) input gradient", file: file, line: line)
  }

  func unstructured(_ backend: Backend, sparsity: Double, seed: UInt64) throws -> Model {
    let model = try responsiveSmallCNN(backend: backend, seed: seed)
    try Pruner.prune(model: model, criterion: .magnitude, locality: .local, sparsity: sparsity, seed: 1)
    return model
  }

  func testSparseLayersComputeTheMaskedModelsFunction() throws {
    let run = try EvaluationModel(try unstructured(CPUBackend(), sparsity: 0.95, seed: 3), mode: .off, sparse: .auto)
    XCTAssertEqual(run.path, "sparse")
    XCTAssertEqual(run.sparseLayers, ["conv1", "conv2", "conv3", "conv4", "fc1", "fc2", "fc3"])
    XCTAssert(run.summary.contains("sparse kernels in conv1"), run.summary)
    try assertSameFunction(run.model, try unstructured(CPUBackend(), sparsity: 0.95, seed: 3), seed: 4, "95 % SmallCNN")
  }

  func testAutoKeepsDenseLayersDenseAndOffKeepsEverything() throws {
    // At 20 % sparsity every layer is above the crossover density.
    XCTAssertEqual(try EvaluationModel(try unstructured(CPUBackend(), sparsity: 0.2, seed: 3), mode: .off, sparse: .auto).path, "masked")
    XCTAssertEqual(try EvaluationModel(try unstructured(CPUBackend(), sparsity: 0.95, seed: 3), mode: .off, sparse: .off).path, "masked")
    let forced = try EvaluationModel(try unstructured(CPUBackend(), sparsity: 0.2, seed: 3), mode: .off, sparse: .on)
    XCTAssertEqual(forced.sparseLayers.count, 7)
    try assertSameFunction(forced.model, try unstructured(CPUBackend(), sparsity: 0.2, seed: 3), seed: 5, "20 % SmallCNN forced sparse")
  }

  func testResNet18StridesPaddingAndShortcutsRunSparse() throws {
    let model = try randomized(.resnet18, width: 0.125, seed: 6)
    try Pruner.prune(model: model, criterion: .magnitude, locality: .local, sparsity: 0.9, seed: 1)
    let reference = try randomized(.resnet18, width: 0.125, seed: 6)
    try Pruner.prune(model: reference, criterion: .magnitude, locality: .local, sparsity: 0.9, seed: 1)
    let run = try EvaluationModel(model, mode: .off, sparse: .auto)
    XCTAssert(run.sparseLayers.contains("layer2.0.shortcut.0") && run.sparseLayers.contains("conv1"), "\(run.sparseLayers)")
    try assertSameFunction(run.model, reference, seed: 7, "90 % ResNet18")
  }

  /// Forward-only passes (`Model.inference`) keep ResNet18's activations on the sparse grid
  /// where the backend prefers it, from the stem to the last block (one run), and VGG16's between
  /// its poolings (five runs): the same logits as `forward`, on both backends (the CPU's default
  /// keeps the stacked path, so it is asked to).
  func testInferenceKeepsActivationsOnTheGrid() throws {
    let backends: [Backend] = [CPUBackend(residentGrid: true), CPUBackend(), try OpenCLFixture.backend()]
    for (arch, runs) in [(Architecture.resnet18, 1), (.vgg16, 5)] {
      for backend in backends { try checkInference(arch, runs: runs, backend) }
    }
  }

  private func checkInference(_ arch: Architecture, runs: Int, _ backend: Backend) throws {
    let model = try randomized(arch, width: 0.125, seed: 6, backend: backend)
    try Pruner.prune(model: model, criterion: .magnitude, locality: .local, sparsity: 0.9, seed: 1)
    let run = try EvaluationModel(model, mode: .off, sparse: .on)
    var rng = SeededRNG(seed: 8)
    let shape = [3] + model.architecture.inputShape
    let x = try backend.upload(rng.uniformArray(shape.reduce(1, *), 0, 1), shape: shape)
    let want = try backend.download(try run.model.forward(x))
    let got = try backend.download(try run.model.inference(x))
    assertClose(got, want, atol: 1e-5, rtol: 1e-5, "\(arch) \(backend.name) inference on the grid")
    let prefers = backend.prefersResidentGrid(ResidentGrid(batch: 3, height: 32, width: 32), channels: 8)
    XCTAssertEqual(run.model.gridRuns, prefers ? runs : 0, "\(arch) \(backend.name)")
    // A forward after it differentiates as before.
    let dLogits = try backend.upload(rng.uniformArray(3 * 10), shape: [3, 10])
    _ = try run.model.forward(x)
    let dx = try backend.download(try run.model.inputGradient(dLogits))
    _ = try run.model.inference(x)
    _ = try run.model.forward(x)
    XCTAssertEqual(try backend.download(try run.model.inputGradient(dLogits)), dx, "\(arch) \(backend.name)")
  }

  func testCompactThenSparse() throws {
    func pruned() throws -> Model {
      let model = try responsiveSmallCNN(backend: CPUBackend(), seed: 8)
      try FilterPruner.prune(model: model, criterion: .magnitude, locality: .local, sparsity: 0.5, seed: 1)
      return model
    }
    let run = try EvaluationModel(try pruned(), mode: .auto, sparse: .on)
    XCTAssertEqual(run.path, "compact+sparse")
    XCTAssertEqual(try EvaluationModel(try unstructured(CPUBackend(), sparsity: 0.95, seed: 3), mode: .auto, sparse: .auto).path, "compact+sparse")
    try assertSameFunction(run.model, try pruned(), seed: 9, "compact + sparse")
  }

  /// On OpenCL (PoCL here) `auto` takes the layers below the device's crossover: at 99 % all of
  /// SmallCNN's convolutions (and its linear layers on a GPU), at 20 % none; `on` takes every
  /// layer. A CPU device's crossover is a share of the padded grid, as the CPU's: 35 % of it on
  /// the implicit GEMM, 16 % where the dense passes run as Winograd, less with more than 128
  /// input channels.
  func testOpenCLRunsSparseBelowItsCrossover() throws {
    let cl = try OpenCLFixture.backend()
    func crossover(_ side: Int, channels: Int) -> Double {
      SparseEvaluation.crossover(
        ConvGeometry(batch: 1, inChannels: channels, height: side, width: side, outChannels: 8, kernel: 3, padding: 1), on: cl)
    }
    func share(_ side: Int) -> Double { Double(side * side) / Double((side + 2) * (side + 2)) }
    let (narrow, wide) = cl.device.isGPU ? (0.04, 0.04) : (0.35 * share(4), 0.35 * share(32))
    XCTAssertEqual(crossover(4, channels: 4), narrow, accuracy: 1e-12)
    XCTAssertEqual(crossover(32, channels: 4), wide, accuracy: 1e-12)
    let winograd =
      cl.device.isGPU
      ? (0.04, 0.04, 0.04)
      : cl.tunables.winograd != 0 ? (0.16 * share(32), 0.16 * share(16), 0.16 * share(8) / 2) : (wide, 0.35 * share(16), 0.35 * share(8))
    XCTAssertEqual(crossover(32, channels: 8), winograd.0, accuracy: 1e-12)
    XCTAssertEqual(crossover(16, channels: 128), winograd.1, accuracy: 1e-12)
    XCTAssertEqual(crossover(8, channels: 512), winograd.2, accuracy: 1e-12)
    XCTAssertEqual(try EvaluationModel(try unstructured(cl, sparsity: 0.2, seed: 3), mode: .off, sparse: .auto).path, "masked")
    let auto = try EvaluationModel(try unstructured(cl, sparsity: 0.99, seed: 3), mode: .off, sparse: .auto)
    // Linear layers stay on their GEMMs on a CPU device (sparse lost at every density measured).
    let linear = cl.device.isGPU ? ["fc1", "fc2", "fc3"] : []
    XCTAssertEqual(auto.sparseLayers, ["conv1", "conv2", "conv3", "conv4"] + linear)
    try assertSameFunction(auto.model, try unstructured(CPUBackend(), sparsity: 0.99, seed: 3), seed: 12, "OpenCL auto sparse against CPU masked")
    let run = try EvaluationModel(try unstructured(cl, sparsity: 0.95, seed: 3), mode: .off, sparse: .on)
    XCTAssertEqual(run.path, "sparse")
    try assertSameFunction(run.model, try unstructured(CPUBackend(), sparsity: 0.95, seed: 3), seed: 10, "OpenCL sparse against CPU masked")
  }

  /// ResNet18's 4x4 stage on a CPU device: Winograd from 32 images (one tile each), the implicit
  /// GEMM below; so a layer between the two crossovers computes sparse below 32 images only, and
  /// both sides of that batch give the masked model's function.
  func testOpenCLSwitchesOneTilePlanesToDenseFromTheWinogradBatch() throws {
    let cl = try OpenCLFixture.backend()
    guard !cl.device.isGPU, cl.tunables.winograd != 0 else { throw XCTSkip("Winograd is off on \(cl.device.name)") }
    let g = ConvGeometry(batch: 1, inChannels: 512, height: 4, width: 4, outChannels: 512, kernel: 3, padding: 1)
    XCTAssertEqual(SparseEvaluation.crossover(g, on: cl), 0.16 * 16 / 36 / 2, accuracy: 1e-12)
    let small = try XCTUnwrap(SparseEvaluation.smallBatchCrossover(g, on: cl))
    XCTAssertEqual(small.density, 0.35 * 16 / 36, accuracy: 1e-12)
    XCTAssertEqual(small.belowBatch, 32)
    XCTAssertNil(
      SparseEvaluation.smallBatchCrossover(
        ConvGeometry(batch: 1, inChannels: 64, height: 8, width: 8, outChannels: 64, kernel: 3, padding: 1), on: cl))
    XCTAssertNil(SparseEvaluation.smallBatchCrossover(g, on: CPUBackend()))

    var rng = SeededRNG(seed: 21)
    let conv = try Conv2d(name: "c", inChannels: 8, outChannels: 8, kernel: 3, padding: 1, backend: cl, rng: &rng)
    let weight = try cl.download(conv.weight.value).enumerated().map { $0.offset % 7 == 0 ? $0.element : 0 }
    try cl.write(weight, to: conv.weight.value)
    // The kernels a forward of `batch` images runs, and its largest difference from the dense layer.
    func run(_ batch: Int) throws -> (kernels: Set<String>, error: Float) {
      let x = try cl.upload(rng.uniformArray(batch * 8 * 4 * 4), shape: [batch, 8, 4, 4])
      try conv.computeSparse(true)
      conv.denseFromBatch = 3
      cl.resetTimings()
      cl.profiling = true
      let y = try cl.download(try conv.forward(x))
      try cl.synchronize()
      cl.profiling = false
      let kernels = Set(cl.timings.keys)
      try conv.computeSparse(false)
      let want = try cl.download(try conv.forward(x))
      return (kernels, zip(y, want).map { abs($0 - $1) }.max()!)
    }
    let (below, from) = (try run(2), try run(4))
    XCTAssert(below.kernels.contains { $0.hasPrefix("sparse_") }, "sparse below the batch: \(below.kernels)")
    XCTAssertFalse(from.kernels.contains { $0.hasPrefix("sparse_") }, "dense from it: \(from.kernels)")
    XCTAssertLessThan(below.error, 1e-4)
    XCTAssertLessThan(from.error, 1e-4)
  }

  func testModelsMidPhaseKeepTheDensePath() throws {
    let model = try unstructured(CPUBackend(), sparsity: 0.95, seed: 3)
    let weight = model.parameter(named: "conv2.weight")!
    _ = try model.pruning.setScores(for: weight)
    try model.pruning.setLiveScores(keep: weight.count / 20, for: weight.name)
    XCTAssertEqual(try EvaluationModel(model, mode: .auto, sparse: .on).path, "masked")
  }

  func testAttackReportsTheSparsePathWithTheSameAccuracies() throws {
    let data = try FashionMNISTFixture.directory()
    let path = try temporaryDirectory(self) + "/sparse.safetensors"
    try Checkpoint.save(try unstructured(CPUBackend(), sparsity: 0.95, seed: 11), metadata: ["dataset": "fashion-mnist"], to: path)
    func attack(_ mode: SparseMode) throws -> AttackJob.Result {
      var job = AttackJob(
        input: path, dataset: nil, dataDirectory: data, points: 24, plan: AttackPlan(kind: .pgd, norm: .linf, eps: 0.1), batchSize: 12, seed: 2)
      job.plan.steps = 5
      job.sparse = mode
      job.compact = .off  // magnitude pruning at 95 % empties whole conv1 filters
      return try job.run(backend: CPUBackend(), progress: SilentProgress())
    }
    let (sparse, masked) = (try attack(.auto), try attack(.off))
    XCTAssertEqual([sparse.path, masked.path], ["sparse", "masked"])
    XCTAssertEqual(sparse.evaluation?.cleanAccuracy, masked.evaluation?.cleanAccuracy)
    XCTAssertEqual(sparse.evaluation?.robustAccuracy, masked.evaluation?.robustAccuracy)
  }
}
