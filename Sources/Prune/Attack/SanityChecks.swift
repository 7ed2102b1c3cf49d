import Foundation
import GPU

/// One check of ATTACKS.md's list: passed or not, with the numbers behind it.
public struct SanityCheck: Codable, Sendable {
  public let name: String
  public let passed: Bool
  public let detail: String
}

/// The sanity checks of an evaluation (Carlini et al.'s checklist, as ATTACKS.md lists it), run on
/// a subset of the evaluated points so they cost a fraction of the evaluation itself.
struct SanityChecks {
  let evaluation: RobustnessEvaluation
  let plan: AttackPlan
  let progress: ProgressSink
  /// Points the comparisons run on: the first `subset` of the evaluation.
  var subset: Int { min(evaluation.count, 200) }
  /// Differences below this are noise: half a point, or one point of the subset.
  var noise: Double { max(0.005, 1 / Double(max(subset, 1))) }
  /// The bounded attacks of the checks run in the evaluation's norm; FMN's L1 is checked with L2.
  var pgdNorm: PerturbationNorm { plan.norm == .l1 ? .l2 : plan.norm }

  func run(bounded: RobustnessResult?, minimumNorm: MinimumNormResult?) throws -> [SanityCheck] {
    let backend = evaluation.model.backend
    let eps = plan.eps
    var checks: [SanityCheck] = []
    let subEvaluation = evaluation.prefix(subset)
    let silent = SilentProgress()
    func stage(_ k: Int) { progress.update(ProgressUpdate(phase: "sanity checks", step: k, total: 5, imagesPerSecond: 0, metrics: [])) }
    func robust(_ attacks: [BoundedAttack]) throws -> Double {
      try subEvaluation.run(attacks: attacks, description: "check", progress: silent).robustAccuracy
    }
    func pgd(_ radius: Float, steps: Int, restarts: Int = 1) -> PGDAttack {
      PGDAttack(
        config: PGDConfig(eps: radius, alpha: radius / 4, steps: steps, norm: pgdNorm, restarts: restarts),
        backend: backend)
    }
    let pct = { (v: Double) in String(format: "%.1f%%", 100 * v) }

    if let bounded {
      let rejected = bounded.stages.reduce(0) { $0 + $1.rejected }
      checks.append(
        SanityCheck(
          name: "feasibility", passed: rejected == 0,
          detail: "\(rejected) claimed adversarial points outside the ball, outside [0, 1] or not misclassified"))
    }
    if let minimumNorm {
      checks.append(
        SanityCheck(
          name: "unbounded minimum-norm succeeds", passed: minimumNorm.unbroken == 0,
          detail: "\(minimumNorm.unbroken) correctly classified points FMN did not fool"))
    }

    stage(1)
    let large: Float = plan.norm == .linf ? 0.5 : Float(evaluation.features).squareRoot() * 0.5
    let largeRobust = try robust([pgd(large, steps: 20)])
    let chance = 1 / Double(evaluation.data.classCount)
    checks.append(
      SanityCheck(
        name: "large eps breaks everything", passed: largeRobust <= chance,
        detail: "PGD-20 at eps \(large): robust \(pct(largeRobust)) (chance \(pct(chance)))"))

    if eps > 0 && plan.norm != .l1 {
      stage(2)
      let fgsm = try robust([PGDAttack(config: .fgsm(eps: eps, norm: plan.norm), backend: backend)])
      let pgd20 = try robust([pgd(eps, steps: 20)])
      let pgdMore = try robust([pgd(eps, steps: 40, restarts: 2)])
      checks.append(
        SanityCheck(
          name: "more iterations do not help the model", passed: pgdMore <= pgd20 + noise,
          detail: "PGD-20 \(pct(pgd20)), PGD-40 x 2 restarts \(pct(pgdMore))"))
      // The evaluation's own result on the same points (FMN runs: the fast ensemble there).
      let mine =
        bounded != nil
        ? Double(evaluation.outcomes.prefix(subset).filter(\.robust).count) / Double(max(subset, 1))
        : try robust(plan.with(kind: .autoattack, version: .fast).attacks(backend: backend))
      let label = plan.kind == .fmn ? "autoattack fast" : plan.kind.rawValue
      checks.append(
        SanityCheck(
          name: "stronger attacks are not weaker", passed: fgsm + noise >= pgdMore && pgdMore + noise >= mine || plan.kind == .fgsm,
          detail: "FGSM \(pct(fgsm)) >= PGD-40x2 \(pct(pgdMore)) >= \(label) \(pct(mine)) on the first \(subset) points"))
      if let bounded {
        let increases = zip(bounded.stages, bounded.stages.dropFirst()).filter { $1.robustCorrect > $0.robustCorrect }.count
        checks.append(
          SanityCheck(
            name: "ensemble never gets weaker", passed: increases == 0,
            detail: bounded.stages.map { "\($0.name) \(pct($0.robustAccuracy))" }.joined(separator: " -> ")))
        if let square = bounded.stages.first(where: { $0.name == "square" }) {
          let share = Double(square.broken) / Double(max(bounded.points, 1))
          checks.append(
            SanityCheck(
              name: "black-box does not beat white-box", passed: share <= 0.002,
              detail: "Square broke \(square.broken) points the gradient attacks missed (\(pct(share)); > 0.2 % suggests gradient masking)"))
        }
      }

      stage(3)
      let fmnRobust: Double
      if plan.kind == .fmn, let minimumNorm {
        fmnRobust = Double(minimumNorm.distances.prefix(subset).filter { $0 > eps }.count) / Double(max(subset, 1))
      } else {
        let result = try subEvaluation.minimumNorm(config: FMNConfig(norm: plan.norm, steps: 200), eps: eps, tune: nil, progress: silent)
        fmnRobust = result.robustAccuracy
      }
      checks.append(
        SanityCheck(
          name: "minimum-norm curve not below the ensemble", passed: fmnRobust + noise >= mine,
          detail: "FMN robust at eps \(pct(fmnRobust)), \(label) \(pct(mine)): lower FMN means the ensemble missed points"))
    }

    stage(4)
    checks.append(contentsOf: try gradientChecks(points: subEvaluation.batch(Array(0..<subset))))

    stage(5)
    checks.append(try determinism(subEvaluation))
    for check in checks {
      progress.finish((check.passed ? "check passed: " : "WARNING: sanity check FAILED: ") + "\(check.name): \(check.detail)")
    }
    return checks
  }

  /// Zero or NaN input gradients at the clean points, and logits that look like probabilities:
  /// the fingerprints of gradient masking.
  func gradientChecks(points: AttackBatch) throws -> [SanityCheck] {
    let model = evaluation.model
    let b = model.backend
    let (x, labels, _) = try points.upload(b)
    let logits = try model.forward(x)
    let z = try b.download(logits)
    let dLogits = try b.zeros(logits.shape)
    try b.softmaxCrossEntropy(losses: try b.zeros([points.count]), dLogits: dLogits, logits: logits, labels: labels, scale: 1)
    let grads = try b.download(try model.inputGradient(dLogits))
    let f = points.features
    let dead = (0..<points.count).filter { n in
      let row = grads.row(n, width: f)
      return row.contains { !$0.isFinite } || row.allSatisfy { $0 == 0 }
    }.count
    let k = points.classes
    let probabilityLike = (0..<points.count).allSatisfy { n in
      let row = z.row(n, width: k)
      return row.allSatisfy { $0 >= 0 && $0 <= 1 } && abs(row.reduce(0, +) - 1) < 1e-3
    }
    let share = Double(dead) / Double(max(points.count, 1))
    return [
      SanityCheck(
        name: "input gradients are alive", passed: share <= 0.01,
        detail: "\(dead) of \(points.count) clean points have a zero or non-finite cross-entropy input gradient"),
      SanityCheck(
        name: "logits are not probabilities", passed: !probabilityLike,
        detail: probabilityLike ? "every logit row is in [0, 1] and sums to 1: the model may end in a softmax, which masks gradients" : "raw logits"),
    ]
  }

  /// The same seed gives bit-identical adversarial points.
  func determinism(_ sub: RobustnessEvaluation) throws -> SanityCheck {
    let points = sub.batch(Array(0..<min(subset, 16)))
    let attack: BoundedAttack =
      plan.kind == .fmn || plan.eps == 0
      ? PGDAttack(
        config: PGDConfig(eps: max(plan.eps, 0.01), alpha: max(plan.eps, 0.01) / 4, steps: 10, norm: pgdNorm),
        backend: evaluation.model.backend)
      : plan.attacks(backend: evaluation.model.backend)[0]
    let a = try attack.run(model: evaluation.model, batch: points, seed: 7)
    let b = try attack.run(model: evaluation.model, batch: points, seed: 7)
    let same = a.fooled == b.fooled && a.adversarial == b.adversarial
    return SanityCheck(
      name: "deterministic for a fixed seed", passed: same,
      detail: "\(attack.name) twice on \(points.count) points: \(same ? "bit-identical" : "different") adversarial points")
  }
}

extension AttackPlan {
  func with(kind: AttackKind, version: AutoAttackVersion) -> AttackPlan {
    var copy = self
    copy.kind = kind
    copy.version = version
    copy.loss = nil
    return copy
  }
}
