import GPU
import XCTest

@testable import Prune

/// A training step on OpenCL and on the CPU reference, from the same weights and batch, must give
/// the same weights (the backbone issue's bar: 1e-4 relative).
final class TrainingParityTests: XCTestCase {
  func pair(seed: UInt64) throws -> (cpu: Model, cl: Model) {
    let cl = try OpenCLFixture.backend()
    let a = try Architecture.smallcnn.build(backend: CPUBackend(), seed: seed)
    let b = try Architecture.smallcnn.build(backend: cl, seed: seed + 1)
    try Checkpoint.assign(try Checkpoint.stateDict(of: a), to: b, path: "memory")
    return (a, b)
  }

  func testNaturalTrainingStepAgrees() throws {
    let (cpu, cl) = try pair(seed: 3)
    let data = syntheticImages(count: 16, seed: 4)
    let config = TrainConfig(epochs: 1, batchSize: 16, sgd: SGDHyper(learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4), attack: nil, seed: 1)
    for model in [cpu, cl] {
      let (x, y, labels) = try BatchUploader(data: data, backend: model.backend).upload(0..<16)
      let trainer = Trainer(model: model, config: config)
      for _ in 0..<2 { _ = try trainer.step(input: x, labels: y, hostLabels: labels) }
    }
    let (want, got) = (try Checkpoint.stateDict(of: cpu), try Checkpoint.stateDict(of: cl))
    for name in want.keys.sorted() {
      assertClose(got[name]!.values, want[name]!.values, atol: 1e-6, rtol: 1e-4, name)
    }
  }

  func testAdversarialTrainingStepAgrees() throws {
    let (cpu, cl) = try pair(seed: 5)
    let data = syntheticImages(count: 16, seed: 6)
    let config = TrainConfig(
      epochs: 1, batchSize: 16, sgd: SGDHyper(learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4),
      attack: PGDConfig(eps: 0.1, alpha: 0.025, steps: 3), seed: 1)
    var adversarial: [[Float]] = []
    for model in [cpu, cl] {
      let (x, y, labels) = try BatchUploader(data: data, backend: model.backend).upload(0..<16)
      let xAdv = try PGDAttack(config: config.attack!, backend: model.backend).perturb(model: model, x: x, labels: y, seed: 9)
      adversarial.append(try model.backend.download(xAdv))
      _ = try Trainer(model: model, config: config).step(input: xAdv, labels: y, hostLabels: labels)
    }
    // sign(g) may flip where a gradient entry is ~0, so allow a handful of pixels to differ.
    let differing = zip(adversarial[0], adversarial[1]).filter { abs($0 - $1) > 1e-5 }.count
    XCTAssertLessThan(Double(differing), 0.001 * Double(adversarial[0].count), "x_adv differs in \(differing) pixels")
    let (want, got) = (try Checkpoint.stateDict(of: cpu), try Checkpoint.stateDict(of: cl))
    for name in want.keys.sorted() {
      assertClose(got[name]!.values, want[name]!.values, atol: 1e-5, rtol: 1e-3, name)
    }
  }
}
