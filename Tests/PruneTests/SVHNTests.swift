import Foundation
import XCTest

@testable import Prune

final class SVHNTests: XCTestCase {
  /// Image n in MATLAB's column-major X[row, column, channel]: pixel = (n + 3c + 5row + 7col) mod 256.
  func image(_ n: Int) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: 3072)
    for c in 0..<3 {
      for col in 0..<32 {
        for row in 0..<32 {
          bytes[c * 1024 + col * 32 + row] = UInt8((n + 3 * c + 5 * row + 7 * col) % 256)
        }
      }
    }
    return bytes
  }

  func write(_ bytes: [UInt8], _ path: String) throws { try Data(bytes).write(to: URL(fileURLWithPath: path)) }

  func testReadsPlainAndCompressedFilesAsNCHWWithTenAsZero() throws {
    let dir = try temporaryDirectory(self)
    for compressed in [false, true] {
      try write(MATWriter.svhn(images: (0..<3).map(image), labels: [10, 1, 9], compressed: compressed), dir + "/test_32x32.mat")
      let data = try SVHN.load(directory: dir, train: false, limit: nil)
      XCTAssertEqual(data.labels, [0, 1, 9], "compressed \(compressed)")
      XCTAssertEqual([data.count, data.channels, data.height, data.width], [3, 3, 32, 32])
      // Image 2, blue (c = 2), row 4, column 1: 2 + 6 + 20 + 7 = 35.
      XCTAssertEqual(data.images[2 * 3072 + 2 * 1024 + 4 * 32 + 1], Float(35) / 255)
      XCTAssertEqual(try SVHN.load(directory: dir, train: false, limit: 2).count, 2)
    }
  }

  func testScipySavematFilesRead() throws {
    let dir = try temporaryDirectory(self)
    let script = """
      import numpy as np, scipy.io, sys
      X = np.zeros((32, 32, 3, 4), dtype=np.uint8)
      for n in range(4):
          for c in range(3):
              for r in range(32):
                  for col in range(32):
                      X[r, col, c, n] = (n + 3 * c + 5 * r + 7 * col) % 256
      y = np.array([[10], [3], [7], [1]], dtype=np.uint8)
      scipy.io.savemat(sys.argv[1] + "/train_32x32.mat", {"X": X, "y": y}, do_compression=True)
      scipy.io.savemat(sys.argv[1] + "/test_32x32.mat", {"X": X, "y": y.astype(np.float64), "note": "extra"})
      """
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script, dir]
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
      if ProcessInfo.processInfo.environment["ADVPRUNE_REQUIRE_NUMPY"] == "1" { return XCTFail("python3 with numpy and scipy is required") }
      throw XCTSkip("python3 with scipy unavailable")
    }
    for train in [true, false] {
      let data = try SVHN.load(directory: dir, train: train, limit: nil)
      XCTAssertEqual(data.labels, [0, 3, 7, 1])
      XCTAssertEqual(data.images[2 * 3072 + 2 * 1024 + 4 * 32 + 1], Float(35) / 255)
      XCTAssertEqual(data.images[3 * 3072 + 1 * 1024 + 31 * 32 + 0], Float((3 + 3 + 155) % 256) / 255)
    }
  }

  func testBadFilesAreNamed() throws {
    let dir = try temporaryDirectory(self)
    let path = dir + "/test_32x32.mat"
    func expectError(_ fragment: String, line: UInt = #line) {
      XCTAssertThrowsError(try SVHN.load(directory: dir, train: false, limit: nil), line: line) {
        XCTAssert("\($0)".contains("test_32x32.mat") && "\($0)".contains(fragment), "\($0)", line: line)
      }
    }
    expectError("housenumbers")
    let good = MATWriter.svhn(images: [image(0), image(1)], labels: [1, 2], compressed: true)
    try write(Array(good.prefix(100)), path)
    expectError("128-byte")
    try write(Array(good.dropLast(20)), path)
    expectError("truncated")
    var corrupt = good
    for i in 150..<170 { corrupt[i] ^= 0x5A }
    try write(corrupt, path)
    expectError("compressed element at byte 128")
    try write(Array("MATLAB 7.3 MAT-file".utf8) + [UInt8](repeating: 0, count: 200), path)
    expectError("HDF5")
    // What MATLAB's -v7.3 writes: the text header with version 0x0200 and "IM", then HDF5 at 512.
    let text = Array("MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 .".utf8)
    var header = text + [UInt8](repeating: 0x20, count: 116 - text.count) + [UInt8](repeating: 0, count: 8) + [0x00, 0x02] + Array("IM".utf8)
    header += [UInt8](repeating: 0, count: 512 - header.count) + [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A] + [UInt8](repeating: 0, count: 64)
    try write(header, path)
    expectError("scipy.io.savemat")
    try write(MATWriter.svhn(images: [image(0)], labels: [11], compressed: false), path)
    expectError("label 0 is 11.0")
    try write(MATWriter.svhn(images: [image(0)], labels: [1, 2], compressed: false), path)
    expectError("y holds 2 labels for 1 images")
    try write(MATWriter.file([.init(name: "X", dims: [28, 28, 1, 1], values: .uint8([UInt8](repeating: 0, count: 784)))], compressed: false), path)
    expectError("found: X")
    // A matrix whose dims promise more data than it holds.
    var lying = MATWriter.svhn(images: [image(0)], labels: [1], compressed: false)
    lying[128 + 8 + 16 + 8 + 12] = 2  // X's fourth dimension: 1 -> 2
    try write(lying, path)
    expectError("dims [32, 32, 3, 2] need 6144 elements")
  }
}

extension SVHNTests {
  func testDatasetNameSVHNUsesThe32x32RecipeWithoutFlips() throws {
    let dir = try temporaryDirectory(self)
    try write(MATWriter.svhn(images: [image(0), image(1)], labels: [10, 4], compressed: true), dir + "/train_32x32.mat")
    let data = try DatasetName(parsing: "svhn").load(directory: dir, train: true, limit: nil)
    XCTAssertEqual(data.labels, [0, 4])
    XCTAssertEqual(DatasetName.svhn.augmentation, .svhn)
    XCTAssertFalse(DatasetName.svhn.augmentation.horizontalFlip)
    XCTAssertEqual(DatasetName.svhn.defaultEps, 8 / 255)
    XCTAssertNoThrow(try DatasetName.svhn.check(.resnet18))
  }
}
