import GPU
import XCTest

@testable import Prune

/// The known answers and checks of ATTACKS.md for FGSM, PGD, APGD, FAB, Square, FMN and the
/// ensemble, on small models so they run in seconds.
final class AttackSuiteTests: XCTestCase {
  // MARK: Affine classifiers: the minimal distance is known in closed form

  /// f(x) = W x + b on 1x4x4 inputs with 5 classes, and points near the middle of the box
  /// labelled with their own prediction (so every point is correctly classified).
  func affine(_ backend: Backend, points: Int = 10, seed: UInt64 = 3) throws -> (Model, LabeledImages, [Float]) {
    var rng = SeededRNG(seed: seed)
    let (features, classes) = (16, 5)
    let layer = try Linear(name: "fc", inputs: features, outputs: classes, backend: backend, rng: &rng)
    let w = rng.uniformArray(features * classes, -1, 1)
    try backend.write(w, to: layer.weight.value)
    try backend.write([Float](repeating: 0, count: classes), to: layer.bias!.value)
    let model = Model(architecture: .smallcnn, backend: backend, layers: [layer])
    let x = rng.uniformArray(points * features, 0.45, 0.55)
    let logits = try backend.download(try model.forward(try backend.upload(x, shape: [points, 1, 4, 4])))
    let labels = argmaxRows(logits, classes: classes)
    return (model, LabeledImages(images: x, labels: labels, channels: 1, height: 4, width: 4, classCount: classes), w)
  }

  /// min over j != y of (f_y - f_j) / |w_y - w_j|_dual: the distance to the nearest boundary.
  func exactDistances(_ data: LabeledImages, _ w: [Float], norm: PerturbationNorm) -> [Float] {
    let (f, k) = (16, data.classCount)
    return (0..<data.count).map { n in
      let x = Array(data.images[(n * f)..<((n + 1) * f)])
      let z = (0..<k).map { c in (0..<f).reduce(Float(0)) { $0 + w[c * f + $1] * x[$1] } }
      let y = data.labels[n]
      return (0..<k).filter { $0 != y }.map { j -> Float in
        let diff = (0..<f).map { w[y * f + $0] - w[j * f + $0] }
        let dual: Float =
          switch norm {
          case .linf: diff.reduce(0) { $0 + abs($1) }
          case .l2: diff.reduce(0) { $0 + $1 * $1 }.squareRoot()
          case .l1: diff.reduce(0) { max($0, abs($1)) }
          }
        return (z[y] - z[j]) / dual
      }.min()!
    }
  }

  func testFMNFindsTheAffineMinimalDistanceInEveryNorm() throws {
    let cpu = CPUBackend()
    let (model, data, w) = try affine(cpu)
    let evaluation = RobustnessEvaluation(model: model, data: data, count: data.count, seed: 1)
    for norm in PerturbationNorm.allCases {
      let exact = exactDistances(data, w, norm: norm)
      XCTAssert(exact.allSatisfy { $0 > 0 && $0 < 0.4 }, "test points must be far from the box faces: \(exact)")
      let found = try evaluation.minimumNorm(config: FMNConfig(norm: norm, steps: 200), eps: 0, tune: nil, progress: SilentProgress()).distances
      for (got, want) in zip(found, exact) {
        XCTAssertGreaterThanOrEqual(got, want * (1 - 1e-3), "\(norm): below the true minimum")
        XCTAssertLessThanOrEqual(got, want * 1.01, "\(norm): FMN within 1 % of the exact distance")
      }
    }
  }

  func testFABFindsTheAffineMinimalDistance() throws {
    let cpu = CPUBackend()
    let (model, data, w) = try affine(cpu)
    let evaluation = RobustnessEvaluation(model: model, data: data, count: data.count, seed: 1)
    try evaluation.classifyClean(progress: SilentProgress())
    for norm in [PerturbationNorm.linf, .l2] {
      let exact = exactDistances(data, w, norm: norm)
      let fab = FABAttack(eps: 1, norm: norm, iterations: 100, targets: 4)
      let (_, found) = try fab.minimalPerturbations(model: model, batch: evaluation.batch(Array(0..<data.count)))
      for (got, want) in zip(found, exact) {
        XCTAssertGreaterThanOrEqual(got, want * (1 - 1e-3), "\(norm): below the true minimum")
        XCTAssertLessThanOrEqual(got, want * 1.01, "\(norm): FAB within 1 % of the exact distance")
      }
    }
  }

  func testAPGDSucceedsJustOutsideTheAffineDistanceAndNeverInside() throws {
    let cpu = CPUBackend()
    let (model, data, w) = try affine(cpu, points: 6)
    let evaluation = RobustnessEvaluation(model: model, data: data, count: data.count, seed: 1)
    try evaluation.classifyClean(progress: SilentProgress())
    for norm in [PerturbationNorm.linf, .l2] {
      let exact = exactDistances(data, w, norm: norm)
      for (n, d) in exact.enumerated() {
        let point = evaluation.batch([n])
        for loss in [AttackLoss.targetedDLR, .crossEntropy] {
          let outside = APGDAttack(eps: d * 1.01, norm: norm, loss: loss, targets: 4)
          let inside = APGDAttack(eps: d * 0.99, norm: norm, loss: loss, targets: 4)
          if loss == .targetedDLR {
            XCTAssertEqual(try outside.run(model: model, batch: point, seed: 2).fooled, [true], "\(norm) point \(n): APGD-T at 1.01x")
          }
          XCTAssertEqual(try inside.run(model: model, batch: point, seed: 2).fooled, [false], "\(norm) point \(n): \(loss) at 0.99x")
        }
      }
    }
  }

  func testAPGDCheckpointsOfAHundredIterations() {
    XCTAssertEqual(APGDAttack.checkpoints(iterations: 100), [21, 40, 56, 69, 79, 86, 92, 98])
  }

  // MARK: Every attack on a small CNN

  /// Plans of `kinds`, shortened for tests.
  func plans(
    _ kinds: [AttackKind], norm: PerturbationNorm = .linf, eps: Float, steps: Int, queries: Int, targets: Int, restarts: Int = 1
  ) -> [AttackPlan] {
    kinds.map { kind in
      var plan = AttackPlan(kind: kind, norm: norm, eps: eps)
      (plan.steps, plan.queries, plan.targets, plan.restarts) = (steps, queries, targets, restarts)
      return plan
    }
  }

  func allAttacks(eps: Float, backend: Backend) -> [BoundedAttack] {
    let linf =
      plans([.pgd], eps: eps, steps: 5, queries: 40, targets: 3)
      + plans([.fgsm, .apgdCE, .apgdDLR, .apgdT, .fabT, .square, .autoattack], eps: eps, steps: 8, queries: 40, targets: 3)
    let l2 = plans([.pgd, .apgdCE, .fabT, .square], norm: .l2, eps: eps * 10, steps: 6, queries: 40, targets: 2)
    return (linf + l2).flatMap { $0.attacks(backend: backend) }
  }

  func testEveryAttackIsFeasibleAndZeroEpsGivesCleanAccuracy() throws {
    let cpu = CPUBackend()
    let model = try responsiveSmallCNN(backend: cpu, seed: 11)
    let data = syntheticImages(count: 10, seed: 12)
    let evaluation = RobustnessEvaluation(model: model, data: data, count: 10, batchSize: 10, seed: 3)
    try evaluation.classifyClean(progress: SilentProgress())
    let points = evaluation.batch(Array(0..<10))
    for attack in allAttacks(eps: 0.05, backend: cpu) {
      let outcome = try attack.run(model: model, batch: points, seed: 4)
      for n in 0..<10 where outcome.fooled[n] {
        let adversarial = Array(outcome.adversarial[(n * 784)..<((n + 1) * 784)])
        let clean = Array(points.x[(n * 784)..<((n + 1) * 784)])
        XCTAssert(adversarial.allSatisfy { $0 >= 0 && $0 <= 1 && $0.isFinite }, "\(attack.name): outside [0, 1]")
        let distance = distanceOf(zip(adversarial, clean).map { $0 - $1 }, attack.norm)
        XCTAssert(RobustnessEvaluation.withinBall(distance, eps: attack.eps), "\(attack.name): distance \(distance) > eps \(attack.eps)")
      }
      let result = try evaluation.run(attacks: [attack], description: attack.name, progress: SilentProgress())
      XCTAssertEqual(result.stages[0].rejected, 0, "\(attack.name): every claimed point verifies")
    }
    let clean = evaluation.correct.filter { $0 }.count
    for attack in allAttacks(eps: 0, backend: cpu) {
      let result = try evaluation.run(attacks: [attack], description: attack.name, progress: SilentProgress())
      XCTAssertEqual(result.robustCorrect, clean, "\(attack.name) at eps 0 reproduces clean accuracy")
    }
    let fmn = try evaluation.minimumNorm(config: FMNConfig(norm: .linf, steps: 20), eps: 0, tune: nil, progress: SilentProgress())
    XCTAssertEqual(Int(fmn.robustAccuracy * 10), clean, "FMN at eps 0: every correctly classified point has a positive distance")
    XCTAssertEqual(zip(fmn.distances, evaluation.correct).filter { !$1 }.map(\.0), [Float](repeating: 0, count: 10 - clean))
  }

  func testAttacksDoNotDependOnBatchSizeAndRepeatBitForBit() throws {
    let cpu = CPUBackend()
    let model = try responsiveSmallCNN(backend: cpu, seed: 13)
    let data = syntheticImages(count: 12, seed: 14)
    for plan in plans([.pgd, .apgdCE, .apgdT, .fabT, .square], eps: 0.03, steps: 10, queries: 60, targets: 2, restarts: 2) {
      let run = { (batch: Int) in
        let evaluation = RobustnessEvaluation(model: model, data: data, count: 12, batchSize: batch, seed: 5)
        _ = try evaluation.run(attacks: plan.attacks(backend: cpu), description: "", progress: SilentProgress())
        return evaluation.outcomes.map(\.robust)
      }
      let whole = try run(12)
      XCTAssertEqual(try run(5), whole, "\(plan.kind): batch size changed the outcome")
      XCTAssertEqual(try run(12), whole, "\(plan.kind): same seed, same outcome")
    }
  }

  /// Several target ranks in one batch break the same points as one rank at a time (every row is
  /// attacked on its own).
  func testTargetedAttacksGiveTheSameOutcomeWithRanksBatchedTogether() throws {
    let cpu = CPUBackend()
    let model = try responsiveSmallCNN(backend: cpu, seed: 13)
    model.setTraining(false)
    let n = 12
    let points = try selfLabelledBatch(model, count: n, seed: 14)
    let (x, labels) = (points.x, points.labels)
    for attack in plans([.apgdT, .fabT], eps: 0.004, steps: 10, queries: 0, targets: 4).flatMap({ $0.attacks(backend: cpu) }) {
      let batching = try XCTUnwrap(attack as? TargetBatching)
      batching.rowBudget = 0
      let one = try attack.run(model: model, batch: points, seed: 9)
      batching.rowBudget = 1000
      let together = try attack.run(model: model, batch: points, seed: 9)
      XCTAssertEqual(together.fooled, one.fooled, attack.name)
      XCTAssert(one.fooled.contains(true) && one.fooled.contains(false), "\(attack.name) breaks some points: \(one.fooled)")
      // Which adversarial input is reported may differ (APGD keeps iterating while other rows of
      // its batch are unbroken), but each is inside the ball and misclassified.
      let z = try cpu.download(try model.forward(try cpu.upload(together.adversarial, shape: [n, 1, 28, 28])))
      for k in 0..<n where together.fooled[k] {
        let (adversarial, clean) = (together.adversarial[(k * 784)..<((k + 1) * 784)], x[(k * 784)..<((k + 1) * 784)])
        let distance = distanceOf(zip(adversarial, clean).map { $0 - $1 }, attack.norm)
        XCTAssert(RobustnessEvaluation.withinBall(distance, eps: attack.eps), "\(attack.name) row \(k): distance \(distance)")
        XCTAssertNotEqual((0..<10).max { z[k * 10 + $0] < z[k * 10 + $1] }, labels[k], "\(attack.name) row \(k) is misclassified")
      }
    }
  }

  func testOpenCLRunsTheAttacksLikeTheCPU() throws {
    let cl = try OpenCLFixture.backend()
    let cpu = CPUBackend()
    let data = syntheticImages(count: 6, seed: 15)
    let compared =
      plans([.apgdT, .fabT, .square], eps: 0.05, steps: 4, queries: 30, targets: 2)
      + plans([.apgdCE, .square], norm: .l2, eps: 0.5, steps: 4, queries: 30, targets: 2)
    for plan in compared {
      var points: [[Float]] = []
      for backend in [cpu as Backend, cl] {
        let model = try responsiveSmallCNN(backend: backend, seed: 16)
        let evaluation = RobustnessEvaluation(model: model, data: data, count: 6, seed: 5)
        try evaluation.classifyClean(progress: SilentProgress())
        points.append(try plan.attacks(backend: backend)[0].run(model: model, batch: evaluation.batch(Array(0..<6)), seed: 9).adversarial)
      }
      assertClose(points[1], points[0], atol: 2e-4, rtol: 1e-3, "\(plan.kind) \(plan.norm) on OpenCL vs CPU")
    }
    let fmn = try [cpu as Backend, cl].map { backend -> [Float] in
      let model = try responsiveSmallCNN(backend: backend, seed: 16)
      let evaluation = RobustnessEvaluation(model: model, data: data, count: 6, seed: 5)
      return try evaluation.minimumNorm(config: FMNConfig(norm: .l2, steps: 6), eps: 0, tune: nil, progress: SilentProgress()).distances
    }
    assertClose(fmn[1], fmn[0], atol: 1e-4, rtol: 1e-3, "FMN L2 distances on OpenCL vs CPU")
  }

  // MARK: Losses

  func testDLRIsInvariantToAffineRescalingOfTheLogits() throws {
    let cpu = CPUBackend()
    var rng = SeededRNG(seed: 17)
    let (n, k) = (6, 10)
    let z = rng.uniformArray(n * k, -3, 3)
    let labels = try cpu.upload((0..<n).map { Float($0 % k) }, shape: [n])
    let targets = try cpu.upload((0..<n).map { Float(($0 + 3) % k) }, shape: [n])
    for loss in [AttackLoss.dlr, .targetedDLR] {
      var results: [[Float]] = []
      for (a, b) in [(Float(1), Float(0)), (3, 2)] {
        let (l, d) = (try cpu.zeros([n]), try cpu.zeros([n, k]))
        try cpu.attackLoss(
          loss, losses: l, dLogits: d, logits: try cpu.upload(z.map { a * $0 + b }, shape: [n, k]), labels: labels, targets: targets, scale: a)
        results.append(try cpu.download(l) + (try cpu.download(d)))
      }
      assertClose(results[1], results[0], atol: 1e-5, rtol: 1e-4, "\(loss) under z -> 3z + 2 (gradient times 3)")
    }
  }

  /// Every attack loss (and TRADES' KL against fixed logits) through a small conv net, summed
  /// over a batch of 3: its value and input gradient on a backend.
  struct LossThroughNet {
    static let kinds: [AttackLoss?] = AttackLoss.allCases + [nil]  // nil: TRADES' KL
    let kind: AttackLoss?
    let shape = [3, 1, 6, 6]
    let labels: [Float] = [1, 4, 7]
    let targets: [Float] = [2, 0, 9]
    let reference = {
      var rng = SeededRNG(seed: 19)
      return rng.uniformArray(30, -1, 1)
    }()
    let x = {
      var rng = SeededRNG(seed: 20)
      return rng.uniformArray(3 * 36, 0, 1)
    }()
    var name: String { kind?.rawValue ?? "trades-kl" }

    func net(_ b: Backend) throws -> Model {
      var rng = SeededRNG(seed: 18)
      return Model(
        architecture: .smallcnn, backend: b,
        layers: [
          try Conv2d(name: "c", inChannels: 1, outChannels: 3, kernel: 3, backend: b, rng: &rng), ReLU(backend: b), Flatten(),
          try Linear(name: "fc", inputs: 3 * 4 * 4, outputs: 10, backend: b, rng: &rng),
        ])
    }

    /// The summed loss at `input`, and with `gradient` dLoss/dinput.
    func evaluate(_ model: Model, at input: [Float], gradient: Bool) throws -> (loss: Double, grad: [Float]?) {
      let b = model.backend
      let logits = try model.forward(try b.upload(input, shape: shape))
      let (l, d) = (try b.zeros([3]), gradient ? try b.zeros([3, 10]) : nil)
      if let kind {
        try b.attackLoss(
          kind, losses: l, dLogits: d, logits: logits, labels: try b.upload(labels, shape: [3]), targets: try b.upload(targets, shape: [3]), scale: 1)
      } else {
        try b.softmaxKL(losses: l, dP: nil, dQ: d, p: try b.upload(reference, shape: [3, 10]), q: logits, scale: 1)
      }
      let loss = try b.download(l).reduce(0) { $0 + Double($1) }
      return (loss, try d.map { try b.download(try model.inputGradient($0)) })
    }
  }

  /// Central differences of every attack loss with respect to the input, on the CPU reference.
  func testInputGradientsOfEveryLossMatchFiniteDifferences() throws {
    let cpu = CPUBackend()
    for kind in LossThroughNet.kinds {
      let probe = LossThroughNet(kind: kind)
      let model = try probe.net(cpu)
      let analytic = try XCTUnwrap(try probe.evaluate(model, at: probe.x, gradient: true).grad)
      let numeric = try centralDifferences(probe.x) { try probe.evaluate(model, at: $0, gradient: false).loss }
      assertClose(analytic, numeric, atol: 2e-3, rtol: 2e-2, "\(probe.name) input gradient vs central differences")
    }
  }

  func testInputGradientsOfEveryLossAgreeOnOpenCL() throws {
    let cl = try OpenCLFixture.backend()
    for kind in LossThroughNet.kinds {
      let probe = LossThroughNet(kind: kind)
      let want = try XCTUnwrap(try probe.evaluate(try probe.net(CPUBackend()), at: probe.x, gradient: true).grad)
      let got = try XCTUnwrap(try probe.evaluate(try probe.net(cl), at: probe.x, gradient: true).grad)
      assertClose(got, want, atol: 1e-5, rtol: 1e-4, "\(probe.name) input gradient, OpenCL vs CPU")
    }
  }

  // MARK: Sanity checks

  /// Logits scaled by 10^5 saturate the softmax: cross-entropy input gradients vanish, which the
  /// checks must flag, while an honest model passes them.
  func testTheChecksFlagAGradientMaskedModel() throws {
    let cpu = CPUBackend()
    let data = syntheticImages(count: 12, seed: 20)
    func checks(scale: Float) throws -> [String: Bool] {
      let model = try responsiveSmallCNN(backend: cpu, seed: 21)
      let head = model.parameter(named: "fc3.weight")!
      try cpu.write(try cpu.download(head.value).map { $0 * scale }, to: head.value)
      var plan = AttackPlan(kind: .apgdCE, norm: .linf, eps: 0.05)
      plan.steps = 5
      let evaluation = RobustnessEvaluation(model: model, data: data, count: 12, seed: 1)
      let result = try evaluation.run(attacks: plan.attacks(backend: cpu), description: "", progress: SilentProgress())
      let list = try SanityChecks(evaluation: evaluation, plan: plan, progress: SilentProgress()).run(bounded: result, minimumNorm: nil)
      return Dictionary(uniqueKeysWithValues: list.map { ($0.name, $0.passed) })
    }
    let masked = try checks(scale: 1e5)
    XCTAssertEqual(masked["input gradients are alive"], false, "\(masked)")
    let honest = try checks(scale: 1)
    XCTAssertEqual(honest["input gradients are alive"], true, "\(honest)")
    XCTAssertEqual(honest["deterministic for a fixed seed"], true)
    XCTAssertEqual(honest["feasibility"], true)
  }
}
