import Foundation
import GPU

/// Robust accuracy after one attack of an evaluation (the ensemble's running worst case).
public struct AttackStage: Codable, Sendable {
  public let name: String
  /// Points still robust after this attack and every one before it.
  public let robustCorrect: Int
  public let robustAccuracy: Double
  /// Points this attack broke that the earlier ones had not.
  public let broken: Int
  /// Claims of this attack that failed verification (outside the ball, outside [0, 1], or not
  /// misclassified when evaluated again); they count as robust. Always 0 for a correct attack.
  public let rejected: Int
  public let seconds: Double
}

/// What happened to one evaluation point.
public struct PointOutcome: Codable, Sendable {
  public let index: Int
  public let label: Int
  public let clean: Bool
  public let robust: Bool
  /// The attack that broke it (nil: misclassified clean, or robust).
  public let brokenBy: String?
  /// Norm of the adversarial perturbation found (nil where none).
  public let distance: Float?
}

/// Clean and robust accuracy of a model on the first `points` of a data set.
public struct RobustnessResult: Codable, Sendable {
  public let points: Int
  public let cleanCorrect: Int
  /// Points classified correctly that every attack failed on.
  public let robustCorrect: Int
  public let cleanAccuracy: Double
  public let robustAccuracy: Double
  /// The attacks in the order they ran ("pgd-40 linf eps 0.1", "autoattack standard ...").
  public let attack: String
  public let norm: String
  public let eps: Float
  public let stages: [AttackStage]
  public let seconds: Double

  init(points: Int, cleanCorrect: Int, robustCorrect: Int, attack: String, norm: String, eps: Float, stages: [AttackStage], seconds: Double) {
    self.points = points
    self.cleanCorrect = cleanCorrect
    self.robustCorrect = robustCorrect
    cleanAccuracy = points == 0 ? 0 : Double(cleanCorrect) / Double(points)
    robustAccuracy = points == 0 ? 0 : Double(robustCorrect) / Double(points)
    self.attack = attack
    self.norm = norm
    self.eps = eps
    self.stages = stages
    self.seconds = seconds
  }
}

/// Runs `attacks` in order on the first `count` points: each attacks only the points still
/// robust after the previous ones, and a point is robust only if it is classified correctly and
/// every attack fails on it. Every claimed adversarial point is verified (inside the ball and
/// [0, 1], misclassified when evaluated again) before it counts.
public final class RobustnessEvaluation {
  public let model: Model
  public let data: LabeledImages
  public let count: Int
  public let batchSize: Int
  public let seed: UInt64
  public private(set) var outcomes: [PointOutcome] = []
  /// Eval-mode logits of the clean points [count, classes].
  public private(set) var cleanLogits: [Float] = []
  public private(set) var correct: [Bool] = []

  public init(model: Model, data: LabeledImages, count: Int, batchSize: Int = 200, seed: UInt64) {
    self.model = model
    self.data = data
    self.count = min(count, data.count)
    self.batchSize = batchSize
    self.seed = seed
  }

  var features: Int { data.channels * data.height * data.width }
  var pointShape: [Int] { [data.channels, data.height, data.width] }

  /// Clean logits and correctness of every point (once).
  func classifyClean(progress: ProgressSink) throws {
    // Attacks and their verification run in eval mode whoever touched the model before.
    model.setTraining(false)
    guard correct.isEmpty else { return }
    let classes = data.classCount
    cleanLogits.reserveCapacity(count * classes)
    for start in stride(from: 0, to: count, by: batchSize) {
      let end = min(count, start + batchSize)
      cleanLogits += try logits(Array(data.images[(start * features)..<(end * features)]), rows: end - start)
    }
    correct = zip(argmaxRows(cleanLogits, classes: classes), data.labels).map { $0 == $1 }
  }

  /// The same evaluation on its first `n` points, reusing the clean pass already made.
  func prefix(_ n: Int) -> RobustnessEvaluation {
    let sub = RobustnessEvaluation(model: model, data: data, count: min(n, count), batchSize: batchSize, seed: seed)
    if !correct.isEmpty {
      sub.correct = Array(correct.prefix(sub.count))
      sub.cleanLogits = Array(cleanLogits.prefix(sub.count * data.classCount))
    }
    return sub
  }

  /// Eval-mode logits of host points.
  func logits(_ x: [Float], rows: Int) throws -> [Float] {
    try model.backend.download(try model.inference(try model.backend.upload(x, shape: [rows] + pointShape)))
  }

  /// The points at `indices` as an attack batch.
  public func batch(_ indices: [Int]) -> AttackBatch {
    let k = data.classCount
    return AttackBatch(
      ids: indices, x: data.images.rows(indices, width: features), labels: indices.map { data.labels[$0] },
      cleanLogits: cleanLogits.rows(indices, width: k), pointShape: pointShape, classes: k)
  }

  /// Evaluates with `attacks` (all of one norm and eps; none: clean accuracy only).
  public func run(attacks: [BoundedAttack], description: String, progress: ProgressSink) throws -> RobustnessResult {
    let start = Date()
    try classifyClean(progress: progress)
    let (eps, norm) = (attacks.first?.eps ?? 0, attacks.first?.norm ?? .linf)
    var robust = correct
    var brokenBy = [String?](repeating: nil, count: count)
    var distances = [Float?](repeating: nil, count: count)
    var stages: [AttackStage] = []
    for (k, attack) in attacks.enumerated() {
      let stageStart = Date()
      let todo = (0..<count).filter { robust[$0] }
      var (broken, rejected) = (0, 0)
      var robustNow = robust.filter { $0 }.count
      /// Points of this stage done so far (fractional inside a batch), with the running accuracy.
      func report(_ done: Double) {
        progress.update(
          ProgressUpdate(
            phase: "\(attack.name) (\(k + 1)/\(attacks.count))", step: Int(done), total: todo.count,
            imagesPerSecond: done / max(Date().timeIntervalSince(stageStart), 1e-9),
            metrics: [("robust", String(format: "%.1f%%", 100 * Double(robustNow) / Double(max(count, 1))))]))
      }
      for first in stride(from: 0, to: todo.count, by: batchSize) {
        let indices = Array(todo[first..<min(todo.count, first + batchSize)])
        let points = batch(indices)
        attack.onProgress = { share in report(Double(first) + share * Double(indices.count)) }
        defer { attack.onProgress = nil }
        (attack as? TargetBatching)?.rowBudget = batchSize
        let outcome = try attack.run(model: model, batch: points, seed: deriveSeed(seed, UInt64(k)))
        let verified = try verify(outcome, batch: points, eps: eps, norm: norm)
        for (row, index) in indices.enumerated() where outcome.fooled[row] {
          guard let distance = verified[row] else {
            rejected += 1
            continue
          }
          robust[index] = false
          brokenBy[index] = attack.name
          distances[index] = distance
          broken += 1
          robustNow -= 1
        }
        report(Double(first + indices.count))
      }
      let robustCount = robustNow
      let stage = AttackStage(
        name: attack.name, robustCorrect: robustCount, robustAccuracy: Double(robustCount) / Double(max(count, 1)), broken: broken,
        rejected: rejected, seconds: Date().timeIntervalSince(stageStart))
      stages.append(stage)
      progress.finish(
        String(
          format: "%@: robust %.2f%% (%d/%d) after %.1f s%@", attack.name, 100 * stage.robustAccuracy, robustCount, count, stage.seconds,
          rejected > 0 ? " — WARNING: \(rejected) claimed adversarial points failed verification" : ""))
    }
    outcomes = (0..<count).map {
      PointOutcome(index: $0, label: data.labels[$0], clean: correct[$0], robust: robust[$0], brokenBy: brokenBy[$0], distance: distances[$0])
    }
    return RobustnessResult(
      points: count, cleanCorrect: correct.filter { $0 }.count, robustCorrect: robust.filter { $0 }.count, attack: description,
      norm: norm.rawValue, eps: eps, stages: stages, seconds: Date().timeIntervalSince(start))
  }

  /// Slack of the feasibility check: float rounding of x + eps may land one ulp outside the ball.
  static func withinBall(_ distance: Float, eps: Float) -> Bool { distance <= eps * (1 + 1e-6) + 1e-6 }

  /// The perturbation norm of each fooled point whose adversarial input is feasible and
  /// misclassified when evaluated again; nil for the others.
  func verify(_ outcome: AttackOutcome, batch: AttackBatch, eps: Float, norm: PerturbationNorm) throws -> [Float?] {
    let f = batch.features
    let rows = outcome.fooled.indices.filter { outcome.fooled[$0] }
    guard !rows.isEmpty else { return [Float?](repeating: nil, count: batch.count) }
    let x = outcome.adversarial.rows(rows, width: f)
    let z = try logits(x, rows: rows.count)
    let predicted = argmaxRows(z, classes: batch.classes)
    var result = [Float?](repeating: nil, count: batch.count)
    for (k, row) in rows.enumerated() {
      let (adversarial, clean) = (x.row(k, width: f), batch.x.row(row, width: f))
      guard adversarial.allSatisfy({ $0 >= 0 && $0 <= 1 }), predicted[k] != batch.labels[row] else { continue }
      let distance = distanceOf(zip(adversarial, clean).map { $0 - $1 }, norm)
      if Self.withinBall(distance, eps: eps) { result[row] = distance }
    }
    return result
  }
}

/// Clean accuracy and, with `attack`, PGD robust accuracy (training logs, `demo`, `prune`).
public func evaluateRobustness(
  model: Model, data: LabeledImages, count: Int, attack: PGDConfig?, batchSize: Int = 200, seed: UInt64,
  progress: ProgressSink
) throws -> RobustnessResult {
  let evaluation = RobustnessEvaluation(model: model, data: data, count: count, batchSize: batchSize, seed: seed)
  let attacks = attack.map { [PGDAttack(config: $0, backend: model.backend)] } ?? []
  let name = attack.map { "pgd-\($0.steps) \($0.norm.rawValue) eps \($0.eps) alpha \($0.alpha) restarts \($0.restarts)" } ?? "none"
  return try evaluation.run(attacks: attacks, description: name, progress: progress)
}
