import Foundation
import GPU
import XCTest

@testable import Prune

final class CIFAR10Tests: XCTestCase {
  /// A record in the published layout: label, then R, G, B planes of 32x32 row-major bytes.
  /// Pixel (c, y, x) of record r holds (r + 3c + 5y + 7x) mod 256.
  func record(_ r: Int, label: UInt8) -> [UInt8] {
    var bytes: [UInt8] = [label]
    for c in 0..<3 { for y in 0..<32 { for x in 0..<32 { bytes.append(UInt8((r + 3 * c + 5 * y + 7 * x) % 256)) } } }
    return bytes
  }

  func writeBatches(_ dir: String, records: Int, label: (Int) -> UInt8 = { UInt8($0 % 10) }) throws {
    for name in (1...5).map({ "data_batch_\($0).bin" }) + ["test_batch.bin"] {
      let bytes = (0..<records).flatMap { record($0, label: label($0)) }
      try Data(bytes).write(to: URL(fileURLWithPath: dir + "/" + name))
    }
  }

  func testReadsThePublishedLayoutAsNCHW() throws {
    let dir = try temporaryDirectory(self)
    try writeBatches(dir, records: 3)
    let train = try CIFAR10.load(directory: dir, train: true, limit: nil)
    XCTAssertEqual(train.count, 15)
    XCTAssertEqual([train.channels, train.height, train.width], [3, 32, 32])
    XCTAssertEqual(Array(train.labels.prefix(4)), [0, 1, 2, 0])
    // Record 1, green (c = 1), row 2, column 3: (1 + 3 + 10 + 21) = 35.
    XCTAssertEqual(train.images[1 * 3072 + 1 * 1024 + 2 * 32 + 3], Float(35) / 255)
    let test = try CIFAR10.load(directory: dir, train: false, limit: 2)
    XCTAssertEqual(test.count, 2)
  }

  func testFindsTheExtractedSubdirectory() throws {
    let dir = try temporaryDirectory(self)
    try FileManager.default.createDirectory(atPath: dir + "/cifar-10-batches-bin", withIntermediateDirectories: true)
    try writeBatches(dir + "/cifar-10-batches-bin", records: 1)
    XCTAssertEqual(try CIFAR10.load(directory: dir, train: false, limit: nil).count, 1)
  }

  func testBadFilesAreNamed() throws {
    let dir = try temporaryDirectory(self)
    XCTAssertThrowsError(try CIFAR10.load(directory: dir, train: true, limit: nil)) {
      XCTAssert("\($0)".contains("data_batch_1.bin") && "\($0)".contains("cifar.html"), "\($0)")
    }
    try writeBatches(dir, records: 2)
    try Data(record(0, label: 1).dropLast()).write(to: URL(fileURLWithPath: dir + "/test_batch.bin"))
    XCTAssertThrowsError(try CIFAR10.load(directory: dir, train: false, limit: nil)) {
      XCTAssert("\($0)".contains("test_batch.bin") && "\($0)".contains("3073"), "\($0)")
    }
    try Data(record(0, label: 12)).write(to: URL(fileURLWithPath: dir + "/test_batch.bin"))
    XCTAssertThrowsError(try CIFAR10.load(directory: dir, train: false, limit: nil)) {
      XCTAssert("\($0)".contains("label 12"), "\($0)")
    }
  }

  func testAugmentation() {
    // One 1x4x4 image with pixel value = 10*y + x.
    let original: [Float] = (0..<16).map { Float(10 * ($0 / 4) + $0 % 4) }
    var rng = SeededRNG(seed: 1)
    var same = original
    Augmentation.none.apply(images: &same, count: 1, channels: 1, height: 4, width: 4, rng: &rng)
    XCTAssertEqual(same, original)
    var flipped = original
    Augmentation(padCrop: 0, horizontalFlip: true).apply(images: &flipped, count: 1, channels: 1, height: 4, width: 4, rng: &rng)
    let mirrored: [Float] = (0..<16).map { (i: Int) -> Float in Float(10 * (i / 4) + 3 - i % 4) }
    XCTAssert(flipped == original || flipped == mirrored, "\(flipped)")
    // Crops: every output pixel is 0 (padding) or the source pixel shifted by one offset.
    for seed: UInt64 in 0..<20 {
      var r = SeededRNG(seed: seed)
      var out = original
      Augmentation(padCrop: 2, horizontalFlip: false).apply(images: &out, count: 1, channels: 1, height: 4, width: 4, rng: &r)
      var r2 = SeededRNG(seed: seed)
      let dy = Int(r2.next() % 5) - 2
      let dx = Int(r2.next() % 5) - 2
      for y in 0..<4 {
        for x in 0..<4 {
          let (sy, sx) = (y + dy, x + dx)
          let want: Float = (0..<4).contains(sy) && (0..<4).contains(sx) ? Float(10 * sy + sx) : 0
          XCTAssertEqual(out[y * 4 + x], want, "seed \(seed) (\(y), \(x))")
        }
      }
    }
  }
}
