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

  public func backward(_ dy: Tensor, parameterGradients: Bool, inputGradient: Bool) throws -> Tensor? {
    guard inputGradient, let y = output else { return nil }
    let dx = try inputGrad.get(y.shape, backend)
    try backend.reluBackward(dx: dx, dy: dy, y: y)
    return dx
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
