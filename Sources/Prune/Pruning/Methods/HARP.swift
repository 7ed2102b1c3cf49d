import Foundation
import GPU

/// HARP (Zhao & Wressnegger, ICLR 2023), cell A/U,S/G/lis: HYDRA's scores plus a learned keep rate
/// per layer (with `channels`: per channel group, ranking channels like HYDRA's filter variant), so
/// the layer-wise sparsity is optimised along with which weights stay.
///
/// Layer l keeps `k_l = sigmoid(r_l) (1 - k_min) + k_min` of its weights (top-k of |s|), with
/// `k_min = 0.1 k_target`. The loss adds `gamma_t max(0, (sum n_l k_l / sum n_l) / k_target - 1)`
/// with `gamma_t = (epoch + 1) gamma_0`, the growth frozen once an epoch ends with the penalty at
/// 0. The rate's gradient is the layer's summed mask gradient (`dL/dk_l = sum_i g_i`, as the
/// reference passes it) through the sigmoid. `r_l` starts where `k_l` equals LAMP's allocation at
/// the target (or the uniform rate; channels always start uniform). The channel variant's penalty
/// counts channels, the unit `--sparsity` means for structures here (the reference counts FLOPs).
/// At the end the learned rates are scaled to meet the target
/// exactly (their shape kept, none above 1), so methods compare at equal sparsity.
public struct HARP: PruningMethod {
  public enum Start: String, Sendable { case lamp, uniform }
  public var gamma: Double
  public var start: Start
  public var structure: Structure

  public init(gamma: Double = 1, start: Start? = nil, structure: Structure = .unstructured) throws {
    if start == .lamp && structure.isStructured {
      throw UserError.badValue(name: "--harp-start", value: "lamp", problem: "LAMP ranks single weights; channel rates start uniform")
    }
    self.gamma = gamma
    self.start = start ?? (structure.isStructured ? .uniform : .lamp)
    self.structure = structure
  }

  public var name: String { "harp" }
  public var cell: TaxonomyCell {
    TaxonomyCell(pipeline: .after, schedule: .oneShot, structures: [structure], localities: [.global], criterion: .lis)
  }
  public var trainsWhilePruning: Bool { true }

  public func prune(_ context: PruningContext) throws -> PruningOutcome {
    let model = context.model
    let params = model.prunableParameters
    let structured = structure.isStructured
    let sizes = ScoreUnit.units(of: model, structured: structured).map(\.size)
    let target = 1 - context.sparsity
    let initialKeep: [Int]
    switch start {
    case .uniform: initialKeep = RateAllocation.uniformKeep(sizes, sparsity: context.sparsity)
    case .lamp:
      initialKeep = RateAllocation.global.keepCounts(
        scores: try params.map { Pruner.lampScores(try model.backend.download($0.value)) }, sparsity: context.sparsity)
    }
    let hooks = try RateTraining(
      model: model, structured: structured, keep: initialKeep, target: target, gamma: gamma, initialise: context.resume == nil)
    let history = try context.train(hooks)
    let learned = hooks.keepRates
    let learnedOverall = zip(learned, sizes).reduce(0) { $0 + $1.0 * Double($1.1) } / Double(sizes.reduce(0, +))
    hooks.keep = Self.scaled(learned, sizes: sizes, target: target)
    try hooks.applyKeep(model)
    let groups = try hooks.freeze(model)
    return PruningOutcome(
      groups: groups, history: history,
      details: [
        "learned_keep": String(format: "%.4f", learnedOverall), "target_keep": String(format: "%.4f", target),
        "gamma_final": String(format: "%.3g", hooks.currentGamma),
        "layer_keep": learned.map { String(format: "%.4f", $0) }.joined(separator: ","),
      ])
  }

  /// Keep counts with the rates' layer-wise shape and `target` kept overall: one scale c with
  /// `sum min(1, c k_l) n_l = target sum n_l`, found by bisection, then rounded (at least 1 a layer)
  /// and the rounding remainder given to the layers in order of their remainders.
  static func scaled(_ rates: [Double], sizes: [Int], target: Double) -> [Int] {
    let total = Double(sizes.reduce(0, +))
    func kept(_ c: Double) -> Double { zip(rates, sizes).reduce(0) { $0 + min(1, c * $1.0) * Double($1.1) } }
    var (low, high) = (0.0, 1.0)
    while kept(high) < target * total && high < 1e9 { high *= 2 }
    for _ in 0..<100 {
      let mid = (low + high) / 2
      if kept(mid) < target * total { low = mid } else { high = mid }
    }
    let exact = zip(rates, sizes).map { min(1, high * $0.0) * Double($0.1) }
    var counts = zip(exact, sizes).map { min($0.1, max(1, Int($0.0.rounded(.down)))) }
    var missing = Int((target * total).rounded()) - counts.reduce(0, +)
    for l in exact.indices.sorted(by: { exact[$0] - exact[$0].rounded(.down) > exact[$1] - exact[$1].rounded(.down) }) where missing > 0 {
      if counts[l] < sizes[l] {
        counts[l] += 1
        missing -= 1
      }
    }
    return counts
  }
}

/// HARP's hooks: HYDRA's score phase plus the per-layer rate logits and the compression penalty.
final class RateTraining: ScoreTraining, ResumableHooks {
  let target: Double
  let minimum: Double
  let gamma0: Double
  private(set) var currentGamma: Double
  private var gammaFrozen = false
  /// The rate logits r_l and their SGD momentum (host side: one number per layer).
  private var logits: [Double]
  private var velocity: [Double]
  private let sum: Tensor
  private let unitSizes: [Double]

  init(model: Model, structured: Bool, keep: [Int], target: Double, gamma: Double, initialise: Bool = true) throws {
    self.target = target
    minimum = 0.1 * target
    gamma0 = gamma
    currentGamma = gamma
    unitSizes = ScoreUnit.units(of: model, structured: structured).map { Double($0.size) }
    let clip = 1e-4
    logits = zip(keep, unitSizes).map { k, n in
      let u = min(1 - clip, max(clip, (Double(k) / n - 0.1 * target) / (1 - 0.1 * target)))
      return log(u / (1 - u))
    }
    velocity = [Double](repeating: 0, count: keep.count)
    sum = try model.backend.zeros([1])
    try super.init(model: model, structured: structured, keep: keep, initialise: initialise)
  }

  var hookState: [String: String] {
    func list(_ values: [Double]) -> String { values.map { "\($0)" }.joined(separator: ",") }
    return [
      "harp_logits": list(logits), "harp_velocity": list(velocity), "harp_gamma": "\(currentGamma)", "harp_gamma_frozen": "\(gammaFrozen)",
      "harp_keep": list(keep.map(Double.init)),
    ]
  }

  func restore(_ state: [String: String], model: Model) throws {
    let (l, v, k) = (try numbers(state, "harp_logits"), try numbers(state, "harp_velocity"), try numbers(state, "harp_keep"))
    guard l.count == logits.count, v.count == velocity.count, k.count == keep.count, let g = try numbers(state, "harp_gamma").first else {
      throw UserError.badValue(name: "checkpoint", value: "harp state", problem: "does not fit this model's \(units.count) units")
    }
    (logits, velocity, keep, currentGamma, gammaFrozen) = (l, v, k.map { Int($0) }, g, state["harp_gamma_frozen"] == "true")
    try applyKeep(model)
  }

  /// `k_l` of every layer now.
  var keepRates: [Double] { logits.map { minimum + (1 - minimum) / (1 + exp(-$0)) } }

  /// The penalty `max(0, overall / target - 1)` at the current rates.
  var excess: Double {
    max(0, zip(keepRates, unitSizes).reduce(0) { $0 + $1.0 * $1.1 } / unitSizes.reduce(0, +) / target - 1)
  }

  override func afterBackward(_ model: Model, _ step: TrainingStep) throws -> Double {
    _ = try super.afterBackward(model, step)
    let over = excess
    let total = unitSizes.reduce(0, +)
    let hyper = step.hyper
    for (l, unit) in units.enumerated() {
      var dk = 0.0
      for p in unit.weights {
        try backend.reduce(model.pruning.scores[p.name]!.grad, into: sum, .sum)
        dk += Double(try backend.download(sum)[0])
      }
      if over > 0 { dk += currentGamma * unitSizes[l] / (total * target) }
      let sig = 1 / (1 + exp(-logits[l]))
      velocity[l] = Double(hyper.momentum) * velocity[l] + dk * (1 - minimum) * sig * (1 - sig)
      logits[l] -= Double(hyper.learningRate) * velocity[l]
    }
    for (l, k) in keepRates.enumerated() { keep[l] = min(Int(unitSizes[l]), max(1, Int((k * unitSizes[l]).rounded()))) }
    // The new counts take effect with the masks refreshed after the step.
    if !structured { for (u, k) in zip(units, keep) { try model.pruning.setLiveScores(keep: k, for: u.weights[0].name) } }
    return currentGamma * over
  }

  override func afterEpoch(_ model: Model, epoch: Int) throws {
    if excess == 0 { gammaFrozen = true }
    if !gammaFrozen { currentGamma = Double(epoch + 2) * gamma0 }
  }
}
