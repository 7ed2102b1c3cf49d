import Foundation
import GPU
import XCTest

/// The OpenCL backend for parity tests, built once per test process.
///
/// With `ADVPRUNE_REQUIRE_OPENCL=1` (CI) a missing device fails the test; elsewhere it skips.
enum OpenCLFixture {
  static let shared = Result { try OpenCLBackend.first() }

  static func backend(file: StaticString = #filePath, line: UInt = #line) throws -> OpenCLBackend {
    switch shared {
    case .success(let backend): return backend
    case .failure(let error):
      if ProcessInfo.processInfo.environment["ADVPRUNE_REQUIRE_OPENCL"] == "1" {
        XCTFail("ADVPRUNE_REQUIRE_OPENCL=1 but OpenCL is unavailable: \(error)", file: file, line: line)
        throw error
      }
      throw XCTSkip("OpenCL unavailable (\(error)); set ADVPRUNE_REQUIRE_OPENCL=1 to make this a failure")
    }
  }
}

func assertClose(_ got: [Float], _ want: [Float], atol: Float, rtol: Float, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
  let report = ParityReport(reference: want, got: got, atol: atol, rtol: rtol)
  XCTAssert(report.passed, "\(what): \(report)", file: file, line: line)
}

/// A frozen weight's derived layouts (Winograd transforms, the direct kernels' rearrangements) on
/// the CPU backend are kept and give what deriving at every call gives, and a new freeze redoes them.
func assertFrozenWeightsKeepTheirLayouts(_ g: ConvGeometry, seed: UInt64, file: StaticString = #filePath, line: UInt = #line) throws {
  let be = CPUBackend()
  var rng = SeededRNG(seed: seed)
  let (x, dy) = (
    try be.upload(rng.uniformArray(g.inputShape.reduce(1, *)), shape: g.inputShape),
    try be.upload(rng.uniformArray(g.outputShape.reduce(1, *)), shape: g.outputShape)
  )
  let w = rng.uniformArray(g.weightShape.reduce(1, *))
  func run(_ weight: Tensor) throws -> [Float] {
    let (y, dx) = (try be.zeros(g.outputShape), try be.zeros(g.inputShape))
    try be.conv2dBackwardData(dx: dx, dy: dy, weight: weight, geometry: g)
    try be.conv2dForward(y: y, x: x, weight: weight, bias: nil, geometry: g)
    return try be.download(y) + be.download(dx)
  }
  let want = try run(try be.upload(w, shape: g.weightShape))
  let frozen = try be.upload(w, shape: g.weightShape)
  be.freeze(frozen)
  XCTAssertEqual(try run(frozen), want, "first pass (layouts derived and kept)", file: file, line: line)
  XCTAssertEqual(try run(frozen), want, "second pass (kept layouts)", file: file, line: line)
  let changed = w.map { 1 - $0 }
  try be.write(changed, to: frozen)
  be.freeze(frozen)
  XCTAssertEqual(try run(frozen), try run(try be.upload(changed, shape: g.weightShape)), "after a new freeze", file: file, line: line)
}

/// Seeded random input, weight, bias and output gradient of a convolution, drawn in that order.
func randomConvOperands(_ g: ConvGeometry, _ rng: inout SeededRNG) -> (x: [Float], w: [Float], b: [Float], dy: [Float]) {
  (
    rng.uniformArray(g.inputShape.reduce(1, *)), rng.uniformArray(g.weightShape.reduce(1, *)), rng.uniformArray(g.outChannels),
    rng.uniformArray(g.outputShape.reduce(1, *))
  )
}
