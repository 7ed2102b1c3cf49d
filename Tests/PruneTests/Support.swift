import Foundation
import GPU
import XCTest

@testable import Prune

/// The OpenCL backend for parity tests; fails instead of skipping under ADVPRUNE_REQUIRE_OPENCL=1.
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
      throw XCTSkip("OpenCL unavailable (\(error))")
    }
  }
}

/// Fashion-MNIST from Debian's package; fails instead of skipping under ADVPRUNE_REQUIRE_DATA=1.
enum FashionMNISTFixture {
  static func directory(file: StaticString = #filePath, line: UInt = #line) throws -> String {
    let dir = DatasetName.fashionMNIST.defaultDirectory
    if FileManager.default.fileExists(atPath: dir + "/train-images-idx3-ubyte.gz") { return dir }
    if ProcessInfo.processInfo.environment["ADVPRUNE_REQUIRE_DATA"] == "1" {
      XCTFail("ADVPRUNE_REQUIRE_DATA=1 but \(dir) is missing (apt-get install dataset-fashion-mnist)", file: file, line: line)
    }
    throw XCTSkip("Fashion-MNIST not installed at \(dir)")
  }
}

/// A scratch directory removed at the end of the test.
func temporaryDirectory(_ test: XCTestCase) throws -> String {
  let dir = FileManager.default.temporaryDirectory.appendingPathComponent("advprune-test-\(UUID().uuidString)").path
  try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
  test.addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
  return dir
}

/// Random labelled images shaped like Fashion-MNIST, for tests that need no real data.
func syntheticImages(count: Int, seed: UInt64) -> LabeledImages {
  var rng = SeededRNG(seed: seed)
  return LabeledImages(
    images: rng.uniformArray(count * 784, 0, 1), labels: (0..<count).map { _ in Int(rng.next() % 10) },
    channels: 1, height: 28, width: 28, classCount: 10)
}

func assertClose(_ got: [Float], _ want: [Float], atol: Float, rtol: Float, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
  let report = ParityReport(reference: want, got: got, atol: atol, rtol: rtol)
  XCTAssert(report.passed, "\(what): \(report)", file: file, line: line)
}

/// SmallCNN as built, but with a random classifier head: the reference initialisation zeroes fc3,
/// which makes an untrained model's logits (and input gradients) constant.
func responsiveSmallCNN(backend: Backend, seed: UInt64) throws -> Model {
  let model = try Architecture.smallcnn.build(backend: backend, seed: seed)
  var rng = SeededRNG(seed: seed ^ 0xFC3)
  let head = model.parameter(named: "fc3.weight")!
  try backend.write(rng.uniformArray(head.count, -0.07, 0.07), to: head.value)
  return model
}

/// `n` random 28x28 grey points labelled with `model`'s own prediction (all correctly classified),
/// with their clean logits: a batch an attack can break some of.
func selfLabelledBatch(_ model: Model, count n: Int, seed: UInt64) throws -> AttackBatch {
  let backend = model.backend
  var rng = SeededRNG(seed: seed)
  let x = rng.uniformArray(n * 784, 0, 1)
  let logits = try backend.download(try model.forward(try backend.upload(x, shape: [n, 1, 28, 28])))
  let labels = (0..<n).map { k in (0..<10).max { logits[k * 10 + $0] < logits[k * 10 + $1] }! }
  return AttackBatch(ids: Array(0..<n), x: x, labels: labels, cleanLogits: logits, pointShape: [1, 28, 28], classes: 10)
}

/// Central differences `(loss(x + h e_i) - loss(x - h e_i)) / 2h` for every coordinate i.
func centralDifferences(_ x: [Float], h: Float = 1e-3, _ loss: ([Float]) throws -> Double) rethrows -> [Float] {
  var probe = x
  return try (0..<x.count).map { i in
    probe[i] = x[i] + h
    let up = try loss(probe)
    probe[i] = x[i] - h
    let down = try loss(probe)
    probe[i] = x[i]
    return Float((up - down) / Double(2 * h))
  }
}

/// `r . model(x)` for images of `shape`: a scalar loss whose gradient with respect to the logits
/// is `r`, for finite differences through a model.
func weightedLogits(_ model: Model, shape: [Int], weights r: [Float]) -> ([Float]) throws -> Double {
  { x in
    let y = try model.forward(try model.backend.upload(x, shape: shape))
    return zip(try model.backend.download(y), r).reduce(0) { $0 + Double($1.0) * Double($1.1) }
  }
}

/// A model with random (not freshly initialised) weights, biases and batch-norm statistics, so a
/// removed channel would show in the logits if compaction got anything wrong.
func randomized(_ arch: Architecture, width: Double, seed: UInt64, backend cpu: Backend = CPUBackend()) throws -> Model {
  let model = try arch.build(backend: cpu, seed: seed, width: width)
  var rng = SeededRNG(seed: seed ^ 0xAB)
  for p in model.parameters where p.count > 1 {
    let scale: Float = p.name.hasSuffix("running_var") ? 1 : (p.shape.count > 1 ? 2 / Float(p.count / p.shape[0]).squareRoot() : 0.5)
    let low: Float = p.name.hasSuffix("running_var") ? 0.5 : -scale
    try cpu.write(rng.uniformArray(p.count, low, low + (p.name.hasSuffix("running_var") ? 1 : 2 * scale)), to: p.value)
  }
  return model
}

func evalLogits(_ model: Model, seed: UInt64) throws -> [Float] {
  model.setTraining(false)
  var rng = SeededRNG(seed: seed)
  let shape = [4] + model.architecture.inputShape
  return try model.backend.download(try model.forward(try model.backend.upload(rng.uniformArray(shape.reduce(1, *), 0, 1), shape: shape)))
}

/// Eval-mode logits at three seeded random points and the input gradient of a seeded random loss
/// there: what two models computing the same function must agree on.
func evalOutputs(_ model: Model, seed: UInt64) throws -> (logits: [Float], inputGradient: [Float]) {
  model.setTraining(false)
  var rng = SeededRNG(seed: seed)
  let shape = [3] + model.architecture.inputShape
  let x = try model.backend.upload(rng.uniformArray(shape.reduce(1, *), 0, 1), shape: shape)
  let logits = try model.forward(x)
  let dLogits = try model.backend.upload(rng.uniformArray(logits.count), shape: logits.shape)
  let values = try model.backend.download(logits)
  return (values, try model.backend.download(try model.inputGradient(dLogits)))
}
