import GPU

/// Training-time augmentation of 32x32 data sets: a random crop of the image zero-padded by
/// `padCrop` pixels on each side, then (when enabled) a horizontal flip with probability 1/2.
public struct Augmentation: Sendable, Equatable {
  public var padCrop: Int
  public var horizontalFlip: Bool

  public static let none = Augmentation(padCrop: 0, horizontalFlip: false)
  public static let cifar = Augmentation(padCrop: 4, horizontalFlip: true)
  /// Digits must not be mirrored.
  public static let svhn = Augmentation(padCrop: 4, horizontalFlip: false)

  public init(padCrop: Int, horizontalFlip: Bool) {
    self.padCrop = padCrop
    self.horizontalFlip = horizontalFlip
  }

  public var isIdentity: Bool { padCrop == 0 && !horizontalFlip }

  /// Augments `count` NCHW images in place, drawing offsets and flips from `rng`.
  public func apply(images: inout [Float], count: Int, channels: Int, height: Int, width: Int, rng: inout SeededRNG) {
    guard !isIdentity else { return }
    let plane = height * width
    var scratch = [Float](repeating: 0, count: channels * plane)
    for n in 0..<count {
      let dy = padCrop == 0 ? 0 : Int(rng.next() % UInt64(2 * padCrop + 1)) - padCrop
      let dx = padCrop == 0 ? 0 : Int(rng.next() % UInt64(2 * padCrop + 1)) - padCrop
      let flip = horizontalFlip && rng.next() & 1 == 1
      let base = n * channels * plane
      for c in 0..<channels {
        for y in 0..<height {
          let sy = y + dy
          for x in 0..<width {
            let sx = (flip ? width - 1 - x : x) + dx
            let inside = sy >= 0 && sy < height && sx >= 0 && sx < width
            scratch[c * plane + y * width + x] = inside ? images[base + c * plane + sy * width + sx] : 0
          }
        }
      }
      images.replaceSubrange(base..<(base + channels * plane), with: scratch)
    }
  }
}
