/// Turns per-weight scores into 0/1 masks at a target sparsity (unstructured).
///
/// Lowest scores are removed first. `local` removes `round(s * n_l)` weights of each layer;
/// `global` removes `round(s * sum n_l)` weights by one ranking over all layers. Either way each
/// layer keeps at least one weight, and weights already pruned (score -inf) go first.
/// Ties are broken by (layer, index), so the result is deterministic.
public enum MaskAllocation {
  public static func masks(scores: [[Float]], sparsity: Double, locality: Locality) -> [[Float]] {
    precondition(sparsity >= 0 && sparsity < 1, "sparsity \(sparsity) outside [0, 1)")
    switch locality {
    case .local:
      return scores.map { layer in
        let remove = min(Int((sparsity * Double(layer.count)).rounded()), layer.count - 1)
        return prune(lowest: remove, of: [layer])[0]
      }
    case .global:
      let total = scores.reduce(0) { $0 + $1.count }
      let remove = Int((sparsity * Double(total)).rounded())
      return prune(lowest: remove, of: scores)
    }
  }

  /// Removes the `count` lowest-scored weights over `layers`, never a layer's last one.
  static func prune(lowest count: Int, of layers: [[Float]]) -> [[Float]] {
    var order: [(score: Float, layer: Int, index: Int)] = []
    order.reserveCapacity(layers.reduce(0) { $0 + $1.count })
    for (l, layer) in layers.enumerated() {
      for (i, s) in layer.enumerated() { order.append((s.isNaN ? -.infinity : s, l, i)) }
    }
    order.sort { ($0.score, $0.layer, $0.index) < ($1.score, $1.layer, $1.index) }
    var masks = layers.map { [Float](repeating: 1, count: $0.count) }
    var kept = layers.map(\.count)
    var removed = 0
    for entry in order where removed < count {
      guard kept[entry.layer] > 1 else { continue }
      masks[entry.layer][entry.index] = 0
      kept[entry.layer] -= 1
      removed += 1
    }
    return masks
  }
}
