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

  /// On an OpenCL CPU device (PoCL) the plane kernels' work per nonzero is a run in each row it
  /// reaches, so short rows pay loop overhead: ResNet18 crossed over at about 20-25 % on 32-wide
  /// rows, 12 % at 16, 7-9 % at 8 and 4-5 % at 4 (at 5 % the 4-wide stage ran sparse in 24 ms
  /// against 28 ms dense), SmallCNN at about 35 % (24), 13 % (10) and 17 % (8) (README, *The
  /// OpenCL engine on PoCL*). 2.5 % plus 0.5 % per output column, at most 20 %, follows ResNet18's
  /// (4.5 % at 4 columns, 6.5 % at 8, 10.5 % at 16, 18.5 % at 32; re-measured with frozen weights
  /// at 8 images: about 4 % at 4 columns, 11 % and 16 % on the strided 8- and 16-wide layers) and
  /// stays below SmallCNN's.
  /// Linear layers never: their dense passes are GEMMs (SmallCNN's fc1 at 200 images: 4.6 ms
  /// forward + input gradient, sparse 6.1 ms at 1 %, 53 ms at 10 %); the 10-15 % measured before
  /// had timed them as 1x1 convolutions.
  static let openCLCPUCrossoverBase = 0.025
  static let openCLCPUCrossoverPerColumn = 0.005
  static let openCLCPUCrossoverCap = 0.2
  static let openCLCPULinearCrossover = 0.0

  /// Layers whose dense passes run as Winograd there (3x3 stride 1, 8 channels or more) cross
  /// over lower, and lower still the more input channels the dense GEMM gets (measured with frozen
  /// weights, as evaluations run: ResNet18 at 8 images about 9.5 % on its 32-wide 64-channel
  /// stage, 3.5 % at 16 wide and 128 channels, 2.5 % at 8 and 256; SmallCNN at 200 images 21 %,
  /// 9 % and 10 % on its 32- to 64-channel layers, README). 4 % plus 0.15 % per column, times
  /// 64 / input channels where those are more than 64, stays at or below them (8.8 %, 3.2 %,
  /// 1.3 %; 7.6 %, 5.5 %, 5.2 %; 0.6 % on the 4x4 stage, which below 32 images runs the implicit
  /// GEMM instead: `smallBatchCrossover`).
  static let openCLCPUWinogradCrossoverBase = 0.04
  static let openCLCPUWinogradCrossoverPerColumn = 0.0015

  /// The crossover of one layer on `backend`. The CPU's direct kernel computes on the whole padded
  /// grid (a strided conv's: one stride phase of it), of which only OH*OW points are outputs, so
  /// small padded planes (ResNet18's 8x8 and 4x4 stages) pay for the rest and cross over lower in
  /// proportion. Measured on ResNet18's strided layers: 3x3 stride 2 at about 48, 30 and 19 %
  /// on the 32x32, 16x16 and 8x8 inputs, 1x1 shortcuts at 30, 28 and 22 %; this gives 22, 20 and
  /// 16 %, and 25 % for the shortcuts.
  public static func crossover(_ g: ConvGeometry, on backend: Backend) -> Double {
    if let cl = backend as? OpenCLBackend {
      if cl.device.isGPU { return gpuCrossoverDensity }
      guard g.outPixels > 1 else { return openCLCPULinearCrossover }
      if cl.winogradFits(g, rows: g.outChannels, depth: g.inChannels) {
        let channels = min(1, 64 / Double(g.inChannels))
        return min(openCLCPUCrossoverCap, (openCLCPUWinogradCrossoverBase + openCLCPUWinogradCrossoverPerColumn * Double(g.outWidth)) * channels)
      }
      return implicitGemmCrossover(g)
    }
    let grid = g.phaseGrid.rows * g.phaseGrid.pitch
    return crossoverDensity * Double(g.outPixels) / Double(max(1, grid))
  }

  private static func implicitGemmCrossover(_ g: ConvGeometry) -> Double {
    min(openCLCPUCrossoverCap, openCLCPUCrossoverBase + openCLCPUCrossoverPerColumn * Double(g.outWidth))
  }

  /// On an OpenCL CPU device, a layer that runs as Winograd only from a batch on (planes of fewer
  /// than four 4x4 tiles: ResNet18's 4x4 stage, one tile per image, from 32 images) runs the
  /// implicit GEMM below it, where the implicit GEMM's crossover holds (measured at 8 images: about
  /// 4 %; at 64, on Winograd, sparse lost even at 1 %, 42-44 ms against 29-31 dense): that
  /// crossover and the batch it holds up to; nil for other layers and backends.
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
    return cl.device.isGPU ? gpuCrossoverDensity : openCLCPUCrossoverCap
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
