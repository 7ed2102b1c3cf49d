import GPU

/// ResNet's basic block: `relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`, where the
/// shortcut is the identity, or a strided 1x1 conv + BN when the shape changes (names
/// `<prefix>.conv1`, `.bn1`, `.conv2`, `.bn2`, `.shortcut.0`, `.shortcut.1`, as in the CIFAR ResNets).
public final class BasicBlock: Layer {
  let backend: Backend
  let conv1: Conv2d
  let bn1: BatchNorm2d
  let relu1: ReLU
  let conv2: Conv2d
  let bn2: BatchNorm2d
  let shortcut: (conv: Conv2d, bn: BatchNorm2d)?
  let relu2: ReLU
  private var inputShape: [Int] = []
  /// Whether the last forward was one per-image run (`forwardPerImage`).
  private var ranPerImage = false
  private let inputGrad = BufferSlot()

  public init(
    name: String, inChannels: Int, midChannels: Int? = nil, outChannels: Int, stride: Int, initialization he: WeightInit = .kaimingNormal,
    backend b: Backend, rng: inout SeededRNG
  ) throws {
    let midChannels = midChannels ?? outChannels
    backend = b
    conv1 = try Conv2d(
      name: "\(name).conv1", inChannels: inChannels, outChannels: midChannels, kernel: 3, stride: stride, padding: 1, bias: false, initialization: he,
      backend: b, rng: &rng)
    bn1 = try BatchNorm2d(name: "\(name).bn1", channels: midChannels, backend: b)
    relu1 = ReLU(backend: b)
    conv2 = try Conv2d(
      name: "\(name).conv2", inChannels: midChannels, outChannels: outChannels, kernel: 3, padding: 1, bias: false, initialization: he, backend: b,
      rng: &rng)
    bn2 = try BatchNorm2d(name: "\(name).bn2", channels: outChannels, backend: b)
    if stride != 1 || inChannels != outChannels {
      shortcut = (
        try Conv2d(
          name: "\(name).shortcut.0", inChannels: inChannels, outChannels: outChannels, kernel: 1, stride: stride, bias: false, initialization: he,
          backend: b, rng: &rng),
        try BatchNorm2d(name: "\(name).shortcut.1", channels: outChannels, backend: b)
      )
    } else {
      shortcut = nil
    }
    relu2 = ReLU(backend: b)
  }

  var mainPath: [Layer] { [conv1, bn1, relu1, conv2, bn2] }
  /// conv1 and its ReLU as one step, for when batch norm is folded into the convolutions.
  private lazy var head = ConvReLU(conv1, relu1)
  /// bn1 and the ReLU as one step, for when it is not.
  private lazy var norm1 = NormReLU(bn1)
  /// What forward and backward run: conv1, bn1 + ReLU fused, conv2 and bn2, or with the norms
  /// folded (eval mode) conv1 + ReLU fused and conv2, and the shortcut's conv alone.
  private var mainSteps: [Layer] { bn1.isFolded ? [head, conv2] : [conv1, norm1, conv2, bn2] }
  private var shortcutSteps: [Layer]? { shortcut.map { bn1.isFolded ? [$0.conv] : [$0.conv, $0.bn] } }
  /// The convolutions with the batch norm right after each (`Model.foldBatchNorm`).
  var convBatchNormPairs: [(Conv2d, BatchNorm2d)] { [(conv1, bn1), (conv2, bn2)] + (shortcut.map { [($0.conv, $0.bn)] } ?? []) }
  public var children: [Layer] { mainPath + (shortcut.map { [$0.conv, $0.bn] } ?? []) + [relu2] }
  public var parameters: [Parameter] { children.flatMap(\.parameters) }
  public func setTraining(_ training: Bool) { for c in children { c.setTraining(training) } }
  public func outputShape(for input: [Int]) -> [Int] { conv2.outputShape(for: conv1.outputShape(for: input)) }

  public func forwardMACs(input: [Int]) -> Int {
    let mid = conv1.outputShape(for: input)
    return conv1.forwardMACs(input: input) + conv2.forwardMACs(input: mid) + (shortcut?.conv.forwardMACs(input: input) ?? 0)
  }

  public func forward(_ x: Tensor) throws -> Tensor {
    inputShape = x.shape
    ranPerImage = false
    if bn1.isFolded, let out = try forwardPerImage(x) { return out }
    var h = x
    for layer in mainSteps { h = try layer.forward(h) }
    let skip = try shortcutSteps.map { try $0.reduce(x) { try $1.forward($0) } } ?? x
    return try relu2.forward(sum: h, skip)
  }

  public func backward(_ dy: Tensor, parameterGradients: Bool, inputGradient: Bool) throws -> Tensor? {
    if ranPerImage && !parameterGradients {
      return inputGradient ? try inputGradientPerImage(dy) : nil
    }
    guard let d = try relu2.backward(dy, parameterGradients: parameterGradients, inputGradient: true) else { return nil }
    func back(_ steps: [Layer]) throws -> Tensor? {
      var g: Tensor? = d
      for (i, layer) in steps.enumerated().reversed() {
        guard let dy = g else { break }
        g = try layer.backward(dy, parameterGradients: parameterGradients, inputGradient: i > 0 || inputGradient)
      }
      return g
    }
    let g = try back(mainSteps)
    let skip = try shortcutSteps.map(back) ?? (inputGradient ? d : nil)
    guard inputGradient, let main = g, let skip else { return nil }
    let dx = try inputGrad.get(inputShape, backend)
    try backend.add(out: dx, a: main, b: skip)
    return dx
  }

  /// With the norms folded (evaluation, attacks), the forward as one per-image run
  /// (`Backend.runPerImage`): conv1 + ReLU, conv2, the shortcut's conv, then the sum and its ReLU;
  /// nil where a convolution runs on the sparse kernels at this batch.
  private func forwardPerImage(_ x: Tensor) throws -> Tensor? {
    guard let (first, mid) = try conv1.perImageForward(x, relu: true), let (second, main) = try conv2.perImageForward(mid, relu: false)
    else { return nil }
    var steps = [first, second]
    var skip = x
    if let shortcut {
      guard let (step, y) = try shortcut.conv.perImageForward(x, relu: false) else { return nil }
      steps.append(step)
      skip = y
    }
    let out = try relu2.outputBuffer(main.shape)
    steps.append(.addReLU(out: out, a: main, b: skip))
    try backend.runPerImage(steps)
    ranPerImage = true
    return out
  }

  /// The input gradient after `forwardPerImage`, as one per-image run: the last ReLU's mask,
  /// conv2's gradient, conv1's through its ReLU, the shortcut's, and their sum.
  private func inputGradientPerImage(_ dy: Tensor) throws -> Tensor {
    let (mask, d) = try relu2.gradientStep(dy)
    let (second, g2) = try conv2.perImageInputGradient(d, reluOutput: nil)
    let (first, g1) = try conv1.perImageInputGradient(g2, reluOutput: conv1.lastOutput)
    var steps = [mask, second, first]
    var skip = d
    if let shortcut {
      let (step, gs) = try shortcut.conv.perImageInputGradient(d, reluOutput: nil)
      steps.append(step)
      skip = gs
    }
    let dx = try inputGrad.get(inputShape, backend)
    steps.append(.add(out: dx, a: g1, b: skip))
    try backend.runPerImage(steps)
    return dx
  }
}
