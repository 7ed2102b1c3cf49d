import Foundation
import GPU
import XCTest

@testable import Prune

/// The named methods (HYDRA, HARP, R-ADMM, LAMP) on small models: exact sparsity, what each
/// phase may and may not change, the method's own claim, and agreement of the backends.
final class PruningMethodTests: XCTestCase {
  /// A quick adversarial phase: batch 16, PGD-2.
  func phase(epochs: Int, lr: Float, seed: UInt64 = 3) -> TrainConfig {
    TrainConfig(
      epochs: epochs, batchSize: 16, sgd: SGDHyper(learningRate: lr, momentum: 0.9, weightDecay: 5e-4),
      attack: PGDConfig(eps: 0.1, alpha: 0.05, steps: 2), seed: seed)
  }

  func context(_ model: Model, sparsity: Double, epochs: Int, lr: Float, data: LabeledImages) -> PruningContext {
    PruningContext(
      model: model, sparsity: sparsity, seed: 1, training: phase(epochs: epochs, lr: lr), data: data, progress: SilentProgress())
  }

  func images(for arch: Architecture, count: Int, seed: UInt64) -> LabeledImages {
    guard arch.inputShape[0] == 3 else { return syntheticImages(count: count, seed: seed) }
    var rng = SeededRNG(seed: seed)
    return LabeledImages(
      images: rng.uniformArray(count * 3 * 32 * 32, 0, 1), labels: (0..<count).map { _ in Int(rng.next() % 10) }, channels: 3, height: 32,
      width: 32, classCount: 10)
  }

  func host(_ model: Model, _ tensors: [Parameter]) throws -> [[Float]] { try tensors.map { try model.backend.download($0.value) } }

  func kept(_ model: Model) throws -> [Int] { try model.layerSparsity().map(\.kept) }

  func testHYDRATrainsScoresNotWeightsThenFineTunesWeightsNotScores() throws {
    let cpu = CPUBackend()
    let model = try responsiveSmallCNN(backend: cpu, seed: 5)
    let data = syntheticImages(count: 64, seed: 1)
    let weightsBefore = try host(model, model.prunableParameters)
    let outcome = try HYDRA().prune(context(model, sparsity: 0.8, epochs: 1, lr: 0.1, data: data))
    XCTAssertGreaterThan(Double(outcome.details["score_change"]!)!, 0, "scores moved during score training")
    let sizes = model.prunableParameters.map(\.count)
    XCTAssertEqual(try kept(model), RateAllocation.uniformKeep(sizes, sparsity: 0.8), "the same share of every layer (local)")
    for (p, before) in zip(model.prunableParameters, weightsBefore) {
      let mask = try cpu.download(model.mask(of: p)!)
      XCTAssertEqual(try cpu.download(p.value), zip(before, mask).map { $0 * $1 }, "\(p.name): weights frozen while scores train")
    }
    // Fine-tuning: scores frozen, kept weights move, pruned ones stay zero.
    let scores = try model.prunableParameters.map { try cpu.download(model.pruning.scores[$0.name]!.value) }
    let tuned = try host(model, model.prunableParameters)
    _ = try Trainer(model: model, config: phase(epochs: 1, lr: 0.01)).train(data: data, progress: SilentProgress())
    XCTAssertEqual(try model.prunableParameters.map { try cpu.download(model.pruning.scores[$0.name]!.value) }, scores, "scores frozen")
    XCTAssertNotEqual(try host(model, model.prunableParameters), tuned, "weights fine-tuned")
    for p in model.prunableParameters {
      let (w, m) = (try cpu.download(p.value), try cpu.download(model.mask(of: p)!))
      XCTAssert(zip(w, m).allSatisfy { $1 == 1 || $0 == 0 }, "\(p.name): a pruned weight revived")
    }
  }

  /// On real images the penalty keeps the learned overall rate within the budget (never more than
  /// 1 % above it) while the layers' rates move apart; the final masks meet it exactly.
  func testHARPLearnsLayerRatesAndMeetsItsTarget() throws {
    let cpu = CPUBackend()
    let data = try DatasetName.fashionMNIST.load(directory: try FashionMNISTFixture.directory(), train: true, limit: 256)
    let model = try responsiveSmallCNN(backend: cpu, seed: 6)
    var natural = phase(epochs: 1, lr: 0.05)
    natural.attack = nil
    _ = try Trainer(model: model, config: natural).train(data: data, progress: SilentProgress())
    let outcome = try HARP(gamma: 1, start: .uniform).prune(context(model, sparsity: 0.9, epochs: 2, lr: 0.1, data: data))
    let learned = Double(outcome.details["learned_keep"]!)!
    XCTAssertLessThanOrEqual(learned, 0.1 * 1.01, "the learned overall keep rate stays within the budget")
    XCTAssertGreaterThan(learned, 0.05, "and does not collapse")
    let rates = outcome.details["layer_keep"]!.split(separator: ",").map { Double($0)! }
    XCTAssertGreaterThan(rates.max()! - rates.min()!, 0.02, "layer rates moved apart from the uniform start: \(rates)")
    let (total, keptCount) = try model.prunableCounts()
    XCTAssertEqual(keptCount, Int((0.1 * Double(total)).rounded()), "exactly the target after scaling")
  }

  func testHARPScalingKeepsTheShapeAndHitsTheCount() {
    let counts = HARP.scaled([0.5, 0.05, 0.2], sizes: [100, 1000, 10], target: 0.1)
    XCTAssertEqual(counts.reduce(0, +), 111)
    XCTAssertGreaterThan(Double(counts[0]) / 100, Double(counts[1]) / 1000)
    XCTAssertEqual(HARP.scaled([1, 1e-6], sizes: [10, 10], target: 0.55), [10, 1], "capped at 1, at least one a layer")
  }

  func testRADMMPullsWeightsTowardTheSparseSetThenPrunesExactly() throws {
    let cpu = CPUBackend()
    let model = try responsiveSmallCNN(backend: cpu, seed: 7)
    let method = try RADMM(rho: 0.5, period: 2)
    let outcome = try method.prune(context(model, sparsity: 0.75, epochs: 2, lr: 0.05, data: syntheticImages(count: 64, seed: 3)))
    let start = Double(outcome.details["w_minus_z_start"]!)!
    let end = Double(outcome.details["w_minus_z_end"]!)!
    XCTAssertLessThan(end, start, "||W - Z|| shrinks over the ADMM iterations")
    XCTAssertEqual(outcome.details["updates"], "4")
    XCTAssertEqual(try kept(model), RateAllocation.uniformKeep(model.prunableParameters.map(\.count), sparsity: 0.75))
    XCTAssertNotNil(model.pruning.auxiliary(.admmZ, for: "conv1.weight"))
  }

  /// The structured variants (HYDRA filters, HARP channels, R-ADMM filters) remove whole channels
  /// by channel group, at the method's rates, and the compact model computes the same logits.
  func testStructuredVariantsRemoveWholeChannelsThatCompactAway() throws {
    for (arch, width) in [(Architecture.smallcnn, 0.25), (.resnet18, 0.125)] {
      for (name, structure) in [("hydra", Structure.filters), ("harp", .channels), ("radmm", .filters)] {
        let model = try arch.build(backend: CPUBackend(), seed: 2, width: width)
        let method = try PruningMethods.make(method: name, criterion: .lwm, locality: nil, structure: structure, options: [:])
        let scoresBefore = try model.prunableParameters.map { try model.backend.download($0.value) }
        let outcome = try method.prune(context(model, sparsity: 0.5, epochs: 1, lr: 0.05, data: images(for: arch, count: 8, seed: 4)))
        let groups = try XCTUnwrap(outcome.groups, "\(arch) \(name)")
        let channels = groups.reduce(0) { $0 + $1.channels }
        let kept = groups.reduce(0) { $0 + $1.kept }
        if name == "harp" {
          XCTAssertEqual(kept, channels / 2, accuracy: 1, "\(arch) harp: the channel target exactly")
        } else {
          XCTAssertEqual(groups.map(\.kept), groups.map { RateAllocation.uniformKeep([$0.channels], sparsity: 0.5)[0] }, "\(arch) \(name): local")
        }
        if name != "radmm" {
          // Weights stay frozen during score training (the removed channels are zeroed at the end).
          for (p, before) in zip(model.prunableParameters, scoresBefore) {
            let w = try model.backend.download(p.value)
            XCTAssert(zip(w, before).allSatisfy { $0 == $1 || $0 == 0 }, "\(arch) \(name) \(p.name) changed")
          }
        }
        let logits = try evalLogits(model, seed: 9)
        let compacted = try Compaction.compact(model)
        let compact = try arch.build(backend: CPUBackend(), seed: 0, width: width, channels: compacted.channels)
        try Checkpoint.assign(compacted.tensors, to: compact, path: "compact")
        XCTAssertLessThan(compact.parameterCount, model.parameterCount)
        assertClose(try evalLogits(compact, seed: 9), logits, atol: 1e-4, rtol: 1e-4, "\(arch) \(name) compact logits")
      }
    }
  }

  func testLAMPKeepsEveryLayerAliveWithItsOwnRate() throws {
    let model = try randomized(.smallcnn, width: 1, seed: 4)
    let method = try PruningMethods.make(method: "lamp", criterion: .lwm, locality: nil, structure: .unstructured, options: [:])
    _ = try method.prune(
      PruningContext(model: model, sparsity: 0.99, seed: 1, training: phase(epochs: 0, lr: 0.1), data: nil, progress: SilentProgress()))
    let layers = try model.layerSparsity()
    XCTAssert(layers.allSatisfy { $0.kept >= 1 }, "no layer emptied")
    let rates = layers.map(\.sparsity)
    XCTAssertGreaterThan(rates.max()! - rates.min()!, 0.1, "LAMP's per-layer rates differ from uniform: \(rates)")
    let (total, keptCount) = try model.prunableCounts()
    XCTAssertEqual(total - keptCount, Int((0.99 * Double(total)).rounded()))
  }

  func testEveryMethodRunsOnEveryArchitecture() throws {
    for (arch, width) in [(Architecture.smallcnn, 0.25), (.resnet18, 0.0625), (.vgg16, 0.0625)] {
      for name in ["hydra", "harp", "radmm", "lamp"] {
        let model = try arch.build(backend: CPUBackend(), seed: 1, width: width)
        let method = try PruningMethods.make(method: name, criterion: .lwm, locality: nil, structure: .unstructured, options: [:])
        _ = try method.prune(context(model, sparsity: 0.9, epochs: 1, lr: 0.1, data: images(for: arch, count: 4, seed: 5)))
        let (total, keptCount) = try model.prunableCounts()
        XCTAssertEqual(
          Double(total - keptCount) / Double(total), 0.9, accuracy: Double(model.prunableParameters.count) / Double(total), "\(arch) \(name)")
      }
    }
  }

  /// A few steps of each trained method from the same start on OpenCL and the CPU reference.
  func testTrainedMethodsAgreeOnOpenCL() throws {
    let gpu = try OpenCLFixture.backend()
    let data = syntheticImages(count: 32, seed: 8)
    for name in ["hydra", "harp", "radmm"] {
      var results: [[[Float]]] = []
      var masks: [[Float]] = []
      for backend in [CPUBackend.reference() as Backend, gpu] {
        let model = try responsiveSmallCNN(backend: backend, seed: 9)
        let options = name == "radmm" ? ["rho": "0.1", "admm-period": "1"] : [:]
        let method = try PruningMethods.make(method: name, criterion: .lwm, locality: nil, structure: .unstructured, options: options)
        _ = try method.prune(context(model, sparsity: 0.8, epochs: 1, lr: name == "radmm" ? 0.01 : 0.1, data: data))
        results.append(try host(model, model.prunableParameters))
        masks.append(try model.prunableParameters.flatMap { try backend.download(model.mask(of: $0)!) })
      }
      let differing = zip(masks[0], masks[1]).filter { $0 != $1 }.count
      XCTAssertLessThanOrEqual(Double(differing) / Double(masks[0].count), 0.002, "\(name): masks agree (\(differing) differ)")
      let agree = zip(masks[0], masks[1]).map { $0 == $1 ? Float(1) : 0 }
      var offset = 0
      for (l, (a, b)) in zip(results[0], results[1]).enumerated() {
        let m = Array(agree[offset..<(offset + a.count)])
        offset += a.count
        assertClose(zip(b, m).map { $0 * $1 }, zip(a, m).map { $0 * $1 }, atol: 1e-4, rtol: 1e-3, "\(name) layer \(l)")
      }
    }
  }

  func testScoresAndADMMSlotsTravelInCheckpointsAndExportsDropThem() throws {
    let cpu = CPUBackend()
    let model = try responsiveSmallCNN(backend: cpu, seed: 10)
    let w = model.parameter(named: "conv2.weight")!
    try model.pruning.setScores(for: w, values: (0..<w.count).map { Float($0) })
    model.pruning.setAuxiliary(.admmZ, try cpu.upload([Float](repeating: 2, count: w.count), shape: w.shape), for: w.name)
    let state = try Checkpoint.stateDict(of: model)
    XCTAssertEqual(state["conv2.weight_scores"]?.values.last, Float(w.count - 1))
    XCTAssertEqual(state["conv2.weight_admm_z"]?.values.first, 2)
    let loaded = try responsiveSmallCNN(backend: cpu, seed: 11)
    try Checkpoint.assign(state, to: loaded, path: "roundtrip")
    XCTAssertEqual(try cpu.download(loaded.pruning.scores["conv2.weight"]!.value), try cpu.download(model.pruning.scores["conv2.weight"]!.value))
    XCTAssertNotNil(loaded.pruning.auxiliary(.admmZ, for: "conv2.weight"))
    let plain = try Checkpoint.stateDict(of: model, pruning: false)
    XCTAssertNil(plain.keys.first { $0.hasSuffix("_scores") || $0.hasSuffix("_admm_z") })
    var bad = state
    bad["fc1.bias_scores"] = HostTensor(shape: [256], values: [Float](repeating: 0, count: 256))
    XCTAssertThrowsError(try Checkpoint.assign(bad, to: loaded, path: "bad.safetensors")) { error in
      XCTAssert("\(error)".contains("fc1.bias_scores"), "\(error)")
    }
  }

  func testASparsityTheStructureCannotReachIsRefused() throws {
    let model = try Architecture.smallcnn.build(backend: CPUBackend(), seed: 1, width: 0.25)
    XCTAssertNoThrow(try PruneJob.checkReachable(0.99, structure: .unstructured, model: model))
    XCTAssertThrowsError(try PruneJob.checkReachable(0.99999, structure: .unstructured, model: model)) { XCTAssert("\($0)".contains("--sparsity")) }
    // SmallCNN at width 0.25 has 4 conv groups of 8 or 16 channels (48 in all): 0.95 keeps 2.
    XCTAssertThrowsError(try PruneJob.checkReachable(0.95, structure: .filters, model: model)) { XCTAssert("\($0)".contains("channel groups")) }
    XCTAssertNoThrow(try PruneJob.checkReachable(0.9, structure: .filters, model: model))
  }

  func testMeaninglessCombinationsAreRefusedWithTheReason() {
    func refusal(
      _ method: String?, criterion: Criterion = .lwm, locality: Locality? = nil, structure: Structure = .unstructured,
      _ options: [String: String] = [:]
    ) -> String {
      do {
        _ = try PruningMethods.make(method: method, criterion: criterion, locality: locality, structure: structure, options: options)
        return "accepted"
      } catch { return "\(error)" }
    }
    XCTAssert(refusal("obs").contains("--method"))
    XCTAssert(refusal("hydra", structure: .kernels).contains("--structure"))
    XCTAssert(refusal("harp", structure: .channels, ["harp-start": "lamp"]).contains("--harp-start"))
    XCTAssert(refusal("lamp", structure: .filters).contains("--structure"))
    XCTAssert(refusal("hydra", locality: .global).contains("--locality"))
    XCTAssert(refusal("harp", ["gamma": "lots"]).contains("--gamma"))
    XCTAssert(refusal("hydra", ["rho": "0.1"]).contains("radmm"))
    XCTAssert(refusal(nil, criterion: .lamp, locality: .local).contains("lamp"))
    XCTAssert(refusal(nil, criterion: .lamp, structure: .filters).contains("lamp"))
    XCTAssert(refusal(nil, criterion: .lis).contains("hydra"))
    XCTAssert(refusal("radmm", ["admm-period": "2.5"]).contains("--admm-period"))
    XCTAssertEqual(refusal("radmm", structure: .filters, ["rho": "0.01"]), "accepted")
  }
}
