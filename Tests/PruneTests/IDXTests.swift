import CZlib
import Foundation
import XCTest

@testable import Prune

final class IDXTests: XCTestCase {
  private var directory = ""

  override func setUpWithError() throws {
    directory = try temporaryDirectory(self)
  }

  // MARK: IDX files

  func testReadsRawAndGzipFiles() throws {
    let data = (0..<24).map { UInt8($0 * 10) }
    let bytes = idx(dims: [2, 3, 4], data: data)
    let raw = try writeRaw("a-idx3-ubyte", bytes)
    let gz = try writeGzip("a-idx3-ubyte.gz", bytes)
    for path in [raw, gz] {
      XCTAssertEqual(try IDX.readFile(path: path), bytes)
      let array = try IDX.read(path: path)
      XCTAssertEqual(array.dims, [2, 3, 4])
      XCTAssertEqual(array.bytes, data)
    }
  }

  func testParsesOneAndFourDimensions() throws {
    XCTAssertEqual(try IDX.parse(idx(dims: [3], data: [7, 8, 9]), path: "x").bytes, [7, 8, 9])
    XCTAssertEqual(try IDX.parse(idx(dims: [1, 2, 1, 2], data: [1, 2, 3, 4]), path: "x").dims, [1, 2, 1, 2])
    XCTAssertEqual(try IDX.parse(idx(dims: [0, 28, 28], data: []), path: "x").bytes, [])
  }

  func testMissingFile() {
    assertBadData(path: directory + "/absent.gz", "no such file")
    assertBadData(path: directory, "is a directory")
  }

  func testTruncatedFiles() throws {
    let bytes = idx(dims: [2, 3], data: [1, 2, 3, 4, 5, 6])
    assertBadData(path: try writeRaw("short-data", Array(bytes.dropLast(2))), "truncated: dims [2, 3] need 6 data bytes, got 4")
    assertBadData(path: try writeRaw("short-header", Array(bytes.prefix(9))), "truncated: the header needs 12 bytes, the file has 9")
    assertBadData(path: try writeRaw("short-magic", [0, 0]), "truncated: 2 bytes")
    assertBadData(path: try writeRaw("empty", []), "truncated: 0 bytes")
  }

  func testTruncatedGzipStream() throws {
    let bytes = idx(dims: [1000], data: (0..<1000).map { UInt8(truncatingIfNeeded: $0 * 7) })
    let gz = try writeGzip("full.gz", bytes)
    let compressed = try XCTUnwrap(FileManager.default.contents(atPath: gz))
    for cut in [12, compressed.count / 2, compressed.count - 4] {
      let path = try writeRaw("cut-\(cut).gz", Array(compressed.prefix(cut)))
      assertBadData(path: path, "truncated gzip stream")
    }
  }

  func testCorruptGzipStream() throws {
    let bytes = idx(dims: [4000], data: (0..<4000).map { UInt8(truncatingIfNeeded: $0 * $0 / 7) })
    let gz = try writeGzip("good.gz", bytes)
    var compressed = try XCTUnwrap(FileManager.default.contents(atPath: gz)).map { $0 }
    let middle = compressed.count / 2
    for index in middle..<(middle + 8) { compressed[index] ^= 0xA5 }
    assertBadData(path: try writeRaw("bad.gz", compressed), "corrupt gzip stream")
  }

  func testWrongMagicTypeAndDimensions() throws {
    let good = idx(dims: [2], data: [1, 2])
    var magic = good
    magic[0] = 0x1F
    assertBadData(path: try writeRaw("magic", magic), "not an IDX file: magic bytes are 1F 00 08 01")
    var type = good
    type[2] = 0x0D
    assertBadData(path: try writeRaw("type", type), "element type 0x0D (float32) is not supported")
    var zero = good
    zero[3] = 0
    assertBadData(path: try writeRaw("ndims0", zero), "0 dimensions; expected 1 to 4")
    var five = good
    five[3] = 5
    assertBadData(path: try writeRaw("ndims5", five), "5 dimensions")
  }

  func testTrailingBytes() throws {
    let bytes = idx(dims: [2, 2], data: [1, 2, 3, 4]) + [9]
    assertBadData(path: try writeRaw("trailing", bytes), "trailing bytes: dims [2, 2] need 4 data bytes, the file holds more")
    assertBadData(path: try writeGzip("trailing.gz", bytes), "trailing bytes")
  }

  /// A gzip file that declares 10 images but inflates to 64 MB is refused once the content runs
  /// past the declared size, not after inflating all of it.
  func testDecompressionStopsAtTheDeclaredSize() throws {
    let path = directory + "/bomb-idx3-ubyte.gz"
    let file = try XCTUnwrap(gzopen(path, "wb9"))
    let header = idx(dims: [10, 28, 28], data: [])
    _ = header.withUnsafeBytes { gzwrite(file, $0.baseAddress, UInt32($0.count)) }
    let zeros = [UInt8](repeating: 0, count: 1 << 20)
    for _ in 0..<64 { _ = zeros.withUnsafeBytes { gzwrite(file, $0.baseAddress, UInt32($0.count)) } }
    XCTAssertEqual(gzclose(file), Z_OK)
    XCTAssertLessThan(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? .max, 1 << 20, "a small file")
    assertBadData(path: path, "need 7840 data bytes, the file holds more (reading stopped after")
  }

  func testHugeDimsDoNotOverflow() throws {
    let bytes: [UInt8] = [0, 0, 8, 4] + Array(repeating: 0xFF, count: 16)
    assertBadData(path: try writeRaw("huge", bytes), "too large")
  }

  // MARK: Data sets

  func testLoadsSplitPrefersGzipAndAppliesLimit() throws {
    let pixels: [UInt8] = [0, 255, 51, 102, 10, 20, 30, 40, 50, 60, 70, 80]
    _ = try writeGzip("train-images-idx3-ubyte.gz", idx(dims: [3, 2, 2], data: pixels))
    _ = try writeGzip("train-labels-idx1-ubyte.gz", idx(dims: [3], data: [9, 0, 3]))
    // A raw copy with other labels: must be ignored while the .gz exists.
    _ = try writeRaw("train-labels-idx1-ubyte", idx(dims: [3], data: [1, 1, 1]))
    _ = try writeRaw("t10k-images-idx3-ubyte", idx(dims: [1, 2, 2], data: [255, 255, 0, 0]))
    _ = try writeRaw("t10k-labels-idx1-ubyte", idx(dims: [1], data: [5]))

    let train = try IDXDataset.load(directory: directory, train: true, limit: nil)
    XCTAssertEqual(train.count, 3)
    XCTAssertEqual(train.labels, [9, 0, 3])
    XCTAssertEqual([train.channels, train.height, train.width, train.classCount], [1, 2, 2, 10])
    XCTAssertEqual(train.images, pixels.map { Float($0) / 255 })
    XCTAssertEqual(Array(train.images.prefix(4)), [0, 1, 0.2, 0.4])

    let limited = try IDXDataset.load(directory: directory + "/", train: true, limit: 2)
    XCTAssertEqual(limited.labels, [9, 0])
    XCTAssertEqual(limited.images.count, 8)
    XCTAssertEqual(try IDXDataset.load(directory: directory, train: true, limit: 99).count, 3)
    XCTAssertEqual(try IDXDataset.load(directory: directory, train: true, limit: 0).images, [])

    let test = try IDXDataset.load(directory: directory, train: false, limit: nil)
    XCTAssertEqual(test.labels, [5])
    XCTAssertEqual(test.images, [1, 1, 0, 0])
  }

  func testMissingSplitFiles() throws {
    assertUserError(try IDXDataset.load(directory: directory, train: true, limit: nil)) {
      guard case .badDataFile(let path, let problem) = $0 else { return false }
      return path.hasSuffix("/train-images-idx3-ubyte") && problem.contains("missing")
    }
  }

  func testMismatchedCountsNameTheLabelsFile() throws {
    _ = try writeRaw("train-images-idx3-ubyte", idx(dims: [2, 1, 1], data: [1, 2]))
    let labels = try writeGzip("train-labels-idx1-ubyte.gz", idx(dims: [3], data: [1, 2, 3]))
    assertBadData(path: labels, "3 labels, but") {
      try IDXDataset.load(directory: self.directory, train: true, limit: nil)
    }
  }

  func testLabelOutOfRangeNamesIndexAndValue() throws {
    _ = try writeRaw("train-images-idx3-ubyte", idx(dims: [3, 1, 1], data: [1, 2, 3]))
    let labels = try writeRaw("train-labels-idx1-ubyte", idx(dims: [3], data: [1, 2, 10]))
    assertBadData(path: labels, "label at index 2 is 10; expected 0...9") {
      try IDXDataset.load(directory: self.directory, train: true, limit: nil)
    }
  }

  func testWrongDimensionsNameTheFile() throws {
    let images = try writeRaw("train-images-idx3-ubyte", idx(dims: [2, 2], data: [1, 2, 3, 4]))
    _ = try writeRaw("train-labels-idx1-ubyte", idx(dims: [2], data: [1, 2]))
    assertBadData(path: images, "dims [2, 2]; expected [count, height, width]") {
      try IDXDataset.load(directory: self.directory, train: true, limit: nil)
    }
    _ = try writeRaw("train-images-idx3-ubyte", idx(dims: [2, 1, 1], data: [1, 2]))
    let labels = try writeRaw("train-labels-idx1-ubyte", idx(dims: [2, 1], data: [1, 2]))
    assertBadData(path: labels, "dims [2, 1]; expected [count]") {
      try IDXDataset.load(directory: self.directory, train: true, limit: nil)
    }
  }

  func testNegativeLimitIsRejected() {
    assertUserError(try IDXDataset.load(directory: directory, train: true, limit: -1)) {
      guard case .badValue(let name, _, _) = $0 else { return false }
      return name == "limit"
    }
  }

  func testLoadsRealFashionMNIST() throws {
    let real = "/usr/share/datasets/fashion-mnist"
    guard FileManager.default.fileExists(atPath: real + "/train-labels-idx1-ubyte.gz") else {
      throw XCTSkip("Fashion-MNIST not installed at \(real)")
    }
    // The full training images take over a second in debug builds; their labels, a prefix and
    // the smaller test split cover the same code paths.
    XCTAssertEqual(try IDX.read(path: real + "/train-labels-idx1-ubyte.gz").dims, [60000])
    let train = try IDXDataset.load(directory: real, train: true, limit: 100)
    XCTAssertEqual(train.count, 100)
    XCTAssertEqual(train.labels.first, 9)
    XCTAssertEqual([train.channels, train.height, train.width, train.classCount], [1, 28, 28, 10])
    XCTAssertEqual(train.images.count, 100 * 28 * 28)
    XCTAssertTrue(train.images.allSatisfy { $0 >= 0 && $0 <= 1 })
    XCTAssertEqual(train.images.min(), 0)
    XCTAssertEqual(train.images.max(), 1)
    let test = try IDXDataset.load(directory: real, train: false, limit: nil)
    XCTAssertEqual(test.count, 10000)
    XCTAssertEqual(test.images.count, 10000 * 28 * 28)
    XCTAssertEqual(Set(test.labels), Set(0..<10))
  }

  // MARK: Helpers

  private func idx(dims: [Int], data: [UInt8]) -> [UInt8] {
    var bytes: [UInt8] = [0, 0, 0x08, UInt8(dims.count)]
    for dim in dims { withUnsafeBytes(of: UInt32(dim).bigEndian) { bytes += $0 } }
    return bytes + data
  }

  private func writeRaw(_ name: String, _ bytes: [UInt8]) throws -> String {
    let path = directory + "/" + name
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    return path
  }

  private func writeGzip(_ name: String, _ bytes: [UInt8]) throws -> String {
    let path = directory + "/" + name
    let file = try XCTUnwrap(gzopen(path, "wb"))
    let written = bytes.withUnsafeBytes { gzwrite(file, $0.baseAddress, UInt32($0.count)) }
    XCTAssertEqual(Int(written), bytes.count)
    XCTAssertEqual(gzclose(file), Z_OK)
    return path
  }

  private func assertBadData(path: String, _ fragment: String, line: UInt = #line) {
    assertBadData(path: path, fragment, line: line) { try IDX.read(path: path) }
  }

  /// Expects `body` to throw `.badDataFile` naming `path`, with `fragment` in its problem.
  private func assertBadData<T>(
    path: String, _ fragment: String, line: UInt = #line, _ body: () throws -> T
  ) {
    assertUserError(try body(), line: line) { error in
      guard case .badDataFile(let errorPath, let problem) = error else { return false }
      return errorPath == path && problem.contains(fragment) && error.description.contains(path)
    }
  }
}

/// Expects `expression` to throw a `UserError` that `check` accepts.
private func assertUserError<T>(
  _ expression: @autoclosure () throws -> T, file: StaticString = #filePath, line: UInt = #line,
  _ check: (UserError) -> Bool
) {
  do {
    _ = try expression()
    XCTFail("expected a UserError, got a value", file: file, line: line)
  } catch let error as UserError {
    XCTAssertTrue(check(error), "unexpected error: \(error)", file: file, line: line)
  } catch {
    XCTFail("expected a UserError, got \(error)", file: file, line: line)
  }
}
