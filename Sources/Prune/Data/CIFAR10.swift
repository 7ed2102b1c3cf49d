import Foundation

/// CIFAR-10, binary version (https://www.cs.toronto.edu/~kriz/cifar.html): `data_batch_1.bin` ...
/// `data_batch_5.bin` and `test_batch.bin`, in the given directory or its `cifar-10-batches-bin/`.
///
/// Each record is 3073 bytes: a label byte 0...9, then 1024 red, 1024 green and 1024 blue bytes,
/// each plane 32x32 row-major — already CHW, so images come out NCHW [N, 3, 32, 32].
public enum CIFAR10 {
  static let recordSize = 3073
  static let pixels = 3072

  public static func load(directory: String, train: Bool, limit: Int?) throws -> LabeledImages {
    let names = train ? (1...5).map { "data_batch_\($0).bin" } : ["test_batch.bin"]
    let base =
      FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent(names[0]))
      ? directory : (directory as NSString).appendingPathComponent("cifar-10-batches-bin")
    var images: [Float] = []
    var labels: [Int] = []
    for name in names {
      if let limit, labels.count >= limit { break }
      let path = (base as NSString).appendingPathComponent(name)
      guard FileManager.default.fileExists(atPath: path) else {
        throw UserError.badDataFile(
          path: path,
          problem:
            "missing; expected \(names.joined(separator: ", ")) here — download the CIFAR-10 binary version from https://www.cs.toronto.edu/~kriz/cifar.html and extract it"
        )
      }
      let bytes: [UInt8]
      do { bytes = try FileBytes.read(path: path) } catch let failure as FileBytes.Failure {
        throw UserError.badDataFile(path: path, problem: failure.problem)
      }
      try decode(bytes, path: path, limit: (limit ?? .max) - labels.count, into: &images, labels: &labels)
    }
    return LabeledImages(images: images, labels: labels, channels: 3, height: 32, width: 32, classCount: 10)
  }

  /// Appends the first `limit` records of one batch file's `bytes` (pixels scaled to [0, 1]).
  public static func decode(_ bytes: [UInt8], path: String, limit: Int, into images: inout [Float], labels: inout [Int]) throws {
    guard !bytes.isEmpty, bytes.count % recordSize == 0 else {
      throw UserError.badDataFile(path: path, problem: "\(bytes.count) bytes is not a whole number of 3073-byte records (truncated or corrupt)")
    }
    let records = min(bytes.count / recordSize, max(limit, 0))
    images.reserveCapacity(images.count + records * pixels)
    for r in 0..<records {
      let label = Int(bytes[r * recordSize])
      guard label <= 9 else { throw UserError.badDataFile(path: path, problem: "record \(r) has label \(label); expected 0...9") }
      labels.append(label)
      for i in 1...pixels { images.append(Float(bytes[r * recordSize + i]) / 255) }
    }
  }
}
