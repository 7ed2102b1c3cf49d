import XCTest

@testable import GPU
@testable import Prune

/// With batch norm folded, a residual block's forward and input gradient are per-image runs: on
/// the CPU backend depth first, with the same numbers as op by op, and the gradient of what the
/// forward computes.
final class PerImageBlockTests: XCTestCase {
  func testFoldedResNet18RunsItsBlocksDepthFirstWithTheSameNumbers() throws {
    let (fast, opByOp) = (CPUBackend(workers: 2, depthFirstFloats: 160 << 10), CPUBackend(workers: 2, depthFirstFloats: 0))
    func outputs(_ be: CPUBackend) throws -> (logits: [Float], inputGradient: [Float]) {
      let model = try randomized(.resnet18, width: 0.125, seed: 51, backend: be)
      model.setTraining(false)
      try model.foldBatchNorm()
      return try evalOutputs(model, seed: 52)
    }
    let (got, want) = (try outputs(fast), try outputs(opByOp))
    XCTAssertGreaterThan(fast.depthFirstRuns, 0, "no block ran depth first")
    XCTAssertEqual(opByOp.depthFirstRuns, 0)
    XCTAssertEqual(got.logits, want.logits)
    XCTAssertEqual(got.inputGradient, want.inputGradient)
  }

  /// Finite differences through a folded block with a projection shortcut (strided conv1 and
  /// 1x1 shortcut on the direct kernels), evaluated depth first.
  func testFoldedBlockInputGradientMatchesFiniteDifferences() throws {
    let cpu = CPUBackend(workers: 2, depthFirstFloats: 160 << 10)
    var rng = SeededRNG(seed: 53)
    let block = try BasicBlock(name: "b", inChannels: 3, outChannels: 4, stride: 2, backend: cpu, rng: &rng)
    let model = Model(architecture: .resnet18, backend: cpu, layers: [block, AvgPool(kernel: 3, backend: cpu), Flatten()])
    for p in model.parameters where p.name.hasSuffix("bias") || p.name.hasSuffix("running_mean") {
      try cpu.write(rng.uniformArray(p.count, -0.3, 0.3), to: p.value)
    }
    model.setTraining(false)
    try model.foldBatchNorm()
    let shape = [3, 3, 6, 6]
    let x = rng.uniformArray(shape.reduce(1, *), 0, 1)
    let r = rng.uniformArray(12)
    let loss = weightedLogits(model, shape: shape, weights: r)
    _ = try model.forward(try cpu.upload(x, shape: shape))
    let dx = try XCTUnwrap(try model.backward(try cpu.upload(r, shape: [3, 4]), parameterGradients: false, inputGradient: true))
    XCTAssertEqual(cpu.depthFirstRuns, 2, "the forward and the input gradient, each one run")
    assertClose(try cpu.download(dx), try centralDifferences(x, h: 1e-3, loss), atol: 3e-3, rtol: 3e-2, "folded block dx")
  }
}
