import GPU

/// One differentiable step of a model, run on a backend.
///
/// `forward` keeps what `backward` needs (its input or output) until the next `forward`; the
/// returned tensor is owned by the layer and overwritten by the next call.
public protocol Layer: AnyObject {
  var parameters: [Parameter] { get }
  func outputShape(for input: [Int]) -> [Int]
  func forward(_ x: Tensor) throws -> Tensor
  /// Given dL/dy of the last forward: accumulates parameter gradients when asked (training),
  /// and returns dL/dx when asked (attacks, and every layer but the first in training).
  func backward(_ dy: Tensor, parameterGradients: Bool, inputGradient: Bool) throws -> Tensor?
  func setTraining(_ training: Bool)
  var children: [Layer] { get }
  func forwardMACs(input: [Int]) -> Int
  /// Hands the model's pruning state to every layer that computes with a prunable weight.
  func attach(_ pruning: PruningState)
}

extension Layer {
  /// Switches batch-norm layers between batch statistics (training) and running statistics.
  public func setTraining(_ training: Bool) {
    for child in children { child.setTraining(training) }
  }

  public func attach(_ pruning: PruningState) {
    for child in children { child.attach(pruning) }
  }

  /// Layers inside a composite layer (a residual block); none for plain layers.
  public var children: [Layer] { [] }

  /// Multiply-adds per forward pass for an input shape (convs and linears; others are cheap).
  public func forwardMACs(input: [Int]) -> Int { 0 }
}

/// A layer whose prunable weight can be computed with by its nonzeros only (`SparseConvWeights`):
/// evaluation and attacks of a pruned model, where no weight gradient is needed.
public protocol SparseComputable: Layer {
  var weight: Parameter { get }
  /// The compressed effective weight while the layer computes sparse.
  var sparse: SparseConvWeights? { get }
  /// Compresses the current effective weight (`w * mask`) and computes with it from now on, or
  /// goes back to the dense weight.
  func computeSparse(_ on: Bool) throws
  /// The last forward's shapes as a convolution (a linear layer is a 1x1 one over 1x1 images).
  var lastConvolution: ConvGeometry? { get }
}
