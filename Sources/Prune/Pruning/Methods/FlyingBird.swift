import Foundation
import GPU

/// FlyingBird (Chen et al., ICLR 2022, "Sparsity Winning Twice"), cell D/U/G/lwm: dynamic sparse
/// adversarial training from a sparse start. Layers start with random masks at their densities
/// (ERK by default, or uniform); every `every` steps each layer drops the `d_t` share of its active
/// weights with the smallest magnitude and regrows as many among the positions that were inactive
/// (random by default, or those of largest gradient magnitude), with
/// `d_t = d_0 (1 + cos(pi t / T)) / 2` over the run's T steps. Regrown weights start at zero with no
/// momentum; the sparsity stays exactly the target throughout.
public struct FlyingBird: TrainingMethod {
  public enum Regrowth: String, Sendable { case random, gradient }
  public var sparsity: Double
  public var erk: Bool
  /// Steps between mask updates; nil: one epoch.
  public var every: Int?
  public var deathRate: Double
  public var regrowth: Regrowth
  /// How the sparse start scales the kept initial weights (the reference: `dense`).
  public var sparseInit: SparseInit = .dense

  public var name: String { "flyingbird" }
  public var cell: TaxonomyCell {
    TaxonomyCell(pipeline: .during, schedule: nil, structures: [.unstructured], localities: [.global], criterion: .lwm)
  }
  public var settings: String {
    "flyingbird s=\(sparsity) \(erk ? "erk" : "uniform") every=\(every.map(String.init) ?? "epoch") d0=\(deathRate) \(regrowth.rawValue)"
      + (sparseInit == .dense ? "" : " init=\(sparseInit.rawValue)")
  }

  public func check(epochs: Int, batchesPerEpoch: Int) throws {
    if let every, every > epochs * batchesPerEpoch {
      throw UserError.badValue(
        name: "--update-every", value: "\(every)", problem: "longer than the run (\(epochs * batchesPerEpoch) steps): the mask would never move")
    }
  }

  /// Keep counts per layer: ERK densities or the uniform rate, exact to one weight a layer.
  func keepCounts(_ model: Model) -> [Int] {
    let params = model.prunableParameters
    let sizes = params.map(\.count)
    guard erk else { return RateAllocation.uniformKeep(sizes, sparsity: sparsity) }
    return RateAllocation.erk(shapes: params.map(\.shape)).keepCounts(scores: sizes.map { [Float](repeating: 0, count: $0) }, sparsity: sparsity)
  }

  public func hooks(model: Model, epochs: Int, batchesPerEpoch: Int, seed: UInt64, resuming: Bool) throws -> TrainingHooks {
    let keep = keepCounts(model)
    let params = model.prunableParameters
    if !(resuming && params.allSatisfy { model.mask(of: $0) != nil }) {
      for (l, (p, k)) in zip(params, keep).enumerated() {
        var rng = SeededRNG.derive(seed ^ 0xF1B, UInt64(l))
        let chosen = Set(Array(0..<p.count).shuffled(using: &rng).prefix(k))
        try model.applyMask((0..<p.count).map { chosen.contains($0) ? 1 : 0 }, to: p, resetMomentum: false)
      }
      try sparseInit.apply(to: model)
    }
    return FlyingBirdHooks(method: self, total: epochs * batchesPerEpoch, every: every ?? batchesPerEpoch, seed: seed)
  }
}

final class FlyingBirdHooks: TrainingHooks {
  let method: FlyingBird
  let total: Int
  let every: Int
  let seed: UInt64
  private(set) var updates = 0

  init(method: FlyingBird, total: Int, every: Int, seed: UInt64) {
    self.method = method
    self.total = total
    self.every = every
    self.seed = seed
  }

  /// The share of active weights an update at step t replaces.
  func deathRate(atStep t: Int) -> Double { method.deathRate * (1 + cos(Double.pi * Double(t) / Double(max(total, 1)))) / 2 }

  func afterStep(_ model: Model, _ step: TrainingStep) throws {
    let t = step.globalStep
    guard t % every == 0 && t < total else { return }
    let rate = deathRate(atStep: t)
    let backend = model.backend
    for (l, p) in model.prunableParameters.enumerated() {
      var mask = try backend.download(model.mask(of: p)!)
      let w = try backend.download(p.value)
      let active = mask.indices.filter { mask[$0] != 0 }
      let inactive = mask.indices.filter { mask[$0] == 0 }
      let n = min(Int(rate * Double(active.count)), inactive.count)
      guard n > 0 else { continue }
      let dropped = active.sorted { (abs(w[$0]), $0) < (abs(w[$1]), $1) }.prefix(n)
      let grown: ArraySlice<Int>
      switch method.regrowth {
      case .random:
        var rng = SeededRNG.derive(seed ^ 0x6E0, UInt64(t) << 16 | UInt64(l))
        grown = inactive.shuffled(using: &rng).prefix(n)
      case .gradient:
        let g = try backend.download(p.grad)
        grown = inactive.sorted { (abs(g[$0]), -$0) > (abs(g[$1]), -$1) }.prefix(n)
      }
      for i in dropped { mask[i] = 0 }
      for i in grown { mask[i] = 1 }
      // Regrown positions were zero under the old mask; they start at zero with no momentum.
      try model.applyMask(mask, to: p, resetMomentum: false)
    }
    updates += 1
  }
}
