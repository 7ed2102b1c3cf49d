import Foundation

/// A problem with what the user gave us: a file, a value, a combination of options.
///
/// Each case names the file or value and says what is wrong, in one line, so the CLI can print it
/// and exit 2 without a stack trace. Programmer mistakes are `precondition`s instead.
public enum UserError: Error, CustomStringConvertible, Equatable {
  /// A data set file that is missing, truncated or not in its published format.
  case badDataFile(path: String, problem: String)
  /// A checkpoint that is missing, corrupt, or does not fit the architecture.
  case badCheckpoint(path: String, problem: String)
  /// An option value outside its range, or an unknown name.
  case badValue(name: String, value: String, problem: String)
  /// A file that could not be written.
  case cannotWrite(path: String, problem: String)
  /// A benchmark config with an unknown key or a bad value (`line` where the key was found).
  case badConfig(path: String, line: Int?, key: String, problem: String)
  /// A results database that is not ours, from another schema version, or in use.
  case badDatabase(path: String, problem: String)

  public var description: String {
    switch self {
    case .badDataFile(let path, let problem): return "\(path): bad data file: \(problem)"
    case .badCheckpoint(let path, let problem): return "\(path): bad checkpoint: \(problem)"
    case .badValue(let name, let value, let problem): return "\(name) '\(value)': \(problem)"
    case .cannotWrite(let path, let problem): return "\(path): cannot write: \(problem)"
    case .badConfig(let path, let line, let key, let problem): return "\(path)\(line.map { ":\($0)" } ?? ""): \(key): \(problem)"
    case .badDatabase(let path, let problem): return "\(path): \(problem)"
    }
  }
}
