import GPU
import XCTest

/// Semantics of the ops that have no gradient: SGD under a mask and the PGD projections.
final class OptimizerAndAttackTests: XCTestCase {
  let cpu = CPUBackend()

  func testMaskedWeightsStayExactlyZeroWithMomentumAndDecay() throws {
    var rng = SeededRNG(seed: 3)
    let n = 64
    let mask: [Float] = (0..<n).map { $0 % 3 == 0 ? 0 : 1 }
    let w = try cpu.upload(zip(rng.uniformArray(n), mask).map { $0 * $1 }, shape: [n])
    let v = try cpu.zeros([n])
    let m = try cpu.upload(mask, shape: [n])
    for _ in 0..<10 {
      try cpu.sgdStep(
        weight: w, grad: try cpu.upload(rng.uniformArray(n), shape: [n]), velocity: v, mask: m,
        hyper: SGDHyper(learningRate: 0.1, momentum: 0.9, weightDecay: 0.01))
    }
    let (wv, vv) = (try cpu.download(w), try cpu.download(v))
    for i in 0..<n where mask[i] == 0 {
      XCTAssertEqual(wv[i], 0)
      XCTAssertEqual(vv[i], 0)
    }
    XCTAssert((0..<n).contains { mask[$0] == 1 && wv[$0] != 0 })
  }

  func testSGDMatchesPyTorchSemantics() throws {
    // One weight, by hand: g = 0.5 + 0.1*2 = 0.7; v = 0.9*1 + 0.7 = 1.6; w = 2 - 0.1*1.6 = 1.84.
    let (w, v) = (try cpu.upload([2], shape: [1]), try cpu.upload([1], shape: [1]))
    try cpu.sgdStep(
      weight: w, grad: try cpu.upload([0.5], shape: [1]), velocity: v, mask: nil, hyper: SGDHyper(learningRate: 0.1, momentum: 0.9, weightDecay: 0.1))
    XCTAssertEqual(try cpu.download(w)[0], 1.84, accuracy: 1e-6)
    XCTAssertEqual(try cpu.download(v)[0], 1.6, accuracy: 1e-6)
  }

  func testPGDStepsStayFeasible() throws {
    let shape = [8, 1, 6, 6]
    let count = shape.reduce(1, *)
    var rng = SeededRNG(seed: 5)
    let x = try cpu.upload(rng.uniformArray(count, 0, 1), shape: shape)
    for (norm, eps) in [(PerturbationNorm.linf, Float(0.1)), (.l2, Float(0.5))] {
      let xAdv = try cpu.zeros(shape)
      let delta = try cpu.zeros(shape)
      try cpu.randomUniform(delta, low: -eps, high: eps, seed: 1)
      try cpu.pgdProject(xAdv: xAdv, x: x, delta: delta, eps: eps, norm: norm)
      for _ in 0..<5 {
        try cpu.pgdStep(xAdv: xAdv, x: x, grad: try cpu.upload(rng.uniformArray(count), shape: shape), alpha: eps / 2, eps: eps, norm: norm)
      }
      let (a, o) = (try cpu.download(xAdv), try cpu.download(x))
      XCTAssert(a.allSatisfy { $0 >= 0 && $0 <= 1 }, "x_adv leaves [0,1]")
      for n in 0..<8 {
        let d = (0..<36).map { a[n * 36 + $0] - o[n * 36 + $0] }
        let size = norm == .linf ? d.map(abs).max()! : d.map { $0 * $0 }.reduce(0, +).squareRoot()
        XCTAssertLessThanOrEqual(size, eps * (1 + 1e-5), "\(norm) sample \(n)")
      }
    }
  }

  func testLinfStepMovesBySignOfGradient() throws {
    let x = try cpu.upload([0.5, 0.5, 0.5, 0.0], shape: [1, 4])
    let xAdv = try cpu.upload([0.5, 0.5, 0.5, 0.0], shape: [1, 4])
    try cpu.pgdStep(xAdv: xAdv, x: x, grad: try cpu.upload([3, -0.001, 0, -1], shape: [1, 4]), alpha: 0.05, eps: 0.1, norm: .linf)
    XCTAssertEqual(try cpu.download(xAdv), [0.55, 0.45, 0.5, 0.0])
  }

  func testDeviceRequestParsing() {
    XCTAssertEqual(DeviceRequest(parsing: "auto"), .auto)
    XCTAssertEqual(DeviceRequest(parsing: "CPU"), .cpu)
    XCTAssertEqual(DeviceRequest(parsing: "opencl"), .opencl(nil))
    XCTAssertEqual(DeviceRequest(parsing: "opencl:2"), .opencl(2))
    XCTAssertNil(DeviceRequest(parsing: "opencl:x"))
    XCTAssertNil(DeviceRequest(parsing: "gpu"))
  }
}
