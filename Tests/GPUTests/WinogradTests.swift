import XCTest

@testable import GPU

/// The CPU backend's Winograd F(2x2, 3x3) and F(4x4, 3x3) paths against its plain im2col path, the reference.
final class WinogradTests: XCTestCase {
  /// Odd and even sizes (partial edge tiles), two channels, a 1x1 plane, slices of one image,
  /// planes narrow enough to put two or four tile rows in a vector.
  /// Every padding (the input gradient's is 2 - padding).
  static let geometries: [(batch: Int, inChannels: Int, height: Int, width: Int, outChannels: Int, padding: Int)] = [
    (3, 4, 6, 6, 5, 1), (2, 3, 7, 5, 4, 1), (2, 2, 9, 9, 8, 1), (4, 6, 1, 1, 3, 1), (5, 8, 4, 3, 2, 1), (2, 16, 28, 28, 16, 1),
    (3, 4, 6, 6, 5, 0), (2, 3, 7, 5, 4, 0), (2, 2, 28, 28, 8, 0), (4, 6, 3, 3, 3, 0), (2, 5, 5, 6, 3, 2), (3, 2, 1, 2, 4, 2),
    (4, 3, 32, 32, 16, 1), (4, 16, 32, 32, 16, 1), (4, 32, 16, 16, 32, 1), (4, 64, 8, 8, 64, 1), (4, 128, 4, 4, 128, 1),
    // Two and four tile rows per vector, with a last vector short of rows.
    (3, 5, 13, 11, 6, 1), (2, 3, 12, 14, 5, 0), (3, 4, 30, 7, 3, 1), (2, 6, 9, 7, 4, 2), (3, 32, 12, 12, 64, 0), (3, 64, 10, 10, 64, 0),
    // Either side of the small GEMM's depth: a forward over 65 channels (BLAS), its input
    // gradient over 13 into 65 rows (ten blocks of six and five).
    (2, 65, 6, 6, 13, 1),
    // Rows wider than one vector of tiles (second chunk, partial), the bottom row last.
    (2, 3, 5, 40, 4, 1), (1, 2, 3, 70, 3, 0),
    // F(4x4, 3x3) by default (64 channels, 16 wide); F(4x4) on a 26-wide plane (two tile rows
    // per vector, the last one partial) and a 70-wide one (two chunks).
    (2, 64, 16, 16, 64, 1), (2, 3, 26, 26, 4, 1), (1, 2, 9, 70, 3, 1),
    // F(4x4) on planes of at most four tiles with 16 images or more per worker, in image order
    // (a block of 16 and a partial one): 4x4 and 8x8, a 10x10 input, partial tiles (6x7, 5x5 out
    // of 3x3 at padding 2, whose input gradient is 3x3 out of a 5x5 plane), 1x4 and 2x1 tiles
    // (the largest input plane, 6x18), and an input gradient at padding 2 (6x6 out of 4x4).
    (34, 3, 4, 4, 5, 1), (20, 4, 8, 8, 6, 1), (18, 3, 10, 10, 4, 0), (17, 2, 6, 7, 3, 1), (16, 5, 3, 3, 4, 2),
    (17, 2, 4, 16, 3, 1), (16, 2, 6, 18, 3, 0), (17, 3, 8, 4, 2, 1), (17, 3, 6, 6, 4, 0),
  ]

  func testForwardAndInputGradientMatchIm2col() throws { try Self.checkAgainstIm2col() }

  static func checkAgainstIm2col() throws {
    let plain = CPUBackend(winograd: false)
    let backends = [
      CPUBackend(), CPUBackend(maxColumnFloats: 64, workers: 2), CPUBackend(winogradTile: 2), CPUBackend(winogradTile: 4),
      CPUBackend(maxColumnFloats: 64, workers: 2, winogradTile: 4), CPUBackend(workers: 1, winogradTile: 4),
    ]
    for fast in backends {
      for (i, s) in geometries.enumerated() {
        let g = ConvGeometry(
          batch: s.batch, inChannels: s.inChannels, height: s.height, width: s.width, outChannels: s.outChannels, kernel: 3, padding: s.padding)
        XCTAssert(fast.usesWinograd(g), "\(g) should run as Winograd")
        XCTAssertFalse(plain.usesWinograd(g))
        var rng = SeededRNG(seed: UInt64(40 + i))
        let (x, w, b, dy) = randomConvOperands(g, &rng)
        func run(_ be: CPUBackend) throws -> ([Float], [Float]) {
          let (xt, wt, bt, dyt) = (
            try be.upload(x, shape: g.inputShape), try be.upload(w, shape: g.weightShape), try be.upload(b, shape: [g.outChannels]),
            try be.upload(dy, shape: g.outputShape)
          )
          let (y, dx) = (try be.zeros(g.outputShape), try be.zeros(g.inputShape))
          try be.conv2dForward(y: y, x: xt, weight: wt, bias: bt, geometry: g)
          try be.conv2dBackwardData(dx: dx, dy: dyt, weight: wt, geometry: g)
          return (try be.download(y), try be.download(dx))
        }
        let (want, got) = (try run(plain), try run(fast))
        // F(4x4, 3x3)'s transforms scale by up to 8 and 1/24: its error is ~1e-5 of the output's
        // size (cuDNN's and the literature's), against F(2x2, 3x3)'s rounding of the sum.
        func tolerance(_ values: [Float], outHeight: Int, outWidth: Int) -> Float {
          let rms = (values.reduce(0) { $0 + $1 * $1 } / Float(max(1, values.count))).squareRoot()
          return fast.winogradTile(outHeight: outHeight, outWidth: outWidth) == 4
            ? max(2e-5, 1e-4 * rms) : 2e-5
        }
        let (forward, backward) = (
          tolerance(want.0, outHeight: g.outHeight, outWidth: g.outWidth), tolerance(want.1, outHeight: g.height, outWidth: g.width)
        )
        assertClose(got.0, want.0, atol: forward, rtol: forward, "forward \(g)")
        assertClose(got.1, want.1, atol: backward, rtol: backward, "input gradient \(g)")
      }
    }
  }

  /// Other shapes keep the im2col path.
  /// A frozen weight's transforms are kept (one for the forward, one for the input gradient, of
  /// the same size here) and give what transforming at every call gives.
  func testFrozenWeightsKeepTheirTransforms() throws {
    try assertFrozenWeightsKeepTheirLayouts(
      ConvGeometry(batch: 2, inChannels: 4, height: 9, width: 8, outChannels: 6, kernel: 3, padding: 1), seed: 77)
  }

  func testOnlyThreeByThreeStrideOneRunsAsWinograd() {
    let be = CPUBackend()
    XCTAssertFalse(be.usesWinograd(ConvGeometry(batch: 1, inChannels: 2, height: 8, width: 8, outChannels: 2, kernel: 3, stride: 2, padding: 1)))
    XCTAssertFalse(be.usesWinograd(ConvGeometry(batch: 1, inChannels: 2, height: 8, width: 8, outChannels: 2, kernel: 3, padding: 3)))
    XCTAssertFalse(be.usesWinograd(ConvGeometry(batch: 1, inChannels: 2, height: 8, width: 8, outChannels: 2, kernel: 1)))
    XCTAssertFalse(be.usesWinograd(ConvGeometry(batch: 1, inChannels: 1, height: 8, width: 8, outChannels: 4, kernel: 3)))
    XCTAssertFalse(be.usesWinograd(ConvGeometry(batch: 1, inChannels: 4, height: 8, width: 8, outChannels: 1, kernel: 3)))
  }

  /// F(4x4, 3x3) for ResNet18's 32x32 and 16x16 stages; F(2x2, 3x3) for its 8x8 and 4x4 ones,
  /// SmallCNN's 32-channel layers and planes where 4x4 tiles would need more products (2 rows).
  func testTileChoice() {
    let be = CPUBackend()
    for (plane, tile) in [(32, 4), (16, 4), (8, 4), (24, 4), (26, 4), (10, 4), (4, 4), (6, 2), (2, 2)] {
      XCTAssertEqual(be.winogradTile(outHeight: plane, outWidth: plane), tile, "\(plane)x\(plane)")
    }
    // Two rows of 16: F(4x4)'s tiles would be half empty (36 products per 8 outputs).
    XCTAssertEqual(be.winogradTile(outHeight: 2, outWidth: 16), 2)
    XCTAssertEqual(CPUBackend(winogradTile: 4).winogradTile(outHeight: 4, outWidth: 4), 4)
  }

  /// The transformed elements lie an odd number of 64-byte lines apart, each holding all of its
  /// channels' tiles: 16 channels of a 7-image slice of 32x32 planes (448 tiles, 7 x 4 KiB).
  func testElementStrideIsAnOddNumberOfLines() {
    for (channels, tiles) in [(16, 448), (1, 1), (3, 5), (16, 1), (32, 216), (64, 128), (2, 8)] {
      let stride = CPUBackend.winogradStride(channels: channels, tiles: tiles)
      XCTAssertGreaterThanOrEqual(stride, channels * tiles)
      XCTAssertLessThan(stride, channels * tiles + 32)
      XCTAssertEqual(stride % 16, 0)
      XCTAssertEqual(stride / 16 % 2, 1, "\(channels) x \(tiles)")
    }
    XCTAssertEqual(CPUBackend.winogradStride(channels: 16, tiles: 448), 7184)
  }
}

/// A convolution with its ReLU fused is the two run one after the other, on every CPU path.
final class FusedConvReLUTests: XCTestCase {
  func testFusedEqualsConvThenReLU() throws {
    let geometries = [
      ConvGeometry(batch: 3, inChannels: 4, height: 7, width: 6, outChannels: 5, kernel: 3),
      ConvGeometry(batch: 2, inChannels: 3, height: 8, width: 8, outChannels: 4, kernel: 3, padding: 1),
      ConvGeometry(batch: 2, inChannels: 3, height: 8, width: 8, outChannels: 4, kernel: 3, stride: 2, padding: 1),
      ConvGeometry(batch: 2, inChannels: 3, height: 9, width: 21, outChannels: 4, kernel: 3, padding: 1),
      // 16 images or more on one worker: F(4x4) in image order, dy read through the mask.
      ConvGeometry(batch: 20, inChannels: 3, height: 8, width: 8, outChannels: 4, kernel: 3, padding: 1),
      ConvGeometry(batch: 17, inChannels: 4, height: 4, width: 4, outChannels: 3, kernel: 3, padding: 1),
      ConvGeometry(batch: 17, inChannels: 3, height: 6, width: 7, outChannels: 4, kernel: 3, padding: 1),
    ]
    for be in [CPUBackend.reference(), CPUBackend(), CPUBackend(winogradTile: 4), CPUBackend(workers: 1, winogradTile: 4)] {
      for (i, g) in geometries.enumerated() {
        var rng = SeededRNG(seed: UInt64(60 + i))
        let x = try be.upload(rng.uniformArray(g.inputShape.reduce(1, *)), shape: g.inputShape)
        let w = try be.upload(rng.uniformArray(g.weightShape.reduce(1, *)), shape: g.weightShape)
        let bias = try be.upload(rng.uniformArray(g.outChannels), shape: [g.outChannels])
        let dy = try be.upload(rng.uniformArray(g.outputShape.reduce(1, *)), shape: g.outputShape)
        let (z, y, dz, dx) = (try be.zeros(g.outputShape), try be.zeros(g.outputShape), try be.zeros(g.outputShape), try be.zeros(g.inputShape))
        try be.conv2dForward(y: z, x: x, weight: w, bias: bias, geometry: g)
        try be.reluForward(y: y, x: z)
        try be.reluBackward(dx: dz, dy: dy, y: y)
        try be.conv2dBackwardData(dx: dx, dy: dz, weight: w, geometry: g)
        let (fy, fdx) = (try be.zeros(g.outputShape), try be.zeros(g.inputShape))
        try be.conv2dForward(y: fy, x: x, weight: w, bias: bias, geometry: g, relu: true)
        try be.conv2dBackwardData(dx: fdx, dy: dy, weight: w, geometry: g, reluOutput: fy)
        XCTAssertEqual(try be.download(fy), try be.download(y), "forward \(g)")
        XCTAssertEqual(try be.download(fdx), try be.download(dx), "input gradient \(g)")
        XCTAssert(try be.download(y).contains(0) && be.download(y).contains { $0 > 0 }, "the ReLU cuts somewhere")
      }
    }
  }
}
