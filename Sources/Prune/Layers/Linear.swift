import GPU

/// A fully connected layer: `y = x w_eff^T + b`, with the effective weight from the pruning
/// state (`WeightSource`).
/// Inputs of any rank are read as [N, features] (PyTorch's flatten before a Linear).
public final class Linear: SparseComputable {
  let backend: Backend
  public let weight: Parameter
  public let bias: Parameter?
  private var input: Tensor?
  private let output = BufferSlot()
  private let inputGrad = BufferSlot()
  private let masked = BufferSlot()
  /// The effective weight of the last forward, which the backward differentiates through.
  private var usedWeight: Tensor?
  /// The model's pruning state, which says where the effective weight comes from.
  private var pruning: PruningState?
  public private(set) var sparse: SparseConvWeights?

  public init(
    name: String, inputs: Int, outputs: Int, bias: Bool = true, initialization: WeightInit = .pytorchDefault, backend: Backend, rng: inout SeededRNG
  ) throws {
    self.backend = backend
    weight = try Parameter(
      name: "\(name).weight",
      value: try backend.upload(initialization.weights(count: inputs * outputs, fanIn: inputs, rng: &rng), shape: [outputs, inputs]),
      backend: backend, isPrunable: true)
    self.bias =
      bias
      ? try Parameter(
        name: "\(name).bias", value: try backend.upload(initialization.biases(count: outputs, fanIn: inputs, rng: &rng), shape: [outputs]),
        backend: backend, isPrunable: false)
      : nil
  }

  public var parameters: [Parameter] { [weight] + (bias.map { [$0] } ?? []) }

  public func outputShape(for input: [Int]) -> [Int] { [input[0], weight.shape[0]] }

  public func forwardMACs(input: [Int]) -> Int { input[0] * weight.count }

  public func forward(_ x: Tensor) throws -> Tensor {
    precondition(x.count == x.shape[0] * weight.shape[1], "\(weight.name): input \(x.shape) does not have \(weight.shape[1]) features")
    let flat = x.reshaped([x.shape[0], weight.shape[1]])
    let y = try output.get(outputShape(for: x.shape), backend)
    if let sparse {
      try backend.sparseConv2dForward(y: y, x: flat, weights: sparse, bias: bias?.value, geometry: asConvolution(rows: x.shape[0]), relu: false)
    } else {
      try backend.linearForward(y: y, x: flat, weight: try useWeight(), bias: bias?.value)
    }
    input = x
    return y
  }

  public func backward(_ dy: Tensor, parameterGradients: Bool, inputGradient: Bool) throws -> Tensor? {
    guard let x = input else { preconditionFailure("\(weight.name): backward before forward") }
    let flat = x.reshaped([x.shape[0], weight.shape[1]])
    if parameterGradients {
      precondition(sparse == nil, "\(weight.name): a sparse layer evaluates; it has no weight gradient")
      try backend.linearBackwardWeight(dWeight: weight.grad, dBias: bias?.grad, dy: dy, x: flat)
    }
    guard inputGradient else { return nil }
    let dx = try inputGrad.get(x.shape, backend)
    if let sparse {
      try backend.sparseConv2dBackwardData(dx: dx, dy: dy, weights: sparse, geometry: asConvolution(rows: x.shape[0]), reluOutput: nil)
    } else {
      try backend.linearBackwardData(dx: dx.reshaped(flat.shape), dy: dy, weight: usedWeight ?? weight.value)
    }
    return dx
  }

  public func attach(_ pruning: PruningState) { self.pruning = pruning }

  public var lastConvolution: ConvGeometry? { input.map { asConvolution(rows: $0.shape[0]) } }

  public func computeSparse(_ on: Bool) throws {
    sparse = on ? try SparseConvWeights(dense: try backend.download(try useWeight()), shape: weight.shape, backend: backend) : nil
  }

  /// The layer as the 1x1 convolution of a 1x1 image, which is how the sparse kernels see it.
  private func asConvolution(rows: Int) -> ConvGeometry {
    ConvGeometry(batch: rows, inChannels: weight.shape[1], height: 1, width: 1, outChannels: weight.shape[0], kernel: 1)
  }

  private func useWeight() throws -> Tensor {
    let w = try (pruning?.source(for: weight) ?? .dense).effective(weight, backend, masked)
    usedWeight = w
    return w
  }
}
