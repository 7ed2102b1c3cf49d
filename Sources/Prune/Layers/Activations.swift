import GPU

/// `y = max(x, 0)`.
public final class ReLU: Layer {
  let backend: Backend
  private var output: Tensor?
  private let out = BufferSlot()
  private let inputGrad = BufferSlot()

  public init(backend: Backend) { self.backend = backend }
  public var parameters: [Parameter] { [] }
  public func outputShape(for input: [Int]) -> [Int] { input }

  public func forward(_ x: Tensor) throws -> Tensor {
    let y = try out.get(x.shape, backend)
    try backend.reluForward(y: y, x: x)
    output = y
    return y
  }

  /// The forward of `a + b` without writing the sum (a residual block's last step).
  func forward(sum a: Tensor, _ b: Tensor) throws -> Tensor {
    let y = try out.get(a.shape, backend)
    try backend.addReLU(out: y, a: a, b: b)
    output = y
    return y
  }

  /// The output tensor of a forward another op fills (a per-image run's last step).
  func outputBuffer(_ shape: [Int]) throws -> Tensor {
    let y = try out.get(shape, backend)
    output = y
    return y
  }

  /// The gradient through the last forward's output as a step of a per-image run.
  func gradientStep(_ dy: Tensor) throws -> (step: ImageStep, dx: Tensor) {
    guard let y = output else { preconditionFailure("ReLU: backward before forward") }
    let dx = try inputGrad.get(y.shape, backend)
    return (.reluGradient(dx: dx, dy: dy, y: y), dx)
  }

  public func backward(_ dy: Tensor, parameterGradients: Bool, inputGradient: Bool) throws -> Tensor? {
    guard inputGradient, let y = output else { return nil }
    return try gradient(dy, output: y)
  }

  /// dL/dx = dy * (y > 0) for the output y of a forward (its own, or a fused convolution's).
  func gradient(_ dy: Tensor, output y: Tensor) throws -> Tensor {
    let dx = try inputGrad.get(y.shape, backend)
    try backend.reluBackward(dx: dx, dy: dy, y: y)
    return dx
  }
}

/// A Conv2d and the ReLU after it, run as one step: the forward writes `max(conv, 0)` in the
/// convolution's own output pass, and an attack step's input gradient reads dy through the ReLU's
/// mask while the convolution gathers it, so the ReLU makes no pass over memory of its own. A
/// training step (parameter gradients) takes the ReLU's gradient first, as the two layers would.
/// `Model` runs these in place of the pairs; the two layers stay in its `layers` (parameters,
/// names, pruning).
final class ConvReLU: Layer {
  let conv: Conv2d
  let relu: ReLU

  init(_ conv: Conv2d, _ relu: ReLU) {
    self.conv = conv
    self.relu = relu
  }

  var parameters: [Parameter] { conv.parameters }
  func outputShape(for input: [Int]) -> [Int] { conv.outputShape(for: input) }
  func forwardMACs(input: [Int]) -> Int { conv.forwardMACs(input: input) }
  func forward(_ x: Tensor) throws -> Tensor { try conv.forward(x, relu: true) }

  func backward(_ dy: Tensor, parameterGradients: Bool, inputGradient: Bool) throws -> Tensor? {
    if !parameterGradients {
      return try conv.backward(dy, parameterGradients: false, inputGradient: inputGradient, throughReLU: true)
    }
    guard let y = conv.lastOutput else { preconditionFailure("\(conv.weight.name): backward before forward") }
    return try conv.backward(try relu.gradient(dy, output: y), parameterGradients: parameterGradients, inputGradient: inputGradient)
  }

  /// The layers to run for `layers`: each Conv2d, or unfolded batch norm, directly followed by a
  /// ReLU becomes one step (`ConvReLU`, `NormReLU`).
  static func fused(_ layers: [Layer]) -> [Layer] {
    var steps: [Layer] = []
    var i = 0
    while i < layers.count {
      if let conv = layers[i] as? Conv2d, i + 1 < layers.count, let relu = layers[i + 1] as? ReLU {
        steps.append(ConvReLU(conv, relu))
        i += 2
      } else if let norm = layers[i] as? BatchNorm2d, !norm.isFolded, i + 1 < layers.count, layers[i + 1] is ReLU {
        steps.append(NormReLU(norm))
        i += 2
      } else {
        steps.append(layers[i])
        i += 1
      }
    }
    return steps
  }
}

/// A batch norm (not folded) and the ReLU after it, run as one step: the forward writes
/// `max(norm, 0)` in the norm's own pass, and the backward reads dy through the ReLU's mask in the
/// norm's sums and input gradient, so the ReLU makes no pass over memory of its own (training
/// steps, where the norms use batch statistics and are not folded).
final class NormReLU: Layer {
  let norm: BatchNorm2d

  init(_ norm: BatchNorm2d) { self.norm = norm }

  var parameters: [Parameter] { norm.parameters }
  func outputShape(for input: [Int]) -> [Int] { input }
  func forward(_ x: Tensor) throws -> Tensor { try norm.forward(x, relu: true) }

  func backward(_ dy: Tensor, parameterGradients: Bool, inputGradient: Bool) throws -> Tensor? {
    try norm.backward(dy, parameterGradients: parameterGradients, inputGradient: inputGradient, throughReLU: true)
  }
}

/// Non-overlapping 2x2 max pooling (PyTorch's `MaxPool2d(2)` on even sizes).
public final class MaxPool2x2: Layer {
  let backend: Backend
  private var input: Tensor?
  private let out = BufferSlot()
  private let inputGrad = BufferSlot()

  public init(backend: Backend) { self.backend = backend }
  public var parameters: [Parameter] { [] }
  public func outputShape(for input: [Int]) -> [Int] { [input[0], input[1], input[2] / 2, input[3] / 2] }

  public func forward(_ x: Tensor) throws -> Tensor {
    let y = try out.get(outputShape(for: x.shape), backend)
    try backend.maxPool2x2Forward(y: y, x: x)
    input = x
    return y
  }

  public func backward(_ dy: Tensor, parameterGradients: Bool, inputGradient: Bool) throws -> Tensor? {
    guard inputGradient, let x = input else { return nil }
    let dx = try inputGrad.get(x.shape, backend)
    try backend.maxPool2x2Backward(dx: dx, dy: dy, x: x)
    return dx
  }
}

/// [N, C, H, W] -> [N, C*H*W], sharing storage (no copy).
public final class Flatten: Layer {
  private var inputShape: [Int] = []
  public init() {}
  public var parameters: [Parameter] { [] }
  public func outputShape(for input: [Int]) -> [Int] { [input[0], input.dropFirst().reduce(1, *)] }

  public func forward(_ x: Tensor) throws -> Tensor {
    inputShape = x.shape
    return x.reshaped(outputShape(for: x.shape))
  }

  public func backward(_ dy: Tensor, parameterGradients: Bool, inputGradient: Bool) throws -> Tensor? {
    inputGradient ? dy.reshaped(inputShape) : nil
  }
}
