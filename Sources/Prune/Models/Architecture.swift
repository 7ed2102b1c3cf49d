import GPU

/// The architectures advprune can build, by their CLI names.
public enum Architecture: String, CaseIterable, Sendable {
  case smallcnn
  case resnet18
  case vgg16
  case vgg16Classic = "vgg16-classic"

  public init(parsing name: String) throws {
    guard let arch = Architecture(rawValue: name.lowercased()) else {
      throw UserError.badValue(
        name: "architecture", value: name, problem: "unknown; known: \(Architecture.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    self = arch
  }

  /// [C, H, W] of one input image.
  public var inputShape: [Int] {
    switch self {
    case .smallcnn: return [1, 28, 28]
    case .resnet18, .vgg16, .vgg16Classic: return [3, 32, 32]
    }
  }

  public var classes: Int { 10 }

  public var summary: String {
    switch self {
    case .smallcnn: return "4 convs + 3 linears, 28x28x1 (TRADES' MNIST network)"
    case .resnet18: return "CIFAR ResNet18: 3x3 stem, BasicBlocks [2,2,2,2], 4x4 avg-pool, linear 512->10"
    case .vgg16: return "VGG16-BN, HYDRA/HARP layout: 13 convs, 4 max-pools, avg-pool to 2x2, 2048->256->256->10"
    case .vgg16Classic: return "VGG16-BN, classic CIFAR layout: 13 convs, 5 max-pools, linear 512->10"
    }
  }

  /// Builds the network with its reference initialisation drawn from `seed`. `width` scales
  /// every hidden channel count (1 = the published model; 0.25 for quick CPU runs); `channels`
  /// overrides single channel groups (`channelGroups`), as compacted models need.
  /// With `initialize` false every weight starts at zero: for a model whose values a checkpoint
  /// replaces next (`Checkpoint.assign` requires every parameter), which skips the random draws.
  public func build(backend: Backend, seed: UInt64, width: Double = 1, channels: [String: Int] = [:], initialize: Bool = true) throws -> Model {
    guard width > 0 && width <= 16 else {
      throw UserError.badValue(name: "--width", value: "\(width)", problem: "must be in (0, 16]")
    }
    var rng = SeededRNG.derive(seed, 0x1D1)
    let groups = Set(channelGroups().map(\.name))
    if let unknown = channels.keys.sorted().first(where: { !groups.contains($0) }) {
      throw UserError.badValue(name: "channels", value: unknown, problem: "\(rawValue) has no such channel group")
    }
    if let (group, count) = channels.first(where: { $0.value < 1 }) {
      throw UserError.badValue(name: "channels", value: "\(group)=\(count)", problem: "a channel group needs at least one channel")
    }
    let scaled = { (group: String, c: Int) in channels[group] ?? max(1, Int((Double(c) * width).rounded())) }
    let layers: [Layer]
    let inits = Initializers(drawn: initialize)
    switch self {
    case .smallcnn: layers = try smallCNNLayers(backend: backend, rng: &rng, channels: scaled, inits: inits)
    case .resnet18: layers = try resNet18Layers(backend: backend, rng: &rng, channels: scaled, inits: inits)
    case .vgg16: layers = try vggLayers(backend: backend, rng: &rng, channels: scaled, classic: false, inits: inits)
    case .vgg16Classic: layers = try vggLayers(backend: backend, rng: &rng, channels: scaled, classic: true, inits: inits)
    }
    return Model(architecture: self, width: width, channels: channels, backend: backend, layers: layers)
  }
}

/// The initialisations the builders use: the published ones, or zeros for a model about to be
/// overwritten by a checkpoint.
struct Initializers {
  let kaiming: WeightInit
  let pytorch: WeightInit

  init(drawn: Bool) {
    (kaiming, pytorch) = drawn ? (.kaimingNormal, .pytorchDefault) : (.zeros, .zeros)
  }
}
