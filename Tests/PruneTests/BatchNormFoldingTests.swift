import GPU
import XCTest

@testable import Prune

/// Eval-mode batch norm folded into the convolution before it computes the same function, with
/// the same input gradient, on both backends, masked or sparse; unfolding restores the layers.
final class BatchNormFoldingTests: XCTestCase {
  func assertFoldingKeepsTheFunction(_ model: Model, _ what: String, file: StaticString = #filePath, line: UInt = #line) throws {
    let before = try evalOutputs(model, seed: 11)
    try model.foldBatchNorm()
    XCTAssert(model.isBatchNormFolded, what, file: file, line: line)
    XCTAssertFalse(model.steps.contains { $0 is BatchNorm2d }, "\(what): folded norms still run", file: file, line: line)
    let folded = try evalOutputs(model, seed: 11)
    // The second pass runs on the Winograd transforms the CPU backend kept of the frozen weights.
    let again = try evalOutputs(model, seed: 11)
    XCTAssertEqual(again.logits, folded.logits, "\(what): kept transforms compute as the first pass", file: file, line: line)
    XCTAssertEqual(again.inputGradient, folded.inputGradient, "\(what): kept transforms differentiate as the first pass", file: file, line: line)
    assertClose(folded.logits, before.logits, atol: 1e-4, rtol: 1e-4, "\(what) logits", file: file, line: line)
    assertClose(folded.inputGradient, before.inputGradient, atol: 1e-5, rtol: 1e-3, "\(what) input gradient", file: file, line: line)
    model.unfoldBatchNorm()
    let after = try evalOutputs(model, seed: 11)
    XCTAssertEqual(after.logits, before.logits, "\(what): unfolding computes as before", file: file, line: line)
    XCTAssertEqual(after.inputGradient, before.inputGradient, "\(what): unfolding differentiates as before", file: file, line: line)
  }

  func testResNet18AndVGG16FoldOnTheCPU() throws {
    try assertFoldingKeepsTheFunction(try randomized(.resnet18, width: 0.125, seed: 21), "ResNet18")
    try assertFoldingKeepsTheFunction(try randomized(.vgg16, width: 0.0625, seed: 22), "VGG16")
  }

  func testAMaskedResNet18FoldsItsEffectiveWeight() throws {
    let model = try randomized(.resnet18, width: 0.125, seed: 23)
    try Pruner.prune(model: model, criterion: .magnitude, locality: .local, sparsity: 0.7, seed: 1)
    try assertFoldingKeepsTheFunction(model, "70 % ResNet18")
  }

  /// A model without batch norm computes with frozen copies of its (masked) weights: the same
  /// numbers, on transforms the CPU backend keeps; training computes with its own weights again.
  func testConvolutionsWithoutANormFreezeACopy() throws {
    let model = try responsiveSmallCNN(backend: CPUBackend(), seed: 31)
    try Pruner.prune(model: model, criterion: .magnitude, locality: .local, sparsity: 0.7, seed: 1)
    model.setTraining(false)
    let before = try evalOutputs(model, seed: 13)
    try model.foldBatchNorm()
    XCTAssert(model.isFolded && !model.isBatchNormFolded)
    let (folded, again) = (try evalOutputs(model, seed: 13), try evalOutputs(model, seed: 13))
    XCTAssertEqual(folded.logits, before.logits)
    XCTAssertEqual(folded.inputGradient, before.inputGradient)
    XCTAssertEqual(again.logits, folded.logits, "kept transforms compute as the first pass")
    model.setTraining(true)
    XCTAssertFalse(model.isFolded, "training unfolds")
    let w = model.trainableParameters[0]
    try model.backend.fill(w.value, value: 0)
    model.setTraining(false)
    XCTAssertNotEqual(try evalOutputs(model, seed: 13).logits, before.logits, "after unfolding the layer reads its own weight")
  }

  func testResNet18FoldsOnOpenCL() throws {
    try assertFoldingKeepsTheFunction(try randomized(.resnet18, width: 0.125, seed: 24, backend: try OpenCLFixture.backend()), "OpenCL ResNet18")
  }

  func testEvaluationModelsFoldAndTrainingUnfolds() throws {
    let resnet = try EvaluationModel(try randomized(.resnet18, width: 0.125, seed: 25), mode: .off)
    // conv1 + bn1, two per block in eight blocks, three shortcuts.
    XCTAssertEqual(resnet.foldedBatchNorms, 20)
    XCTAssert(resnet.summary.contains("batch norm folded into 20 convolutions"), resnet.summary)
    XCTAssertEqual(try EvaluationModel(try randomized(.vgg16, width: 0.0625, seed: 26), mode: .off).foldedBatchNorms, 13)
    XCTAssertEqual(try EvaluationModel(try responsiveSmallCNN(backend: CPUBackend(), seed: 27), mode: .off).foldedBatchNorms, 0)
    let unfolded = try EvaluationModel(try randomized(.resnet18, width: 0.125, seed: 25), mode: .off, foldBatchNorm: false)
    XCTAssertEqual(unfolded.foldedBatchNorms, 0)
    let (got, want) = (try evalOutputs(resnet.model, seed: 12), try evalOutputs(unfolded.model, seed: 12))
    assertClose(got.logits, want.logits, atol: 1e-4, rtol: 1e-4, "evaluation model logits")
    // Training changes the parameters a fold took a snapshot of.
    resnet.model.setTraining(true)
    XCTAssertFalse(resnet.model.isBatchNormFolded)
  }

  func testSparseLayersCompressTheFoldedWeightAndAgainAfterUnfolding() throws {
    func pruned() throws -> Model {
      let model = try randomized(.resnet18, width: 0.125, seed: 28)
      try Pruner.prune(model: model, criterion: .magnitude, locality: .local, sparsity: 0.9, seed: 1)
      return model
    }
    let run = try EvaluationModel(try pruned(), mode: .off, sparse: .on)
    XCTAssertEqual(run.foldedBatchNorms, 20)
    let reference = try EvaluationModel(try pruned(), mode: .off, foldBatchNorm: false).model
    let want = try evalOutputs(reference, seed: 13)
    let got = try evalOutputs(run.model, seed: 13)
    assertClose(got.logits, want.logits, atol: 1e-4, rtol: 1e-4, "sparse folded logits")
    assertClose(got.inputGradient, want.inputGradient, atol: 1e-5, rtol: 1e-3, "sparse folded input gradient")
    run.model.unfoldBatchNorm()
    let unfolded = try evalOutputs(run.model, seed: 13)
    assertClose(unfolded.logits, want.logits, atol: 1e-4, rtol: 1e-4, "sparse unfolded logits")
  }

  /// A training loop's PGD runs on the folded model and leaves it training and unfolded; its
  /// adversarial batch is the one the unfolded eval-mode model gives (up to steps that a
  /// rounding-level gradient difference turns the other way).
  func testATrainingLoopsAttackFoldsForItsStepsOnly() throws {
    let (training, evaluating) = (try randomized(.resnet18, width: 0.125, seed: 29), try randomized(.resnet18, width: 0.125, seed: 29))
    evaluating.setTraining(false)
    var rng = SeededRNG(seed: 30)
    let shape = [4] + training.architecture.inputShape
    let values = rng.uniformArray(shape.reduce(1, *), 0, 1)
    let labels = try training.backend.upload([0, 3, 5, 9], shape: [4])
    let attack = PGDAttack(config: PGDConfig(eps: 8 / 255, alpha: 2 / 255, steps: 3), backend: training.backend)
    let folded = try training.backend.download(
      try attack.perturb(model: training, x: try training.backend.upload(values, shape: shape), labels: labels, seed: 1))
    XCTAssert(training.isTraining && !training.isBatchNormFolded, "the attack restores training mode, unfolded")
    let other = PGDAttack(config: PGDConfig(eps: 8 / 255, alpha: 2 / 255, steps: 3), backend: evaluating.backend)
    let plain = try evaluating.backend.download(
      try other.perturb(model: evaluating, x: try evaluating.backend.upload(values, shape: shape), labels: labels, seed: 1))
    XCTAssertFalse(evaluating.isBatchNormFolded, "a model already in eval mode runs as its owner set it up")
    let agreeing = zip(folded, plain).filter { abs($0 - $1) <= 1e-5 }.count
    XCTAssertGreaterThan(Double(agreeing) / Double(plain.count), 0.99, "\(plain.count - agreeing) of \(plain.count) values differ")
  }
}
