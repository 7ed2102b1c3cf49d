import GPU
import XCTest

@testable import Prune

final class PruningTests: XCTestCase {
  func testGlobalAllocationHitsTheExactCountAndKeepsEveryLayerAlive() {
    var rng = SeededRNG(seed: 1)
    let scores = [rng.uniformArray(100, 0, 1), rng.uniformArray(10, 5, 6), rng.uniformArray(7, 0, 0.001)]
    let masks = MaskAllocation.masks(scores: scores, sparsity: 0.9, locality: .global)
    let removed = masks.flatMap { $0 }.filter { $0 == 0 }.count
    XCTAssertEqual(removed, Int((0.9 * 117).rounded()))
    XCTAssert(masks.allSatisfy { $0.contains(1) }, "a layer lost every weight")
    // Layer 2's scores are the lowest of all: only its last weight may survive.
    XCTAssertEqual(masks[2].filter { $0 == 1 }.count, 1)
    // Layer 1's are the highest: untouched.
    XCTAssertEqual(masks[1], [Float](repeating: 1, count: 10))
  }

  func testLocalAllocationPrunesEachLayerToTheSameRate() {
    var rng = SeededRNG(seed: 2)
    let scores = [rng.uniformArray(200, 0, 1), rng.uniformArray(50, 5, 6)]
    let masks = MaskAllocation.masks(scores: scores, sparsity: 0.75, locality: .local)
    XCTAssertEqual(masks[0].filter { $0 == 0 }.count, 150)
    XCTAssertEqual(masks[1].filter { $0 == 0 }.count, 38)  // round(37.5)
    // The removed weights are the lowest-scored ones.
    let threshold = zip(scores[0], masks[0]).filter { $1 == 1 }.map(\.0).min()!
    XCTAssert(zip(scores[0], masks[0]).allSatisfy { $1 == 1 || $0 <= threshold })
  }

  func testAlreadyPrunedWeightsGoFirst() {
    let masks = MaskAllocation.masks(scores: [[-.infinity, 5, -.infinity, 1]], sparsity: 0.5, locality: .global)
    XCTAssertEqual(masks[0], [0, 1, 0, 1])
  }

  func testMagnitudePruningOfSmallCNNThenMaskedFineTuneKeepsZeros() throws {
    let cpu = CPUBackend()
    let model = try responsiveSmallCNN(backend: cpu, seed: 7)
    let layers = try Pruner.prune(model: model, criterion: .magnitude, locality: .global, sparsity: 0.9, seed: 1)
    XCTAssertEqual(layers.map(\.name), ["conv1.weight", "conv2.weight", "conv3.weight", "conv4.weight", "fc1.weight", "fc2.weight", "fc3.weight"])
    let (total, kept) = try model.prunableCounts()
    XCTAssertEqual(total - kept, Int((0.9 * Double(total)).rounded()))
    // The largest weight of the model survives, the smallest does not.
    let all = try model.prunableParameters.flatMap { try cpu.download($0.value) }
    XCTAssertEqual(all.filter { $0 != 0 }.count, kept)
    let data = syntheticImages(count: 32, seed: 8)
    let config = TrainConfig(
      epochs: 1, batchSize: 16, sgd: SGDHyper(learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4),
      attack: PGDConfig(eps: 0.1, alpha: 0.025, steps: 2), seed: 1)
    _ = try Trainer(model: model, config: config).train(data: data, progress: SilentProgress())
    for p in model.prunableParameters {
      let (w, m, v) = (try cpu.download(p.value), try cpu.download(model.mask(of: p)!), try cpu.download(p.velocity))
      for i in 0..<w.count where m[i] == 0 {
        XCTAssertEqual(w[i], 0, "\(p.name)[\(i)] revived")
        XCTAssertEqual(v[i], 0, "\(p.name)[\(i)] has momentum")
      }
    }
    XCTAssertEqual(try model.sparsity(), Double(total - kept) / Double(total), accuracy: 1e-12)
  }

  func testRandomCriterionIsSeeded() throws {
    let cpu = CPUBackend()
    let a = try responsiveSmallCNN(backend: cpu, seed: 1)
    let b = try responsiveSmallCNN(backend: cpu, seed: 1)
    try Pruner.prune(model: a, criterion: .random, locality: .local, sparsity: 0.5, seed: 3)
    try Pruner.prune(model: b, criterion: .random, locality: .local, sparsity: 0.5, seed: 3)
    XCTAssertEqual(try cpu.download(a.mask(of: a.parameters[0])!), try cpu.download(b.mask(of: b.parameters[0])!))
  }

  func testSparsityOutsideRangeIsAUserError() throws {
    let model = try Architecture.smallcnn.build(backend: CPUBackend(), seed: 1)
    XCTAssertThrowsError(try Pruner.prune(model: model, criterion: .magnitude, locality: .global, sparsity: 1.0, seed: 1)) {
      XCTAssertEqual($0 as? UserError, .badValue(name: "--sparsity", value: "1.0", problem: "must be in [0, 1)"))
    }
  }
}
