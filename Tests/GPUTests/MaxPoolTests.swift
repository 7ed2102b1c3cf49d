import XCTest

@testable import GPU

/// The CPU backend's vector max pooling (`CKernels/maxpool.c`) and OpenCL's two forms (rows of
/// vectors on CPU devices, one item per value with a GPU's tunables) against the reference's loop
/// over windows, bit for bit: ties and NaN pick the same winner, every dx value is written.
final class MaxPoolTests: XCTestCase {
  func testVectorPoolingMatchesTheReference() throws { try Self.checkAgainstReference() }

  func testOpenCLPoolingMatchesTheReference() throws {
    let cl = try OpenCLFixture.backend()
    let forms = [cl.tunables.isTiled ? CLTunables.cpu : cl.tunables, CLTunables.gpu]
    try Self.checkAgainstReference(try forms.map { try OpenCLBackend(device: cl.device, tunables: $0) })
  }

  static func checkAgainstReference(_ candidates: [any Backend] = [CPUBackend(), CPUBackend(workers: 2), CPUBackend(workers: 1)]) throws {
    // Row pairs of 1, 4, 12, 17, 20 (two chunks, the second short) and 32 (two whole chunks)
    // outputs; a batch large enough to be split over two workers.
    let shapes = [[1, 2, 2, 2], [2, 3, 4, 8], [3, 5, 24, 24], [2, 3, 4, 34], [2, 2, 8, 40], [2, 3, 6, 64], [8, 16, 24, 24]]
    let reference = CPUBackend.reference()
    for fast in candidates {
      for (i, shape) in shapes.enumerated() {
        var rng = SeededRNG(seed: UInt64(70 + i))
        let count = shape.reduce(1, *)
        // Quarter steps make ties; a few NaN, -0 and 0 test the order of the comparisons.
        var x = (0..<count).map { _ in (rng.uniform(-2, 2) * 4).rounded() / 4 }
        for k in stride(from: 3, to: count, by: 37) { x[k] = .nan }
        for k in stride(from: 5, to: count, by: 41) { x[k] = -0.0 }
        let pooled = [shape[0], shape[1], shape[2] / 2, shape[3] / 2]
        let dy = rng.uniformArray(pooled.reduce(1, *))
        func run(_ be: any Backend) throws -> ([UInt32], [UInt32]) {
          let (xt, dyt) = (try be.upload(x, shape: shape), try be.upload(dy, shape: pooled))
          let y = try be.zeros(pooled)
          let dx = try be.upload([Float](repeating: 7, count: count), shape: shape)
          try be.maxPool2x2Forward(y: y, x: xt)
          try be.maxPool2x2Backward(dx: dx, dy: dyt, x: xt)
          return (try be.download(y).map(\.bitPattern), try be.download(dx).map(\.bitPattern))
        }
        let (want, got) = (try run(reference), try run(fast))
        for (what, g, w) in [("forward", got.0, want.0), ("backward", got.1, want.1)] {
          let wrong = zip(g, w).enumerated().filter { $0.element.0 != $0.element.1 }.map(\.offset)
          XCTAssert(g.count == w.count && wrong.isEmpty, "\(what) \(shape) on \(fast): \(wrong.count) values differ, first at \(wrong.first ?? -1)")
        }
      }
    }
  }
}
