import Foundation
import GPU

/// `advprune profile --sparse-crossover`: every conv and linear layer of an architecture timed
/// with the dense masked kernels and with the sparse ones (forward + input gradient, what an
/// attack step runs), at falling densities — where `--sparse auto`'s crossover comes from.
public struct SparseCrossover {
  public var architecture = Architecture.smallcnn
  public var width = 1.0
  public var batchSize = 128
  public var densities = [0.5, 0.3, 0.2, 0.1, 0.05, 0.01]
  public var repeats = 3

  public init() {}

  public struct Row: Codable, Sendable {
    public let layer: String
    public let geometry: String
    /// Median milliseconds of forward + input gradient with the dense kernels (any density costs the same).
    public let denseMilliseconds: Double
    /// Per density: median milliseconds with the sparse kernels.
    public let sparseMilliseconds: [Double]
    /// The density at or below which `--sparse auto` runs this layer sparse.
    public let crossover: Double
  }

  public struct Result: Codable, Sendable {
    public let backend: String
    public let architecture: String
    public let batchSize: Int
    public let densities: [Double]
    /// The large-plane crossover on this backend; each row has its layer's own.
    public let crossoverDensity: Double
    public let rows: [Row]
  }

  public func run(backend: Backend, progress: ProgressSink) throws -> Result {
    if batchSize < 1 { throw UserError.badValue(name: "--batch-size", value: "\(batchSize)", problem: "must be >= 1") }
    let model = try architecture.build(backend: backend, seed: 0, width: width)
    model.setTraining(false)
    var rng = SeededRNG(seed: 1)
    let shape = [batchSize] + architecture.inputShape
    _ = try model.forward(try backend.upload(rng.uniformArray(shape.reduce(1, *), 0, 1), shape: shape))
    let layers = model.layers.flatMap(SparseEvaluation.walk)
    var rows: [Row] = []
    for (k, layer) in layers.enumerated() {
      guard let g = layer.lastConvolution else { continue }
      progress.finish("layer \(k + 1)/\(layers.count): \(layer.weight.name) \(g)")
      let x = try backend.upload(rng.uniformArray(g.inputShape.reduce(1, *)), shape: g.inputShape)
      let dy = try backend.upload(rng.uniformArray(g.outputShape.reduce(1, *)), shape: g.outputShape)
      let (y, dx) = (try backend.zeros(g.outputShape), try backend.zeros(g.inputShape))
      let dense = try backend.upload(weight(g, density: 1, &rng), shape: g.weightShape)
      // As an evaluation's folded weights are: what the backend derives from them (Winograd
      // transforms) is kept, not redone per call.
      backend.freeze(dense)
      // A linear layer (a 1x1 plane) runs its dense passes as GEMMs, not as a convolution.
      let linear = layer is Linear
      let (images, inputs) = (g.batch, g.inChannels)
      let denseTime = try median {
        if linear {
          try backend.linearForward(
            y: y.reshaped([images, g.outChannels]), x: x.reshaped([images, inputs]), weight: dense.reshaped([g.outChannels, inputs]), bias: nil)
          try backend.linearBackwardData(
            dx: dx.reshaped([images, inputs]), dy: dy.reshaped([images, g.outChannels]), weight: dense.reshaped([g.outChannels, inputs]))
        } else {
          try backend.conv2dForward(y: y, x: x, weight: dense, bias: nil, geometry: g)
          try backend.conv2dBackwardData(dx: dx, dy: dy, weight: dense, geometry: g)
        }
        try backend.synchronize()
      }
      let sparseTimes = try densities.map { density in
        let weights = try SparseConvWeights(dense: weight(g, density: density, &rng), shape: g.weightShape, backend: backend)
        return try median {
          try backend.sparseConv2dForward(y: y, x: x, weights: weights, bias: nil, geometry: g, relu: false)
          try backend.sparseConv2dBackwardData(dx: dx, dy: dy, weights: weights, geometry: g, reluOutput: nil)
          try backend.synchronize()
        }
      }
      rows.append(
        Row(
          layer: String(layer.weight.name.dropLast(".weight".count)), geometry: "\(g)", denseMilliseconds: denseTime, sparseMilliseconds: sparseTimes,
          crossover: SparseEvaluation.crossover(g, on: backend)))
    }
    return Result(
      backend: backend.name, architecture: architecture.rawValue, batchSize: batchSize, densities: densities,
      crossoverDensity: SparseEvaluation.largePlaneCrossover(on: backend), rows: rows)
  }

  /// A random weight keeping each entry with probability `density` (unstructured pruning's pattern).
  private func weight(_ g: ConvGeometry, density: Double, _ rng: inout SeededRNG) -> [Float] {
    (0..<g.weightShape.reduce(1, *)).map { _ in
      let v = rng.uniform(-1, 1)
      return Double(rng.uniform(0, 1)) < density ? v : 0
    }
  }

  /// Median wall milliseconds of `body` over `repeats` runs after one warm-up run.
  private func median(_ body: () throws -> Void) throws -> Double {
    try body()
    var times: [Double] = []
    for _ in 0..<max(1, repeats) {
      let start = Date()
      try body()
      times.append(Date().timeIntervalSince(start) * 1000)
    }
    return times.sorted()[times.count / 2]
  }
}
