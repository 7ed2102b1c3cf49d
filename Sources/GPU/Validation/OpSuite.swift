/// Every op of `Backend`, described once: how to make its random inputs and how to run it.
///
/// `advprune validate` and the parity tests both run these cases on a candidate backend and on
/// the CPU reference, with the same seeded inputs, and compare outputs elementwise.
public struct OpCase {
  public let op: String
  public let shape: String
  public let atol: Float
  public let rtol: Float
  let inputs: (inout SeededRNG) -> [[Float]]
  let run: (Backend, [[Float]]) throws -> [[Float]]

  /// Runs the case on `backend` with inputs drawn from `seed`; returns every output.
  public func outputs(on backend: Backend, seed: UInt64) throws -> [[Float]] {
    var rng = SeededRNG(seed: seed)
    return try run(backend, inputs(&rng))
  }
}

/// Result of one case on one candidate backend.
public struct OpParity {
  public let op: String
  public let shape: String
  public let reports: [ParityReport]
  public var passed: Bool { reports.allSatisfy(\.passed) }
  public var maxAbsoluteError: Float { reports.map(\.maxAbsoluteError).max() ?? 0 }
  public var maxRelativeError: Float { reports.map(\.maxRelativeError).max() ?? 0 }
}

public enum OpSuite {
  /// Runs every case on `candidate` and on `reference`, comparing outputs.
  public static func compare(candidate: Backend, reference: Backend = CPUBackend.reference(), seed: UInt64 = 1) throws -> [OpParity] {
    try cases().map { c in
      let want = try c.outputs(on: reference, seed: seed)
      let got = try c.outputs(on: candidate, seed: seed)
      let reports = zip(want, got).map { ParityReport(reference: $0, got: $1, atol: c.atol, rtol: c.rtol) }
      return OpParity(op: c.op, shape: c.shape, reports: reports)
    }
  }

  public static func cases() -> [OpCase] {
    gemmCases() + linearCases() + convCases() + convReLUCases() + elementwiseCases() + normCases() + trainingCases() + attackBlockCases()
      + pruningBlockCases()
      + sparseCases() + residentGridCases() + residentBetweenGridsCases() + residualBlockCases()
  }

  static func gemmCases() -> [OpCase] {
    [(false, false), (true, false), (false, true), (true, true)].map { (ta, tb) in
      let (m, n, k) = (37, 29, 41)
      return OpCase(
        op: "gemm", shape: "\(ta ? "T" : "N")\(tb ? "T" : "N") \(m)x\(n)x\(k)", atol: 1e-4, rtol: 1e-4,
        inputs: { rng in [rng.uniformArray(m * k), rng.uniformArray(k * n), rng.uniformArray(m * n)] },
        run: { b, v in
          let c = try b.upload(v[2], shape: [m, n])
          try b.gemm(
            transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: 0.7,
            a: try b.upload(v[0], shape: [m * k]), b: try b.upload(v[1], shape: [k * n]), beta: 0.3, c: c)
          return [try b.download(c)]
        })
    }
  }

  static func linearCases() -> [OpCase] {
    let (n, i, o) = (5, 33, 7)
    return [
      OpCase(
        op: "linear", shape: "[\(n),\(i)] x [\(o),\(i)]^T masked", atol: 1e-4, rtol: 1e-4,
        inputs: { rng in
          [rng.uniformArray(n * i), rng.uniformArray(o * i), rng.uniformArray(o), rng.uniformArray(n * o), mask(o * i, &rng)]
        },
        run: { b, v in
          let x = try b.upload(v[0], shape: [n, i])
          let w = try b.upload(v[1], shape: [o, i])
          try b.multiply(out: w, a: w, b: try b.upload(v[4], shape: [o, i]))
          let bias = try b.upload(v[2], shape: [o])
          let dy = try b.upload(v[3], shape: [n, o])
          let (y, dx, dw, db) = (try b.zeros([n, o]), try b.zeros([n, i]), try b.zeros([o, i]), try b.zeros([o]))
          try b.linearForward(y: y, x: x, weight: w, bias: bias)
          try b.linearBackwardData(dx: dx, dy: dy, weight: w)
          try b.linearBackwardWeight(dWeight: dw, dBias: db, dy: dy, x: x)
          return try [y, dx, dw, db].map(b.download)
        })
    ]
  }

  /// Both strides, with and without padding, a 1x1 kernel, odd planes whose stride phases differ
  /// in size, stride 3; then the shapes that take the OpenCL
  /// implicit GEMM's other paths: one input channel (a one-row input gradient) with more output
  /// channels than a register block, more patch rows than one staged tile, rows wider than a
  /// vector and planes narrower than one; a row wider than the CPU Winograd's 16 tiles; then two
  /// that OpenCL runs as Winograd (at least 8 channels each way, 32 tiles): planes that 4x4 tiles
  /// do not divide, more output channels than a register block, padded and not; last, strided
  /// input gradients of more channels than a few (OpenCL walks their phases' K without the tile):
  /// phase rows as wide as a vector, over more than one register block, and narrow phase rows,
  /// blended, with a partial last vector.
  static let convGeometries = [
    ConvGeometry(batch: 3, inChannels: 2, height: 9, width: 8, outChannels: 4, kernel: 3),
    ConvGeometry(batch: 2, inChannels: 3, height: 8, width: 8, outChannels: 5, kernel: 3, stride: 2, padding: 1),
    ConvGeometry(batch: 2, inChannels: 4, height: 6, width: 6, outChannels: 3, kernel: 1, stride: 2),
    ConvGeometry(batch: 2, inChannels: 3, height: 9, width: 7, outChannels: 5, kernel: 3, stride: 2),
    ConvGeometry(batch: 1, inChannels: 2, height: 10, width: 11, outChannels: 3, kernel: 3, stride: 3, padding: 1),
    ConvGeometry(batch: 2, inChannels: 3, height: 7, width: 7, outChannels: 4, kernel: 3, padding: 1),
    ConvGeometry(batch: 2, inChannels: 1, height: 12, width: 11, outChannels: 20, kernel: 3),
    ConvGeometry(batch: 3, inChannels: 8, height: 5, width: 5, outChannels: 6, kernel: 3, padding: 1),
    ConvGeometry(batch: 2, inChannels: 3, height: 6, width: 21, outChannels: 4, kernel: 3, padding: 1),
    ConvGeometry(batch: 1, inChannels: 2, height: 5, width: 40, outChannels: 3, kernel: 3, padding: 1),
    ConvGeometry(batch: 4, inChannels: 9, height: 11, width: 14, outChannels: 17, kernel: 3, padding: 1),
    ConvGeometry(batch: 3, inChannels: 8, height: 17, width: 13, outChannels: 8, kernel: 3),
    ConvGeometry(batch: 2, inChannels: 20, height: 32, width: 32, outChannels: 6, kernel: 3, stride: 2, padding: 1),
    ConvGeometry(batch: 2, inChannels: 9, height: 9, width: 9, outChannels: 5, kernel: 3, stride: 2, padding: 1),
  ]

  static func convCases() -> [OpCase] {
    convGeometries.map { g in
      let (xc, wc, yc) = (g.inputShape.reduce(1, *), g.weightShape.reduce(1, *), g.outputShape.reduce(1, *))
      return OpCase(
        op: "conv2d", shape: "\(g) masked", atol: 1e-4, rtol: 1e-4,
        inputs: { rng in
          [rng.uniformArray(xc), rng.uniformArray(wc), rng.uniformArray(g.outChannels), rng.uniformArray(yc), mask(wc, &rng)]
        },
        run: { b, v in
          let x = try b.upload(v[0], shape: g.inputShape)
          let w = try b.upload(v[1], shape: g.weightShape)
          try b.multiply(out: w, a: w, b: try b.upload(v[4], shape: g.weightShape))
          let bias = try b.upload(v[2], shape: [g.outChannels])
          let dy = try b.upload(v[3], shape: g.outputShape)
          let (y, dx, dw, db) = (try b.zeros(g.outputShape), try b.zeros(g.inputShape), try b.zeros(g.weightShape), try b.zeros([g.outChannels]))
          try b.conv2dForward(y: y, x: x, weight: w, bias: bias, geometry: g)
          try b.conv2dBackwardData(dx: dx, dy: dy, weight: w, geometry: g)
          try b.conv2dBackwardWeight(dWeight: dw, dBias: db, dy: dy, x: x, geometry: g)
          return try [y, dx, dw, db].map(b.download)
        })
    }
  }

  /// A convolution with the ReLU after it fused: forward `relu(conv(x))`, input gradient
  /// `conv^T(dy * (y > 0))`, on two strided geometries (padded and not), one that both
  /// backends' fast paths run as Winograd, and two images of one and three channels (OpenCL with
  /// `few_rb` set: `conv_few_rows_dx` over the gated copy).
  static func convReLUCases() -> [OpCase] {
    [convGeometries[1], convGeometries[3], convGeometries[10], convGeometries[5], convGeometries[6]].map { g in
      OpCase(
        op: "conv2d_relu", shape: "\(g)", atol: 1e-4, rtol: 1e-4,
        inputs: { rng in
          [
            rng.uniformArray(g.inputShape.reduce(1, *)), rng.uniformArray(g.weightShape.reduce(1, *)), rng.uniformArray(g.outChannels),
            rng.uniformArray(g.outputShape.reduce(1, *)),
          ]
        },
        run: { b, v in
          let (x, w) = (try b.upload(v[0], shape: g.inputShape), try b.upload(v[1], shape: g.weightShape))
          let (bias, dy) = (try b.upload(v[2], shape: [g.outChannels]), try b.upload(v[3], shape: g.outputShape))
          let (y, dx) = (try b.zeros(g.outputShape), try b.zeros(g.inputShape))
          try b.conv2dForward(y: y, x: x, weight: w, bias: bias, geometry: g, relu: true)
          try b.conv2dBackwardData(dx: dx, dy: dy, weight: w, geometry: g, reluOutput: y)
          return try [y, dx].map(b.download)
        })
    }
  }

  static func elementwiseCases() -> [OpCase] {
    let shape = [2, 3, 6, 4]
    let count = shape.reduce(1, *)
    return [
      OpCase(
        op: "relu", shape: "\(shape)", atol: 0, rtol: 0,
        inputs: { rng in [rng.uniformArray(count), rng.uniformArray(count)] },
        run: { b, v in
          let (x, dy) = (try b.upload(v[0], shape: shape), try b.upload(v[1], shape: shape))
          let (y, dx) = (try b.zeros(shape), try b.zeros(shape))
          try b.reluForward(y: y, x: x)
          try b.reluBackward(dx: dx, dy: dy, y: y)
          return try [y, dx].map(b.download)
        }),
      OpCase(
        op: "maxpool2x2", shape: "\(shape) with ties", atol: 0, rtol: 0,
        // Values on a coarse grid so windows contain ties: both backends must pick the same one.
        inputs: { rng in [rng.uniformArray(count).map { ($0 * 3).rounded() }, rng.uniformArray(count / 4)] },
        run: { b, v in
          let x = try b.upload(v[0], shape: shape)
          let pooled = [shape[0], shape[1], shape[2] / 2, shape[3] / 2]
          let dy = try b.upload(v[1], shape: pooled)
          let (y, dx) = (try b.zeros(pooled), try b.zeros(shape))
          try b.maxPool2x2Forward(y: y, x: x)
          try b.maxPool2x2Backward(dx: dx, dy: dy, x: x)
          return try [y, dx].map(b.download)
        }),
      binaryCase("multiply", count: count) { b, out, x, y in try b.multiply(out: out, a: x, b: y) },
      OpCase(
        op: "random_uniform", shape: "[1000]", atol: 1e-6, rtol: 1e-6,
        inputs: { _ in [] },
        run: { b, _ in
          let t = try b.zeros([1000])
          try b.randomUniform(t, low: -0.1, high: 0.1, seed: 0x1234_5678_9ABC)
          return [try b.download(t)]
        }),
    ]
  }

  /// An elementwise op of two [count] tensors into a third, which must agree exactly.
  static func binaryCase(_ op: String, count: Int, _ apply: @escaping (Backend, Tensor, Tensor, Tensor) throws -> Void) -> OpCase {
    OpCase(
      op: op, shape: "[\(count)]", atol: 0, rtol: 0,
      inputs: { rng in [rng.uniformArray(count), rng.uniformArray(count)] },
      run: { b, v in
        let out = try b.zeros([count])
        try apply(b, out, try b.upload(v[0], shape: [count]), try b.upload(v[1], shape: [count]))
        return [try b.download(out)]
      })
  }

  static func normCases() -> [OpCase] {
    let shape = [3, 4, 4, 6]
    let count = shape.reduce(1, *)
    let c = shape[1]
    var cases = [
      binaryCase("add", count: count) { b, out, x, y in try b.add(out: out, a: x, b: y) },
      binaryCase("add_relu", count: count) { b, out, x, y in try b.addReLU(out: out, a: x, b: y) },
      OpCase(
        op: "avgpool", shape: "\(shape) k2", atol: 1e-6, rtol: 1e-5,
        inputs: { rng in [rng.uniformArray(count), rng.uniformArray(count / 4)] },
        run: { b, v in
          let pooled = [shape[0], shape[1], shape[2] / 2, shape[3] / 2]
          let (y, dx) = (try b.zeros(pooled), try b.zeros(shape))
          try b.avgPoolForward(y: y, x: try b.upload(v[0], shape: shape), kernel: 2)
          try b.avgPoolBackward(dx: dx, dy: try b.upload(v[1], shape: pooled), kernel: 2)
          return try [y, dx].map(b.download)
        }),
    ]
    // With `relu`, the norm and its ReLU fused (the forward's max, the backward's mask).
    for (training, relu) in [(true, false), (false, false), (true, true), (false, true)] {
      cases.append(
        OpCase(
          op: "batchnorm", shape: "\(shape) \(training ? "train" : "eval")\(relu ? " relu" : "")", atol: 1e-4, rtol: 1e-4,
          inputs: { rng in
            [
              rng.uniformArray(count, -2, 3), rng.uniformArray(c, 0.5, 1.5), rng.uniformArray(c), rng.uniformArray(c),
              rng.uniformArray(c, 0.5, 2), rng.uniformArray(count),
            ]
          },
          run: { b, v in
            let x = try b.upload(v[0], shape: shape)
            let (gamma, beta) = (try b.upload(v[1], shape: [c]), try b.upload(v[2], shape: [c]))
            let (rm, rv) = (try b.upload(v[3], shape: [c]), try b.upload(v[4], shape: [c]))
            let (y, mean, inv) = (try b.zeros(shape), try b.zeros([c]), try b.zeros([c]))
            try b.batchNormForward(
              y: y, x: x, gamma: gamma, beta: beta, mean: mean, invStd: inv, runningMean: rm, runningVar: rv, training: training, momentum: 0.1,
              eps: 1e-5, relu: relu)
            let (dx, dg, db) = (try b.zeros(shape), try b.zeros([c]), try b.zeros([c]))
            let dy = try b.upload(v[5], shape: shape)
            let mask = relu ? y : nil
            try b.batchNormBackward(
              dx: dx, dGamma: dg, dBeta: db, dy: dy, x: x, gamma: gamma, mean: mean, invStd: inv, training: training, reluOutput: mask)
            // An attack step's backward: the input gradient alone, no parameter gradients.
            let dxOnly = try b.zeros(shape)
            try b.batchNormBackward(
              dx: dxOnly, dGamma: nil, dBeta: nil, dy: dy, x: x, gamma: gamma, mean: mean, invStd: inv, training: training, reluOutput: mask)
            return try [y, mean, inv, rm, rv, dx, dg, db, dxOnly].map(b.download)
          }))
    }
    return cases
  }

  static func trainingCases() -> [OpCase] {
    let (n, classes) = (6, 10)
    let shape = [4, 1, 5, 5]
    let count = shape.reduce(1, *)
    var cases =
      [
        OpCase(
          op: "softmax_xent", shape: "[\(n),\(classes)]", atol: 1e-5, rtol: 1e-4,
          inputs: { rng in [rng.uniformArray(n * classes, -4, 4), (0..<n).map { _ in Float(Int(rng.next() % 10)) }] },
          run: { b, v in
            let (losses, d) = (try b.zeros([n]), try b.zeros([n, classes]))
            try b.softmaxCrossEntropy(
              losses: losses, dLogits: d, logits: try b.upload(v[0], shape: [n, classes]), labels: try b.upload(v[1], shape: [n]),
              scale: 1 / Float(n))
            return try [losses, d].map(b.download)
          }),
        OpCase(
          op: "softmax_kl", shape: "[\(n),\(classes)]", atol: 1e-5, rtol: 1e-4,
          inputs: { rng in [rng.uniformArray(n * classes, -4, 4), rng.uniformArray(n * classes, -4, 4)] },
          run: { b, v in
            let (losses, dp, dq) = (try b.zeros([n]), try b.zeros([n, classes]), try b.zeros([n, classes]))
            try b.softmaxKL(
              losses: losses, dP: dp, dQ: dq, p: try b.upload(v[0], shape: [n, classes]), q: try b.upload(v[1], shape: [n, classes]), scale: 0.5)
            return try [losses, dp, dq].map(b.download)
          }),
      ]
      + [false, true].map { nesterov in
        OpCase(
          op: "sgd_step", shape: "[\(count)] masked, momentum, wd\(nesterov ? ", nesterov" : "")", atol: 1e-6, rtol: 1e-5,
          inputs: { rng in [rng.uniformArray(count), rng.uniformArray(count), rng.uniformArray(count), mask(count, &rng)] },
          run: { b, v in
            let (w, g, vel, m) = (
              try b.upload(v[0], shape: [count]), try b.upload(v[1], shape: [count]), try b.upload(v[2], shape: [count]),
              try b.upload(v[3], shape: [count])
            )
            try b.multiply(out: w, a: w, b: m)
            let hyper = SGDHyper(learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4, nesterov: nesterov)
            for _ in 0..<3 { try b.sgdStep(weight: w, grad: g, velocity: vel, mask: m, hyper: hyper) }
            return try [w, vel].map(b.download)
          })
      }
    for norm in [PerturbationNorm.linf, .l2] {
      let eps: Float = norm == .linf ? 0.1 : 0.5
      cases.append(
        OpCase(
          op: "pgd_step", shape: "\(shape) \(norm.rawValue) eps \(eps)", atol: 1e-6, rtol: 1e-5,
          inputs: { rng in [rng.uniformArray(count, 0, 1), rng.uniformArray(count), rng.uniformArray(count, -2 * eps, 2 * eps)] },
          run: { b, v in
            let x = try b.upload(v[0], shape: shape)
            let (g, delta) = (try b.upload(v[1], shape: shape), try b.upload(v[2], shape: shape))
            let start = try b.zeros(shape)
            try b.pgdProject(xAdv: start, x: x, delta: delta, eps: eps, norm: norm)
            let stepped = try b.zeros(shape)
            try b.copy(from: start, to: stepped)
            try b.pgdStep(xAdv: stepped, x: x, grad: g, alpha: eps / 4, eps: eps, norm: norm)
            return try [start, stepped].map(b.download)
          }))
    }
    return cases
  }

  /// A random 0/1 mask keeping about 70 % of entries.
  static func mask(_ count: Int, _ rng: inout SeededRNG) -> [Float] {
    (0..<count).map { _ in rng.uniform(0, 1) < 0.7 ? 1 : 0 }
  }
}
