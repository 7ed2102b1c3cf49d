import CSQLite
import Foundation

/// A value bound to, or read from, an SQL statement.
enum SQLValue: Equatable, Sendable {
  case null
  case int(Int64)
  case real(Double)
  case text(String)

  var double: Double? {
    switch self {
    case .int(let v): Double(v)
    case .real(let v): v
    case .text(let t): Double(t)
    case .null: nil
    }
  }
  var int: Int? {
    switch self {
    case .int(let v): Int(v)
    case .real(let v): Int(v)
    case .text(let t): Int(t)
    case .null: nil
    }
  }
  var text: String? {
    switch self {
    case .text(let t): t
    case .int(let v): "\(v)"
    case .real(let v): "\(v)"
    case .null: nil
    }
  }
}

extension SQLValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral, ExpressibleByNilLiteral {
  init(stringLiteral value: String) { self = .text(value) }
  init(integerLiteral value: Int64) { self = .int(value) }
  init(floatLiteral value: Double) { self = .real(value) }
  init(nilLiteral: ()) { self = .null }
  init(_ v: Int) { self = .int(Int64(v)) }
  init(_ v: Double?) { self = v.map { .real($0) } ?? .null }
  init(_ v: String?) { self = v.map { .text($0) } ?? .null }
}

/// One row of a query, by column name.
struct SQLRow {
  let columns: [String: SQLValue]
  subscript(_ name: String) -> SQLValue { columns[name] ?? .null }
}

/// A failure of SQLite, with the database's path and SQLite's own message.
struct SQLiteError: Error, CustomStringConvertible {
  let path: String
  let code: Int32
  let message: String
  var description: String { "\(path): \(message)" }
  /// SQLITE_FULL, SQLITE_READONLY, SQLITE_CANTOPEN, SQLITE_IOERR: the disk, not the program.
  var isStorageProblem: Bool { [13, 8, 14, 10].contains(code & 0xFF) }
}

/// A small, synchronous wrapper over the system libsqlite3: open, execute, query, transactions.
/// One connection per instance, used from one thread.
final class SQLiteDatabase {
  let path: String
  private var handle: OpaquePointer?

  init(path: String, readOnly: Bool = false) throws {
    self.path = path
    let flags = readOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)
    let rc = sqlite3_open_v2(path, &handle, flags, nil)
    if rc != SQLITE_OK {
      let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
      sqlite3_close(handle)
      handle = nil
      throw SQLiteError(path: path, code: rc, message: message)
    }
    sqlite3_busy_timeout(handle, 5000)
  }

  deinit { sqlite3_close(handle) }

  private func fail(_ rc: Int32) -> SQLiteError {
    SQLiteError(path: path, code: rc, message: String(cString: sqlite3_errmsg(handle)))
  }

  /// Runs one or more statements without parameters or results.
  func execute(_ sql: String) throws {
    let rc = sqlite3_exec(handle, sql, nil, nil, nil)
    if rc != SQLITE_OK { throw fail(rc) }
  }

  /// Runs one statement with parameters; returns its rows.
  @discardableResult
  func query(_ sql: String, _ parameters: [SQLValue] = []) throws -> [SQLRow] {
    var statement: OpaquePointer?
    var rc = sqlite3_prepare_v2(handle, sql, -1, &statement, nil)
    if rc != SQLITE_OK { throw fail(rc) }
    defer { sqlite3_finalize(statement) }
    let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
    for (i, value) in parameters.enumerated() {
      let index = Int32(i + 1)
      switch value {
      case .null: rc = sqlite3_bind_null(statement, index)
      case .int(let v): rc = sqlite3_bind_int64(statement, index, v)
      case .real(let v): rc = sqlite3_bind_double(statement, index, v)
      case .text(let t): rc = sqlite3_bind_text(statement, index, t, -1, transient)
      }
      if rc != SQLITE_OK { throw fail(rc) }
    }
    var rows: [SQLRow] = []
    while true {
      rc = sqlite3_step(statement)
      if rc == SQLITE_DONE { break }
      if rc != SQLITE_ROW { throw fail(rc) }
      var columns: [String: SQLValue] = [:]
      for c in 0..<sqlite3_column_count(statement) {
        let name = String(cString: sqlite3_column_name(statement, c))
        switch sqlite3_column_type(statement, c) {
        case SQLITE_INTEGER: columns[name] = .int(sqlite3_column_int64(statement, c))
        case SQLITE_FLOAT: columns[name] = .real(sqlite3_column_double(statement, c))
        case SQLITE_TEXT: columns[name] = .text(String(cString: sqlite3_column_text(statement, c)))
        default: columns[name] = .null
        }
      }
      rows.append(SQLRow(columns: columns))
    }
    return rows
  }

  /// Runs `body` in one transaction: all of it lands, or (on a throw or a kill) none of it.
  func transaction<T>(_ body: () throws -> T) throws -> T {
    try execute("BEGIN IMMEDIATE")
    do {
      let value = try body()
      try execute("COMMIT")
      return value
    } catch {
      try? execute("ROLLBACK")
      throw error
    }
  }
}
