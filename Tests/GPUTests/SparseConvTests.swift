import GPU
import XCTest

/// The sparse convolution against the dense one on the CPU reference (the same function of the
/// masked weight), and its input gradient against finite differences.
final class SparseConvTests: XCTestCase {
  let cpu = CPUBackend()

  static let geometries = [
    ConvGeometry(batch: 3, inChannels: 3, height: 9, width: 8, outChannels: 4, kernel: 3),
    ConvGeometry(batch: 2, inChannels: 3, height: 8, width: 8, outChannels: 5, kernel: 3, stride: 2, padding: 1),
    ConvGeometry(batch: 2, inChannels: 4, height: 6, width: 6, outChannels: 3, kernel: 1, stride: 2),
    ConvGeometry(batch: 2, inChannels: 3, height: 7, width: 7, outChannels: 4, kernel: 3, padding: 1),
    ConvGeometry(batch: 2, inChannels: 4, height: 6, width: 6, outChannels: 3, kernel: 1),
    ConvGeometry(batch: 5, inChannels: 33, height: 1, width: 1, outChannels: 7, kernel: 1),
  ]

  func testSparseMatchesTheDenseConvolutionOfTheSameWeight() throws { try Self.checkAgainstDense() }

  static func checkAgainstDense() throws {
    let cpu = CPUBackend()
    for g in geometries {
      for density in [1.0, 0.4, 0.05, 0.0] {
        var rng = SeededRNG(seed: 11)
        let x = rng.uniformArray(g.inputShape.reduce(1, *))
        let w = OpSuite.sparseWeight(g, density: density, &rng)
        let (b, dyValues) = (rng.uniformArray(g.outChannels), rng.uniformArray(g.outputShape.reduce(1, *)))
        let (xt, bt, dy) = (
          try cpu.upload(x, shape: g.inputShape), try cpu.upload(b, shape: [g.outChannels]), try cpu.upload(dyValues, shape: g.outputShape)
        )
        let dense = (y: try cpu.zeros(g.outputShape), dx: try cpu.zeros(g.inputShape))
        try cpu.conv2dForward(y: dense.y, x: xt, weight: try cpu.upload(w, shape: g.weightShape), bias: bt, geometry: g)
        try cpu.conv2dBackwardData(dx: dense.dx, dy: dy, weight: try cpu.upload(w, shape: g.weightShape), geometry: g)
        let weights = try SparseConvWeights(dense: w, shape: g.weightShape, backend: cpu)
        XCTAssertEqual(weights.nonzeros, w.filter { $0 != 0 }.count)
        // Garbage in the outputs first: every element must be written, not accumulated onto.
        let sparse = (
          y: try cpu.upload([Float](repeating: 9, count: g.outputShape.reduce(1, *)), shape: g.outputShape),
          dx: try cpu.upload([Float](repeating: 9, count: g.inputShape.reduce(1, *)), shape: g.inputShape)
        )
        try cpu.sparseConv2dForward(y: sparse.y, x: xt, weights: weights, bias: bt, geometry: g, relu: false)
        try cpu.sparseConv2dBackwardData(dx: sparse.dx, dy: dy, weights: weights, geometry: g)
        assertClose(try cpu.download(sparse.y), try cpu.download(dense.y), atol: 1e-5, rtol: 1e-5, "sparse y \(g) density \(density)")
        assertClose(try cpu.download(sparse.dx), try cpu.download(dense.dx), atol: 1e-5, rtol: 1e-5, "sparse dx \(g) density \(density)")
        // The ReLU fused into the forward: max(y, 0) of the same sums.
        try cpu.sparseConv2dForward(y: sparse.y, x: xt, weights: weights, bias: bt, geometry: g, relu: true)
        let rectified = try cpu.download(dense.y).map { max($0, 0) }
        assertClose(try cpu.download(sparse.y), rectified, atol: 1e-5, rtol: 1e-5, "sparse relu(y) \(g) density \(density)")
      }
    }
  }

  func testSparseInputGradientMatchesFiniteDifferences() throws {
    for g in Self.geometries.prefix(4) {
      var rng = SeededRNG(seed: 12)
      let x = rng.uniformArray(g.inputShape.reduce(1, *))
      let weights = try SparseConvWeights(dense: OpSuite.sparseWeight(g, density: 0.5, &rng), shape: g.weightShape, backend: cpu)
      let r = rng.uniformArray(g.outputShape.reduce(1, *))
      func loss(_ x: [Float]) throws -> Double {
        let y = try cpu.zeros(g.outputShape)
        try cpu.sparseConv2dForward(y: y, x: try cpu.upload(x, shape: g.inputShape), weights: weights, bias: nil, geometry: g, relu: false)
        return zip(try cpu.download(y), r).reduce(0) { $0 + Double($1.0) * Double($1.1) }
      }
      let dx = try cpu.zeros(g.inputShape)
      try cpu.sparseConv2dBackwardData(dx: dx, dy: try cpu.upload(r, shape: g.outputShape), weights: weights, geometry: g)
      var numeric = [Float](repeating: 0, count: x.count)
      var probe = x
      for i in x.indices {
        probe[i] = x[i] + 1e-2
        let up = try loss(probe)
        probe[i] = x[i] - 1e-2
        numeric[i] = Float((up - (try loss(probe))) / 2e-2)
        probe[i] = x[i]
      }
      assertClose(try cpu.download(dx), numeric, atol: 2e-3, rtol: 1e-2, "sparse dx \(g)")
    }
  }
}
