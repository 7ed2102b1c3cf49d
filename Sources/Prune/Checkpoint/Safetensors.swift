import Foundation

/// A tensor held in host memory: a shape and its values in row-major order.
public struct HostTensor: Equatable, Sendable {
  public var shape: [Int]
  public var values: [Float]

  /// Makes a tensor; `values.count` must equal the product of `shape` (an empty shape is a scalar).
  public init(shape: [Int], values: [Float]) {
    precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in shape \(shape)")
    precondition(
      shape.reduce(1, *) == values.count,
      "shape \(shape) holds \(shape.reduce(1, *)) values, got \(values.count)")
    self.shape = shape
    self.values = values
  }
}

/// The contents of one safetensors file: named tensors plus free-form string metadata.
public struct SafetensorsFile: Equatable, Sendable {
  public var tensors: [String: HostTensor]
  public var metadata: [String: String]

  /// Makes a file; `__metadata__` is reserved by the format and cannot name a tensor.
  public init(tensors: [String: HostTensor], metadata: [String: String] = [:]) {
    precondition(tensors["__metadata__"] == nil, "'__metadata__' cannot name a tensor")
    self.tensors = tensors
    self.metadata = metadata
  }
}

/// Reads and writes the safetensors format, the interchange format PyTorch users load with
/// `safetensors.torch.load_file`.
///
/// Layout: an 8-byte little-endian header length N, N bytes of UTF-8 JSON, then the data buffer.
/// We write F32 only; we read F32, F64, F16 and BF16 and widen or narrow to Float.
public enum Safetensors {
  /// Headers beyond this are corrupt or hostile; real ones are a few KB.
  static let maxHeaderBytes: UInt64 = 100_000_000

  /// Reads and validates the file at `path`; every problem throws `UserError.badCheckpoint`.
  public static func read(path: String) throws -> SafetensorsFile {
    let bytes: [UInt8]
    do {
      bytes = try FileBytes.read(path: path)
    } catch let error as FileBytes.Failure {
      throw UserError.badCheckpoint(path: path, problem: error.problem)
    }
    return try decode(bytes, path: path)
  }

  /// Serialises `file` deterministically: sorted names, compact sorted-key JSON, and a header
  /// padded with spaces so the data buffer starts 8-byte aligned.
  ///
  /// NaN and Inf values are written as they are, although `decode` rejects them.
  public static func encode(_ file: SafetensorsFile) -> [UInt8] {
    // The fields are public vars, so the init's checks may have been bypassed since.
    precondition(file.tensors["__metadata__"] == nil, "'__metadata__' cannot name a tensor")
    for (name, tensor) in file.tensors {
      precondition(
        tensor.shape.reduce(1, *) == tensor.values.count,
        "tensor '\(name)' shape \(tensor.shape) does not match its \(tensor.values.count) values")
    }
    let names = file.tensors.keys.sorted(by: utf8Less)
    var members: [(key: String, json: [UInt8])] = []
    var offset = 0
    for name in names {
      guard let tensor = file.tensors[name] else { continue }
      let end = offset + tensor.values.count * 4
      var json = Array(#"{"data_offsets":["#.utf8)
      json += Array("\(offset),\(end)],\"dtype\":\"F32\",\"shape\":[".utf8)
      json += Array(tensor.shape.map(String.init).joined(separator: ",").utf8)
      json += Array("]}".utf8)
      members.append((name, json))
      offset = end
    }
    if !file.metadata.isEmpty {
      var json: [UInt8] = [UInt8(ascii: "{")]
      for (index, key) in file.metadata.keys.sorted(by: utf8Less).enumerated() {
        if index > 0 { json.append(UInt8(ascii: ",")) }
        appendJSONString(key, to: &json)
        json.append(UInt8(ascii: ":"))
        appendJSONString(file.metadata[key] ?? "", to: &json)
      }
      json.append(UInt8(ascii: "}"))
      members.append(("__metadata__", json))
    }
    members.sort { utf8Less($0.key, $1.key) }

    var header: [UInt8] = [UInt8(ascii: "{")]
    for (index, member) in members.enumerated() {
      if index > 0 { header.append(UInt8(ascii: ",")) }
      appendJSONString(member.key, to: &header)
      header.append(UInt8(ascii: ":"))
      header += member.json
    }
    header.append(UInt8(ascii: "}"))
    while header.count % 8 != 0 { header.append(UInt8(ascii: " ")) }

    var out: [UInt8] = []
    out.reserveCapacity(8 + header.count + offset)
    withUnsafeBytes(of: UInt64(header.count).littleEndian) { out += $0 }
    out += header
    for name in names {
      guard let tensor = file.tensors[name] else { continue }
      for value in tensor.values {
        withUnsafeBytes(of: value.bitPattern.littleEndian) { out += $0 }
      }
    }
    return out
  }

  /// Parses and validates safetensors bytes; `path` only names the source in errors.
  public static func decode(_ bytes: [UInt8], path: String) throws -> SafetensorsFile {
    func bad(_ problem: String) -> UserError { .badCheckpoint(path: path, problem: problem) }

    guard bytes.count >= 8 else {
      throw bad("file is \(bytes.count) bytes, too short for the 8-byte header length")
    }
    var headerLength: UInt64 = 0
    for index in 0..<8 { headerLength |= UInt64(bytes[index]) << (8 * UInt64(index)) }
    guard headerLength <= maxHeaderBytes else {
      throw bad("header length \(headerLength) is absurd (over 100 MB); not a safetensors file?")
    }
    let dataStart = 8 + Int(headerLength)
    guard dataStart <= bytes.count else {
      throw bad("header length \(headerLength) runs past the end of the \(bytes.count)-byte file")
    }
    let headerBytes = Array(bytes[8..<dataStart])
    guard String(validating: headerBytes, as: UTF8.self) != nil else {
      throw bad("header is not valid UTF-8")
    }
    let header: HeaderJSON
    do {
      header = try HeaderJSONParser.parse(headerBytes)
    } catch let error as HeaderJSONParser.Failure {
      throw bad("header is not valid JSON: \(error.message)")
    }
    guard case .object(let members) = header else {
      throw bad("header is a JSON \(header.kind), expected an object")
    }

    let dataCount = bytes.count - dataStart
    var metadata: [String: String] = [:]
    var entries: [Entry] = []
    for (key, value) in members {
      if key == "__metadata__" {
        metadata = try parseMetadata(value, bad: bad)
      } else {
        entries.append(try parseEntry(name: key, value, dataCount: dataCount, bad: bad))
      }
    }

    // Tensors may come in any order, but no two may share bytes.
    let byStart = entries.filter { $0.begin < $0.end }.sorted { $0.begin < $1.begin }
    for (previous, next) in zip(byStart, byStart.dropFirst()) where next.begin < previous.end {
      throw bad(
        "tensors '\(previous.name)' [\(previous.begin), \(previous.end)) and "
          + "'\(next.name)' [\(next.begin), \(next.end)) overlap in the data buffer")
    }

    var tensors: [String: HostTensor] = [:]
    try bytes.withUnsafeBytes { raw in
      for entry in entries {
        let slice = UnsafeRawBufferPointer(
          rebasing: raw[(dataStart + entry.begin)..<(dataStart + entry.end)])
        let values = try convert(slice, entry: entry, bad: bad)
        tensors[entry.name] = HostTensor(shape: entry.shape, values: values)
      }
    }
    return SafetensorsFile(tensors: tensors, metadata: metadata)
  }

  /// Writes `file` atomically: a temporary file in the same directory is renamed over `path`,
  /// so readers see the old file or the new one, never a partial one.
  public static func write(_ file: SafetensorsFile, path: String) throws {
    do {
      try FileBytes.writeAtomically(encode(file), path: path)
    } catch let error as FileBytes.Failure {
      throw UserError.cannotWrite(path: path, problem: error.problem)
    }
  }
}

// MARK: - Header validation

extension Safetensors {
  /// One validated header entry, before its bytes are converted.
  struct Entry {
    var name: String
    var dtype: DType
    var shape: [Int]
    var begin: Int
    var end: Int
  }

  enum DType: String {
    case f32 = "F32", f64 = "F64", f16 = "F16", bf16 = "BF16"

    var size: Int {
      switch self {
      case .f32: return 4
      case .f64: return 8
      case .f16, .bf16: return 2
      }
    }
  }

  static func parseMetadata(_ value: HeaderJSON, bad: (String) -> UserError) throws -> [String: String] {
    guard case .object(let members) = value else {
      throw bad("__metadata__ is a JSON \(value.kind), expected an object of strings")
    }
    var metadata: [String: String] = [:]
    for (key, value) in members {
      guard case .string(let text) = value else {
        throw bad("__metadata__ value for '\(key)' is a JSON \(value.kind), expected a string")
      }
      metadata[key] = text
    }
    return metadata
  }

  static func parseEntry(
    name: String, _ value: HeaderJSON, dataCount: Int, bad: (String) -> UserError
  ) throws -> Entry {
    guard case .object(let members) = value else {
      throw bad("entry for tensor '\(name)' is a JSON \(value.kind), expected an object")
    }
    let fields = Dictionary(members, uniquingKeysWith: { first, _ in first })

    guard let dtypeValue = fields["dtype"] else { throw bad("tensor '\(name)' has no dtype") }
    guard case .string(let dtypeName) = dtypeValue else {
      throw bad("tensor '\(name)' dtype is a JSON \(dtypeValue.kind), expected a string")
    }
    guard let dtype = DType(rawValue: dtypeName) else {
      throw bad("tensor '\(name)' has dtype \(dtypeName); only F32 (and F64, F16, BF16) are supported")
    }

    guard let shapeValue = fields["shape"] else { throw bad("tensor '\(name)' has no shape") }
    guard let shape = nonNegativeInts(shapeValue) else {
      throw bad("tensor '\(name)' shape \(shapeValue.brief) is not a list of non-negative integers")
    }

    guard let offsetsValue = fields["data_offsets"] else {
      throw bad("tensor '\(name)' has no data_offsets")
    }
    guard let offsets = nonNegativeInts(offsetsValue), offsets.count == 2 else {
      throw bad(
        "tensor '\(name)' data_offsets \(offsetsValue.brief) is not two non-negative integers")
    }
    let (begin, end) = (offsets[0], offsets[1])
    guard begin <= end else {
      throw bad("tensor '\(name)' data_offsets [\(begin), \(end)] has begin after end")
    }
    guard end <= dataCount else {
      throw bad(
        "tensor '\(name)' data_offsets end \(end) is beyond the \(dataCount)-byte data buffer")
    }

    var needed = dtype.size
    for dim in shape {
      let (product, overflow) = needed.multipliedReportingOverflow(by: dim)
      guard !overflow else { throw bad("tensor '\(name)' shape \(shape) is too large") }
      needed = product
    }
    guard end - begin == needed else {
      throw bad(
        "tensor '\(name)' has \(end - begin) bytes but shape \(shape) of \(dtype.rawValue) "
          + "needs \(needed)")
    }
    return Entry(name: name, dtype: dtype, shape: shape, begin: begin, end: end)
  }

  static func nonNegativeInts(_ value: HeaderJSON) -> [Int]? {
    guard case .array(let items) = value else { return nil }
    var ints: [Int] = []
    for item in items {
      guard case .integer(let int) = item, int >= 0 else { return nil }
      ints.append(int)
    }
    return ints
  }

  /// Reads little-endian values of `entry.dtype` as Float, rejecting NaN, Inf and F64 overflow.
  static func convert(
    _ bytes: UnsafeRawBufferPointer, entry: Entry, bad: (String) -> UserError
  ) throws -> [Float] {
    let count = bytes.count / entry.dtype.size
    var values = [Float](repeating: 0, count: count)
    for index in 0..<count {
      let offset = index * entry.dtype.size
      let value: Float
      switch entry.dtype {
      case .f32:
        let bits = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
        value = Float(bitPattern: bits)
      case .f64:
        let bits = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
        let double = Double(bitPattern: bits)
        value = Float(double)
        if double.isFinite && !value.isFinite {
          throw bad("tensor '\(entry.name)' value \(double) at index \(index) does not fit in F32")
        }
      case .f16:
        let bits = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
        value = floatFromHalf(bits)
      case .bf16:
        let bits = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
        value = Float(bitPattern: UInt32(bits) << 16)
      }
      guard value.isFinite else {
        throw bad("tensor '\(entry.name)' contains \(value.isNaN ? "NaN" : "Inf") at index \(index)")
      }
      values[index] = value
    }
    return values
  }

  /// IEEE binary16 to Float; done by hand because `Float16` is missing on some platforms.
  static func floatFromHalf(_ half: UInt16) -> Float {
    let negative = half & 0x8000 != 0
    let exponent = UInt32((half >> 10) & 0x1F)
    let mantissa = UInt32(half & 0x3FF)
    if exponent == 0 {
      let magnitude = Float(mantissa) * 0x1p-24
      return negative ? -magnitude : magnitude
    }
    let sign: UInt32 = negative ? 0x8000_0000 : 0
    if exponent == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13)) }
    return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
  }

  /// Byte-wise order, so the encoding does not depend on Unicode collation.
  static func utf8Less(_ a: String, _ b: String) -> Bool {
    a.utf8.lexicographicallyPrecedes(b.utf8)
  }

  static func appendJSONString(_ text: String, to out: inout [UInt8]) {
    out.append(UInt8(ascii: "\""))
    for byte in text.utf8 {
      switch byte {
      case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
      case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
      case 0x0A: out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
      case 0x0D: out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
      case 0x09: out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
      case 0..<0x20: out += Array(String(format: "\\u%04x", Int(byte)).utf8)
      default: out.append(byte)
      }
    }
    out.append(UInt8(ascii: "\""))
  }
}

// MARK: - JSON

/// A parsed JSON value that keeps integers apart from other numbers and keeps member order.
enum HeaderJSON {
  case object([(key: String, value: HeaderJSON)])
  case array([HeaderJSON])
  case string(String)
  /// A number written without fraction or exponent that fits in Int.
  case integer(Int)
  case number(Double)
  case bool(Bool)
  case null

  var kind: String {
    switch self {
    case .object: return "object"
    case .array: return "array"
    case .string: return "string"
    case .integer, .number: return "number"
    case .bool: return "boolean"
    case .null: return "null"
    }
  }

  /// A short rendering for error messages.
  var brief: String {
    switch self {
    case .array(let items): return "[" + items.map(\.brief).joined(separator: ", ") + "]"
    case .string(let text): return "\"\(text.prefix(40))\""
    case .integer(let int): return String(int)
    case .number(let double): return String(double)
    case .bool(let bool): return String(bool)
    case .object, .null: return kind
    }
  }
}

/// A strict RFC 8259 parser. We use our own rather than JSONSerialization because that one
/// blurs integers and floats into NSNumber and silently keeps one of two duplicate keys.
struct HeaderJSONParser {
  struct Failure: Error { var message: String }

  private let bytes: [UInt8]
  private var index = 0
  private var depth = 0
  /// Deep nesting is never legitimate in a header; the limit keeps recursion bounded.
  private static let maxDepth = 64

  static func parse(_ bytes: [UInt8]) throws -> HeaderJSON {
    var parser = HeaderJSONParser(bytes: bytes)
    parser.skipWhitespace()
    let value = try parser.parseValue()
    parser.skipWhitespace()
    guard parser.index == bytes.count else { throw parser.fail("unexpected text after the value") }
    return value
  }

  private init(bytes: [UInt8]) { self.bytes = bytes }

  private func fail(_ message: String) -> Failure {
    Failure(message: "\(message) at byte \(index)")
  }

  private mutating func skipWhitespace() {
    while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
  }

  private mutating func expect(_ byte: UInt8) throws {
    guard index < bytes.count, bytes[index] == byte else {
      throw fail("expected '\(Character(Unicode.Scalar(byte)))'")
    }
    index += 1
  }

  private mutating func parseValue() throws -> HeaderJSON {
    guard index < bytes.count else { throw fail("unexpected end") }
    switch bytes[index] {
    case UInt8(ascii: "{"): return try parseObject()
    case UInt8(ascii: "["): return try parseArray()
    case UInt8(ascii: "\""): return .string(try parseString())
    case UInt8(ascii: "t"): try parseLiteral("true"); return .bool(true)
    case UInt8(ascii: "f"): try parseLiteral("false"); return .bool(false)
    case UInt8(ascii: "n"): try parseLiteral("null"); return .null
    case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
    default: throw fail("unexpected character")
    }
  }

  private mutating func parseLiteral(_ word: String) throws {
    for byte in word.utf8 {
      guard index < bytes.count, bytes[index] == byte else { throw fail("invalid literal") }
      index += 1
    }
  }

  private mutating func enter() throws {
    depth += 1
    guard depth <= Self.maxDepth else { throw fail("nested deeper than \(Self.maxDepth) levels") }
  }

  private mutating func parseObject() throws -> HeaderJSON {
    try enter()
    defer { depth -= 1 }
    index += 1
    var members: [(key: String, value: HeaderJSON)] = []
    var seen = Set<String>()
    skipWhitespace()
    if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
      index += 1
      return .object(members)
    }
    while true {
      skipWhitespace()
      guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
        throw fail("expected a string key")
      }
      let keyStart = index
      let key = try parseString()
      guard seen.insert(key).inserted else {
        index = keyStart
        throw fail("duplicate key \"\(key)\"")
      }
      skipWhitespace()
      try expect(UInt8(ascii: ":"))
      skipWhitespace()
      members.append((key, try parseValue()))
      skipWhitespace()
      guard index < bytes.count else { throw fail("unexpected end inside an object") }
      if bytes[index] == UInt8(ascii: "}") {
        index += 1
        return .object(members)
      }
      try expect(UInt8(ascii: ","))
    }
  }

  private mutating func parseArray() throws -> HeaderJSON {
    try enter()
    defer { depth -= 1 }
    index += 1
    var items: [HeaderJSON] = []
    skipWhitespace()
    if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
      index += 1
      return .array(items)
    }
    while true {
      skipWhitespace()
      items.append(try parseValue())
      skipWhitespace()
      guard index < bytes.count else { throw fail("unexpected end inside an array") }
      if bytes[index] == UInt8(ascii: "]") {
        index += 1
        return .array(items)
      }
      try expect(UInt8(ascii: ","))
    }
  }

  /// Expects the caller to have validated the whole input as UTF-8.
  private mutating func parseString() throws -> String {
    index += 1
    var out: [UInt8] = []
    while true {
      guard index < bytes.count else { throw fail("unterminated string") }
      let byte = bytes[index]
      index += 1
      switch byte {
      case UInt8(ascii: "\""):
        return String(decoding: out, as: UTF8.self)
      case UInt8(ascii: "\\"):
        guard index < bytes.count else { throw fail("unterminated string") }
        let escape = bytes[index]
        index += 1
        switch escape {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escape)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"): out += Array(String(try parseUnicodeEscape()).utf8)
        default: index -= 1; throw fail("invalid escape")
        }
      case 0..<0x20:
        index -= 1
        throw fail("control character in string")
      default:
        out.append(byte)
      }
    }
  }

  /// Parses the XXXX after `\u`, joining a UTF-16 surrogate pair when one follows.
  private mutating func parseUnicodeEscape() throws -> Character {
    let high = try parseHex4()
    if (0xD800..<0xDC00).contains(high) {
      guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"),
        bytes[index + 1] == UInt8(ascii: "u")
      else { throw fail("unpaired surrogate") }
      index += 2
      let low = try parseHex4()
      guard (0xDC00..<0xE000).contains(low) else { throw fail("unpaired surrogate") }
      let scalar = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
      guard let unicode = Unicode.Scalar(scalar) else { throw fail("invalid surrogate pair") }
      return Character(unicode)
    }
    guard let unicode = Unicode.Scalar(high) else { throw fail("unpaired surrogate") }
    return Character(unicode)
  }

  private mutating func parseHex4() throws -> UInt32 {
    guard index + 4 <= bytes.count else { throw fail("truncated \\u escape") }
    var value: UInt32 = 0
    for _ in 0..<4 {
      let byte = bytes[index]
      let digit: UInt8
      switch byte {
      case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
      case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
      case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
      default: throw fail("invalid \\u escape")
      }
      value = value << 4 | UInt32(digit)
      index += 1
    }
    return value
  }

  private mutating func parseNumber() throws -> HeaderJSON {
    let start = index
    func digits() -> Int {
      let from = index
      while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) {
        index += 1
      }
      return index - from
    }
    if bytes[index] == UInt8(ascii: "-") { index += 1 }
    let intStart = index
    let intDigits = digits()
    guard intDigits > 0 else { throw fail("invalid number") }
    guard intDigits == 1 || bytes[intStart] != UInt8(ascii: "0") else {
      throw fail("number with a leading zero")
    }
    var integral = true
    if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
      integral = false
      index += 1
      guard digits() > 0 else { throw fail("invalid number") }
    }
    if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
      integral = false
      index += 1
      if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
        index += 1
      }
      guard digits() > 0 else { throw fail("invalid number") }
    }
    let text = String(decoding: bytes[start..<index], as: UTF8.self)
    if integral, let int = Int(text) { return .integer(int) }
    guard let double = Double(text) else { throw fail("invalid number") }
    return .number(double)
  }
}

// MARK: - Files

/// Whole-file reads and atomic writes with POSIX calls, so failures carry errno's reason.
enum FileBytes {
  struct Failure: Error { var problem: String }

  static func errnoProblem(_ code: Int32 = errno) -> String {
    code == ENOENT ? "no such file" : String(cString: strerror(code))
  }

  static func read(path: String) throws -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw Failure(problem: errnoProblem()) }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0 else { throw Failure(problem: errnoProblem()) }
    guard info.st_mode & S_IFMT != S_IFDIR else { throw Failure(problem: "is a directory") }

    var out: [UInt8] = []
    out.reserveCapacity(Int(info.st_size))
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    while true {
      let count = chunk.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress, $0.count) }
      if count < 0 {
        if errno == EINTR { continue }
        throw Failure(problem: "read failed: \(errnoProblem())")
      }
      if count == 0 { return out }
      out += chunk[0..<count]
    }
  }

  /// Writes to `.<name>.tmp-<pid>-<random>` beside `path`, syncs, then renames over `path`;
  /// the temp file is removed on every failure.
  static func writeAtomically(_ bytes: [UInt8], path: String) throws {
    let directory = (path as NSString).deletingLastPathComponent
    let name = (path as NSString).lastPathComponent
    let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 16)
    let temp = (directory.isEmpty ? "" : directory + "/") + ".\(name).tmp-\(getpid())-\(suffix)"

    let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    guard fd >= 0 else {
      let code = errno
      throw Failure(problem: code == ENOENT ? "no such directory" : errnoProblem(code))
    }
    var isOpen = true
    var renamed = false
    defer {
      if isOpen { close(fd) }
      if !renamed { unlink(temp) }
    }

    var written = 0
    try bytes.withUnsafeBytes { raw in
      guard let base = raw.baseAddress else { return }
      while written < raw.count {
        let count = Foundation.write(fd, base + written, raw.count - written)
        if count < 0 {
          if errno == EINTR { continue }
          throw Failure(problem: errnoProblem())
        }
        written += count
      }
    }
    // Without the sync a crash soon after rename could leave an empty file under the new name.
    guard fsync(fd) == 0 else { throw Failure(problem: "fsync failed: \(errnoProblem())") }
    isOpen = false
    guard close(fd) == 0 else { throw Failure(problem: "close failed: \(errnoProblem())") }
    guard rename(temp, path) == 0 else { throw Failure(problem: errnoProblem()) }
    renamed = true
  }
}
