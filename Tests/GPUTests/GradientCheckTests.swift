import GPU
import XCTest

/// Finite-difference checks of every backward pass on the CPU reference.
///
/// Each op is wrapped into a scalar `L = sum(op(x) * r)` with a fixed random `r`, whose gradient
/// with respect to the output is `r`; central differences of `L` must match the backward pass.
final class GradientCheckTests: XCTestCase {
  let cpu = CPUBackend()

  /// Central-difference gradient of `loss` at `x`, computed in Float with step `h`.
  func numericGradient(_ x: [Float], h: Float, _ loss: ([Float]) throws -> Double) rethrows -> [Float] {
    var grad = [Float](repeating: 0, count: x.count)
    var probe = x
    for i in 0..<x.count {
      probe[i] = x[i] + h
      let up = try loss(probe)
      probe[i] = x[i] - h
      let down = try loss(probe)
      probe[i] = x[i]
      grad[i] = Float((up - down) / Double(2 * h))
    }
    return grad
  }

  func dot(_ a: [Float], _ b: [Float]) -> Double { zip(a, b).reduce(0) { $0 + Double($1.0) * Double($1.1) } }

  func testConv2dGradients() throws {
    for g in [
      ConvGeometry(batch: 2, inChannels: 2, height: 5, width: 6, outChannels: 3, kernel: 3),
      ConvGeometry(batch: 1, inChannels: 2, height: 6, width: 6, outChannels: 2, kernel: 3, stride: 2, padding: 1),
    ] {
      var rng = SeededRNG(seed: 7)
      let x = rng.uniformArray(g.inputShape.reduce(1, *))
      let w = rng.uniformArray(g.weightShape.reduce(1, *))
      let b = rng.uniformArray(g.outChannels)
      let r = rng.uniformArray(g.outputShape.reduce(1, *))
      func loss(_ x: [Float], _ w: [Float], _ b: [Float]) throws -> Double {
        let y = try cpu.zeros(g.outputShape)
        try cpu.conv2dForward(
          y: y, x: try cpu.upload(x, shape: g.inputShape), weight: try cpu.upload(w, shape: g.weightShape),
          bias: try cpu.upload(b, shape: [g.outChannels]), geometry: g)
        return dot(try cpu.download(y), r)
      }
      let dy = try cpu.upload(r, shape: g.outputShape)
      let (dx, dw, db) = (try cpu.zeros(g.inputShape), try cpu.zeros(g.weightShape), try cpu.zeros([g.outChannels]))
      try cpu.conv2dBackwardData(dx: dx, dy: dy, weight: try cpu.upload(w, shape: g.weightShape), geometry: g)
      try cpu.conv2dBackwardWeight(dWeight: dw, dBias: db, dy: dy, x: try cpu.upload(x, shape: g.inputShape), geometry: g)
      assertClose(try cpu.download(dx), try numericGradient(x, h: 1e-2) { try loss($0, w, b) }, atol: 2e-3, rtol: 1e-2, "conv dx \(g)")
      assertClose(try cpu.download(dw), try numericGradient(w, h: 1e-2) { try loss(x, $0, b) }, atol: 2e-3, rtol: 1e-2, "conv dw \(g)")
      assertClose(try cpu.download(db), try numericGradient(b, h: 1e-2) { try loss(x, w, $0) }, atol: 2e-3, rtol: 1e-2, "conv db \(g)")
    }
  }

  func testLinearGradients() throws {
    let (n, i, o) = (3, 6, 4)
    var rng = SeededRNG(seed: 8)
    let (x, w, b, r) = (rng.uniformArray(n * i), rng.uniformArray(o * i), rng.uniformArray(o), rng.uniformArray(n * o))
    func loss(_ x: [Float], _ w: [Float], _ b: [Float]) throws -> Double {
      let y = try cpu.zeros([n, o])
      try cpu.linearForward(
        y: y, x: try cpu.upload(x, shape: [n, i]), weight: try cpu.upload(w, shape: [o, i]), bias: try cpu.upload(b, shape: [o]))
      return dot(try cpu.download(y), r)
    }
    let dy = try cpu.upload(r, shape: [n, o])
    let (dx, dw, db) = (try cpu.zeros([n, i]), try cpu.zeros([o, i]), try cpu.zeros([o]))
    try cpu.linearBackwardData(dx: dx, dy: dy, weight: try cpu.upload(w, shape: [o, i]))
    try cpu.linearBackwardWeight(dWeight: dw, dBias: db, dy: dy, x: try cpu.upload(x, shape: [n, i]))
    assertClose(try cpu.download(dx), try numericGradient(x, h: 1e-2) { try loss($0, w, b) }, atol: 1e-3, rtol: 1e-2, "linear dx")
    assertClose(try cpu.download(dw), try numericGradient(w, h: 1e-2) { try loss(x, $0, b) }, atol: 1e-3, rtol: 1e-2, "linear dw")
    assertClose(try cpu.download(db), try numericGradient(b, h: 1e-2) { try loss(x, w, $0) }, atol: 1e-3, rtol: 1e-2, "linear db")
  }

  func testReluGradientAwayFromTheKink() throws {
    var rng = SeededRNG(seed: 9)
    // Keep |x| >= 0.1 so a step of 1e-2 never crosses zero.
    let x = rng.uniformArray(40).map { $0 >= 0 ? $0 + 0.1 : $0 - 0.1 }
    let r = rng.uniformArray(40)
    func loss(_ x: [Float]) throws -> Double {
      let y = try cpu.zeros([40])
      try cpu.reluForward(y: y, x: try cpu.upload(x, shape: [40]))
      return dot(try cpu.download(y), r)
    }
    let y = try cpu.zeros([40])
    try cpu.reluForward(y: y, x: try cpu.upload(x, shape: [40]))
    let dx = try cpu.zeros([40])
    try cpu.reluBackward(dx: dx, dy: try cpu.upload(r, shape: [40]), y: y)
    assertClose(try cpu.download(dx), try numericGradient(x, h: 1e-2, loss), atol: 1e-3, rtol: 1e-2, "relu dx")
  }

  func testMaxPoolGradientWithDistinctValues() throws {
    let shape = [2, 2, 4, 6]
    let count = shape.reduce(1, *)
    var rng = SeededRNG(seed: 10)
    // A shuffled ramp: values 0.1 apart, so a step of 1e-2 never changes a window's maximum.
    var x = (0..<count).map { Float($0) * 0.1 }
    x.shuffle(using: &rng)
    let r = rng.uniformArray(count / 4)
    let pooled = [2, 2, 2, 3]
    func loss(_ x: [Float]) throws -> Double {
      let y = try cpu.zeros(pooled)
      try cpu.maxPool2x2Forward(y: y, x: try cpu.upload(x, shape: shape))
      return dot(try cpu.download(y), r)
    }
    let dx = try cpu.zeros(shape)
    try cpu.maxPool2x2Backward(dx: dx, dy: try cpu.upload(r, shape: pooled), x: try cpu.upload(x, shape: shape))
    assertClose(try cpu.download(dx), try numericGradient(x, h: 1e-2, loss), atol: 1e-3, rtol: 1e-2, "maxpool dx")
  }

  func testSoftmaxKLGradients() throws {
    let (n, c) = (3, 10)
    var rng = SeededRNG(seed: 12)
    let (p, q) = (rng.uniformArray(n * c, -3, 3), rng.uniformArray(n * c, -3, 3))
    func loss(_ p: [Float], _ q: [Float]) throws -> Double {
      let l = try cpu.zeros([n])
      try cpu.softmaxKL(losses: l, dP: nil, dQ: nil, p: try cpu.upload(p, shape: [n, c]), q: try cpu.upload(q, shape: [n, c]), scale: 1)
      return try cpu.download(l).reduce(0) { $0 + Double($1) }
    }
    let (l, dp, dq) = (try cpu.zeros([n]), try cpu.zeros([n, c]), try cpu.zeros([n, c]))
    try cpu.softmaxKL(losses: l, dP: dp, dQ: dq, p: try cpu.upload(p, shape: [n, c]), q: try cpu.upload(q, shape: [n, c]), scale: 1)
    XCTAssert(try cpu.download(l).allSatisfy { $0 >= 0 }, "KL is non-negative")
    assertClose(try cpu.download(dp), try numericGradient(p, h: 1e-2) { try loss($0, q) }, atol: 1e-3, rtol: 1e-2, "kl dp")
    assertClose(try cpu.download(dq), try numericGradient(q, h: 1e-2) { try loss(p, $0) }, atol: 1e-3, rtol: 1e-2, "kl dq")
  }

  func testSoftmaxCrossEntropyGradient() throws {
    let (n, c) = (4, 10)
    var rng = SeededRNG(seed: 11)
    let z = rng.uniformArray(n * c, -3, 3)
    let labels: [Float] = [3, 0, 9, 5]
    func loss(_ z: [Float]) throws -> Double {
      let l = try cpu.zeros([n])
      try cpu.softmaxCrossEntropy(
        losses: l, dLogits: nil, logits: try cpu.upload(z, shape: [n, c]), labels: try cpu.upload(labels, shape: [n]), scale: 1)
      return try cpu.download(l).reduce(0) { $0 + Double($1) } / Double(n)
    }
    let (l, d) = (try cpu.zeros([n]), try cpu.zeros([n, c]))
    try cpu.softmaxCrossEntropy(
      losses: l, dLogits: d, logits: try cpu.upload(z, shape: [n, c]), labels: try cpu.upload(labels, shape: [n]), scale: 1 / Float(n))
    assertClose(try cpu.download(d), try numericGradient(z, h: 1e-2, loss), atol: 1e-3, rtol: 1e-2, "softmax xent dz")
  }
}

/// Finite-difference checks of the batch-norm and average-pooling backward passes.
final class NormGradientCheckTests: XCTestCase {
  let cpu = CPUBackend()

  func numericGradient(_ x: [Float], h: Float, _ loss: ([Float]) throws -> Double) rethrows -> [Float] {
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

  /// Both modes, alone and with the ReLU after it fused (`relu`: the forward's max, dy through
  /// its mask in the backward).
  func testBatchNormGradientsInBothModes() throws {
    let shape = [3, 2, 2, 3]
    let count = shape.reduce(1, *)
    var rng = SeededRNG(seed: 31)
    let (x, gamma, beta, r) = (rng.uniformArray(count, -2, 2), rng.uniformArray(2, 0.5, 1.5), rng.uniformArray(2), rng.uniformArray(count))
    for (training, relu) in [(true, false), (false, false), (true, true), (false, true)] {
      func loss(_ x: [Float], _ g: [Float], _ b: [Float]) throws -> Double {
        let y = try cpu.zeros(shape)
        try cpu.batchNormForward(
          y: y, x: try cpu.upload(x, shape: shape), gamma: try cpu.upload(g, shape: [2]), beta: try cpu.upload(b, shape: [2]),
          mean: try cpu.zeros([2]), invStd: try cpu.zeros([2]), runningMean: try cpu.upload([0.1, -0.2], shape: [2]),
          runningVar: try cpu.upload([1.5, 0.7], shape: [2]), training: training, momentum: 0.1, eps: 1e-5, relu: relu)
        return zip(try cpu.download(y), r).reduce(0) { $0 + Double($1.0) * Double($1.1) }
      }
      let xt = try cpu.upload(x, shape: shape)
      let (y, mean, inv) = (try cpu.zeros(shape), try cpu.zeros([2]), try cpu.zeros([2]))
      try cpu.batchNormForward(
        y: y, x: xt, gamma: try cpu.upload(gamma, shape: [2]), beta: try cpu.upload(beta, shape: [2]), mean: mean, invStd: inv,
        runningMean: try cpu.upload([0.1, -0.2], shape: [2]), runningVar: try cpu.upload([1.5, 0.7], shape: [2]), training: training, momentum: 0.1,
        eps: 1e-5, relu: relu)
      if relu { XCTAssert(try cpu.download(y).contains(0), "some outputs rectified") }
      let (dx, dg, db) = (try cpu.zeros(shape), try cpu.zeros([2]), try cpu.zeros([2]))
      let (dy, g, mask) = (try cpu.upload(r, shape: shape), try cpu.upload(gamma, shape: [2]), relu ? y : nil)
      try cpu.batchNormBackward(dx: dx, dGamma: dg, dBeta: db, dy: dy, x: xt, gamma: g, mean: mean, invStd: inv, training: training, reluOutput: mask)
      let mode = (training ? "train" : "eval") + (relu ? " relu" : "")
      let dxOnly = try cpu.zeros(shape)
      try cpu.batchNormBackward(
        dx: dxOnly, dGamma: nil, dBeta: nil, dy: dy, x: xt, gamma: g, mean: mean, invStd: inv, training: training, reluOutput: mask)
      XCTAssertEqual(try cpu.download(dxOnly), try cpu.download(dx), "bn dx without parameter gradients \(mode)")
      assertClose(try cpu.download(dx), try numericGradient(x, h: 1e-2) { try loss($0, gamma, beta) }, atol: 2e-3, rtol: 2e-2, "bn dx \(mode)")
      assertClose(try cpu.download(dg), try numericGradient(gamma, h: 1e-2) { try loss(x, $0, beta) }, atol: 2e-3, rtol: 2e-2, "bn dgamma \(mode)")
      assertClose(try cpu.download(db), try numericGradient(beta, h: 1e-2) { try loss(x, gamma, $0) }, atol: 2e-3, rtol: 2e-2, "bn dbeta \(mode)")
    }
  }

  func testBatchNormUpdatesRunningStatsLikePyTorch() throws {
    // Channel values 1, 2, 3, 6: mean 3, biased var 3.5, unbiased 14/3.
    let (rm, rv) = (try cpu.upload([0], shape: [1]), try cpu.upload([1], shape: [1]))
    try cpu.batchNormForward(
      y: try cpu.zeros([4, 1]), x: try cpu.upload([1, 2, 3, 6], shape: [4, 1]), gamma: try cpu.upload([1], shape: [1]),
      beta: try cpu.upload([0], shape: [1]), mean: try cpu.zeros([1]), invStd: try cpu.zeros([1]), runningMean: rm, runningVar: rv,
      training: true, momentum: 0.1, eps: 1e-5)
    XCTAssertEqual(try cpu.download(rm)[0], 0.3, accuracy: 1e-6)
    XCTAssertEqual(try cpu.download(rv)[0], 0.9 + 0.1 * 14 / 3, accuracy: 1e-6)
  }

  func testAvgPoolGradient() throws {
    let shape = [2, 2, 4, 4]
    var rng = SeededRNG(seed: 32)
    let (x, r) = (rng.uniformArray(64), rng.uniformArray(16))
    func loss(_ x: [Float]) throws -> Double {
      let y = try cpu.zeros([2, 2, 2, 2])
      try cpu.avgPoolForward(y: y, x: try cpu.upload(x, shape: shape), kernel: 2)
      return zip(try cpu.download(y), r).reduce(0) { $0 + Double($1.0) * Double($1.1) }
    }
    let dx = try cpu.zeros(shape)
    try cpu.avgPoolBackward(dx: dx, dy: try cpu.upload(r, shape: [2, 2, 2, 2]), kernel: 2)
    assertClose(try cpu.download(dx), try numericGradient(x, h: 1e-2, loss), atol: 1e-3, rtol: 1e-2, "avgpool dx")
  }
}
