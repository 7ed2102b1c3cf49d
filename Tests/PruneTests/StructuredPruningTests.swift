import Foundation
import GPU
import XCTest

@testable import Prune

final class StructuredPruningTests: XCTestCase {
  func testCompactModelComputesTheSameLogitsForEveryArchitecture() throws {
    for (arch, width) in [(Architecture.smallcnn, 0.25), (.resnet18, 0.125), (.vgg16, 0.125), (.vgg16Classic, 0.125)] {
      for locality in Locality.allCases {
        let model = try randomized(arch, width: width, seed: 3)
        let groups = try FilterPruner.prune(model: model, criterion: .magnitude, locality: locality, sparsity: 0.5, seed: 1)
        XCTAssertEqual(groups.map(\.name), arch.channelGroups().map(\.name))
        let channels = groups.reduce(0) { $0 + $1.channels }
        let removed = groups.reduce(0) { $0 + $1.channels - $1.kept }
        if locality == .global { XCTAssertEqual(removed, channels / 2, "\(arch)") }
        let before = try evalLogits(model, seed: 9)

        let outcome = try Compaction.compact(model)
        XCTAssertEqual(outcome.groups.map(\.kept), groups.map(\.kept), "\(arch) \(locality): compaction finds exactly the pruned channels")
        let compact = try arch.build(backend: CPUBackend(), seed: 0, width: width, channels: outcome.channels)
        try Checkpoint.assign(outcome.tensors, to: compact, path: "compact")
        XCTAssertLessThan(compact.parameterCount, model.parameterCount)
        XCTAssertLessThan(compact.macsPerImage, model.macsPerImage)
        XCTAssertEqual(compact.pruning.maskedNames, [], "no mask survives: nothing else was pruned")
        assertClose(try evalLogits(compact, seed: 9), before, atol: 1e-4, rtol: 1e-4, "\(arch) \(locality) compact logits")
      }
    }
  }

  func testLocalFilterPruningRemovesTheSameShareOfEveryGroup() throws {
    let model = try randomized(.vgg16, width: 0.25, seed: 5)
    for g in try FilterPruner.prune(model: model, criterion: .magnitude, locality: .local, sparsity: 0.75, seed: 1) {
      XCTAssertEqual(g.channels - g.kept, Int((0.75 * Double(g.channels)).rounded()), g.name)
    }
  }

  func testLowestMagnitudeFiltersGoAndRandomIsSeeded() throws {
    let cpu = CPUBackend()
    let model = try Architecture.smallcnn.build(backend: cpu, seed: 1, width: 0.25)
    let conv1 = model.parameter(named: "conv1.weight")!
    // Filter k of conv1 has every weight equal to k + 1: local pruning of half must remove 0...3.
    try cpu.write((0..<conv1.count).map { Float($0 / 9 + 1) }, to: conv1.value)
    try FilterPruner.prune(model: model, criterion: .magnitude, locality: .local, sparsity: 0.5, seed: 1)
    let mask = try cpu.download(model.mask(of: conv1)!)
    XCTAssertEqual((0..<8).map { mask[$0 * 9] }, [0, 0, 0, 0, 1, 1, 1, 1])
    XCTAssertEqual(try cpu.download(model.mask(of: model.parameter(named: "conv1.bias")!)!), [0, 0, 0, 0, 1, 1, 1, 1])

    func randomMasks(seed: UInt64) throws -> [Float] {
      let m = try Architecture.smallcnn.build(backend: cpu, seed: 1, width: 0.25)
      try FilterPruner.prune(model: m, criterion: .random, locality: .global, sparsity: 0.5, seed: seed)
      return try m.prunableParameters.compactMap(m.mask(of:)).flatMap(cpu.download)
    }
    XCTAssertEqual(try randomMasks(seed: 4), try randomMasks(seed: 4))
    XCTAssertNotEqual(try randomMasks(seed: 4), try randomMasks(seed: 5))
  }

  /// Fine-tuning after filter pruning keeps the removed channels at exactly zero (batch norm's
  /// scale and shift included), so the model stays compactable, and the checkpoint keeps it so.
  func testFineTuningKeepsRemovedChannelsDeadThroughACheckpoint() throws {
    let cpu = CPUBackend()
    let model = try responsiveSmallCNN(backend: cpu, seed: 2)
    let groups = try FilterPruner.prune(model: model, criterion: .magnitude, locality: .global, sparsity: 0.5, seed: 1)
    let config = TrainConfig(
      epochs: 1, batchSize: 16, sgd: SGDHyper(learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4),
      attack: PGDConfig(eps: 0.1, alpha: 0.025, steps: 2), seed: 1)
    _ = try Trainer(model: model, config: config).train(data: syntheticImages(count: 32, seed: 3), progress: SilentProgress())
    let dir = try temporaryDirectory(self)
    try Checkpoint.save(model, metadata: [:], to: dir + "/f.safetensors")
    let (loaded, _) = try Checkpoint.load(path: dir + "/f.safetensors", backend: cpu)
    XCTAssertEqual(try Compaction.compact(loaded).groups.map(\.kept), groups.map(\.kept))
  }

  func testResNetFineTunedWithBatchNormStaysCompactable() throws {
    let cpu = CPUBackend()
    let model = try randomized(.resnet18, width: 0.125, seed: 4)
    let groups = try FilterPruner.prune(model: model, criterion: .magnitude, locality: .global, sparsity: 0.5, seed: 1)
    var rng = SeededRNG(seed: 6)
    let data = LabeledImages(
      images: rng.uniformArray(16 * 3072, 0, 1), labels: (0..<16).map { $0 % 10 }, channels: 3, height: 32, width: 32, classCount: 10)
    let config = TrainConfig(
      epochs: 1, batchSize: 8, sgd: SGDHyper(learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4),
      attack: PGDConfig(eps: 0.03, alpha: 0.01, steps: 1), seed: 1)
    _ = try Trainer(model: model, config: config).train(data: data, progress: SilentProgress())
    let outcome = try Compaction.compact(model)
    XCTAssertEqual(outcome.groups.map(\.kept), groups.map(\.kept))
    let compact = try Architecture.resnet18.build(backend: cpu, seed: 0, width: 0.125, channels: outcome.channels)
    try Checkpoint.assign(outcome.tensors, to: compact, path: "compact")
    assertClose(try evalLogits(compact, seed: 2), try evalLogits(model, seed: 2), atol: 1e-4, rtol: 1e-4, "fine-tuned ResNet18")
  }

  func testUnstructuredMasksOnTopAreCutAndKept() throws {
    let model = try randomized(.smallcnn, width: 0.25, seed: 8)
    try FilterPruner.prune(model: model, criterion: .magnitude, locality: .local, sparsity: 0.5, seed: 1)
    try Pruner.prune(model: model, criterion: .magnitude, locality: .global, sparsity: 0.7, seed: 1)
    let outcome = try Compaction.compact(model)
    let compact = try Architecture.smallcnn.build(backend: CPUBackend(), seed: 0, width: 0.25, channels: outcome.channels)
    try Checkpoint.assign(outcome.tensors, to: compact, path: "compact")
    XCTAssertNotNil(compact.mask(of: compact.parameter(named: "fc1.weight")!))
    XCTAssertNil(compact.mask(of: compact.parameter(named: "conv1.bias")!), "bias masks are all ones once the channels are gone")
    // Kept weights that read a removed channel go with it; the others are all still there.
    XCTAssertLessThan(try compact.prunableCounts().kept, try model.prunableCounts().kept)
    XCTAssertEqual(try compact.prunableCounts().kept, try compact.nonzeroWeights())
    assertClose(try evalLogits(compact, seed: 1), try evalLogits(model, seed: 1), atol: 1e-4, rtol: 1e-4, "compact + unstructured")
  }

  /// Unstructured pruning that empties a filter leaves a constant plane (ReLU of the bias, through
  /// the batch norm): where every reader is unpadded it folds into their biases and the channel
  /// goes, and each removal can empty filters downstream (SmallCNN); padded readers keep it (a
  /// ResNet block's conv2, VGG's inner convs), VGG's classifier takes its last stage's.
  func testEmptiedFiltersFoldIntoUnpaddedReadersAndGo() throws {
    let small = try randomized(.smallcnn, width: 0.25, seed: 12)
    try Pruner.prune(model: small, criterion: .magnitude, locality: .local, sparsity: 0.98, seed: 1)
    let before = try evalOutputs(small, seed: 4)
    let outcome = try Compaction.compact(small)
    for group in outcome.groups { XCTAssertLessThan(group.kept, group.channels, "\(group.name): emptied filters go \(outcome.groups)") }
    let compact = try Architecture.smallcnn.build(backend: CPUBackend(), seed: 0, width: 0.25, channels: outcome.channels)
    try Checkpoint.assign(outcome.tensors, to: compact, path: "compact")
    let after = try evalOutputs(compact, seed: 4)
    assertClose(after.logits, before.logits, atol: 1e-4, rtol: 1e-4, "SmallCNN 98 % compact logits")
    assertClose(after.inputGradient, before.inputGradient, atol: 1e-4, rtol: 1e-4, "SmallCNN 98 % compact input gradient")

    // Three filters emptied by masks in a padded reader's producer and in VGG's last conv.
    for (arch, conv, foldable) in [
      (Architecture.resnet18, "layer1.0.conv1", false), (.vgg16, "features.37", false), (.vgg16, "features.40", true),
      (.vgg16Classic, "features.40", true),
    ] {
      let model = try randomized(arch, width: 0.125, seed: 13)
      let weight = model.parameter(named: conv + ".weight")!
      let perFilter = weight.count / weight.shape[0]
      try model.applyMask((0..<weight.count).map { $0 / perFilter < 3 ? 0 : 1 }, to: weight)
      let before = try evalOutputs(model, seed: 5)
      let outcome = try Compaction.compact(model)
      let group = outcome.groups.first { $0.name == conv }
      XCTAssertNotNil(group, "\(arch) \(conv)")
      let removed = (group?.channels ?? 0) - (group?.kept ?? 0)
      XCTAssertEqual(removed, foldable ? 3 : 0, "\(arch) \(conv)")
      let compact = try arch.build(backend: CPUBackend(), seed: 0, width: 0.125, channels: outcome.channels)
      try Checkpoint.assign(outcome.tensors, to: compact, path: "compact")
      let after = try evalOutputs(compact, seed: 5)
      assertClose(after.logits, before.logits, atol: 1e-4, rtol: 1e-4, "\(arch) compact logits")
      assertClose(after.inputGradient, before.inputGradient, atol: 1e-4, rtol: 1e-4, "\(arch) compact input gradient")
    }
  }

  /// A compacted state dict saved without our metadata (from PyTorch) loads by its shapes.
  func testCompactStateDictWithoutMetadataLoadsByItsShapes() throws {
    let model = try randomized(.resnet18, width: 0.125, seed: 11)
    try FilterPruner.prune(model: model, criterion: .magnitude, locality: .local, sparsity: 0.5, seed: 1)
    let outcome = try Compaction.compact(model)
    let dir = try temporaryDirectory(self)
    try Safetensors.write(SafetensorsFile(tensors: outcome.tensors), path: dir + "/torch.safetensors")
    let (loaded, _) = try Checkpoint.load(path: dir + "/torch.safetensors", backend: CPUBackend(), architecture: .resnet18, width: 0.125)
    XCTAssertFalse(loaded.channels.isEmpty)
    for (group, count) in loaded.channels { XCTAssertEqual(count, outcome.channels[group], group) }
    assertClose(try evalLogits(loaded, seed: 3), try evalLogits(model, seed: 3), atol: 1e-4, rtol: 1e-4, "loaded by shapes")
  }

  func testChannelCountsTravelInTheCheckpointAndBadOnesAreNamed() throws {
    let cpu = CPUBackend()
    let model = try Architecture.vgg16.build(backend: cpu, seed: 0, width: 0.125, channels: ["features.0": 3, "features.40": 5])
    XCTAssertEqual(model.parameter(named: "features.0.weight")!.shape, [3, 3, 3, 3])
    XCTAssertEqual(model.parameter(named: "classifier.0.weight")!.shape, [32, 20])
    let dir = try temporaryDirectory(self)
    try Checkpoint.save(model, metadata: [:], to: dir + "/c.safetensors")
    XCTAssertEqual(try Checkpoint.load(path: dir + "/c.safetensors", backend: cpu).model.channels, model.channels)

    XCTAssertThrowsError(try Architecture.vgg16.build(backend: cpu, seed: 0, channels: ["features.2": 3])) {
      XCTAssert("\($0)".contains("features.2") && "\($0)".contains("no such channel group"), "\($0)")
    }
    var file = try Safetensors.read(path: dir + "/c.safetensors")
    file.metadata["channels"] = "features.0=zero"
    try Safetensors.write(file, path: dir + "/bad.safetensors")
    XCTAssertThrowsError(try Checkpoint.load(path: dir + "/bad.safetensors", backend: cpu)) {
      XCTAssert("\($0)".contains("bad.safetensors") && "\($0)".contains("features.0=zero"), "\($0)")
    }
  }
}

extension Model {
  func nonzeroWeights() throws -> Int {
    try prunableParameters.reduce(0) { $0 + (try backend.download($1.value).filter { $0 != 0 }.count) }
  }
}
