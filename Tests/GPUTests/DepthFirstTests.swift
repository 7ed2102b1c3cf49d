import XCTest

@testable import GPU

/// `runPerImage`: the CPU backend's depth-first runs (slices of images through every step) give
/// exactly what the same steps give op by op (within rounding where OpenBLAS computes the
/// products), and the reference's results within rounding
/// (`OpSuite`'s residual_block cases, which OpenCL also runs, compare the default slices).
final class DepthFirstTests: XCTestCase {
  /// Identity blocks (ResNet18's compact first stage at 16 channels, narrower ones, a 4x4 plane
  /// of one tile per image, 72 channels: Winograd products on OpenBLAS past the small GEMM's 64),
  /// projected ones with a stride-2 conv1 (direct kernels) and a 1x1 shortcut, and one at stride 1
  /// (its shortcut on im2col + OpenBLAS); odd batches over two workers.
  static let shapes = [
    (3, 16, 16, 32, 1), (5, 6, 6, 8, 1), (5, 4, 8, 10, 2), (4, 16, 32, 16, 2), (7, 8, 8, 4, 1), (3, 72, 72, 6, 1),
    (5, 8, 12, 10, 1),
  ].map { ResidualBlockRuns.Shape(batch: $0.0, inChannels: $0.1, channels: $0.2, size: $0.3, stride: $0.4) }

  func testDepthFirstRunsMatchTheSameStepsOpByOp() throws {
    let be = CPUBackend(workers: 2, depthFirstFloats: 1 << 24)
    // One and two images per slice (the last one short), and a worker's whole share at once.
    for slice in [1, 2, nil] {
      for (i, shape) in Self.shapes.enumerated() {
        let what = "\(shape) in slices of \(slice.map(String.init) ?? "a worker's share")"
        var rng = SeededRNG(seed: UInt64(60 + i))
        let values = shape.values(&rng)
        let (runs, opByOp) = (try ResidualBlockRuns(be, shape, values: values), try ResidualBlockRuns(be, shape, values: values))
        let plans = [be.depthFirstPlan(runs.forward, slice: slice), be.depthFirstPlan(runs.backward, slice: slice)]
        XCTAssertEqual(plans.map { $0?.slice }, Array(repeating: slice ?? (shape.batch + 1) / 2, count: 2), what)
        try be.runPerImage(runs.forward, slice: slice)
        try be.runPerImage(runs.backward, slice: slice)
        try be.runStepByStep(opByOp.forward)
        try be.runStepByStep(opByOp.backward)
        for (name, (a, b)) in zip(["conv1 + ReLU", "block output", "input gradient"], zip(runs.outputs, opByOp.outputs)) {
          let got = try be.download(a)
          XCTAssertFalse(got.contains { $0.isNaN }, "\(what): \(name) has unwritten values")
          // OpenBLAS (the 72-channel products) may round a product differently with its width.
          if shape.channels > 64 {
            assertClose(got, try be.download(b), atol: 1e-5, rtol: 1e-5, "\(what): \(name)")
          } else {
            XCTAssertEqual(got, try be.download(b), "\(what): \(name)")
          }
        }
      }
    }
  }

  func testDepthFirstRunsMatchTheReference() throws {
    for (i, shape) in Self.shapes.enumerated() {
      var rng = SeededRNG(seed: UInt64(70 + i))
      let values = shape.values(&rng)
      func run(_ be: Backend) throws -> [[Float]] {
        let runs = try ResidualBlockRuns(be, shape, values: values)
        try be.runPerImage(runs.forward)
        try be.runPerImage(runs.backward)
        return try runs.outputs.map(be.download)
      }
      let fast = CPUBackend(workers: 2, depthFirstFloats: 160 << 10)
      for (name, (a, b)) in zip(["conv1 + ReLU", "block output", "input gradient"], zip(try run(fast), try run(CPUBackend.reference()))) {
        assertClose(a, b, atol: 2e-4, rtol: 1e-3, "\(shape): \(name)")
      }
      XCTAssertEqual(fast.depthFirstRuns, 2, "\(shape): runs depth first")
    }
  }

  /// Op by op where depth first would not pay or could not share its buffers: runs off, weights
  /// not frozen, weights large against a slice (128 channels at 4x4 or 16x16), one image, one
  /// image's working set past the budget (64 channels at 32x32). Winograd slices
  /// take at least 16 tiles. (The budget of a 1 MiB L2, whatever this host's is.)
  func testThePlanGoesOpByOpWhereDepthFirstWouldNotPay() throws {
    let be = CPUBackend(workers: 2, depthFirstFloats: 160 << 10)
    func runs(_ batch: Int, _ channels: Int, _ size: Int) throws -> ResidualBlockRuns {
      let shape = ResidualBlockRuns.Shape(batch: batch, inChannels: channels, channels: channels, size: size, stride: 1)
      var rng = SeededRNG(seed: 90)
      return try ResidualBlockRuns(be, shape, values: shape.values(&rng))
    }
    let narrow = try runs(8, 16, 32)
    XCTAssertEqual(be.depthFirstPlan(narrow.forward)?.slice, 1, "a 32x32 plane's 64 tiles fill a product")
    XCTAssertNil(CPUBackend(depthFirstFloats: 0).depthFirstPlan(narrow.forward))
    XCTAssertNil(be.depthFirstPlan(try runs(32, 128, 4).forward), "1.2 Mi floats of weights against 0.3 Mi per slice")
    XCTAssertEqual(be.depthFirstPlan(try runs(32, 64, 8).forward)?.slice, 4, "an 8x8 plane has 4 tiles: 4 images make 16")
    XCTAssertNil(be.depthFirstPlan(try runs(1, 8, 8).forward), "one image")
    // The dense ResNet18's first two stages (the masked model the compact one is raced against).
    XCTAssertNil(be.depthFirstPlan(try runs(4, 64, 32).forward), "one image's working set past the budget")
    XCTAssertNil(be.depthFirstPlan(try runs(8, 128, 16).forward), "weights against a one-image slice")
    var rng = SeededRNG(seed: 94)
    let g = ConvGeometry(batch: 4, inChannels: 4, height: 8, width: 8, outChannels: 4, kernel: 3, padding: 1)
    let (x, y) = (try be.upload(rng.uniformArray(1024), shape: g.inputShape), try be.zeros(g.outputShape))
    let changing = try be.upload(rng.uniformArray(144), shape: g.weightShape)
    let step = ImageStep.convForward(y: y, x: x, weight: changing, bias: nil, geometry: g, relu: false)
    XCTAssertNil(be.depthFirstPlan([step]), "a weight that is not frozen")
    try be.runPerImage([step])
    let want = try be.zeros(g.outputShape)
    try be.conv2dForward(y: want, x: x, weight: changing, bias: nil, geometry: g, relu: false)
    XCTAssertEqual(try be.download(y), try be.download(want))
  }
}
