import Foundation

/// One table of a TOML config being read: typed getters that remember which keys were read, so
/// that whatever is left is an unknown key, and errors that name the file, the line and the key.
final class TOMLSection {
  let table: TOMLTable
  /// The config file, for errors.
  let path: String
  /// Dotted path of the table ("train", "method"), empty at the top level.
  let name: String
  private var used: Set<String> = []

  init(table: TOMLTable, path: String, name: String) {
    self.table = table
    self.path = path
    self.name = name
  }

  func qualified(_ key: String) -> String { name.isEmpty ? key : "\(name).\(key)" }

  func error(_ key: String, _ problem: String) -> UserError {
    .badConfig(path: path, line: table.lines[key] ?? table.line, key: qualified(key), problem: problem)
  }

  func has(_ key: String) -> Bool { table[key] != nil }

  private func value(_ key: String) -> TOMLValue? {
    used.insert(key)
    return table[key]
  }

  func string(_ key: String) throws -> String? {
    guard let v = value(key) else { return nil }
    guard let s = v.string else { throw error(key, "expected a string, found \(v.type)") }
    return s
  }

  func int(_ key: String, minimum: Int? = nil) throws -> Int? {
    guard let v = value(key) else { return nil }
    guard let i = v.int else { throw error(key, "expected a whole number, found \(v.type)") }
    if let minimum, i < minimum { throw error(key, "must be >= \(minimum), found \(i)") }
    return i
  }

  func double(_ key: String) throws -> Double? {
    guard let v = value(key) else { return nil }
    guard let d = v.double ?? v.int.map(Double.init) else { throw error(key, "expected a number, found \(v.type)") }
    guard d.isFinite else { throw error(key, "must be a finite number") }
    return d
  }

  /// A string or a number as text (method options take either: `gamma = 2`, `regrowth = "gradient"`).
  func scalarText(_ key: String) throws -> String? {
    guard let v = value(key) else { return nil }
    if let s = v.string { return s }
    if let i = v.int { return String(i) }
    if let d = v.double { return "\(d)" }
    throw error(key, "expected a number or a string, found \(v.type)")
  }

  func bool(_ key: String) throws -> Bool? {
    guard let v = value(key) else { return nil }
    guard let b = v.bool else { throw error(key, "expected true or false, found \(v.type)") }
    return b
  }

  /// A list, or one value standing for a list of one.
  func strings(_ key: String) throws -> [String]? {
    guard let v = value(key) else { return nil }
    if let s = v.string { return [s] }
    guard let array = v.array else { throw error(key, "expected a string or a list of strings, found \(v.type)") }
    return try array.map { item in
      guard let s = item.string else { throw error(key, "expected strings in the list, found \(item.type)") }
      return s
    }
  }

  func doubles(_ key: String) throws -> [Double]? {
    guard let v = value(key) else { return nil }
    let items = v.array ?? [v]
    return try items.map { item in
      guard let d = item.double ?? item.int.map(Double.init), d.isFinite else {
        throw error(key, "expected a number or a list of numbers, found \(item.type)")
      }
      return d
    }
  }

  func ints(_ key: String, minimum: Int = 0) throws -> [Int]? {
    guard let v = value(key) else { return nil }
    let items = v.array ?? [v]
    return try items.map { item in
      guard let i = item.int, i >= minimum else {
        throw error(key, "expected whole numbers >= \(minimum), found \(item.int.map(String.init) ?? item.type)")
      }
      return i
    }
  }

  /// A sub-table `[name.key]` (or inline table).
  func section(_ key: String) throws -> TOMLSection? {
    guard let v = value(key) else { return nil }
    guard let t = v.table else { throw error(key, "expected a table, found \(v.type)") }
    return TOMLSection(table: t, path: path, name: qualified(key))
  }

  /// The tables of `[[key]]`.
  func sections(_ key: String) throws -> [TOMLSection] {
    guard let v = value(key) else { return [] }
    guard let array = v.array else { throw error(key, "expected [[\(qualified(key))]] tables, found \(v.type)") }
    return try array.map { item in
      guard let t = item.table else { throw error(key, "expected [[\(qualified(key))]] tables, found \(item.type)") }
      return TOMLSection(table: t, path: path, name: qualified(key))
    }
  }

  /// The keys nobody read, apart from `allowing`.
  func unreadKeys(allowing extra: Set<String> = []) -> [String] {
    table.keys.filter { !used.contains($0) && !extra.contains($0) }.sorted()
  }

  /// Refuses a key that no getter asked for (a typo must not silently fall back to a default).
  func finish(known: [String]) throws {
    if let key = unreadKeys().first {
      throw error(key, "unknown key; this table takes \(known.sorted().joined(separator: ", "))")
    }
  }
}

extension TOMLSection {
  /// `parse(text)` with its complaint moved onto this key and line.
  func parsed<T>(_ key: String, _ text: String, _ parse: (String) throws -> T) throws -> T {
    do {
      return try parse(text)
    } catch UserError.badValue(_, let value, let problem) {
      throw error(key, "'\(value)': \(problem)")
    }
  }
}
