import GPU

/// A trainable tensor with its gradient and SGD velocity.
///
/// `name` is the PyTorch state_dict key (`conv1.weight`). What pruning decides about it (its
/// mask, scores, auxiliaries) lives in the model's `PruningState` under the same name.
public final class Parameter {
  public let name: String
  public let value: Tensor
  public let grad: Tensor
  public let velocity: Tensor
  /// Conv and linear weights are prunable; biases and batch-norm parameters are not.
  public let isPrunable: Bool
  /// Buffers (batch-norm running statistics) are saved and loaded but never stepped by SGD.
  public let isTrainable: Bool

  public init(name: String, value: Tensor, backend: Backend, isPrunable: Bool, isTrainable: Bool = true) throws {
    self.name = name
    self.value = value
    self.grad = try backend.zeros(like: value)
    self.velocity = try backend.zeros(like: value)
    self.isPrunable = isPrunable
    self.isTrainable = isTrainable
  }

  public var shape: [Int] { value.shape }
  public var count: Int { value.count }
}

/// Reuses one output tensor while the requested shape stays the same (the usual case: every
/// batch but the last), so a training step allocates nothing on the device.
final class BufferSlot {
  private var tensor: Tensor?

  func get(_ shape: [Int], _ backend: Backend) throws -> Tensor {
    if let tensor, tensor.shape == shape { return tensor }
    let fresh = try backend.zeros(shape)
    tensor = fresh
    return fresh
  }
}

/// A growing row of slots, one per occurrence of something a pass repeats.
final class BufferSlots {
  private var slots: [BufferSlot] = []

  func slot(_ k: Int) -> BufferSlot {
    while slots.count <= k { slots.append(BufferSlot()) }
    return slots[k]
  }
}

/// How a conv or linear layer's weights and bias start.
public enum WeightInit: Sendable {
  /// PyTorch's default (kaiming_uniform with a = sqrt(5)): weight and bias uniform in
  /// [-1/sqrt(fan_in), 1/sqrt(fan_in)].
  case pytorchDefault
  /// `kaiming_normal_` (fan_in, ReLU gain): weight ~ N(0, 2/fan_in), bias 0.
  case kaimingNormal
  /// Weight and bias 0 (a classifier head that starts at uniform predictions).
  case zeros

  func weights(count: Int, fanIn: Int, rng: inout SeededRNG) -> [Float] {
    switch self {
    case .pytorchDefault: return rng.uniformArray(count, -1 / Float(fanIn).squareRoot(), 1 / Float(fanIn).squareRoot())
    case .kaimingNormal: return (0..<count).map { _ in (2 / Float(fanIn)).squareRoot() * rng.normal() }
    case .zeros: return [Float](repeating: 0, count: count)
    }
  }

  func biases(count: Int, fanIn: Int, rng: inout SeededRNG) -> [Float] {
    self == .pytorchDefault ? WeightInit.pytorchDefault.weights(count: count, fanIn: fanIn, rng: &rng) : [Float](repeating: 0, count: count)
  }
}
