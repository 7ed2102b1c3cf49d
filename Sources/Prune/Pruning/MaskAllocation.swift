/// Turns per-weight scores plus per-layer keep counts into 0/1 masks (unstructured; filter
/// pruning uses the same on channel scores).
///
/// Lowest scores are removed first, ties in the lower index first (deterministic); weights
/// already pruned (score -inf) go before any other. `RateAllocation` says how many each layer keeps.
public enum MaskAllocation {
  /// Masks at `sparsity` with the counts `locality` gives (`uniform` for local, one global ranking).
  public static func masks(scores: [[Float]], sparsity: Double, locality: Locality) -> [[Float]] {
    precondition(sparsity >= 0 && sparsity < 1, "sparsity \(sparsity) outside [0, 1)")
    let allocation: RateAllocation = locality == .local ? .uniform : .global
    return masks(scores: scores, keep: allocation.keepCounts(scores: scores, sparsity: sparsity))
  }

  /// Keeps the `keep[l]` highest scores of layer `l`.
  public static func masks(scores: [[Float]], keep: [Int]) -> [[Float]] {
    zip(scores, keep).map { layer, k in
      let order = ascending(layer)
      var mask = [Float](repeating: 1, count: layer.count)
      for i in order.prefix(max(0, layer.count - k)) { mask[i] = 0 }
      return mask
    }
  }

  /// Indices of `layer` from the lowest score up (NaN as -inf), ties by index.
  static func ascending(_ layer: [Float]) -> [Int] {
    let s = layer.map { $0.isNaN ? -Float.infinity : $0 }
    return s.indices.sorted { (s[$0], $0) < (s[$1], $1) }
  }
}

/// How many weights each layer keeps: the locality half of a method, apart from which weights
/// (the scores). Every layer keeps at least one weight; the total is exact to one weight a layer.
public enum RateAllocation: Sendable, Equatable {
  /// Every layer the same rate: layer l keeps `n_l - round(s n_l)`.
  case uniform
  /// One ranking over all layers' scores removes `round(s sum n_l)`, never a layer's last weight.
  case global
  /// Erdős–Rényi-Kernel densities (RigL; FlyingBird's option): density of layer l proportional to
  /// `sum(shape_l) / prod(shape_l)`, capped at 1, scaled so the total meets the target.
  case erk(shapes: [[Int]])
  /// Given keep fractions per layer (learned rates, HARP).
  case keepRates([Double])

  public func keepCounts(scores: [[Float]], sparsity: Double) -> [Int] {
    let sizes = scores.map(\.count)
    switch self {
    case .uniform:
      return Self.uniformKeep(sizes, sparsity: sparsity)
    case .global:
      return globalKeep(scores, remove: Int((sparsity * Double(sizes.reduce(0, +))).rounded()))
    case .erk(let shapes):
      return Self.erkDensities(shapes: shapes, density: 1 - sparsity).enumerated().map { l, d in
        min(sizes[l], max(1, Int((d * Double(sizes[l])).rounded())))
      }
    case .keepRates(let rates):
      return zip(sizes, rates).map { n, r in min(n, max(1, Int((r * Double(n)).rounded()))) }
    }
  }

  /// What each of layers of `sizes` keeps at the same rate: `n - round(s n)`, at least one.
  public static func uniformKeep(_ sizes: [Int], sparsity: Double) -> [Int] {
    sizes.map { n in n - min(Int((sparsity * Double(n)).rounded()), n - 1) }
  }

  /// Removes the `remove` lowest scores over all layers (ties by layer, then index), never a
  /// layer's last weight; returns what each layer keeps.
  private func globalKeep(_ layers: [[Float]], remove: Int) -> [Int] {
    var order: [(score: Float, layer: Int, index: Int)] = []
    order.reserveCapacity(layers.reduce(0) { $0 + $1.count })
    for (l, layer) in layers.enumerated() {
      for (i, s) in layer.enumerated() { order.append((s.isNaN ? -.infinity : s, l, i)) }
    }
    order.sort { ($0.score, $0.layer, $0.index) < ($1.score, $1.layer, $1.index) }
    var kept = layers.map(\.count)
    var removed = 0
    for entry in order where removed < remove {
      guard kept[entry.layer] > 1 else { continue }
      kept[entry.layer] -= 1
      removed += 1
    }
    return kept
  }

  /// ERK densities with overall density `density`: layers whose density would pass 1 are dense,
  /// and the others share what is left in proportion to their ERK factor.
  static func erkDensities(shapes: [[Int]], density: Double) -> [Double] {
    let sizes = shapes.map { Double($0.reduce(1, *)) }
    let factors = shapes.map { s in Double(s.reduce(0, +)) / Double(s.reduce(1, *)) }
    var dense = Set<Int>()
    while true {
      let budget = density * sizes.reduce(0, +) - dense.reduce(0) { $0 + sizes[$1] }
      let weighted = sizes.indices.filter { !dense.contains($0) }.reduce(0) { $0 + factors[$1] * sizes[$1] }
      let scale = weighted > 0 ? budget / weighted : 0
      let newlyDense = sizes.indices.filter { !dense.contains($0) && scale * factors[$0] > 1 }
      if newlyDense.isEmpty { return sizes.indices.map { dense.contains($0) ? 1 : max(0, scale * factors[$0]) } }
      dense.formUnion(newlyDense)
    }
  }
}
