import GPU
import XCTest

@testable import Prune

final class AttackTests: XCTestCase {
  /// Sanity checks 1-2 of ATTACKS.md on a briefly trained model: eps 0 reproduces clean accuracy
  /// exactly, eps 0.5 (L-inf) leaves nothing robust.
  func testZeroEpsReproducesCleanAccuracyAndLargeEpsBreaksEverything() throws {
    let dir = try FashionMNISTFixture.directory()
    let cpu = CPUBackend()
    let model = try responsiveSmallCNN(backend: cpu, seed: 2)
    let train = try DatasetName.fashionMNIST.load(directory: dir, train: true, limit: 4000)
    let config = TrainConfig(epochs: 2, batchSize: 64, sgd: SGDHyper(learningRate: 0.05, momentum: 0.9), attack: nil, seed: 1)
    _ = try Trainer(model: model, config: config).train(data: train, progress: SilentProgress())
    let test = try DatasetName.fashionMNIST.load(directory: dir, train: false, limit: 100)
    let plain = try evaluateRobustness(model: model, data: test, count: 100, attack: nil, seed: 1, progress: SilentProgress())
    XCTAssertGreaterThan(plain.cleanAccuracy, 0.5, "two epochs on 4000 images should learn something")
    let zero = try evaluateRobustness(
      model: model, data: test, count: 100, attack: PGDConfig(eps: 0, alpha: 0.01, steps: 5), seed: 1, progress: SilentProgress())
    XCTAssertEqual(zero.cleanCorrect, plain.cleanCorrect)
    XCTAssertEqual(zero.robustCorrect, plain.cleanCorrect)
    let huge = try evaluateRobustness(
      model: model, data: test, count: 100, attack: PGDConfig(eps: 0.5, alpha: 0.05, steps: 20), seed: 1, progress: SilentProgress())
    XCTAssertEqual(huge.robustCorrect, 0, "nothing resists eps 0.5")
  }

  func testResultsDoNotDependOnBatchSize() throws {
    let cpu = CPUBackend()
    let model = try responsiveSmallCNN(backend: cpu, seed: 4)
    let data = syntheticImages(count: 30, seed: 5)
    let attack = PGDConfig(eps: 0.05, alpha: 0.01, steps: 3, randomStart: false)
    let a = try evaluateRobustness(model: model, data: data, count: 30, attack: attack, batchSize: 30, seed: 1, progress: SilentProgress())
    let b = try evaluateRobustness(model: model, data: data, count: 30, attack: attack, batchSize: 7, seed: 1, progress: SilentProgress())
    XCTAssertEqual(a.cleanCorrect, b.cleanCorrect)
    XCTAssertEqual(a.robustCorrect, b.robustCorrect)
  }

  func testAdversarialPointsAreFeasibleAndRaiseTheLoss() throws {
    let cpu = CPUBackend()
    let model = try responsiveSmallCNN(backend: cpu, seed: 6)
    let data = syntheticImages(count: 8, seed: 7)
    let (x, y, _) = try BatchUploader(data: data, backend: cpu).upload(0..<8)
    let attack = PGDAttack(config: PGDConfig(eps: 0.1, alpha: 0.025, steps: 10), backend: cpu)
    let xAdv = try cpu.download(try attack.perturb(model: model, x: x, labels: y, seed: 3))
    let clean = try cpu.download(x)
    XCTAssert(zip(xAdv, clean).allSatisfy { abs($0 - $1) <= 0.1 * (1 + 1e-6) && $0 >= 0 && $0 <= 1 })
    func meanLoss(_ input: [Float]) throws -> Float {
      let logits = try model.forward(try cpu.upload(input, shape: [8, 1, 28, 28]))
      let l = try cpu.zeros([8])
      try cpu.softmaxCrossEntropy(losses: l, dLogits: nil, logits: logits, labels: y, scale: 1)
      return try cpu.download(l).reduce(0, +) / 8
    }
    XCTAssertGreaterThan(try meanLoss(xAdv), try meanLoss(clean))
  }

  func testSameSeedGivesBitIdenticalAdversarialPoints() throws {
    let cpu = CPUBackend()
    let model = try responsiveSmallCNN(backend: cpu, seed: 8)
    let (x, y, _) = try BatchUploader(data: syntheticImages(count: 4, seed: 9), backend: cpu).upload(0..<4)
    let attack = PGDAttack(config: PGDConfig(eps: 0.1, alpha: 0.025, steps: 4), backend: cpu)
    let a = try cpu.download(try attack.perturb(model: model, x: x, labels: y, seed: 5))
    let b = try cpu.download(try attack.perturb(model: model, x: x, labels: y, seed: 5))
    XCTAssertEqual(a, b)
  }
}
