import GPU

/// Whether an evaluation computes pruned layers with their nonzeros only (sparse direct
/// convolution, `SparseConvWeights`), so unstructured pruning is faster too.
public enum SparseMode: String, Codable, Sendable, CaseIterable {
  /// Every conv and linear layer at or below the crossover density measured for its backend (the
  /// CPU's, a GPU's through OpenCL, an OpenCL CPU device's).
  case auto
  /// Every conv and linear layer, on either backend (for comparing the two paths).
  case on
  /// The dense masked kernels as in training.
  case off
}

enum SparseEvaluation {
  /// Density at or below which a large-plane layer's sparse kernels beat the dense ones (Winograd
  /// for 3x3 stride-1 convs) on the CPU, forward and input gradient together (`advprune profile
  /// --sparse-crossover`, README *Measured*): 20-25 % on ResNet18's 32x32 and 16x16 stages, about
  /// 33 % on SmallCNN's 24x24 (it was 30-50 % against im2col + GEMM).
  static let crossoverDensity = 0.25

  /// The same on a GPU through OpenCL, where the sparse kernels gather per output and the dense
  /// ones are local-memory tiles: on an H200, ResNet18's layers at batch 128 ran sparse in 0.5 ms
  /// at 1 % against 1.7-2.3 ms dense, and lost from 5 % (README, *On a GPU*).
  static let gpuCrossoverDensity = 0.04

  /// On an OpenCL CPU device (PoCL) the sparse kernels compute on the CPU's direct grid too, so
  /// the crossover has the CPU's form, a share of the padded grid, against two dense paths.
  /// Layers whose dense passes run as Winograd (3x3 stride 1, 8 channels or more) cross over at
  /// 16 % of their grid share, times sqrt(128 / input channels) above 128 channels, where deeper
  /// products make Winograd faster (`profile --sparse-crossover`, forward + input gradient with
  /// frozen dense weights, AVX2 register blocks; ResNet18 at 64 images about 12-20 % on its 32x32
  /// stage, 14 % on 16x16, 8 % on 8x8 with 256 channels, 4 % on 4x4 with 512; the rule gives 14.2,
  /// 12.6, 7.2 and 3.6 %; SmallCNN at 200 images measured 25-30 % before the register blocks
  /// shrank). The implicit GEMM's layers (strided, 1x1, few channels, the 4x4 stage below 32
  /// images) cross over at 35 % of their grid share (measured: ResNet18's 3x3 stride-2 layers
  /// about 40, 42 and 31 %, the shortcuts above 50 %, 40 % and 25 %, conv1 above 50 %; the rule
  /// gives 31, 28, 22 and 35 %, and 31 %). Linear layers never: their dense passes are GEMMs
  /// (SmallCNN's fc1 at 200 images: 2.6 ms forward + input gradient, sparse 2.9 ms at 1 %).
  static let openCLCPUWinogradCrossover = 0.16
  static let openCLCPUImplicitGemmCrossover = 0.35
  static let openCLCPULinearCrossover = 0.0

  /// The crossover of one layer on `backend`. The direct kernels compute on the whole padded grid
  /// (a strided conv's: one stride phase of it), of which only OH*OW points are outputs, so small
  /// padded planes (ResNet18's 8x8 and 4x4 stages) pay for the rest and cross over lower in
  /// proportion. On the CPU, measured on ResNet18's strided layers: 3x3 stride 2 at about 48, 30
  /// and 19 % on the 32x32, 16x16 and 8x8 inputs, 1x1 shortcuts at 30, 28 and 22 %; this gives
  /// 22, 20 and 16 %, and 25 % for the shortcuts.
  public static func crossover(_ g: ConvGeometry, on backend: Backend) -> Double {
    if let cl = backend as? OpenCLBackend {
      if cl.device.isGPU { return gpuCrossoverDensity }
      guard g.outPixels > 1 else { return openCLCPULinearCrossover }
      if cl.winogradFits(g, rows: g.outChannels, depth: g.inChannels) {
        return openCLCPUWinogradCrossover * gridShare(g) * min(1, (128 / Double(g.inChannels)).squareRoot())
      }
      return implicitGemmCrossover(g)
    }
    return crossoverDensity * gridShare(g)
  }

  /// The share of a layer's padded grid (one stride phase of it) that is outputs.
  private static func gridShare(_ g: ConvGeometry) -> Double {
    Double(g.outPixels) / Double(max(1, g.phaseGrid.rows * g.phaseGrid.pitch))
  }

  private static func implicitGemmCrossover(_ g: ConvGeometry) -> Double { openCLCPUImplicitGemmCrossover * gridShare(g) }

  /// On an OpenCL CPU device, a layer that runs as Winograd only from a batch on (planes of fewer
  /// than four 4x4 tiles: ResNet18's 4x4 stage, one tile per image, from 32 images) runs the
  /// implicit GEMM below it, where the implicit GEMM's crossover holds (measured at 8 images: about
  /// 35 %; at 64, on Winograd, about 7 %): that crossover and the batch it holds up to; nil for
  /// other layers and backends.
  static func smallBatchCrossover(_ g: ConvGeometry, on backend: Backend) -> (density: Double, belowBatch: Int)? {
    guard let cl = backend as? OpenCLBackend, !cl.device.isGPU, g.outPixels > 1, cl.winogradFits(g, rows: g.outChannels, depth: g.inChannels)
    else { return nil }
    let tiles = OpenCLBackend.winogradTiles(outH: g.outHeight, outW: g.outWidth)
    guard tiles.rows * tiles.columns < 4 else { return nil }
    return (implicitGemmCrossover(g), OpenCLBackend.winogradMinBatch(outH: g.outHeight, outW: g.outWidth))
  }

  /// The crossover of a large-plane layer on `backend`.
  public static func largePlaneCrossover(on backend: Backend) -> Double {
    guard let cl = backend as? OpenCLBackend else { return crossoverDensity }
    return cl.device.isGPU ? gpuCrossoverDensity : openCLCPUWinogradCrossover
  }

  /// Switches `model`'s layers to sparse kernels as `mode` says; the names of those that switched.
  /// Mid-phase checkpoints (live scores, TwinRep's twins) keep the dense path: their effective
  /// weight changes as they train.
  static func apply(_ model: Model, mode: SparseMode) throws -> [String] {
    guard mode != .off, model.pruning.liveScores.isEmpty, model.pruning.twins.isEmpty else { return [] }
    // One image through the model gives every layer's geometry (plane sizes, strides).
    let wasTraining = model.isTraining
    model.setTraining(false)
    defer { model.setTraining(wasTraining) }
    let shape = [1] + model.architecture.inputShape
    _ = try model.forward(try model.backend.zeros(shape))
    var switched: [String] = []
    for layer in model.layers.flatMap(Self.walk) {
      try layer.computeSparse(true)
      let conv = layer as? Conv2d
      conv?.denseFromBatch = nil
      if mode == .auto, let sparse = layer.sparse, let g = layer.lastConvolution, sparse.density > crossover(g, on: model.backend) {
        if let conv, let small = smallBatchCrossover(g, on: model.backend), sparse.density <= small.density {
          conv.denseFromBatch = small.belowBatch
        } else {
          try layer.computeSparse(false)
          continue
        }
      }
      switched.append(String(layer.weight.name.dropLast(".weight".count)))
    }
    return switched
  }

  static func walk(_ layer: Layer) -> [SparseComputable] {
    (layer as? SparseComputable).map { [$0] } ?? layer.children.flatMap(walk)
  }
}
