import Foundation

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
    case UInt8(ascii: "t"):
      try parseLiteral("true")
      return .bool(true)
    case UInt8(ascii: "f"):
      try parseLiteral("false")
      return .bool(false)
    case UInt8(ascii: "n"):
      try parseLiteral("null")
      return .null
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
        default:
          index -= 1
          throw fail("invalid escape")
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
