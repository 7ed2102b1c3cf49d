import XCTest

@testable import GPU

/// The CPU backend's direct kernels for strided convolutions against its im2col path, the reference.
final class DirectConvTests: XCTestCase {
  /// ResNet's downsampling 3x3 and 1x1 shortcuts (channels a multiple of 16 and not, planes of 16
  /// pixels and of fewer or a partial last block), odd sizes, every padding up to the kernel's,
  /// stride 3, and a 5x5 kernel whose input-gradient classes have up to nine taps.
  static let geometries: [ConvGeometry] = [
    ConvGeometry(batch: 3, inChannels: 16, height: 32, width: 32, outChannels: 32, kernel: 3, stride: 2, padding: 1),
    ConvGeometry(batch: 2, inChannels: 32, height: 16, width: 16, outChannels: 64, kernel: 3, stride: 2, padding: 1),
    ConvGeometry(batch: 2, inChannels: 64, height: 8, width: 8, outChannels: 128, kernel: 3, stride: 2, padding: 1),
    ConvGeometry(batch: 3, inChannels: 16, height: 32, width: 32, outChannels: 32, kernel: 1, stride: 2),
    ConvGeometry(batch: 2, inChannels: 64, height: 8, width: 8, outChannels: 128, kernel: 1, stride: 2),
    ConvGeometry(batch: 3, inChannels: 5, height: 9, width: 7, outChannels: 20, kernel: 3, stride: 2, padding: 1),
    ConvGeometry(batch: 2, inChannels: 3, height: 10, width: 11, outChannels: 4, kernel: 3, stride: 2),
    ConvGeometry(batch: 2, inChannels: 17, height: 7, width: 9, outChannels: 33, kernel: 3, stride: 2, padding: 2),
    ConvGeometry(batch: 1, inChannels: 2, height: 3, width: 3, outChannels: 3, kernel: 3, stride: 2, padding: 1),
    ConvGeometry(batch: 2, inChannels: 4, height: 13, width: 12, outChannels: 6, kernel: 3, stride: 3, padding: 1),
    ConvGeometry(batch: 2, inChannels: 3, height: 11, width: 11, outChannels: 5, kernel: 5, stride: 2, padding: 2),
    ConvGeometry(batch: 2, inChannels: 6, height: 6, width: 6, outChannels: 7, kernel: 1, stride: 3),
    // The fast blocks with partial vectors of channels (20 outputs and 5 inputs; 12 and 20), two
    // rows of 4 with one vector each way, a 5x5 kernel and no padding on planes they tile.
    ConvGeometry(batch: 2, inChannels: 5, height: 16, width: 16, outChannels: 20, kernel: 3, stride: 2, padding: 1),
    ConvGeometry(batch: 2, inChannels: 20, height: 16, width: 16, outChannels: 12, kernel: 3, stride: 2, padding: 1),
    ConvGeometry(batch: 2, inChannels: 8, height: 8, width: 8, outChannels: 8, kernel: 3, stride: 2, padding: 1),
    ConvGeometry(batch: 2, inChannels: 6, height: 16, width: 16, outChannels: 18, kernel: 5, stride: 2, padding: 2),
    ConvGeometry(batch: 2, inChannels: 7, height: 17, width: 17, outChannels: 9, kernel: 3, stride: 2),
  ]

  /// Every copy of the C loops (AVX-512's blocks of 8 x 32, AVX2's and baseline's of 4 x 16).
  func testForwardAndInputGradientMatchIm2col() throws {
    defer { CPUBackend.selectVectorCopy(nil) }
    for copy in CPUBackend.VectorCopy.allCases where CPUBackend.selectVectorCopy(copy) == copy {
      try Self.checkAgainstIm2col(copy)
    }
  }

  static func checkAgainstIm2col(_ copy: CPUBackend.VectorCopy) throws {
    let plain = CPUBackend.reference()
    for fast in [CPUBackend(), CPUBackend(workers: 2), CPUBackend(workers: 1)] {
      for (i, g) in geometries.enumerated() {
        XCTAssert(fast.usesDirect(g), "\(g) should run directly")
        XCTAssertFalse(plain.usesDirect(g))
        var rng = SeededRNG(seed: UInt64(90 + i))
        let (x, w, b, dy) = randomConvOperands(g, &rng)
        let reluOutput = rng.uniformArray(g.outputShape.reduce(1, *))  // about half of it > 0
        func run(_ be: CPUBackend) throws -> [[Float]] {
          let (xt, wt, bt, dyt, yt) = (
            try be.upload(x, shape: g.inputShape), try be.upload(w, shape: g.weightShape), try be.upload(b, shape: [g.outChannels]),
            try be.upload(dy, shape: g.outputShape), try be.upload(reluOutput, shape: g.outputShape)
          )
          let (y, yRelu, dx, dxMasked) = (
            try be.zeros(g.outputShape), try be.zeros(g.outputShape), try be.zeros(g.inputShape), try be.zeros(g.inputShape)
          )
          // Every input pixel is written, those no window reads as 0.
          try be.fill(dx, value: .nan)
          try be.fill(dxMasked, value: .nan)
          try be.conv2dForward(y: y, x: xt, weight: wt, bias: bt, geometry: g)
          try be.conv2dForward(y: yRelu, x: xt, weight: wt, bias: nil, geometry: g, relu: true)
          try be.conv2dBackwardData(dx: dx, dy: dyt, weight: wt, geometry: g)
          try be.conv2dBackwardData(dx: dxMasked, dy: dyt, weight: wt, geometry: g, reluOutput: yt)
          return try [y, yRelu, dx, dxMasked].map { try be.download($0) }
        }
        let (want, got) = (try run(plain), try run(fast))
        for (k, what) in ["forward", "forward + ReLU", "input gradient", "input gradient through the ReLU"].enumerated() {
          assertClose(got[k], want[k], atol: 1e-5, rtol: 1e-5, "\(copy): \(what) \(g)")
        }
      }
    }
  }

  /// A frozen weight's rearrangements are kept, and redone after a new freeze.
  func testFrozenWeightsKeepTheirLayouts() throws {
    try assertFrozenWeightsKeepTheirLayouts(
      ConvGeometry(batch: 2, inChannels: 5, height: 9, width: 8, outChannels: 18, kernel: 3, stride: 2, padding: 1), seed: 78)
  }

  func testOnlyStridedConvolutionsRunDirectly() {
    let be = CPUBackend()
    XCTAssertFalse(be.usesDirect(ConvGeometry(batch: 1, inChannels: 2, height: 8, width: 8, outChannels: 2, kernel: 3, padding: 1)))
    XCTAssertFalse(be.usesDirect(ConvGeometry(batch: 1, inChannels: 2, height: 8, width: 8, outChannels: 2, kernel: 1)))
    XCTAssert(be.usesDirect(ConvGeometry(batch: 1, inChannels: 2, height: 8, width: 8, outChannels: 2, kernel: 1, stride: 2)))
    XCTAssertFalse(
      CPUBackend(directStrided: false).usesDirect(ConvGeometry(batch: 1, inChannels: 2, height: 8, width: 8, outChannels: 2, kernel: 1, stride: 2)))
  }
}
