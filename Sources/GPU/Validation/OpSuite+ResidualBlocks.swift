/// A residual block's forward and input gradient as per-image runs (`Backend.runPerImage`):
/// relu(conv2(relu(conv1(x))) + shortcut(x)) with conv1 3x3 at `stride`, conv2 3x3, and the
/// shortcut a 1x1 conv at `stride` where the shape changes. Weights are frozen, as a folded
/// model's are. Every output starts as NaN, so one a run leaves unwritten shows.
public struct ResidualBlockRuns {
  public struct Shape: CustomStringConvertible {
    public let batch: Int
    public let inChannels: Int
    public let channels: Int
    public let size: Int
    public let stride: Int

    public init(batch: Int, inChannels: Int, channels: Int, size: Int, stride: Int) {
      (self.batch, self.inChannels, self.channels, self.size, self.stride) = (batch, inChannels, channels, size, stride)
    }

    var conv1: ConvGeometry {
      ConvGeometry(batch: batch, inChannels: inChannels, height: size, width: size, outChannels: channels, kernel: 3, stride: stride, padding: 1)
    }
    var conv2: ConvGeometry {
      ConvGeometry(batch: batch, inChannels: channels, height: conv1.outHeight, width: conv1.outWidth, outChannels: channels, kernel: 3, padding: 1)
    }
    var shortcut: ConvGeometry? {
      stride == 1 && inChannels == channels
        ? nil : ConvGeometry(batch: batch, inChannels: inChannels, height: size, width: size, outChannels: channels, kernel: 1, stride: stride)
    }
    public var description: String { "\(batch)x\(inChannels)x\(size)x\(size) -> \(channels) channels, stride \(stride)" }

    /// x, conv1's weight and bias, conv2's, the shortcut's weight, dy.
    public func values(_ rng: inout SeededRNG) -> [[Float]] {
      [
        rng.uniformArray(conv1.inputShape.reduce(1, *)), rng.uniformArray(conv1.weightShape.reduce(1, *), -0.5, 0.5),
        rng.uniformArray(channels, -0.2, 0.2), rng.uniformArray(conv2.weightShape.reduce(1, *), -0.5, 0.5), rng.uniformArray(channels, -0.2, 0.2),
        rng.uniformArray(shortcut?.weightShape.reduce(1, *) ?? 0, -0.5, 0.5), rng.uniformArray(conv2.outputShape.reduce(1, *)),
      ]
    }
  }

  public let forward: [ImageStep]
  public let backward: [ImageStep]
  /// conv1 + ReLU, the block's output, the input gradient.
  public let outputs: [Tensor]

  public init(_ be: Backend, _ shape: Shape, values v: [[Float]]) throws {
    let (g1, g2, gs) = (shape.conv1, shape.conv2, shape.shortcut)
    func frozen(_ values: [Float], _ g: ConvGeometry) throws -> Tensor {
      let w = try be.upload(values, shape: g.weightShape)
      be.freeze(w)
      return w
    }
    func unwritten(_ shape: [Int]) throws -> Tensor {
      let t = try be.zeros(shape)
      try be.fill(t, value: .nan)
      return t
    }
    let (x, dy) = (try be.upload(v[0], shape: g1.inputShape), try be.upload(v[6], shape: g2.outputShape))
    let (w1, b1) = (try frozen(v[1], g1), try be.upload(v[2], shape: [shape.channels]))
    let (w2, b2) = (try frozen(v[3], g2), try be.upload(v[4], shape: [shape.channels]))
    let (mid, main, out) = (try unwritten(g1.outputShape), try unwritten(g2.outputShape), try unwritten(g2.outputShape))
    let (d, g2x, g1x, dx) = (try unwritten(g2.outputShape), try unwritten(g2.inputShape), try unwritten(g1.inputShape), try unwritten(g1.inputShape))
    var forward: [ImageStep] = [
      .convForward(y: mid, x: x, weight: w1, bias: b1, geometry: g1, relu: true),
      .convForward(y: main, x: mid, weight: w2, bias: b2, geometry: g2, relu: false),
    ]
    var backward: [ImageStep] = [
      .reluGradient(dx: d, dy: dy, y: out),
      .convInputGradient(dx: g2x, dy: d, weight: w2, geometry: g2, reluOutput: nil),
      .convInputGradient(dx: g1x, dy: g2x, weight: w1, geometry: g1, reluOutput: mid),
    ]
    var (skip, skipGradient) = (x, d)
    if let gs {
      let ws = try frozen(v[5], gs)
      (skip, skipGradient) = (try unwritten(gs.outputShape), try unwritten(gs.inputShape))
      forward.append(.convForward(y: skip, x: x, weight: ws, bias: nil, geometry: gs, relu: false))
      backward.append(.convInputGradient(dx: skipGradient, dy: d, weight: ws, geometry: gs, reluOutput: nil))
    }
    forward.append(.addReLU(out: out, a: main, b: skip))
    backward.append(.add(out: dx, a: g1x, b: skipGradient))
    (self.forward, self.backward, outputs) = (forward, backward, [mid, out, dx])
  }
}

extension OpSuite {
  /// ResNet18's narrow first stage (16 channels at 32x32, as at 75 % filters pruned) and a
  /// projected block (strided conv1, 1x1 shortcut): the CPU backend runs both depth first.
  static func residualBlockCases() -> [OpCase] {
    [
      ResidualBlockRuns.Shape(batch: 3, inChannels: 16, channels: 16, size: 32, stride: 1),
      ResidualBlockRuns.Shape(batch: 5, inChannels: 4, channels: 8, size: 10, stride: 2),
    ].map { shape in
      OpCase(
        op: "residual_block", shape: "\(shape)", atol: 2e-4, rtol: 1e-3, inputs: { rng in shape.values(&rng) },
        run: { b, v in
          let runs = try ResidualBlockRuns(b, shape, values: v)
          try b.runPerImage(runs.forward)
          try b.runPerImage(runs.backward)
          return try runs.outputs.map(b.download)
        })
    }
  }
}
