import GPU
import XCTest

@testable import Prune

/// Square's windowed evaluation gives the logits of the whole model, proposal after proposal
/// (its kept activations stay exact through accepted and rejected proposals), on both backends.
final class SquareWindowsTests: XCTestCase {
  func check(_ backend: Backend) throws {
    let model = try responsiveSmallCNN(backend: backend, seed: 11)
    model.setTraining(false)
    // A pruned conv2: windows compute with the masked weight too.
    let conv2 = model.parameter(named: "conv2.weight")!
    try model.applyMask((0..<conv2.count).map { $0 % 3 == 0 ? 0 : 1 }, to: conv2)
    let windows = try XCTUnwrap(WindowedForward(model: model))
    let (n, shape) = (3, [3, 1, 28, 28])
    var rng = SeededRNG(seed: 5)
    let x = try backend.upload(rng.uniformArray(shape.reduce(1, *), 0, 1), shape: shape)
    let best = try backend.zeros(shape)
    try backend.copy(from: x, to: best)
    let proposal = try backend.zeros(shape)
    let idList = [0, 5, 9]
    let ids = try backend.upload(idList.map(Float.init), shape: [n])
    let rows = try backend.upload([1, 0, 1], shape: [n])
    assertClose(try backend.download(try windows.reset(best)), try backend.download(try model.forward(best)), atol: 1e-5, rtol: 1e-5, "reset")
    // Squares from whole-image down to one pixel, at corners and edges (ids pick the places).
    for (step, side) in [27, 13, 7, 4, 2, 1, 1, 3].enumerated() {
      let seed = UInt64(100 + step)
      try backend.squareProposal(xNew: proposal, xBest: best, x: x, ids: ids, eps: 0.3, side: side, seed: seed)
      let corners = idList.map { SquareDraws.corner(id: $0, channels: 1, height: 28, width: 28, side: side, seed: seed) }
      let got = try backend.download(try windows.proposal(proposal, corners: corners, side: side))
      let want = try backend.download(try model.forward(proposal))
      assertClose(got, want, atol: 1e-4, rtol: 1e-4, "side \(side)")
      // Points 0 and 2 take the proposal, point 1 keeps its best.
      try backend.selectRows(destination: best, source: proposal, where: rows)
      try windows.accept(rows: rows)
    }
    // The kept activations are those of the best points.
    try backend.squareProposal(xNew: proposal, xBest: best, x: x, ids: ids, eps: 0.3, side: 2, seed: 999)
    let corners = idList.map { SquareDraws.corner(id: $0, channels: 1, height: 28, width: 28, side: 2, seed: 999) }
    let got = try backend.download(try windows.proposal(proposal, corners: corners, side: 2))
    assertClose(got, try backend.download(try model.forward(proposal)), atol: 1e-4, rtol: 1e-4, "after accepting")
  }

  func testWindowedLogitsEqualTheWholeModelOnTheCPU() throws { try check(CPUBackend()) }

  func testWindowedLogitsEqualTheWholeModelOnOpenCL() throws { try check(try OpenCLFixture.backend()) }

  /// The attack itself finds the same points either way.
  func testSquareFindsTheSamePointsWindowedOrNot() throws {
    let backend = CPUBackend()
    let model = try responsiveSmallCNN(backend: backend, seed: 3)
    model.setTraining(false)
    let batch = try selfLabelledBatch(model, count: 8, seed: 8)
    var outcomes: [AttackOutcome] = []
    for windowed in [true, false] {
      let square = SquareAttack(eps: 0.08, norm: .linf, queries: 150)
      square.windowed = windowed
      outcomes.append(try square.run(model: model, batch: batch, seed: 4))
    }
    XCTAssertEqual(outcomes[0].fooled, outcomes[1].fooled)
    XCTAssert(outcomes[0].fooled.contains(true) && outcomes[0].fooled.contains(false), "some points fooled, some not: \(outcomes[0].fooled)")
    assertClose(outcomes[0].adversarial, outcomes[1].adversarial, atol: 0, rtol: 0, "adversarial points")
  }
}
