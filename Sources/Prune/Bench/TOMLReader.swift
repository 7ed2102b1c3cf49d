import Foundation

/// A TOML value with nothing lost that a config needs; dates and times are refused.
indirect enum TOMLValue {
  case string(String)
  case integer(Int)
  case float(Double)
  case boolean(Bool)
  case array([TOMLValue])
  case table(TOMLTable)

  var string: String? { if case .string(let s) = self { s } else { nil } }
  var int: Int? { if case .integer(let i) = self { i } else { nil } }
  var double: Double? { if case .float(let d) = self { d } else { nil } }
  var bool: Bool? { if case .boolean(let b) = self { b } else { nil } }
  var array: [TOMLValue]? { if case .array(let a) = self { a } else { nil } }
  var table: TOMLTable? { if case .table(let t) = self { t } else { nil } }

  /// What the user wrote, in words, for "expected a number, found <type>".
  var type: String {
    switch self {
    case .string: "a string"
    case .integer: "an integer"
    case .float: "a floating-point number"
    case .boolean: "a boolean"
    case .array: "an array"
    case .table: "a table"
    }
  }
}

/// A TOML table: its keys in file order and the line each was set on.
final class TOMLTable {
  private(set) var keys: [String] = []
  private var values: [String: TOMLValue] = [:]
  private(set) var lines: [String: Int] = [:]
  /// Where the table starts (its header, or its first key).
  let line: Int
  /// Made by a `[header]` (not only implied by `[a.b]` or a dotted key), so a second one is a duplicate.
  var defined = false
  /// An `[[array]]` element or an inline table: closed to later headers and dotted keys.
  var sealed = false

  init(line: Int) { self.line = line }

  subscript(key: String) -> TOMLValue? { values[key] }

  func set(_ key: String, _ value: TOMLValue, line: Int) {
    if values[key] == nil { keys.append(key) }
    values[key] = value
    lines[key] = line
  }
}

/// A failure to read a TOML file: the 1-based line and what is wrong there.
struct TOMLSyntaxError: Error {
  let line: Int
  let message: String
}

/// A strict reader of TOML 1.0 without dates and times: tables, arrays of tables, dotted keys,
/// basic / literal / multi-line strings, integers (decimal, hex, octal, binary), floats (inf, nan),
/// booleans, arrays and inline tables. Written for untrusted configs: every error is a line and a
/// message, nesting is bounded, and nothing it reads can make it crash (scripts/fuzz.sh).
struct TOMLReader {
  static let maxDepth = 64
  private let s: [Unicode.Scalar]
  private var i = 0
  private var line = 1

  static func parse(_ text: String) throws -> TOMLTable {
    var reader = TOMLReader(s: Array(text.unicodeScalars))
    return try reader.document()
  }

  private init(s: [Unicode.Scalar]) { self.s = s }

  private func fail(_ message: String) -> TOMLSyntaxError { TOMLSyntaxError(line: line, message: message) }
  private var atEnd: Bool { i >= s.count }
  private var c: Unicode.Scalar? { i < s.count ? s[i] : nil }
  private func peek(_ k: Int) -> Unicode.Scalar? { i + k < s.count ? s[i + k] : nil }
  private func looking(at text: String) -> Bool {
    var k = i
    for u in text.unicodeScalars {
      guard k < s.count, s[k] == u else { return false }
      k += 1
    }
    return true
  }

  private mutating func skipSpaces() {
    while let c, c == " " || c == "\t" { i += 1 }
  }

  private mutating func skipComment() throws {
    guard c == "#" else { return }
    while let c, c != "\n" {
      if c == "\r" && peek(1) == "\n" { break }
      if c.value < 0x20 && c != "\t" || c.value == 0x7F { throw fail("control character in a comment") }
      i += 1
    }
  }

  /// Spaces, a comment, then the end of the line (or of the file).
  private mutating func endOfLine() throws {
    skipSpaces()
    try skipComment()
    if atEnd { return }
    if c == "\r" && peek(1) == "\n" { i += 1 }
    guard c == "\n" else { throw fail("expected the end of the line, found '\(Character(c!))'") }
    i += 1
    line += 1
  }

  /// Spaces, newlines and comments (inside arrays, between statements).
  private mutating func skipBlank() throws {
    while true {
      skipSpaces()
      try skipComment()
      if c == "\r" && peek(1) == "\n" { i += 1 }
      guard c == "\n" else { return }
      i += 1
      line += 1
    }
  }

  private mutating func document() throws -> TOMLTable {
    let root = TOMLTable(line: 1)
    root.defined = true
    var current = root
    while true {
      try skipBlank()
      guard let c else { return root }
      if c == "[" {
        let isArray = peek(1) == "["
        let headerLine = line
        i += isArray ? 2 : 1
        skipSpaces()
        let path = try keyPath()
        skipSpaces()
        guard looking(at: isArray ? "]]" : "]") else { throw fail("expected '\(isArray ? "]]" : "]")' to close the table header") }
        i += isArray ? 2 : 1
        try endOfLine()
        current = isArray ? try appendArrayTable(root, path, line: headerLine) : try defineTable(root, path, line: headerLine)
      } else {
        let keyLine = line
        let path = try keyPath()
        skipSpaces()
        guard self.c == "=" else { throw fail("expected '=' after the key '\(path.joined(separator: "."))'") }
        i += 1
        skipSpaces()
        let v = try value(depth: 0)
        try assign(v, to: path, in: current, line: keyLine)
        try endOfLine()
      }
    }
  }

  /// The table a dotted prefix leads to, made (implicitly) where missing.
  private func descend(_ table: TOMLTable, _ path: ArraySlice<String>, line: Int, dottedKey: Bool) throws -> TOMLTable {
    var t = table
    for key in path {
      switch t[key] {
      case nil:
        let child = TOMLTable(line: line)
        t.set(key, .table(child), line: line)
        t = child
      case .table(let child):
        if child.sealed || (dottedKey && child.defined) { throw TOMLSyntaxError(line: line, message: "cannot extend the table '\(key)' here") }
        t = child
      case .array(let items):
        guard !dottedKey, case .table(let last)? = items.last, last.sealed else {
          throw TOMLSyntaxError(line: line, message: "'\(key)' is already a value, not a table")
        }
        t = last
      default:
        throw TOMLSyntaxError(line: line, message: "'\(key)' is already a value, not a table")
      }
    }
    return t
  }

  private func defineTable(_ root: TOMLTable, _ path: [String], line: Int) throws -> TOMLTable {
    let parent = try descend(root, path.dropLast(), line: line, dottedKey: false)
    let key = path.last!
    switch parent[key] {
    case nil:
      let t = TOMLTable(line: line)
      t.defined = true
      parent.set(key, .table(t), line: line)
      return t
    case .table(let t) where !t.defined && !t.sealed:
      t.defined = true
      return t
    default:
      throw TOMLSyntaxError(line: line, message: "the table '\(path.joined(separator: "."))' is defined twice")
    }
  }

  private func appendArrayTable(_ root: TOMLTable, _ path: [String], line: Int) throws -> TOMLTable {
    let parent = try descend(root, path.dropLast(), line: line, dottedKey: false)
    let key = path.last!
    let t = TOMLTable(line: line)
    t.sealed = true
    t.defined = true
    switch parent[key] {
    case nil: parent.set(key, .array([.table(t)]), line: line)
    case .array(let items) where items.allSatisfy({ $0.table?.sealed == true }) && !items.isEmpty:
      parent.set(key, .array(items + [.table(t)]), line: line)
    default: throw TOMLSyntaxError(line: line, message: "'\(path.joined(separator: "."))' is already a value, not an array of tables")
    }
    return t
  }

  private func assign(_ v: TOMLValue, to path: [String], in table: TOMLTable, line: Int) throws {
    let t = try descend(table, path.dropLast(), line: line, dottedKey: true)
    guard t[path.last!] == nil else { throw TOMLSyntaxError(line: line, message: "the key '\(path.joined(separator: "."))' is set twice") }
    t.set(path.last!, v, line: line)
  }

  private mutating func keyPath() throws -> [String] {
    var path = [try key()]
    while true {
      skipSpaces()
      guard c == "." else { return path }
      i += 1
      skipSpaces()
      path.append(try key())
    }
  }

  private mutating func key() throws -> String {
    guard let c else { throw fail("expected a key, found the end of the file") }
    if c == "\"" || c == "'" {
      if looking(at: "\"\"\"") || looking(at: "'''") { throw fail("a key cannot be a multi-line string") }
      return try c == "\"" ? basicString() : literalString()
    }
    let start = i
    while let c = self.c, ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c) || c == "_" || c == "-" { i += 1 }
    guard i > start else { throw fail("expected a key, found '\(Character(c))'") }
    return String(String.UnicodeScalarView(s[start..<i]))
  }

  private mutating func value(depth: Int) throws -> TOMLValue {
    guard depth < Self.maxDepth else { throw fail("values nested deeper than \(Self.maxDepth)") }
    guard let c else { throw fail("expected a value, found the end of the file") }
    switch c {
    case "\"": return .string(looking(at: "\"\"\"") ? try multilineString(literal: false) : try basicString())
    case "'": return .string(looking(at: "'''") ? try multilineString(literal: true) : try literalString())
    case "[": return try arrayValue(depth: depth)
    case "{": return try inlineTable(depth: depth)
    case "t", "f":
      if looking(at: "true") {
        i += 4
        return .boolean(true)
      }
      if looking(at: "false") {
        i += 5
        return .boolean(false)
      }
    default: break
    }
    return try number()
  }

  private mutating func arrayValue(depth: Int) throws -> TOMLValue {
    i += 1
    var items: [TOMLValue] = []
    while true {
      try skipBlank()
      if c == "]" {
        i += 1
        return .array(items)
      }
      items.append(try value(depth: depth + 1))
      try skipBlank()
      if c == "," {
        i += 1
        continue
      }
      guard c == "]" else { throw fail(atEnd ? "an array is not closed with ']'" : "expected ',' or ']' in an array") }
    }
  }

  private mutating func inlineTable(depth: Int) throws -> TOMLValue {
    let t = TOMLTable(line: line)
    i += 1
    skipSpaces()
    if c == "}" {
      i += 1
      t.sealed = true
      return .table(t)
    }
    while true {
      skipSpaces()
      let keyLine = line
      let path = try keyPath()
      skipSpaces()
      guard c == "=" else { throw fail("expected '=' in an inline table") }
      i += 1
      skipSpaces()
      try assign(try value(depth: depth + 1), to: path, in: t, line: keyLine)
      skipSpaces()
      if c == "," {
        i += 1
        continue
      }
      guard c == "}" else { throw fail("expected ',' or '}' in an inline table (inline tables fit on one line)") }
      i += 1
      t.sealed = true
      return .table(t)
    }
  }

  private mutating func escape() throws -> Unicode.Scalar {
    i += 1
    guard let e = c else { throw fail("a string ends inside an escape") }
    i += 1
    switch e {
    case "b": return "\u{08}"
    case "t": return "\t"
    case "n": return "\n"
    case "f": return "\u{0C}"
    case "r": return "\r"
    case "e": return "\u{1B}"
    case "\"": return "\""
    case "\\": return "\\"
    case "u", "U":
      let n = e == "u" ? 4 : 8
      guard i + n <= s.count, let code = UInt32(String(String.UnicodeScalarView(s[i..<(i + n)])), radix: 16),
        let scalar = Unicode.Scalar(code)
      else { throw fail("a \\\(e) escape needs \(n) hex digits of a Unicode scalar") }
      i += n
      return scalar
    default: throw fail("unknown escape '\\\(Character(e))' in a string")
    }
  }

  private mutating func basicString() throws -> String {
    i += 1
    var out = String.UnicodeScalarView()
    while true {
      guard let c else { throw fail("a string is not closed") }
      switch c {
      case "\"":
        i += 1
        return String(out)
      case "\\": out.append(try escape())
      case "\n": throw fail("a string is not closed on its line")
      default:
        if c.value < 0x20 && c != "\t" || c.value == 0x7F { throw fail("control character in a string") }
        out.append(c)
        i += 1
      }
    }
  }

  private mutating func literalString() throws -> String {
    i += 1
    let start = i
    while let c, c != "'" {
      if c == "\n" { throw fail("a string is not closed on its line") }
      if c.value < 0x20 && c != "\t" || c.value == 0x7F { throw fail("control character in a string") }
      i += 1
    }
    guard c == "'" else { throw fail("a string is not closed") }
    defer { i += 1 }
    return String(String.UnicodeScalarView(s[start..<i]))
  }

  private mutating func multilineString(literal: Bool) throws -> String {
    let quote: Unicode.Scalar = literal ? "'" : "\""
    let fence = literal ? "'''" : "\"\"\""
    i += 3
    if c == "\n" {
      i += 1
      line += 1
    } else if c == "\r" && peek(1) == "\n" {
      i += 2
      line += 1
    }
    var out = String.UnicodeScalarView()
    while true {
      guard let c else { throw fail("a multi-line string is not closed with \(fence)") }
      if looking(at: fence) {
        // Up to two quotes just before the fence belong to the string.
        var extra = 0
        while extra < 2 && peek(3 + extra) == quote { extra += 1 }
        for _ in 0..<extra { out.append(quote) }
        i += 3 + extra
        return String(out)
      }
      if !literal && c == "\\" {
        var k = i + 1
        while k < s.count && (s[k] == " " || s[k] == "\t" || s[k] == "\r") { k += 1 }
        if k < s.count && s[k] == "\n" {
          // A line-ending backslash drops the newline and the whitespace that follows.
          i = k
          while let w = self.c, w == " " || w == "\t" || w == "\n" || w == "\r" {
            if w == "\n" { line += 1 }
            i += 1
          }
          continue
        }
        out.append(try escape())
        continue
      }
      if c == "\n" { line += 1 } else if c.value < 0x20 && c != "\t" && c != "\r" || c.value == 0x7F { throw fail("control character in a string") }
      out.append(c)
      i += 1
    }
  }

  private mutating func number() throws -> TOMLValue {
    let start = i
    while let c, !(c == "," || c == "]" || c == "}" || c == " " || c == "\t" || c == "\n" || c == "\r" || c == "#") { i += 1 }
    let text = String(String.UnicodeScalarView(s[start..<i]))
    guard !text.isEmpty else { throw fail(atEnd ? "expected a value, found the end of the file" : "expected a value, found '\(Character(c!))'") }
    if let v = Self.number(text) { return v }
    if text.first?.isNumber == true && (text.contains(":") || text.dropFirst(1).contains("-")) {
      throw fail("'\(text)': dates and times are not used in advprune configs")
    }
    throw fail("'\(text)' is not a value (strings need quotes)")
  }

  static func number(_ text: String) -> TOMLValue? {
    switch text {
    case "inf", "+inf": return .float(.infinity)
    case "-inf": return .float(-.infinity)
    case "nan", "+nan", "-nan": return .float(.nan)
    default: break
    }
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] where text.hasPrefix(prefix) {
      let digits = text.dropFirst(2)
      guard validUnderscores(digits) else { return nil }
      return Int(digits.replacingOccurrences(of: "_", with: ""), radix: radix).map { .integer($0) }
    }
    let unsigned = text.first == "+" || text.first == "-" ? text.dropFirst() : Substring(text)
    guard let first = unsigned.first, first.isASCII && first.isNumber, validUnderscores(unsigned) else { return nil }
    let plain = text.replacingOccurrences(of: "_", with: "")
    let body = unsigned.replacingOccurrences(of: "_", with: "")
    if body.allSatisfy({ $0.isASCII && $0.isNumber }) {
      if body.count > 1 && body.hasPrefix("0") { return nil }
      return Int(plain).map { .integer($0) }
    }
    // A float: digits with a fraction and/or an exponent; a leading zero only before '.', 'e' or alone.
    let intPart = body.prefix { $0.isNumber }
    if intPart.count > 1 && intPart.hasPrefix("0") { return nil }
    guard body.allSatisfy({ $0.isASCII && ($0.isNumber || ".eE+-".contains($0)) }), !body.hasSuffix("."), !body.contains(".e"), !body.contains(".E")
    else { return nil }
    return Double(plain).flatMap { $0.isFinite ? .float($0) : nil }
  }

  /// Underscores only between digits.
  static func validUnderscores(_ text: Substring) -> Bool {
    let chars = Array(text)
    for (k, ch) in chars.enumerated() where ch == "_" {
      guard k > 0, k + 1 < chars.count, chars[k - 1].isHexDigit, chars[k + 1].isHexDigit else { return false }
    }
    return true
  }
}
