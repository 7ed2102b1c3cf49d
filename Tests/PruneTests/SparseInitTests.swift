import Foundation
import GPU
import XCTest

@testable import Prune

/// `--sparse-init scaled`: a sparse start rescaled to the dense fan-in variance keeps the dense
/// network's signal, where the references' unscaled start loses most of it on SmallCNN.
final class SparseInitTests: XCTestCase {
  func method(_ name: String, _ sparsity: Double, _ options: [String: String]) throws -> TrainingMethod {
    try TrainingMethods.make(method: name, sparsity: sparsity, locality: nil, structure: .unstructured, options: options)
  }

  func rms(_ x: [Float]) -> Float { (x.map { $0 * $0 }.reduce(0, +) / Float(max(1, x.count))).squareRoot() }

  /// Logit RMS of FlyingBird's sparse start at 90 %, relative to the dense network's.
  func flyingBirdSignal(_ options: [String: String]) throws -> Float {
    let dense = rms(try evalLogits(try responsiveSmallCNN(backend: CPUBackend(), seed: 6), seed: 9))
    let model = try responsiveSmallCNN(backend: CPUBackend(), seed: 6)
    _ = try method("flyingbird", 0.9, options).hooks(model: model, epochs: 1, batchesPerEpoch: 4, seed: 3, resuming: false)
    return rms(try evalLogits(model, seed: 9)) / dense
  }

  func testFlyingBirdsScaledStartKeepsTheDenseSignal() throws {
    let reference = try flyingBirdSignal([:])
    let scaled = try flyingBirdSignal(["sparse-init": "scaled"])
    XCTAssert(scaled > 0.5 && scaled < 2, "scaled: logits at \(scaled) of the dense network's")
    XCTAssert(reference < scaled / 3, "the unscaled start loses most of the signal (\(reference) vs \(scaled))")
  }

  /// RST's constants are `sqrt(2 / fan_in)`, divided by sqrt(keep share) when scaled.
  func testRSTScalesItsConstantsByTheKeepShare() throws {
    for (options, share) in [([:], Float(1)), (["sparse-init": "scaled"], Float(0.1))] {
      let model = try responsiveSmallCNN(backend: CPUBackend(), seed: 6)
      _ = try method("rst", 0.9, options).hooks(model: model, epochs: 1, batchesPerEpoch: 4, seed: 3, resuming: false)
      let keep = RateAllocation.uniformKeep(model.prunableParameters.map(\.count), sparsity: 0.9)
      for (p, k) in zip(model.prunableParameters, keep) {
        let fanIn = Float(p.count / p.shape[0])
        let layerShare = share == 1 ? 1 : Float(k) / Float(p.count)
        let want = (2 / (fanIn * layerShare)).squareRoot()
        XCTAssert(try model.backend.download(p.value).allSatisfy { abs(abs($0) - want) <= 1e-6 * want }, "\(p.name): \(options)")
      }
    }
  }

  func testLi20ScalesEachUnitsKeptInitialWeights() throws {
    let model = try responsiveSmallCNN(backend: CPUBackend(), seed: 8)
    let initial = try model.prunableParameters.map { try model.backend.download($0.value) }
    let li20 = try method("li20", 0.8, ["sparse-init": "scaled"])
    XCTAssert(li20.settings.hasSuffix("init=scaled"), li20.settings)
    try li20.prepare(
      model: model, data: syntheticImages(count: 32, seed: 8),
      config: TrainConfig(
        epochs: 1, batchSize: 16, sgd: SGDHyper(learningRate: 0.05, momentum: 0.9, weightDecay: 0),
        attack: PGDConfig(eps: 0.1, alpha: 0.05, steps: 1), seed: 8),
      progress: SilentProgress())
    for (p, w0) in zip(model.prunableParameters, initial) {
      let (w, m) = (try model.backend.download(p.value), try model.backend.download(model.mask(of: p)!))
      let fanIn = p.count / p.shape[0]
      for u in 0..<p.shape[0] {
        let row = u * fanIn..<(u + 1) * fanIn
        let kept = m[row].filter { $0 != 0 }.count
        for i in row {
          let want = m[i] == 0 ? 0 : w0[i] * (Float(fanIn) / Float(kept)).squareRoot()
          XCTAssertEqual(w[i], want, accuracy: 1e-6 * max(1, abs(want)), "\(p.name)[\(i)]")
        }
      }
    }
  }

  func testTheOptionBelongsToTheSparseStartMethods() throws {
    XCTAssertThrowsError(try method("gmp", 0.9, ["sparse-init": "scaled"])) { error in
      XCTAssert("\(error)".contains("is an option of --method flyingbird, rst, li20, not of gmp"), "\(error)")
    }
    XCTAssertThrowsError(try method("flyingbird", 0.9, ["sparse-init": "wide"])) { error in
      XCTAssert("\(error)".contains("expected dense or scaled"), "\(error)")
    }
    XCTAssertEqual(try method("rst", 0.9, [:]).settings, "rst s=0.9", "the reference default leaves the settings (and cell keys) as they were")
  }
}
