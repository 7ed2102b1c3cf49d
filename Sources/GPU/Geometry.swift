/// The shape arithmetic of a 2-D convolution, shared by both backends and the layers.
///
/// Output size: `OH = (H + 2*pad - K) / stride + 1` (and the same for width).
public struct ConvGeometry: Equatable, Sendable, CustomStringConvertible {
  public let batch: Int
  public let inChannels: Int
  public let height: Int
  public let width: Int
  public let outChannels: Int
  public let kernel: Int
  public let stride: Int
  public let padding: Int

  public init(batch: Int, inChannels: Int, height: Int, width: Int, outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0) {
    precondition(kernel >= 1 && stride >= 1 && padding >= 0, "bad conv geometry")
    precondition(height + 2 * padding >= kernel && width + 2 * padding >= kernel, "kernel \(kernel) larger than padded input \(height)x\(width)")
    self.batch = batch
    self.inChannels = inChannels
    self.height = height
    self.width = width
    self.outChannels = outChannels
    self.kernel = kernel
    self.stride = stride
    self.padding = padding
  }

  public var outHeight: Int { (height + 2 * padding - kernel) / stride + 1 }
  public var outWidth: Int { (width + 2 * padding - kernel) / stride + 1 }
  /// Output pixels per image.
  public var outPixels: Int { outHeight * outWidth }
  /// Rows of the im2col matrix: one per (input channel, kernel row, kernel column).
  public var patchSize: Int { inChannels * kernel * kernel }
  /// One stride phase of the padded input, ceil((H + 2p) / s) x ceil((W + 2p) / s): the grid the
  /// CPU's direct sparse convolution computes on (the padded plane itself for stride 1).
  public var phaseGrid: (rows: Int, pitch: Int) {
    ((height + 2 * padding + stride - 1) / stride, (width + 2 * padding + stride - 1) / stride)
  }

  public var inputShape: [Int] { [batch, inChannels, height, width] }
  public var weightShape: [Int] { [outChannels, inChannels, kernel, kernel] }
  public var outputShape: [Int] { [batch, outChannels, outHeight, outWidth] }

  /// Multiply-adds of the forward pass, times two.
  public var forwardFlops: Double { 2.0 * Double(batch * outChannels * outPixels * patchSize) }

  public var description: String {
    "N\(batch) C\(inChannels) \(height)x\(width) -> \(outChannels) k\(kernel) s\(stride) p\(padding)"
  }
}

/// Which norm bounds an adversarial perturbation. L1 is for minimum-norm attacks (FMN) only:
/// the fixed-budget steps (`pgdStep`, `apgdStep`) take L-inf and L2.
public enum PerturbationNorm: String, CaseIterable, Sendable {
  case linf
  case l2
  case l1

  /// The code the kernels switch on.
  public var code: Int {
    switch self {
    case .linf: 0
    case .l2: 1
    case .l1: 2
    }
  }
}

/// Hyper-parameters of one SGD step (PyTorch's semantics: weight decay is added to the gradient,
/// `v = momentum * v + g`, `w -= lr * v`, or `w -= lr * (g + momentum * v)` with Nesterov).
public struct SGDHyper: Equatable, Sendable {
  public var learningRate: Float
  public var momentum: Float
  public var weightDecay: Float
  public var nesterov: Bool

  public init(learningRate: Float, momentum: Float = 0.9, weightDecay: Float = 0, nesterov: Bool = false) {
    self.learningRate = learningRate
    self.momentum = momentum
    self.weightDecay = weightDecay
    self.nesterov = nesterov
  }
}

func checkShape(_ t: Tensor, _ expected: [Int], _ what: String, op: String) {
  precondition(t.shape == expected, "\(op): \(what) has shape \(t.shape), expected \(expected)")
}

func checkSameCount(_ a: Tensor, _ b: Tensor, op: String) {
  precondition(a.count == b.count, "\(op): element counts differ (\(a.count) vs \(b.count))")
}
