import GPU
import XCTest

@testable import Prune

final class StepTimesTests: XCTestCase {
  func testEveryStepOfAPassIsTimedWithItsMACsAndImages() throws {
    let model = try responsiveSmallCNN(backend: CPUBackend(), seed: 1)
    model.setTraining(false)
    let untimed = try evalOutputs(model, seed: 2)
    model.timeSteps(true)
    let timed = try evalOutputs(model, seed: 2)  // one forward and one backward of 3 points
    XCTAssertEqual(timed.logits, untimed.logits, "timing changes no result")
    XCTAssertEqual(timed.inputGradient, untimed.inputGradient)
    var rng = SeededRNG(seed: 3)
    _ = try model.inference(try model.backend.upload(rng.uniformArray(2 * 784, 0, 1), shape: [2, 1, 28, 28]))
    let rows = try XCTUnwrap(model.stepTimes)
    XCTAssertEqual(
      rows.map(\.step),
      [
        "conv1 + ReLU", "conv2 + ReLU", "MaxPool2x2", "conv3 + ReLU", "conv4 + ReLU", "MaxPool2x2", "Flatten", "fc1", "ReLU", "fc2", "ReLU",
        "fc3",
      ])
    XCTAssertEqual(rows.map(\.outputShape).first, [32, 26, 26])
    XCTAssertEqual(rows.map(\.outputShape).last, [10])
    XCTAssertEqual(rows.reduce(0) { $0 + $1.macsPerImage }, model.macsPerImage)
    XCTAssertEqual(rows.first?.macsPerImage, 26 * 26 * 32 * 9)
    for row in rows {
      XCTAssertEqual(row.forwardImages, 3 + 2, "\(row.step): the forward and the inference pass")
      XCTAssertEqual(row.backwardImages, 3, row.step)
      if row.macsPerImage > 0 { XCTAssertGreaterThan(row.forwardSeconds, 0, row.step) }
    }
    model.timeSteps(false)
    XCTAssertNil(model.stepTimes)
  }

  func testResidualBlocksAreNamedAndFoldingStartsOver() throws {
    let model = try Architecture.resnet18.build(backend: CPUBackend(), seed: 4, width: 0.125)
    model.setTraining(false)
    model.timeSteps(true)
    _ = try evalLogits(model, seed: 5)
    let unfolded = try XCTUnwrap(model.stepTimes)
    XCTAssertEqual(unfolded.map(\.step).prefix(3), ["conv1", "bn1 + ReLU", "layer1.0"])
    XCTAssertEqual(unfolded.first?.forwardImages, 4)
    try model.foldBatchNorm()
    let folded = try XCTUnwrap(model.stepTimes)
    XCTAssertEqual(
      folded.map(\.step),
      ["conv1 + ReLU"] + ["1.0", "1.1", "2.0", "2.1", "3.0", "3.1", "4.0", "4.1"].map { "layer" + $0 } + ["AvgPool", "Flatten", "linear"])
    XCTAssertEqual(folded.map(\.forwardImages), Array(repeating: 0, count: folded.count), "the new steps' times start from zero")
    XCTAssertEqual(folded.reduce(0) { $0 + $1.macsPerImage }, model.macsPerImage)
  }

  func testAnAttacksInputGradientsAreCountedPerPoint() throws {
    let model = try responsiveSmallCNN(backend: CPUBackend(), seed: 6)
    model.setTraining(false)
    let unlabelled = syntheticImages(count: 6, seed: 7)
    let logits = try model.backend.download(try model.forward(try model.backend.upload(unlabelled.images, shape: [6, 1, 28, 28])))
    let labels = (0..<6).map { k in (0..<10).max { logits[k * 10 + $0] < logits[k * 10 + $1] }! }
    let data = LabeledImages(images: unlabelled.images, labels: labels, channels: 1, height: 28, width: 28, classCount: 10)
    model.timeSteps(true)
    var plan = AttackPlan(kind: .pgd, norm: .linf, eps: 0.1)
    plan.steps = 3
    let evaluation = RobustnessEvaluation(model: model, data: data, count: 6, batchSize: 6, seed: 8)
    let result = try evaluation.run(attacks: plan.attacks(backend: model.backend), description: "pgd-3", progress: SilentProgress())
    XCTAssertEqual(result.cleanCorrect, 6, "labelled with the model's own predictions")
    let rows = try XCTUnwrap(model.stepTimes)
    XCTAssertEqual(rows.map(\.backwardImages), Array(repeating: 6 * 3, count: rows.count), "one input gradient per point and PGD step")
    XCTAssertGreaterThanOrEqual(rows.first?.forwardImages ?? 0, 6 + 6 * 3, "the clean pass and a forward per PGD step")
  }

  func testAttackReportsLayerTimesOnlyWhenAsked() throws {
    let data = try FashionMNISTFixture.directory()
    let path = try temporaryDirectory(self) + "/m.safetensors"
    try Checkpoint.save(try responsiveSmallCNN(backend: CPUBackend(), seed: 6), metadata: ["dataset": "fashion-mnist"], to: path)
    func attack(layerTimes: Bool) throws -> AttackJob.Result {
      var job = AttackJob(
        input: path, dataset: nil, dataDirectory: data, points: 8, plan: AttackPlan(kind: .pgd, norm: .linf, eps: 0.1), batchSize: 8, seed: 2)
      job.plan.steps = 3
      job.layerTimes = layerTimes
      return try job.run(backend: CPUBackend(), progress: SilentProgress())
    }
    XCTAssertNil(try attack(layerTimes: false).layerTimes)
    let rows = try XCTUnwrap(try attack(layerTimes: true).layerTimes)
    XCTAssertEqual(rows.count, 12, "SmallCNN's steps")
    XCTAssertGreaterThanOrEqual(rows.first?.forwardImages ?? 0, 8, "the clean pass at least")
  }
}

final class PredictStepTimesTests: XCTestCase {
  func testPredictTimesTheTimedPassWhenAsked() throws {
    let data = try FashionMNISTFixture.directory()
    let path = try temporaryDirectory(self) + "/m.safetensors"
    try Checkpoint.save(try responsiveSmallCNN(backend: CPUBackend(), seed: 9), metadata: ["dataset": "fashion-mnist"], to: path)
    func predict(layerTimes: Bool) throws -> PredictJob.Result {
      var job = PredictJob(input: path, architecture: nil, dataset: nil, dataDirectory: data, points: 5)
      job.layerTimes = layerTimes
      return try job.run(backend: CPUBackend())
    }
    let plain = try predict(layerTimes: false)
    XCTAssertNil(plain.layerTimes)
    let timed = try predict(layerTimes: true)
    XCTAssertEqual(timed.logits, plain.logits)
    let rows = try XCTUnwrap(timed.layerTimes)
    XCTAssertEqual(rows.map(\.forwardImages), Array(repeating: 5, count: 12), "the timed pass only, not the warm-up")
    XCTAssertEqual(rows.map(\.backwardImages), Array(repeating: 0, count: 12))
  }
}
