import GPU

extension LabeledImages {
  /// Features per image (C*H*W).
  public var imageSize: Int { channels * height * width }

  /// The host arrays of the samples at `indices`: images NCHW and labels as floats.
  func gather<C: Collection<Int>>(_ indices: C) -> (images: [Float], labels: [Float]) {
    let size = imageSize
    var images = [Float](repeating: 0, count: indices.count * size)
    var labels = [Float](repeating: 0, count: indices.count)
    images.withUnsafeMutableBufferPointer { out in
      self.images.withUnsafeBufferPointer { src in
        for (row, index) in indices.enumerated() {
          out.baseAddress!.advanced(by: row * size).update(from: src.baseAddress!.advanced(by: index * size), count: size)
          labels[row] = Float(self.labels[index])
        }
      }
    }
    return (images, labels)
  }

  /// A seeded permutation of the sample indices for one epoch.
  public func shuffledOrder(seed: UInt64, epoch: Int) -> [Int] {
    var rng = SeededRNG.derive(seed, 0xDA7A &+ UInt64(epoch))
    var order = Array(0..<count)
    order.shuffle(using: &rng)
    return order
  }
}

/// Moves batches of a data set onto the device, reusing two device tensors.
final class BatchUploader {
  let data: LabeledImages
  let backend: Backend
  private let images = BufferSlot()
  private let labels = BufferSlot()

  init(data: LabeledImages, backend: Backend) {
    self.data = data
    self.backend = backend
  }

  func upload<C: Collection<Int>>(_ indices: C) throws -> (x: Tensor, y: Tensor, labels: [Int]) {
    var rng = SeededRNG(seed: 0)
    return try upload(indices, augmentation: .none, rng: &rng)
  }

  /// Uploads the samples at `indices`, augmented on the host first.
  func upload<C: Collection<Int>>(_ indices: C, augmentation: Augmentation, rng: inout SeededRNG) throws -> (x: Tensor, y: Tensor, labels: [Int]) {
    var (hostImages, hostLabels) = data.gather(indices)
    augmentation.apply(images: &hostImages, count: indices.count, channels: data.channels, height: data.height, width: data.width, rng: &rng)
    let x = try images.get([indices.count, data.channels, data.height, data.width], backend)
    let y = try labels.get([indices.count], backend)
    try backend.write(hostImages, to: x)
    try backend.write(hostLabels, to: y)
    return (x, y, hostLabels.map { Int($0) })
  }
}
