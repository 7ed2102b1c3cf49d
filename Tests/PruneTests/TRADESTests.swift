import GPU
import XCTest

@testable import Prune

final class TRADESTests: XCTestCase {
  func smallModel(_ b: Backend, seed: UInt64) throws -> Model {
    var rng = SeededRNG(seed: seed)
    let layers: [Layer] = [
      try Conv2d(name: "conv1", inChannels: 1, outChannels: 3, kernel: 3, backend: b, rng: &rng), ReLU(backend: b),
      MaxPool2x2(backend: b), Flatten(), try Linear(name: "fc", inputs: 12, outputs: 10, backend: b, rng: &rng),
    ]
    return Model(architecture: .smallcnn, backend: b, layers: layers)
  }

  /// The step's parameter gradient is that of CE(f(x), y) + beta * KL(f(x) || f(x')) through both
  /// passes, checked by central differences with x' held fixed.
  func testTradesGradientMatchesFiniteDifferences() throws {
    let cpu = CPUBackend()
    let model = try smallModel(cpu, seed: 1)
    var rng = SeededRNG(seed: 2)
    let x = try cpu.upload(rng.uniformArray(2 * 36, 0, 1), shape: [2, 1, 6, 6])
    let labels = try cpu.upload([3, 7], shape: [2])
    let config = PGDConfig(eps: 0.1, alpha: 0.05, steps: 2)
    let beta: Float = 6
    let clean = try cpu.zeros([2, 10])
    try cpu.copy(from: try model.forward(x), to: clean)
    let xAdv = try cpu.download(try TRADESAttack(config: config, backend: cpu).perturb(model: model, x: x, cleanLogits: clean, seed: 9))
    func loss() throws -> Double {
      let zAdv = try cpu.zeros([2, 10])
      try cpu.copy(from: try model.forward(try cpu.upload(xAdv, shape: [2, 1, 6, 6])), to: zAdv)
      let z = try model.forward(x)
      let (ce, kl) = (try cpu.zeros([2]), try cpu.zeros([2]))
      try cpu.softmaxCrossEntropy(losses: ce, dLogits: nil, logits: z, labels: labels, scale: 1)
      try cpu.softmaxKL(losses: kl, dP: nil, dQ: nil, p: z, q: zAdv, scale: 1)
      return zip(try cpu.download(ce), try cpu.download(kl)).reduce(0.0) { $0 + Double($1.0) + Double(beta) * Double($1.1) } / 2
    }
    let trainer = Trainer(
      model: model,
      config: TrainConfig(epochs: 1, batchSize: 2, sgd: SGDHyper(learningRate: 0, momentum: 0), attack: config, seed: 1, tradesBeta: beta))
    let xHost = try cpu.download(x)
    XCTAssert(zip(xAdv, xHost).allSatisfy { abs($0 - $1) <= 0.1 + 1e-6 && $0 >= 0 && $0 <= 1 }, "x' is feasible")
    let adversarial = try trainer.tradesAdversarial(x: x, attack: TRADESAttack(config: config, backend: cpu), seed: 9)
    XCTAssertEqual(try cpu.download(adversarial), xAdv, "the attack is deterministic for a seed")
    _ = try trainer.tradesStep(
      x: x, xAdv: adversarial, labels: labels, hostLabels: [3, 7], beta: beta, step: .single(SGDHyper(learningRate: 0, momentum: 0)))
    let h: Float = 1e-3
    for p in model.trainableParameters {
      let analytic = try cpu.download(p.grad)
      var values = try cpu.download(p.value)
      for i in stride(from: 0, to: values.count, by: max(1, values.count / 7)) {
        let original = values[i]
        values[i] = original + h
        try cpu.write(values, to: p.value)
        let up = try loss()
        values[i] = original - h
        try cpu.write(values, to: p.value)
        let down = try loss()
        values[i] = original
        try cpu.write(values, to: p.value)
        XCTAssertEqual(analytic[i], Float((up - down) / Double(2 * h)), accuracy: 2e-3 + 2e-2 * abs(analytic[i]), "\(p.name)[\(i)]")
      }
    }
  }

  func testTradesStepAgreesAcrossBackends() throws {
    let cl = try OpenCLFixture.backend()
    let a = try Architecture.smallcnn.build(backend: CPUBackend(), seed: 3)
    let b = try Architecture.smallcnn.build(backend: cl, seed: 4)
    try Checkpoint.assign(try Checkpoint.stateDict(of: a), to: b, path: "memory")
    for m in [a, b] {
      // A random head: the reference initialisation zeroes fc3, and then KL has no gradient.
      var rng = SeededRNG(seed: 5)
      try m.backend.write(rng.uniformArray(2000, -0.07, 0.07), to: m.parameter(named: "fc3.weight")!.value)
    }
    let data = syntheticImages(count: 8, seed: 6)
    let config = TrainConfig(
      epochs: 1, batchSize: 8, sgd: SGDHyper(learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4),
      attack: PGDConfig(eps: 0.1, alpha: 0.025, steps: 3), seed: 1, tradesBeta: 6)
    // The adversarial batch comes from the CPU for both: TRADES' first steps follow the sign of
    // an almost-zero KL gradient, which rounding flips pixel by pixel.
    let (x0, _, _) = try BatchUploader(data: data, backend: a.backend).upload(0..<8)
    let shared = try a.backend.download(
      try Trainer(model: a, config: config).tradesAdversarial(x: x0, attack: TRADESAttack(config: config.attack!, backend: a.backend), seed: 7))
    for m in [a, b] {
      let (x, y, labels) = try BatchUploader(data: data, backend: m.backend).upload(0..<8)
      let xAdv = try m.backend.upload(shared, shape: x.shape)
      _ = try Trainer(model: m, config: config).tradesStep(x: x, xAdv: xAdv, labels: y, hostLabels: labels, beta: 6, step: .single(config.sgd))
    }
    let (want, got) = (try Checkpoint.stateDict(of: a), try Checkpoint.stateDict(of: b))
    for name in want.keys.sorted() { assertClose(got[name]!.values, want[name]!.values, atol: 1e-5, rtol: 1e-3, name) }
  }

  /// Batch-norm running statistics see natural, adversarial, natural — the TRADES reference's
  /// order of training-mode passes (it evaluates `model(x_natural)` twice).
  func testRunningStatisticsFollowTheReferencePasses() throws {
    let cpu = CPUBackend()
    var rng = SeededRNG(seed: 3)
    let layers: [Layer] = [
      try BatchNorm2d(name: "bn", channels: 1, backend: cpu), Flatten(),
      try Linear(name: "fc", inputs: 36, outputs: 10, backend: cpu, rng: &rng),
    ]
    let model = Model(architecture: .smallcnn, backend: cpu, layers: layers)
    let xHost = rng.uniformArray(4 * 36, 0, 1)
    let advHost = xHost.map { min(1, $0 + 0.3) }
    let (x, xAdv) = (try cpu.upload(xHost, shape: [4, 1, 6, 6]), try cpu.upload(advHost, shape: [4, 1, 6, 6]))
    let config = TrainConfig(
      epochs: 1, batchSize: 4, sgd: SGDHyper(learningRate: 0.1, momentum: 0), attack: PGDConfig(eps: 0.3, alpha: 0.1, steps: 1), seed: 1,
      tradesBeta: 6)
    _ = try Trainer(model: model, config: config).tradesStep(
      x: x, xAdv: xAdv, labels: try cpu.upload([1, 2, 3, 4], shape: [4]), hostLabels: [1, 2, 3, 4], beta: 6, step: .single(config.sgd))
    let mean = { (v: [Float]) in v.reduce(0, +) / Float(v.count) }
    var expected: Float = 0
    for batch in [xHost, advHost, xHost] { expected = 0.9 * expected + 0.1 * mean(batch) }
    XCTAssertEqual(try cpu.download(model.parameter(named: "bn.running_mean")!.value)[0], expected, accuracy: 1e-6)
  }
}
