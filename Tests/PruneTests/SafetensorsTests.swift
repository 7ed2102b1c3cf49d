import Foundation
import XCTest

@testable import Prune

final class SafetensorsTests: XCTestCase {
  private var directory = ""

  override func setUpWithError() throws {
    directory = try temporaryDirectory(self)
  }

  private var sample: SafetensorsFile {
    SafetensorsFile(
      tensors: [
        "conv1.weight": HostTensor(shape: [2, 1, 2, 2], values: (0..<8).map { Float($0) * 0.5 - 1 }),
        "conv1.bias": HostTensor(shape: [2], values: [0.25, -3e-8]),
        "scalar": HostTensor(shape: [], values: [42]),
        "empty": HostTensor(shape: [0, 3], values: []),
        "fc.weight_mask": HostTensor(shape: [1, 3], values: [1, 0, 1]),
      ],
      metadata: ["format": "pt", "note": "quote \" backslash \\ newline \n tab \t bell \u{7} é 🙂"])
  }

  // MARK: Round trip

  func testRoundTripKeepsTensorsAndMetadata() throws {
    let bytes = Safetensors.encode(sample)
    let decoded = try Safetensors.decode(bytes, path: "memory")
    XCTAssertEqual(decoded, sample)
    XCTAssertEqual(Safetensors.encode(decoded), bytes, "re-encoding must be byte-exact")
  }

  func testEmptyFileRoundTrips() throws {
    let empty = SafetensorsFile(tensors: [:], metadata: [:])
    let bytes = Safetensors.encode(empty)
    XCTAssertEqual(try Safetensors.decode(bytes, path: "memory"), empty)
  }

  func testHeaderIsCompactSortedAndPaddedToEightBytes() throws {
    let file = SafetensorsFile(
      tensors: ["b": HostTensor(shape: [1], values: [1]), "a": HostTensor(shape: [2], values: [2, 3])],
      metadata: ["k": "v"])
    let bytes = Safetensors.encode(file)
    let length = bytes[0..<8].reversed().reduce(0) { $0 << 8 | Int($1) }
    XCTAssertEqual(length % 8, 0)
    XCTAssertEqual((8 + length) % 8, 0, "data buffer must start 8-byte aligned")
    let header = String(decoding: bytes[8..<(8 + length)], as: UTF8.self)
    let json =
      #"{"__metadata__":{"k":"v"},"a":{"data_offsets":[0,8],"dtype":"F32","shape":[2]},"#
      + #""b":{"data_offsets":[8,12],"dtype":"F32","shape":[1]}}"#
    XCTAssertEqual(header.trimmingCharacters(in: .whitespaces), json)
    XCTAssertTrue(header.hasPrefix(json))
    XCTAssertTrue(header.dropFirst(json.count).allSatisfy { $0 == " " })
    XCTAssertEqual(bytes.count, 8 + length + 12)
    // a's values come first, little-endian.
    XCTAssertEqual(Array(bytes[(8 + length)..<(8 + length + 4)]), [0x00, 0x00, 0x00, 0x40])
  }

  func testEncodingIsIndependentOfInsertionOrder() {
    var first = SafetensorsFile(tensors: [:], metadata: [:])
    var second = first
    for index in 0..<20 {
      first.tensors["t\(index)"] = HostTensor(shape: [1], values: [Float(index)])
      second.tensors["t\(19 - index)"] = HostTensor(shape: [1], values: [Float(19 - index)])
    }
    XCTAssertEqual(Safetensors.encode(first), Safetensors.encode(second))
  }

  /// A header in PyTorch's style: its own key order, spaces after separators, no padding,
  /// metadata last, escaped names, and non-F32 dtypes that we widen or narrow.
  func testHandmadePyTorchStyleFileDecodes() throws {
    var data: [UInt8] = []
    data += le32(1.5) + le32(-2)  // w: F32 [2]
    data += [0x00, 0x3C, 0x00, 0xC0, 0x01, 0x00]  // h: F16 1.0, -2.0, smallest subnormal
    data += [0x80, 0x3F, 0x49, 0x40]  // b: BF16 1.0, 3.140625
    data += withUnsafeBytes(of: (0.1 as Double).bitPattern.littleEndian) { Array($0) }  // d: F64
    let header =
      #"{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "#
      + #""h\u00e9": {"shape": [3], "data_offsets": [8, 14], "dtype": "F16"}, "#
      + #""b": {"data_offsets": [14, 18], "dtype": "BF16", "shape": [2]}, "#
      + #""d": {"dtype": "F64", "data_offsets": [18, 26], "shape": []}, "#
      + #""__metadata__": {"format": "pt"}}"#
    XCTAssertNotEqual(header.utf8.count % 8, 0, "the test wants an unpadded header")
    let file = try Safetensors.decode(container(header: header, data: data), path: "torch.safetensors")
    XCTAssertEqual(file.metadata, ["format": "pt"])
    XCTAssertEqual(file.tensors["w"], HostTensor(shape: [2], values: [1.5, -2]))
    XCTAssertEqual(file.tensors["hé"], HostTensor(shape: [3], values: [1, -2, 0x1p-24]))
    XCTAssertEqual(file.tensors["b"], HostTensor(shape: [2], values: [1, 3.140625]))
    XCTAssertEqual(file.tensors["d"], HostTensor(shape: [], values: [Float(0.1 as Double)]))
  }

  func testHalfConversionCoversSpecialValues() {
    XCTAssertEqual(Safetensors.floatFromHalf(0x0000), 0)
    XCTAssertEqual(Safetensors.floatFromHalf(0x8000).sign, .minus)
    XCTAssertEqual(Safetensors.floatFromHalf(0x7BFF), 65504)
    XCTAssertEqual(Safetensors.floatFromHalf(0x3555), 0.333251953125)
    XCTAssertEqual(Safetensors.floatFromHalf(0x03FF), 0x1.ff8p-15)
    XCTAssertEqual(Safetensors.floatFromHalf(0x7C00), .infinity)
    XCTAssertTrue(Safetensors.floatFromHalf(0x7E00).isNaN)
  }

  // MARK: Files

  func testWriteReplacesExistingFileAndLeavesNoTempFiles() throws {
    let path = directory + "/model.safetensors"
    try Data("old contents".utf8).write(to: URL(fileURLWithPath: path))
    try Safetensors.write(sample, path: path)
    XCTAssertEqual(try Safetensors.read(path: path), sample)

    let smaller = SafetensorsFile(tensors: ["x": HostTensor(shape: [1], values: [7])], metadata: [:])
    try Safetensors.write(smaller, path: path)
    XCTAssertEqual(try Safetensors.read(path: path), smaller)
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["model.safetensors"])
  }

  func testWriteFailuresThrowCannotWriteAndLeaveNothing() throws {
    let missing = directory + "/no/such/dir/model.safetensors"
    assertUserError(try Safetensors.write(sample, path: missing)) {
      guard case .cannotWrite(let path, let problem) = $0 else { return false }
      return path == missing && problem.contains("no such directory")
    }
    // Renaming a file over a directory fails after the temp file exists: it must be removed.
    let target = directory + "/taken"
    try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: false)
    assertUserError(try Safetensors.write(sample, path: target)) {
      guard case .cannotWrite(let path, _) = $0 else { return false }
      return path == target
    }
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["taken"])
  }

  // MARK: Bad input

  func testMissingFileAndDirectory() {
    assertBadFile(path: directory + "/absent.safetensors", "no such file")
    assertBadFile(path: directory, "is a directory")
  }

  func testFileTooShortForHeaderLength() {
    assertBad([], "0 bytes, too short")
    assertBad([1, 0, 0, 0, 0], "5 bytes, too short")
  }

  func testHeaderLengthBeyondFileOrAbsurd() {
    assertBad(le64(100) + Array("{}".utf8), "header length 100 runs past the end of the 10-byte file")
    assertBad(le64(UInt64.max) + Array("{}".utf8), "absurd")
    assertBad(le64(100_000_001) + Array("{}".utf8), "absurd")
  }

  func testHeaderNotJSONOrNotObject() {
    assertBad(container(header: "{\"a\": ", data: []), "not valid JSON")
    assertBad(container(header: "", data: []), "not valid JSON")
    assertBad(container(header: "{} trailing", data: []), "not valid JSON")
    assertBad(container(header: "[1, 2]", data: []), "JSON array, expected an object")
    assertBad(le64(2) + [0x22, 0xFF], "not valid UTF-8")
    assertBad(
      container(header: #"{"a": {}, "a": {}}"#, data: []), #"duplicate key "a""#)
    assertBad(container(header: String(repeating: "[", count: 1000), data: []), "nested deeper")
  }

  /// PyTorch saves BatchNorm's num_batches_tracked as an int64 scalar.
  func testInt64ScalarsReadAsFloat() throws {
    let header = #"{"bn.num_batches_tracked": {"dtype": "I64", "shape": [], "data_offsets": [0, 8]}}"#
    let file = try Safetensors.decode(container(header: header, data: [0x39, 0x30, 0, 0, 0, 0, 0, 0]), path: "torch.safetensors")
    XCTAssertEqual(file.tensors["bn.num_batches_tracked"], HostTensor(shape: [], values: [12345]))
  }

  func testEntryNotObject() {
    assertBad(container(header: #"{"w": [1, 2]}"#, data: []), "entry for tensor 'w' is a JSON array")
  }

  func testUnsupportedDtypeNamesDtypeAndTensor() {
    let header = #"{"step": {"dtype": "U8", "shape": [], "data_offsets": [0, 1]}}"#
    assertBad(container(header: header, data: [7]), "tensor 'step' has dtype U8")
    assertBad(container(header: #"{"w": {"dtype": 3, "shape": [], "data_offsets": [0, 4]}}"#, data: le32(1)), "dtype is a JSON number")
    assertBad(container(header: #"{"w": {"shape": [], "data_offsets": [0, 4]}}"#, data: le32(1)), "has no dtype")
  }

  func testBadShapes() {
    for shape in ["[-1]", "[2.0]", "[1e3]", "\"2\"", "[[2]]", "[true]"] {
      let header = #"{"w": {"dtype": "F32", "shape": "# + shape + #", "data_offsets": [0, 8]}}"#
      assertBad(container(header: header, data: le32(1) + le32(2)), "tensor 'w' shape")
    }
    let huge = #"{"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 8]}}"#
    assertBad(container(header: huge, data: le32(1) + le32(2)), "too large")
  }

  func testBadDataOffsets() {
    func header(_ offsets: String) -> String {
      #"{"w": {"dtype": "F32", "shape": [1], "data_offsets": "# + offsets + "}}"
    }
    let data = le32(1) + le32(2)
    assertBad(container(header: header("[0]"), data: data), "data_offsets [0] is not two")
    assertBad(container(header: header("[0, 4, 8]"), data: data), "is not two non-negative integers")
    assertBad(container(header: header("[-4, 0]"), data: data), "is not two non-negative integers")
    assertBad(container(header: header("[0.0, 4]"), data: data), "is not two non-negative integers")
    assertBad(container(header: header("[8, 4]"), data: data), "[8, 4] has begin after end")
    assertBad(container(header: header("[4, 12]"), data: data), "end 12 is beyond the 8-byte data buffer")
    assertBad(container(header: header("[0, 8]"), data: data), "tensor 'w' has 8 bytes but shape [1] of F32 needs 4")
  }

  func testOverlappingTensors() {
    let header =
      #"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "#
      + #""b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}"#
    assertBad(container(header: header, data: [UInt8](repeating: 0, count: 12)), "'a' [0, 8) and 'b' [4, 12) overlap")
    // Empty tensors occupy no bytes, so sharing an offset with them is fine.
    let empty =
      #"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "#
      + #""b": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}}"#
    XCTAssertNoThrow(try Safetensors.decode(container(header: empty, data: le32(1)), path: "x"))
  }

  func testNaNAndInfNameTheTensor() {
    let header = #"{"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]}}"#
    assertBad(container(header: header, data: le32(1) + le32(.nan) + le32(2)), "tensor 'w' contains NaN at index 1")
    assertBad(container(header: header, data: le32(1) + le32(2) + le32(-.infinity)), "tensor 'w' contains Inf at index 2")
    let bf16 = #"{"b": {"dtype": "BF16", "shape": [1], "data_offsets": [0, 2]}}"#
    assertBad(container(header: bf16, data: [0x80, 0x7F]), "tensor 'b' contains Inf")
    let f64 = #"{"d": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}}"#
    let big = withUnsafeBytes(of: (1e300 as Double).bitPattern.littleEndian) { Array($0) }
    assertBad(container(header: f64, data: big), "does not fit in F32")
  }

  func testMetadataMustBeStrings() {
    assertBad(container(header: #"{"__metadata__": {"epoch": 3}}"#, data: []), "__metadata__ value for 'epoch' is a JSON number")
    assertBad(container(header: #"{"__metadata__": ["x"]}"#, data: []), "__metadata__ is a JSON array")
  }

  // MARK: Helpers

  private func le32(_ value: Float) -> [UInt8] {
    withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) }
  }

  private func le64(_ value: UInt64) -> [UInt8] {
    withUnsafeBytes(of: value.littleEndian) { Array($0) }
  }

  private func container(header: String, data: [UInt8]) -> [UInt8] {
    le64(UInt64(header.utf8.count)) + Array(header.utf8) + data
  }

  /// Writes `bytes` to a file, reads it back, and expects `.badCheckpoint` naming that file.
  private func assertBad(_ bytes: [UInt8], _ fragment: String, line: UInt = #line) {
    let path = directory + "/bad-\(line).safetensors"
    _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
    assertBadFile(path: path, fragment, line: line)
  }

  private func assertBadFile(path: String, _ fragment: String, line: UInt = #line) {
    assertUserError(try Safetensors.read(path: path), line: line) { error in
      guard case .badCheckpoint(let errorPath, let problem) = error else { return false }
      return errorPath == path && problem.contains(fragment) && !problem.contains("\n")
        && error.description.contains(path)
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
