import XCTest

@testable import GPU

/// OpenCL's Winograd F(4x4, 3x3) pass (kernels/winograd.cl); its parity with the CPU reference
/// on several shapes is in the op suite (`validate`).
final class OpenCLWinogradTests: XCTestCase {
  /// A frozen weight's transforms are kept and give what transforming at every call gives; new
  /// values frozen again are transformed again, into the same buffers (no allocation).
  func testFrozenWeightsKeepTheirTransformsUntilFrozenAgain() throws {
    let cl = try OpenCLFixture.backend()
    let g = ConvGeometry(batch: 2, inChannels: 8, height: 17, width: 13, outChannels: 9, kernel: 3, padding: 1)
    XCTAssert(cl.winogradPays(g, rows: g.outChannels, depth: g.inChannels, outH: g.outHeight, outW: g.outWidth))
    var rng = SeededRNG(seed: 78)
    let (x, dy) = (
      try cl.upload(rng.uniformArray(g.inputShape.reduce(1, *)), shape: g.inputShape),
      try cl.upload(rng.uniformArray(g.outputShape.reduce(1, *)), shape: g.outputShape)
    )
    func run(_ weight: Tensor) throws -> [Float] {
      let (y, dx) = (try cl.zeros(g.outputShape), try cl.zeros(g.inputShape))
      try cl.conv2dBackwardData(dx: dx, dy: dy, weight: weight, geometry: g, reluOutput: nil)
      try cl.conv2dForward(y: y, x: x, weight: weight, bias: nil, geometry: g, relu: false)
      return try cl.download(y) + cl.download(dx)
    }
    let (w1, w2) = (rng.uniformArray(g.weightShape.reduce(1, *)), rng.uniformArray(g.weightShape.reduce(1, *)))
    let want1 = try run(try cl.upload(w1, shape: g.weightShape))
    let want2 = try run(try cl.upload(w2, shape: g.weightShape))
    let frozen = try cl.upload(w1, shape: g.weightShape)
    cl.freeze(frozen)
    XCTAssertEqual(try run(frozen), want1, "first pass (transforms computed and kept)")
    XCTAssertEqual(try run(frozen), want1, "second pass (kept transforms)")
    let allocations = cl.memory.allocations
    try cl.write(w2, to: frozen)
    cl.freeze(frozen)
    XCTAssertEqual(try run(frozen), want2, "after a new freeze (transforms redone)")
    XCTAssertEqual(cl.memory.allocations - allocations, 2, "only run's own two outputs are allocated")
  }

  /// 3x3 stride-1 with padding at most 2, at least 8 channels each way and 32 output tiles; and
  /// only where the tunables ask for it.
  func testOnlyThreeByThreeStrideOneWithEnoughChannelsAndTilesRunsAsWinograd() throws {
    let cl = try OpenCLFixture.backend()
    func pays(_ g: ConvGeometry) -> Bool { cl.winogradPays(g, rows: g.outChannels, depth: g.inChannels, outH: g.outHeight, outW: g.outWidth) }
    XCTAssertEqual(cl.tunables.winograd != 0, !cl.tunables.isTiled, "on CPU devices, not yet on GPUs")
    guard cl.tunables.winograd != 0 else { throw XCTSkip("Winograd is off on \(cl.device.name) (GPU tunables)") }
    XCTAssert(pays(ConvGeometry(batch: 8, inChannels: 8, height: 8, width: 8, outChannels: 8, kernel: 3, padding: 1)))
    XCTAssertFalse(pays(ConvGeometry(batch: 8, inChannels: 8, height: 8, width: 8, outChannels: 8, kernel: 3, stride: 2, padding: 1)))
    XCTAssertFalse(pays(ConvGeometry(batch: 8, inChannels: 8, height: 8, width: 8, outChannels: 8, kernel: 3, padding: 3)))
    XCTAssertFalse(pays(ConvGeometry(batch: 8, inChannels: 8, height: 8, width: 8, outChannels: 8, kernel: 1)))
    XCTAssertFalse(pays(ConvGeometry(batch: 8, inChannels: 7, height: 8, width: 8, outChannels: 8, kernel: 3)))
    XCTAssertFalse(pays(ConvGeometry(batch: 8, inChannels: 8, height: 8, width: 8, outChannels: 7, kernel: 3)))
    // ResNet18's 4x4 stage: one tile per image.
    XCTAssertFalse(pays(ConvGeometry(batch: 16, inChannels: 512, height: 4, width: 4, outChannels: 512, kernel: 3, padding: 1)))
    XCTAssert(pays(ConvGeometry(batch: 32, inChannels: 512, height: 4, width: 4, outChannels: 512, kernel: 3, padding: 1)))
  }
}
