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
