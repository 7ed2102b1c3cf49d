import GPU

/// The architectures advprune can build, by their CLI names.
public enum Architecture: String, CaseIterable, Sendable {
  case smallcnn

  public init(parsing name: String) throws {
    guard let arch = Architecture(rawValue: name.lowercased()) else {
      throw UserError.badValue(name: "architecture", value: name, problem: "unknown; known: \(Architecture.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    self = arch
  }

  /// [C, H, W] of one input image.
  public var inputShape: [Int] {
    switch self {
    case .smallcnn: return [1, 28, 28]
    }
  }

  public var classes: Int { 10 }

  /// Builds the network with PyTorch's default initialisation drawn from `seed`.
  public func build(backend: Backend, seed: UInt64) throws -> Model {
    var rng = SeededRNG.derive(seed, 0x1D1)
    switch self {
    case .smallcnn: return try smallCNN(backend: backend, rng: &rng)
    }
  }
}
