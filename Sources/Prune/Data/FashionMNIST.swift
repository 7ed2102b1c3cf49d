import Foundation

/// Images with class labels, ready for training: NCHW floats in [0, 1].
public struct LabeledImages: Sendable {
  /// `count * channels * height * width` values, each pixel byte divided by 255.
  public var images: [Float]
  public var labels: [Int]
  public var channels: Int
  public var height: Int
  public var width: Int
  public var count: Int { labels.count }
  public var classCount: Int

  /// Makes a data set; `images` must hold `labels.count * channels * height * width` values.
  public init(images: [Float], labels: [Int], channels: Int, height: Int, width: Int, classCount: Int) {
    precondition(
      images.count == labels.count * channels * height * width,
      "\(images.count) pixel values for \(labels.count) images of \(channels)x\(height)x\(width)")
    self.images = images
    self.labels = labels
    self.channels = channels
    self.height = height
    self.width = width
    self.classCount = classCount
  }
}

/// Loads MNIST-style data sets stored as IDX files (Fashion-MNIST, MNIST).
public enum IDXDataset {
  /// Both data sets have ten classes.
  static let classCount = 10

  /// Loads "train" or "t10k" split from dir: files `<split>-images-idx3-ubyte[.gz]` and
  /// `<split>-labels-idx1-ubyte[.gz]` (the .gz if present, else raw).
  ///
  /// Validates images dims `[N, height, width]`, labels dims `[N]`, equal counts and labels
  /// below 10. `limit` keeps the first `limit` samples when non-nil.
  public static func load(directory: String, train: Bool, limit: Int?) throws -> LabeledImages {
    if let limit, limit < 0 {
      throw UserError.badValue(name: "limit", value: String(limit), problem: "must not be negative")
    }
    let split = train ? "train" : "t10k"
    let imagesPath = try locate(directory: directory, name: "\(split)-images-idx3-ubyte")
    let labelsPath = try locate(directory: directory, name: "\(split)-labels-idx1-ubyte")
    let images = try IDX.read(path: imagesPath)
    let labels = try IDX.read(path: labelsPath)

    guard images.dims.count == 3, images.dims[1] > 0, images.dims[2] > 0 else {
      throw UserError.badDataFile(
        path: imagesPath, problem: "dims \(images.dims); expected [count, height, width] like [N, 28, 28]")
    }
    guard labels.dims.count == 1 else {
      throw UserError.badDataFile(path: labelsPath, problem: "dims \(labels.dims); expected [count]")
    }
    guard images.dims[0] == labels.dims[0] else {
      throw UserError.badDataFile(
        path: labelsPath, problem: "\(labels.dims[0]) labels, but \(imagesPath) has \(images.dims[0]) images")
    }
    if let index = labels.bytes.firstIndex(where: { Int($0) >= classCount }) {
      throw UserError.badDataFile(
        path: labelsPath,
        problem: "label at index \(index) is \(labels.bytes[index]); expected 0...\(classCount - 1)")
    }

    let count = min(limit ?? images.dims[0], images.dims[0])
    let (height, width) = (images.dims[1], images.dims[2])
    return LabeledImages(
      images: scaled(images.bytes, count: count * height * width),
      labels: labels.bytes[0..<count].map { Int($0) },
      channels: 1, height: height, width: width, classCount: classCount)
  }

  /// Path of `name.gz` in `directory` if it exists, else of `name`.
  static func locate(directory: String, name: String) throws -> String {
    let base = directory.hasSuffix("/") ? directory + name : directory + "/" + name
    let manager = FileManager.default
    if manager.fileExists(atPath: base + ".gz") { return base + ".gz" }
    if manager.fileExists(atPath: base) { return base }
    throw UserError.badDataFile(path: base, problem: "missing (looked for \(name).gz and \(name))")
  }

  /// The first `count` bytes as floats in [0, 1]; a table lookup keeps this cheap in debug builds.
  static func scaled(_ bytes: [UInt8], count: Int) -> [Float] {
    let table = (0...255).map { Float($0) / 255 }
    return [Float](unsafeUninitializedCapacity: count) { out, initialized in
      bytes.withUnsafeBufferPointer { source in
        table.withUnsafeBufferPointer { lookup in
          for index in 0..<count { out[index] = lookup[Int(source[index])] }
        }
      }
      initialized = count
    }
  }
}
