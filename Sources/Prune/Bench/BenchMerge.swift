import Foundation

/// `advprune bench merge`: shard databases combined into one, idempotently (a cell, metric or
/// run already there is kept, never duplicated).
public enum BenchMerge {
  public struct Summary: Codable, Sendable {
    public let into: String
    public let sources: [String]
    /// Rows added per table.
    public let added: [String: Int]
  }

  static let tables = ["runs", "cells", "models", "layers", "metrics", "distances", "checks", "failures"]

  public static func merge(_ sources: [String], into target: String) throws -> Summary {
    for source in sources { _ = try ResultsStore(path: source, create: false) }
    try checkWritable(target)
    let lock = try RunLock(database: target)
    defer { withExtendedLifetime(lock) {} }
    let store = try ResultsStore(path: target)
    var added: [String: Int] = [:]
    for source in sources {
      func resolved(_ path: String) -> String { URL(fileURLWithPath: path).resolvingSymlinksInPath().standardizedFileURL.path }
      if resolved(source) == resolved(target) { continue }
      try store.guarded {
        try store.db.query("ATTACH DATABASE ? AS source", [.text(source)])
        defer { try? store.db.execute("DETACH DATABASE source") }
        try store.db.transaction {
          for table in tables {
            let before = try store.db.query("SELECT count(*) AS n FROM main.\(table)")[0]["n"].int ?? 0
            try store.db.execute("INSERT OR IGNORE INTO main.\(table) SELECT * FROM source.\(table)")
            let after = try store.db.query("SELECT count(*) AS n FROM main.\(table)")[0]["n"].int ?? 0
            added[table, default: 0] += after - before
          }
        }
      }
    }
    return Summary(into: target, sources: sources, added: added)
  }
}
