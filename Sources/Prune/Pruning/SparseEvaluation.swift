import GPU

/// Whether an evaluation computes pruned layers with their nonzeros only (sparse direct
/// convolution, `SparseConvWeights`), so unstructured pruning is faster too.
public enum SparseMode: String, Codable, Sendable, CaseIterable {
  /// On the CPU backend, every conv and linear layer at or below the measured crossover density.
  case auto
  /// Every conv and linear layer, on either backend (for comparing the two paths).
  case on
  /// The dense masked kernels as in training.
  case off
}

enum SparseEvaluation {
  /// Density at or below which a layer's sparse kernels beat the dense im2col + GEMM ones on the
  /// CPU, forward and input gradient together, in every conv layer of SmallCNN and ResNet18
  /// (`advprune profile --sparse-crossover`, README *Measured*).
  static let crossoverDensity = 0.3

  /// Switches `model`'s layers to sparse kernels as `mode` says; the names of those that switched.
  /// Mid-phase checkpoints (live scores, TwinRep's twins) keep the dense path: their effective
  /// weight changes as they train.
  static func apply(_ model: Model, mode: SparseMode) throws -> [String] {
    guard mode != .off, model.pruning.liveScores.isEmpty, model.pruning.twins.isEmpty else { return [] }
    // The crossover was measured on the CPU; OpenCL's dense GEMM is another trade, so auto leaves it.
    if mode == .auto && !(model.backend is CPUBackend) { return [] }
    var switched: [String] = []
    for layer in model.layers.flatMap(Self.walk) {
      try layer.computeSparse(true)
      if mode == .auto, let sparse = layer.sparse, sparse.density > crossoverDensity {
        try layer.computeSparse(false)
        continue
      }
      switched.append(String(layer.weight.name.dropLast(".weight".count)))
    }
    return switched
  }

  static func walk(_ layer: Layer) -> [SparseComputable] {
    (layer as? SparseComputable).map { [$0] } ?? layer.children.flatMap(walk)
  }
}
