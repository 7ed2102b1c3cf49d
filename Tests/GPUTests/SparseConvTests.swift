import XCTest

@testable import GPU

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
    // Stride phases: odd planes, a stride larger than half the kernel, a 5x5 kernel reaching two
    // rows into its phases, a 1x1 stride-2 conv on an odd plane (three of four phases unread),
    // and enough channels that each worker runs two stacks.
    ConvGeometry(batch: 2, inChannels: 3, height: 7, width: 9, outChannels: 4, kernel: 3, stride: 2, padding: 1),
    ConvGeometry(batch: 2, inChannels: 2, height: 10, width: 11, outChannels: 3, kernel: 3, stride: 3, padding: 1),
    ConvGeometry(batch: 2, inChannels: 2, height: 9, width: 8, outChannels: 3, kernel: 5, stride: 2, padding: 2),
    ConvGeometry(batch: 2, inChannels: 3, height: 7, width: 7, outChannels: 2, kernel: 1, stride: 2),
    ConvGeometry(batch: 8, inChannels: 48, height: 30, width: 30, outChannels: 6, kernel: 3, stride: 2, padding: 1),
    // Rows wider than a vector.
    ConvGeometry(batch: 2, inChannels: 2, height: 5, width: 40, outChannels: 3, kernel: 3, padding: 1),
    ConvGeometry(batch: 1, inChannels: 2, height: 6, width: 70, outChannels: 3, kernel: 3, stride: 2, padding: 1),
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
        try cpu.sparseConv2dBackwardData(dx: sparse.dx, dy: dy, weights: weights, geometry: g, reluOutput: nil)
        assertClose(try cpu.download(sparse.y), try cpu.download(dense.y), atol: 1e-5, rtol: 1e-5, "sparse y \(g) density \(density)")
        assertClose(try cpu.download(sparse.dx), try cpu.download(dense.dx), atol: 1e-5, rtol: 1e-5, "sparse dx \(g) density \(density)")
        // The ReLU fused into the forward: max(y, 0) of the same sums.
        try cpu.sparseConv2dForward(y: sparse.y, x: xt, weights: weights, bias: bt, geometry: g, relu: true)
        let rectified = try cpu.download(dense.y).map { max($0, 0) }
        assertClose(try cpu.download(sparse.y), rectified, atol: 1e-5, rtol: 1e-5, "sparse relu(y) \(g) density \(density)")
        // And its gradient: dy through the ReLU's mask, as the dense input gradient reads it.
        try cpu.conv2dBackwardData(dx: dense.dx, dy: dy, weight: try cpu.upload(w, shape: g.weightShape), geometry: g, reluOutput: sparse.y)
        try cpu.sparseConv2dBackwardData(dx: sparse.dx, dy: dy, weights: weights, geometry: g, reluOutput: sparse.y)
        assertClose(try cpu.download(sparse.dx), try cpu.download(dense.dx), atol: 1e-5, rtol: 1e-5, "sparse relu dx \(g) density \(density)")
      }
    }
  }

  /// Each batch size stacks differently; a weight keeps the layouts of the last few only, and
  /// one evicted and worked out again computes as before.
  func testAWeightKeepsAFewStackLayouts() throws {
    // One worker: a stack is the whole batch, so eleven batch sizes are eleven layouts.
    let cpu = CPUBackend(workers: 1)
    let g0 = ConvGeometry(batch: 1, inChannels: 3, height: 6, width: 6, outChannels: 4, kernel: 3, padding: 1)
    var rng = SeededRNG(seed: 13)
    let w = OpSuite.sparseWeight(g0, density: 0.4, &rng)
    let weights = try SparseConvWeights(dense: w, shape: g0.weightShape, backend: cpu)
    let images = rng.uniformArray(12 * g0.inputShape.reduce(1, *))
    func forward(_ batch: Int) throws -> [Float] {
      let g = ConvGeometry(batch: batch, inChannels: 3, height: 6, width: 6, outChannels: 4, kernel: 3, padding: 1)
      let y = try cpu.zeros(g.outputShape)
      let x = try cpu.upload(Array(images.prefix(g.inputShape.reduce(1, *))), shape: g.inputShape)
      try cpu.sparseConv2dForward(y: y, x: x, weights: weights, bias: nil, geometry: g, relu: false)
      return try cpu.download(y)
    }
    let first = try forward(2)
    for batch in 3...12 { _ = try forward(batch) }
    XCTAssertEqual(weights.hostPlans.count, SparsePlans<SparsePlan>.kept)
    XCTAssertEqual(try forward(2), first)
  }

  func testSparseInputGradientMatchesFiniteDifferences() throws {
    for g in Self.geometries.prefix(4) + Self.geometries[6..<10] {
      for relu in [false, true] { try checkInputGradient(g, relu: relu) }
    }
  }

  /// d/dx of sum(r * conv(x)), or of sum(r * relu(conv(x))) through the fused ReLU's mask. A
  /// probe that moves an output across the ReLU's kink measures no derivative; those coordinates
  /// are left out (the exact comparison with the dense gradient above covers them).
  private func checkInputGradient(_ g: ConvGeometry, relu: Bool) throws {
    var rng = SeededRNG(seed: 12)
    let x = rng.uniformArray(g.inputShape.reduce(1, *))
    let weights = try SparseConvWeights(dense: OpSuite.sparseWeight(g, density: 0.5, &rng), shape: g.weightShape, backend: cpu)
    let r = rng.uniformArray(g.outputShape.reduce(1, *))
    let y = try cpu.zeros(g.outputShape)
    func loss(_ x: [Float]) throws -> (value: Double, active: [Bool]) {
      try cpu.sparseConv2dForward(y: y, x: try cpu.upload(x, shape: g.inputShape), weights: weights, bias: nil, geometry: g, relu: relu)
      let out = try cpu.download(y)
      return (zip(out, r).reduce(0) { $0 + Double($1.0) * Double($1.1) }, out.map { $0 > 0 })
    }
    let active = try loss(x).active
    let dx = try cpu.zeros(g.inputShape)
    try cpu.sparseConv2dBackwardData(
      dx: dx, dy: try cpu.upload(r, shape: g.outputShape), weights: weights, geometry: g,
      reluOutput: relu ? try cpu.upload(try cpu.download(y), shape: g.outputShape) : nil)
    var (analytic, numeric) = (try cpu.download(dx), [Float](repeating: 0, count: x.count))
    var (probe, skipped) = (x, 0)
    for i in x.indices {
      probe[i] = x[i] + 1e-2
      let up = try loss(probe)
      probe[i] = x[i] - 1e-2
      let down = try loss(probe)
      probe[i] = x[i]
      if relu && (up.active != active || down.active != active) {
        (analytic[i], skipped) = (0, skipped + 1)
      } else {
        numeric[i] = Float((up.value - down.value) / 2e-2)
      }
    }
    XCTAssertLessThan(skipped, x.count / 4, "sparse dx \(g): most probes crossed a kink")
    assertClose(analytic, numeric, atol: 2e-3, rtol: 1e-2, "sparse dx \(g) relu \(relu)")
  }
}

/// OpenCL's sparse convolution on a CPU device (the grid form of kernels/sparse.cl) against the
/// CPU backend's, on the stride-phase geometries above, whole batches and stacks of one or two
/// images (a small grid budget, a partial last stack).
final class OpenCLSparseGridTests: XCTestCase {
  func testTheGridFormMatchesTheCPUBackendInStacksOfAnySize() throws {
    let device = try OpenCLFixture.backend().device
    let cpu = CPUBackend()
    var backends = [("whole batch", try OpenCLBackend(device: device))]
    for budget in [1, 600] {
      let small = try OpenCLBackend(device: device)
      small.sparseGridFloats = budget
      backends.append(("grid of \(budget) floats", small))
    }
    guard !backends[0].1.tunables.isTiled else { throw XCTSkip("\(device.name) runs the element-wise sparse kernels (GPU tunables)") }
    for g in SparseConvTests.geometries {
      for (density, relu) in [(0.4, false), (0.05, true), (0.0, false)] {
        var rng = SeededRNG(seed: 17)
        let (x, w, b, dy) = (
          rng.uniformArray(g.inputShape.reduce(1, *)), OpSuite.sparseWeight(g, density: density, &rng), rng.uniformArray(g.outChannels),
          rng.uniformArray(g.outputShape.reduce(1, *))
        )
        func run(_ backend: Backend) throws -> [Float] {
          let weights = try SparseConvWeights(dense: w, shape: g.weightShape, backend: backend)
          let (y, dx) = (try backend.zeros(g.outputShape), try backend.zeros(g.inputShape))
          try backend.sparseConv2dForward(
            y: y, x: try backend.upload(x, shape: g.inputShape), weights: weights, bias: try backend.upload(b, shape: [g.outChannels]),
            geometry: g, relu: relu)
          try backend.sparseConv2dBackwardData(
            dx: dx, dy: try backend.upload(dy, shape: g.outputShape), weights: weights, geometry: g, reluOutput: relu ? y : nil)
          return try backend.download(y) + backend.download(dx)
        }
        let want = try run(cpu)
        for (name, backend) in backends {
          assertClose(try run(backend), want, atol: 1e-5, rtol: 1e-5, "\(name): \(g) density \(density)")
        }
      }
    }
  }
}
