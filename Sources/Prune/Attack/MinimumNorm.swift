import Foundation
import GPU

/// Per-point minimal adversarial distances of a model: the data of a robustness curve.
public struct MinimumNormResult: Codable, Sendable {
  public let points: Int
  public let cleanCorrect: Int
  public let cleanAccuracy: Double
  public let norm: String
  /// The evaluation eps and the robust accuracy there (share of points with distance > eps).
  public let eps: Float
  public let robustAccuracy: Double
  /// Median over all points (misclassified ones at 0); nil when more than half were not fooled.
  public let medianDistance: Float?
  /// Correctly classified points FMN did not fool within its steps (distance +inf).
  public let unbroken: Int
  public let config: FMNConfig
  /// With `--tuned`: every configuration tried and its median distance on the tuning batch.
  public let trials: [FMNTrial]
  public let seconds: Double

  /// Distances per point: 0 misclassified clean, +inf where the attack failed (not in JSON).
  public var distances: [Float] = []

  enum CodingKeys: String, CodingKey {
    case points, cleanCorrect, cleanAccuracy, norm, eps, robustAccuracy, medianDistance, unbroken, config, trials, seconds
  }

  /// Robust accuracy at `radius` from the distances.
  public func accuracy(at radius: Float) -> Double {
    Double(distances.filter { $0 > radius }.count) / Double(max(points, 1))
  }
}

/// One configuration of the FMN search and how it did on the tuning batch.
public struct FMNTrial: Codable, Sendable {
  public let config: FMNConfig
  /// Median distance on the tuning batch (nil: more than half not fooled).
  public let medianDistance: Float?
}

extension RobustnessEvaluation {
  /// FMN on every correctly classified point (misclassified ones have distance 0). With
  /// `tune`, first a small search over the step rule on a tuning batch (`FMNTuning`), then the
  /// winner runs on the whole evaluation set.
  public func minimumNorm(
    config: FMNConfig, eps: Float, tune: FMNTuning?, progress: ProgressSink
  ) throws -> MinimumNormResult {
    let start = Date()
    try classifyClean(progress: progress)
    let todo = (0..<count).filter { correct[$0] }
    var trials: [FMNTrial] = []
    var chosen = config
    if let tune, !todo.isEmpty {
      var rng = SeededRNG.derive(seed, 0xF3)
      let tuning = Array(todo.shuffled(using: &rng).prefix(tune.points)).sorted()
      let candidates = tune.candidates(around: config)
      for (k, candidate) in candidates.enumerated() {
        var trial = candidate
        trial.steps = tune.steps
        let found = try FMNAttack(config: trial).run(model: model, batch: batch(tuning)).distances
        trials.append(FMNTrial(config: candidate, medianDistance: finiteMedian(found)))
        progress.update(
          ProgressUpdate(
            phase: "fmn tuning", step: k + 1, total: candidates.count, imagesPerSecond: 0,
            metrics: [("median", trials.last!.medianDistance.map { String(format: "%.4f", $0) } ?? "inf")]))
      }
      chosen = trials.min { ($0.medianDistance ?? .infinity) < ($1.medianDistance ?? .infinity) }!.config
      progress.finish("fmn tuning: \(trials.count) configurations on \(tuning.count) points; chose \(chosen.summary)")
    }
    var distances = [Float](repeating: 0, count: count)
    let attack = FMNAttack(config: chosen)
    let stageStart = Date()
    let batches = (todo.count + batchSize - 1) / batchSize
    for (b, first) in stride(from: 0, to: todo.count, by: batchSize).enumerated() {
      let indices = Array(todo[first..<min(todo.count, first + batchSize)])
      let points = batch(indices)
      let result = try attack.run(model: model, batch: points)
      let verified = try verify(
        AttackOutcome(fooled: result.distances.map(\.isFinite), adversarial: result.adversarial), batch: points, eps: .infinity, norm: chosen.norm)
      for (row, index) in indices.enumerated() { distances[index] = verified[row] ?? .infinity }
      let done = first + indices.count
      progress.update(
        ProgressUpdate(
          phase: "fmn \(chosen.norm.rawValue)", step: b + 1, total: batches,
          imagesPerSecond: Double(done) / max(Date().timeIntervalSince(stageStart), 1e-9),
          metrics: [("robust@eps", String(format: "%.1f%%", 100 * Double(distances.filter { $0 > eps }.count) / Double(max(count, 1))))]))
    }
    let cleanCorrect = todo.count
    var result = MinimumNormResult(
      points: count, cleanCorrect: cleanCorrect, cleanAccuracy: Double(cleanCorrect) / Double(max(count, 1)), norm: chosen.norm.rawValue,
      eps: eps, robustAccuracy: Double(distances.filter { $0 > eps }.count) / Double(max(count, 1)), medianDistance: finiteMedian(distances),
      unbroken: distances.filter { $0 == .infinity }.count, config: chosen, trials: trials, seconds: Date().timeIntervalSince(start))
    result.distances = distances
    progress.finish(
      String(
        format: "fmn %@: robust %.2f%% at eps %g, median distance %@, %d not fooled, %.1f s", chosen.norm.rawValue, 100 * result.robustAccuracy,
        Double(eps), result.medianDistance.map { String(format: "%.4f", $0) } ?? "inf", result.unbroken, result.seconds))
    return result
  }
}

/// The median, or nil when it is infinite (more than half the points not fooled).
func finiteMedian(_ values: [Float]) -> Float? {
  guard !values.isEmpty else { return nil }
  let sorted = values.sorted()
  let m = sorted[(sorted.count - 1) / 2]
  return m.isFinite ? m : nil
}

/// HO-FMN-style search (Mura et al. 2024): loss x step rule (plain normalised gradient or momentum
/// 0.9) x initial step size, each run for `steps` on a seeded random batch of `points` correctly
/// classified evaluation points (the same batch for every configuration, so they compete fairly);
/// the smallest median distance wins and then runs on all points.
public struct FMNTuning: Sendable {
  public var points: Int = 64
  public var steps: Int = 100

  public init(points: Int = 64, steps: Int = 100) {
    self.points = points
    self.steps = steps
  }

  /// Every configuration tried, keeping the norm and step count of `base`.
  public func candidates(around base: FMNConfig) -> [FMNConfig] {
    let alphas: [Float] = base.norm == .linf ? [1, 3, 10] : [0.3, 1, 3]
    return [AttackLoss.margin, .dlr, .crossEntropy].flatMap { loss in
      [Float(0), 0.9].flatMap { momentum in
        alphas.map { FMNConfig(norm: base.norm, steps: base.steps, loss: loss, alphaInit: $0, momentum: momentum) }
      }
    }
  }
}
