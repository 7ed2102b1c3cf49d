/// The data sets advprune reads, by their CLI names.
public enum DatasetName: String, CaseIterable, Sendable {
  case fashionMNIST = "fashion-mnist"
  case mnist
  case cifar10
  case svhn

  public init(parsing name: String) throws {
    guard let d = DatasetName(rawValue: name.lowercased()) else {
      throw UserError.badValue(
        name: "--dataset", value: name, problem: "unknown; known: \(DatasetName.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    self = d
  }

  /// Where Debian's packages put the files (`dataset-fashion-mnist`); `--data-dir` overrides.
  public var defaultDirectory: String {
    switch self {
    case .fashionMNIST: return "/usr/share/datasets/fashion-mnist"
    case .mnist: return "/usr/share/datasets/mnist"
    case .cifar10: return "data/cifar-10-batches-bin"
    case .svhn: return "data/svhn"
    }
  }

  /// [C, H, W] of its images.
  public var imageShape: [Int] { isColor32 ? [3, 32, 32] : [1, 28, 28] }

  /// CIFAR-10 and SVHN: 32x32 colour images.
  var isColor32: Bool { self == .cifar10 || self == .svhn }

  /// L-inf eps of the usual threat model in input space (8/255 for CIFAR-10 and SVHN).
  public var defaultEps: Float { isColor32 ? 8 / 255 : 0.1 }

  /// Training-time augmentation: random crop and flip for CIFAR-10, crop only for SVHN's digits,
  /// none for the 28x28 sets.
  public var augmentation: Augmentation {
    switch self {
    case .cifar10: return .cifar
    case .svhn: return .svhn
    case .fashionMNIST, .mnist: return .none
    }
  }

  /// Loads the training or test split, the first `limit` samples when given.
  public func load(directory: String?, train: Bool, limit: Int?) throws -> LabeledImages {
    if let limit, limit < 1 {
      throw UserError.badValue(name: train ? "--train-limit" : "--n (--test-limit)", value: "\(limit)", problem: "must be >= 1")
    }
    switch self {
    case .fashionMNIST, .mnist: return try IDXDataset.load(directory: directory ?? defaultDirectory, train: train, limit: limit)
    case .cifar10: return try CIFAR10.load(directory: directory ?? defaultDirectory, train: train, limit: limit)
    case .svhn: return try SVHN.load(directory: directory ?? defaultDirectory, train: train, limit: limit)
    }
  }

  /// Fails unless `architecture` takes this data set's images.
  public func check(_ architecture: Architecture) throws {
    guard architecture.inputShape == imageShape else {
      throw UserError.badValue(
        name: "--arch", value: architecture.rawValue,
        problem: "takes \(architecture.inputShape) inputs but \(rawValue) images are \(imageShape)")
    }
  }
}
