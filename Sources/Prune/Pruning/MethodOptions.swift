/// A method's `--name value` options as given on the command line, checked against the method
/// that owns each and parsed with one-line errors (`prune --method` and `train --method` share it).
struct MethodOptions {
  let values: [String: String]

  /// Refuses an option no method has, or one that `method` is not among the owners of.
  init(_ values: [String: String], owners: [String: [String]], method: String?) throws {
    for key in values.keys.sorted() where !(owners[key] ?? []).contains(method ?? "") {
      throw UserError.badValue(
        name: "--\(key)", value: values[key]!,
        problem: owners[key].map { "is an option of --method \($0.joined(separator: ", ")), not of \(method ?? "a free cell")" }
          ?? "no method option of that name")
    }
    self.values = values
  }

  static func refuse(_ option: String, _ value: String, _ why: String) -> UserError { UserError.badValue(name: option, value: value, problem: why) }

  /// The number given for `key` (nil when absent); one that fails `valid` is refused as `expected`.
  func number(_ key: String, _ valid: (Double) -> Bool, _ expected: String) throws -> Double? {
    guard let text = values[key] else { return nil }
    guard let v = Double(text), v.isFinite, valid(v) else { throw Self.refuse("--\(key)", text, "expected \(expected)") }
    return v
  }

  /// A whole number >= `minimum` given for `key`.
  func count(_ key: String, minimum: Int, _ expected: String) throws -> Int? {
    try number(key, { $0 >= Double(minimum) && $0 == $0.rounded() }, expected).map(Int.init)
  }

  subscript(key: String) -> String? { values[key] }
}
