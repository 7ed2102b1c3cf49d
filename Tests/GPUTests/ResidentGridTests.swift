import XCTest

@testable import GPU

/// Activations kept on the sparse grid (`ResidentGrid`): a conv from grid to grid is the dense
/// conv of the same weight with the bias, the residual and the ReLU, on both backends, and
/// leaves the planes' border zero, so the next conv reads it as padding.
final class ResidentGridTests: XCTestCase {
  func testGridConvIsTheDenseConvWithResidualAndReLU() throws { try check(CPUBackend()) }

  func testOpenCLGridConvIsTheDenseConvWithResidualAndReLU() throws { try check(try OpenCLFixture.backend()) }

  /// Two convs in a row on the grid (a residual block: the second adds the first's input), one
  /// copy on and one off, against the dense convs on NCHW tensors.
  func testABlockStaysOnTheGrid() throws {
    for backend: Backend in [CPUBackend(), try OpenCLFixture.backend()] {
      let r = ResidentGrid(batch: 2, height: 6, width: 5)
      let g = r.geometry(inChannels: 4, outChannels: 4)
      var rng = SeededRNG(seed: 31)
      let x = rng.uniformArray(g.inputShape.reduce(1, *))
      let (w1, w2) = (OpSuite.sparseWeight(g, density: 0.4, &rng), OpSuite.sparseWeight(g, density: 0.4, &rng))
      let (b1, b2) = (rng.uniformArray(4), rng.uniformArray(4))
      let h = try dense(g, x: x, w: w1, bias: b1, residual: nil)
      let want = try dense(g, x: h, w: w2, bias: b2, residual: x)
      let grids = try (0..<3).map { _ in try backend.upload([Float](repeating: 9, count: r.floats(channels: 4)), shape: [r.floats(channels: 4)]) }
      try backend.sparseGridEnter(grid: grids[0], x: try backend.upload(x, shape: g.inputShape), layout: r)
      for (k, (w, b)) in [(w1, b1), (w2, b2)].enumerated() {
        try backend.sparseGridConv(
          out: grids[k + 1], source: grids[k], weights: try SparseConvWeights(dense: w, shape: g.weightShape, backend: backend),
          bias: try backend.upload(b, shape: [4]), residual: k == 1 ? grids[0] : nil, layout: r)
      }
      let y = try backend.zeros(g.outputShape)
      try backend.sparseGridLeave(y: y, grid: grids[2], layout: r)
      assertClose(try backend.download(y), want, atol: 1e-5, rtol: 1e-5, "\(backend.name) block on the grid")
    }
  }

  /// Strided convs and shortcuts from one grid to another: the dense conv of the same weight
  /// (with the bias, and the ReLU where asked), a zero border on the output's grid.
  func testConvsBetweenGridsAreTheDenseConv() throws {
    for backend: Backend in [CPUBackend(), try OpenCLFixture.backend()] {
      for (g, density, relu) in OpSuite.residentBetweenGrids {
        var rng = SeededRNG(seed: 37)
        let x = rng.uniformArray(g.inputShape.reduce(1, *))
        let w = OpSuite.sparseWeight(g, density: density, &rng)
        let bias = rng.uniformArray(g.outChannels)
        let outputs = try OpSuite.betweenGrids(backend, g, relu: relu, x: x, w: w, bias: bias)
        let sums = try dense(g, x: x, w: w, bias: bias, residual: nil, relu: false)
        assertClose(outputs[0], relu ? sums.map { max($0, 0) } : sums, atol: 1e-5, rtol: 1e-5, "\(backend.name) \(g) between grids")
        XCTAssertEqual(
          borderPointsNotZero(outputs[1], ResidentGrid(batch: g.batch, height: g.outHeight, width: g.outWidth), planes: g.outChannels * g.batch), 0,
          "\(backend.name) \(g) between grids")
      }
    }
  }

  private func check(_ backend: Backend) throws {
    for (r, c, o, density, withResidual) in OpSuite.residentGridLayouts {
      let g = r.geometry(inChannels: c, outChannels: o)
      var rng = SeededRNG(seed: 29)
      let x = rng.uniformArray(g.inputShape.reduce(1, *))
      let w = OpSuite.sparseWeight(g, density: density, &rng)
      let (bias, residual) = (rng.uniformArray(o), rng.uniformArray(g.outputShape.reduce(1, *)))
      let want = try dense(g, x: x, w: w, bias: bias, residual: withResidual ? residual : nil)
      // Garbage in the grids first: the border must be written, not assumed zero.
      func garbage(_ channels: Int) throws -> Tensor {
        try backend.upload([Float](repeating: 9, count: r.floats(channels: channels)), shape: [r.floats(channels: channels)])
      }
      let (source, out, onGrid) = (try garbage(c), try garbage(o), try garbage(o))
      try backend.sparseGridEnter(grid: source, x: try backend.upload(x, shape: g.inputShape), layout: r)
      try backend.sparseGridEnter(grid: onGrid, x: try backend.upload(residual, shape: g.outputShape), layout: r)
      try backend.sparseGridConv(
        out: out, source: source, weights: try SparseConvWeights(dense: w, shape: g.weightShape, backend: backend),
        bias: try backend.upload(bias, shape: [o]), residual: withResidual ? onGrid : nil, layout: r)
      let y = try backend.zeros(g.outputShape)
      try backend.sparseGridLeave(y: y, grid: out, layout: r)
      assertClose(try backend.download(y), want, atol: 1e-5, rtol: 1e-5, "\(backend.name) grid conv \(g)")
      XCTAssertEqual(borderPointsNotZero(try backend.download(out), r, planes: o * r.batch), 0, "\(backend.name) grid conv \(g)")
    }
  }

  private func borderPointsNotZero(_ grid: [Float], _ r: ResidentGrid, planes: Int) -> Int {
    var count = 0
    for plane in 0..<planes {
      for p in 0..<(r.rows * r.pitch) {
        let (row, column) = (p / r.pitch, p % r.pitch)
        if (row == 0 || row == r.rows - 1 || column == 0 || column == r.pitch - 1) && grid[plane * r.rows * r.pitch + p] != 0 { count += 1 }
      }
    }
    return count
  }

  /// `max(conv(x, w) + bias + residual, 0)` (without the max unless `relu`) on the CPU reference, NCHW.
  private func dense(_ g: ConvGeometry, x: [Float], w: [Float], bias: [Float], residual: [Float]?, relu: Bool = true) throws -> [Float] {
    let cpu = CPUBackend.reference()
    let y = try cpu.zeros(g.outputShape)
    try cpu.conv2dForward(
      y: y, x: try cpu.upload(x, shape: g.inputShape), weight: try cpu.upload(w, shape: g.weightShape),
      bias: try cpu.upload(bias, shape: [g.outChannels]), geometry: g)
    let sums = try cpu.download(y)
    return sums.indices.map { relu ? max(sums[$0] + (residual?[$0] ?? 0), 0) : sums[$0] + (residual?[$0] ?? 0) }
  }
}
