import GPU

/// Batch normalisation over the channels of [N, C, H, W] (or [N, C]), PyTorch's `BatchNorm2d`:
/// `y = weight * (x - mean) / sqrt(var + eps) + bias` with batch statistics in training mode and
/// the running statistics in eval mode (attacks always run in eval mode).
public final class BatchNorm2d: Layer {
  let backend: Backend
  public let weight: Parameter
  public let bias: Parameter
  public let runningMean: Parameter
  public let runningVar: Parameter
  public let batchesTracked: Parameter
  public let momentum: Float
  public let eps: Float
  public private(set) var training = true
  private var input: Tensor?
  private var inputWasTraining = true
  private let output = BufferSlot()
  /// The last forward's output (after the ReLU when one was fused in).
  private var lastOutput: Tensor?
  private let inputGrad = BufferSlot()
  private let mean = BufferSlot()
  private let invStd = BufferSlot()
  private let one: Tensor
  /// Zero mean and shift for `scale`.
  private let zeros = BufferSlot()

  public init(name: String, channels: Int, momentum: Float = 0.1, eps: Float = 1e-5, backend: Backend) throws {
    self.backend = backend
    self.momentum = momentum
    self.eps = eps
    let ones = [Float](repeating: 1, count: channels)
    weight = try Parameter(name: "\(name).weight", value: try backend.upload(ones, shape: [channels]), backend: backend, isPrunable: false)
    bias = try Parameter(name: "\(name).bias", value: try backend.zeros([channels]), backend: backend, isPrunable: false)
    runningMean = try Parameter(
      name: "\(name).running_mean", value: try backend.zeros([channels]), backend: backend, isPrunable: false, isTrainable: false)
    runningVar = try Parameter(
      name: "\(name).running_var", value: try backend.upload(ones, shape: [channels]), backend: backend, isPrunable: false, isTrainable: false)
    // PyTorch keeps an int64 scalar; we count in float (exact to 2^24 batches) and save it as such.
    batchesTracked = try Parameter(
      name: "\(name).num_batches_tracked", value: try backend.zeros([]), backend: backend, isPrunable: false, isTrainable: false)
    one = try backend.upload([1], shape: [])
  }

  public var parameters: [Parameter] { [weight, bias, runningMean, runningVar, batchesTracked] }
  public var channels: Int { weight.count }
  public func outputShape(for input: [Int]) -> [Int] { input }
  public func setTraining(_ training: Bool) { self.training = training }

  /// Folded into the convolution before it (`Model.foldBatchNorm`): forward and backward pass
  /// the values through, the convolution computes the norm.
  public internal(set) var isFolded = false

  /// The eval-mode norm of `x` (channels on axis 1) into `y`: a folded convolution's bias.
  func normalize(_ x: Tensor, into y: Tensor) throws {
    try evaluate(x, into: y, shift: true)
  }

  /// `x * weight / sqrt(running_var + eps)` per channel (axis 1) into `y`: the norm without its
  /// shift, what a folded convolution's weight is multiplied by.
  func scale(_ x: Tensor, into y: Tensor) throws {
    try evaluate(x, into: y, shift: false)
  }

  private func evaluate(_ x: Tensor, into y: Tensor, shift: Bool) throws {
    precondition(!training, "\(weight.name): folding uses the running statistics (eval mode)")
    let zero = shift ? nil : try zeros.get([channels], backend)
    try backend.batchNormForward(
      y: y, x: x, gamma: weight.value, beta: zero ?? bias.value, mean: try mean.get([channels], backend),
      invStd: try invStd.get([channels], backend), runningMean: zero ?? runningMean.value, runningVar: runningVar.value, training: false,
      momentum: momentum, eps: eps)
  }

  public func forward(_ x: Tensor) throws -> Tensor { try forward(x, relu: false) }

  /// The forward, with `relu`: `max(norm(x), 0)` (the ReLU after it, fused; see `NormReLU`).
  func forward(_ x: Tensor, relu: Bool) throws -> Tensor {
    precondition(x.rank >= 2 && x.shape[1] == channels, "\(weight.name): input \(x.shape) does not have \(channels) channels")
    precondition(!(isFolded && relu), "\(weight.name): a folded norm's ReLU is its convolution's")
    if isFolded { return x }
    let y = try output.get(x.shape, backend)
    try backend.batchNormForward(
      y: y, x: x, gamma: weight.value, beta: bias.value, mean: try mean.get([channels], backend), invStd: try invStd.get([channels], backend),
      runningMean: runningMean.value, runningVar: runningVar.value, training: training, momentum: momentum, eps: eps, relu: relu)
    lastOutput = y
    if training { try backend.add(out: batchesTracked.value, a: batchesTracked.value, b: one) }
    input = x
    inputWasTraining = training
    return y
  }

  public func backward(_ dy: Tensor, parameterGradients: Bool, inputGradient: Bool) throws -> Tensor? {
    try backward(dy, parameterGradients: parameterGradients, inputGradient: inputGradient, throughReLU: false)
  }

  /// The backward; with `throughReLU` (the fused ReLU of `forward(_:relu:)`) dy is read through
  /// the ReLU's mask, the last forward's output, in the sums and the input gradient alike.
  func backward(_ dy: Tensor, parameterGradients: Bool, inputGradient: Bool, throughReLU: Bool) throws -> Tensor? {
    if isFolded {
      precondition(!parameterGradients, "\(weight.name): a folded norm evaluates; it has no parameter gradient")
      return inputGradient ? dy : nil
    }
    guard let x = input else { preconditionFailure("\(weight.name): backward before forward") }
    let dx = inputGradient ? try inputGrad.get(x.shape, backend) : nil
    try backend.batchNormBackward(
      dx: dx, dGamma: parameterGradients ? weight.grad : nil, dBeta: parameterGradients ? bias.grad : nil, dy: dy, x: x, gamma: weight.value,
      mean: try mean.get([channels], backend), invStd: try invStd.get([channels], backend), training: inputWasTraining,
      reluOutput: throughReLU ? lastOutput : nil)
    return dx
  }
}

/// Non-overlapping k x k average pooling: ResNet's 4x4 pool, VGG's adaptive pool to a divisor.
public final class AvgPool: Layer {
  let backend: Backend
  public let kernel: Int
  private var inputShape: [Int] = []
  private let output = BufferSlot()
  private let inputGrad = BufferSlot()

  public init(kernel: Int, backend: Backend) {
    self.kernel = kernel
    self.backend = backend
  }

  public var parameters: [Parameter] { [] }
  public func outputShape(for input: [Int]) -> [Int] { [input[0], input[1], input[2] / kernel, input[3] / kernel] }

  public func forward(_ x: Tensor) throws -> Tensor {
    if kernel == 1 {
      inputShape = x.shape
      return x
    }
    let y = try output.get(outputShape(for: x.shape), backend)
    try backend.avgPoolForward(y: y, x: x, kernel: kernel)
    inputShape = x.shape
    return y
  }

  public func backward(_ dy: Tensor, parameterGradients: Bool, inputGradient: Bool) throws -> Tensor? {
    guard inputGradient else { return nil }
    if kernel == 1 { return dy }
    let dx = try inputGrad.get(inputShape, backend)
    try backend.avgPoolBackward(dx: dx, dy: dy, kernel: kernel)
    return dx
  }
}
