import GPU
import XCTest

@testable import Prune

final class CheckpointTests: XCTestCase {
  func testSaveLoadGivesTheSameLogitsAndMasks() throws {
    let dir = try temporaryDirectory(self)
    let cpu = CPUBackend()
    let model = try Architecture.smallcnn.build(backend: cpu, seed: 11)
    try Pruner.prune(model: model, criterion: .magnitude, locality: .local, sparsity: 0.5, seed: 1)
    let path = dir + "/m.safetensors"
    try Checkpoint.save(model, metadata: ["dataset": "fashion-mnist"], to: path)
    let (loaded, meta) = try Checkpoint.load(path: path, backend: cpu)
    XCTAssertEqual(meta["arch"], "smallcnn")
    XCTAssertEqual(meta["dataset"], "fashion-mnist")
    XCTAssertEqual(meta["format"], Checkpoint.formatVersion)
    let (x, _, _) = try BatchUploader(data: syntheticImages(count: 5, seed: 1), backend: cpu).upload(0..<5)
    XCTAssertEqual(try cpu.download(try model.forward(x)), try cpu.download(try loaded.forward(x)))
    XCTAssertEqual(try loaded.sparsity(), try model.sparsity())
    let names = try Safetensors.read(path: path).tensors.keys.sorted()
    XCTAssert(names.contains("conv1.weight_mask") && names.contains("fc3.bias") && !names.contains("fc3.bias_mask"))
  }

  /// Loading builds the model without random draws (every weight zero) and then assigns every
  /// parameter, so what loads is exactly what was saved, for every architecture.
  func testLoadingAssignsEveryParameterOfAnUninitialisedModel() throws {
    let dir = try temporaryDirectory(self)
    let cpu = CPUBackend()
    for arch in Architecture.allCases {
      let blank = try arch.build(backend: cpu, seed: 3, width: 0.125, initialize: false)
      XCTAssert(try blank.prunableParameters.allSatisfy { try cpu.download($0.value).allSatisfy { $0 == 0 } }, "\(arch)")
      let model = try randomized(arch, width: 0.125, seed: 3)
      try Checkpoint.save(model, metadata: [:], to: dir + "/\(arch).safetensors")
      let (loaded, _) = try Checkpoint.load(path: dir + "/\(arch).safetensors", backend: cpu)
      for p in model.parameters {
        XCTAssertEqual(try cpu.download(loaded.parameter(named: p.name)!.value), try cpu.download(p.value), "\(arch) \(p.name)")
      }
    }
  }

  func testWrongShapesAndMissingTensorsAreNamed() throws {
    let dir = try temporaryDirectory(self)
    let cpu = CPUBackend()
    var tensors = try Checkpoint.stateDict(of: try Architecture.smallcnn.build(backend: cpu, seed: 1))
    tensors["fc3.weight"] = HostTensor(shape: [5, 200], values: [Float](repeating: 0, count: 1000))
    tensors["conv9.weight"] = HostTensor(shape: [1], values: [0])
    tensors.removeValue(forKey: "fc2.bias")
    let path = dir + "/bad.safetensors"
    try Safetensors.write(SafetensorsFile(tensors: tensors, metadata: ["arch": "smallcnn"]), path: path)
    XCTAssertThrowsError(try Checkpoint.load(path: path, backend: cpu)) { error in
      let text = "\(error)"
      XCTAssert(
        text.contains(path) && text.contains("missing fc2.bias") && text.contains("fc3.weight has shape [5, 200]")
          && text.contains("unexpected tensor conv9.weight"), text)
    }
  }

  func testForeignFileNeedsAnArchitecture() throws {
    let dir = try temporaryDirectory(self)
    let cpu = CPUBackend()
    let path = dir + "/torch.safetensors"
    try Safetensors.write(
      SafetensorsFile(tensors: try Checkpoint.stateDict(of: try Architecture.smallcnn.build(backend: cpu, seed: 1)), metadata: [:]), path: path)
    XCTAssertThrowsError(try Checkpoint.load(path: path, backend: cpu)) { XCTAssert("\($0)".contains("--arch")) }
    XCTAssertNoThrow(try Checkpoint.load(path: path, backend: cpu, architecture: .smallcnn))
  }
}
