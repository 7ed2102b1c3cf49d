import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// The benchmark's results: an SQLite database of runs, cells, models (checkpoints and per-layer
/// sparsity), metrics, minimal distances, sanity checks and failures. Each finished step is one
/// transaction, so a run killed at any point leaves every finished step and nothing half-written.
public final class ResultsStore {
  public static let schemaVersion = 1
  public let path: String
  let db: SQLiteDatabase

  /// Opens (creating if needed) a store; refuses a database of another schema or not ours.
  public init(path: String, create: Bool = true) throws {
    self.path = path
    if !create && !FileManager.default.fileExists(atPath: path) {
      throw UserError.badDatabase(path: path, problem: "no such results database")
    }
    do {
      db = try SQLiteDatabase(path: path, readOnly: !create)
      try db.execute("PRAGMA foreign_keys = ON")
      if create {
        // WAL: `bench status` reads while a run writes; synchronous=FULL: a commit survives power loss.
        try db.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL")
      }
      try checkSchema(create: create)
    } catch let error as SQLiteError {
      throw UserError.badDatabase(path: path, problem: Self.explain(error))
    }
  }

  static func explain(_ error: SQLiteError) -> String {
    switch error.code & 0xFF {
    case 26: return "not an SQLite database (\(error.message))"
    case 13: return "the disk is full (\(error.message)); finished steps are kept, free space and run again"
    case 8: return "read-only (\(error.message))"
    case 14: return "cannot open it (\(error.message)); does its directory exist and is it writable?"
    default: return error.message
    }
  }

  /// Runs a store operation, turning SQLite's failures into one-line errors naming the database.
  @discardableResult
  func guarded<T>(_ body: () throws -> T) throws -> T {
    do {
      return try body()
    } catch let error as SQLiteError {
      throw UserError.badDatabase(path: path, problem: Self.explain(error))
    }
  }

  func checkSchema(create: Bool) throws {
    let tables = try db.query("SELECT name FROM sqlite_master WHERE type = 'table'").compactMap { $0["name"].text }
    if tables.contains("meta") {
      let rows = try db.query("SELECT value FROM meta WHERE key = 'schema_version'")
      guard let version = rows.first?["value"].int else {
        throw UserError.badDatabase(path: path, problem: "has a meta table without a schema version: not an advprune results database")
      }
      guard version == Self.schemaVersion else {
        throw UserError.badDatabase(
          path: path,
          problem:
            "written with results schema version \(version); this advprune reads version \(Self.schemaVersion) (use the advprune that wrote it, or a new database)"
        )
      }
      return
    }
    if !tables.isEmpty {
      throw UserError.badDatabase(
        path: path, problem: "an SQLite database that is not an advprune results database (tables: \(tables.sorted().joined(separator: ", ")))")
    }
    guard create else { throw UserError.badDatabase(path: path, problem: "an empty database, not an advprune results database") }
    try db.transaction {
      try db.execute(Self.schema)
      try db.query("INSERT INTO meta(key, value) VALUES ('schema_version', ?)", [SQLValue(Self.schemaVersion)])
    }
  }

  static let schema = """
    CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE runs(
      id TEXT PRIMARY KEY, config_name TEXT, config_path TEXT, shard TEXT, status TEXT NOT NULL,
      started REAL NOT NULL, finished REAL, current_cell TEXT,
      host TEXT, os TEXT, backend TEXT, device TEXT, driver TEXT, advprune_version TEXT, git_commit TEXT);
    CREATE TABLE cells(
      id TEXT PRIMARY KEY, kind TEXT NOT NULL, dataset TEXT NOT NULL, architecture TEXT NOT NULL, method TEXT,
      title TEXT NOT NULL, taxonomy TEXT, pipeline TEXT, structure TEXT, locality TEXT, criterion TEXT,
      target_sparsity REAL, seed INTEGER NOT NULL, parent TEXT, spec TEXT NOT NULL);
    CREATE TABLE models(
      cell TEXT PRIMARY KEY REFERENCES cells(id), checkpoint TEXT NOT NULL, sparsity REAL NOT NULL,
      seconds REAL NOT NULL, details TEXT, run TEXT, finished REAL NOT NULL);
    CREATE TABLE layers(
      cell TEXT NOT NULL REFERENCES cells(id), position INTEGER NOT NULL, name TEXT NOT NULL,
      weights INTEGER NOT NULL, kept INTEGER NOT NULL, sparsity REAL NOT NULL, PRIMARY KEY(cell, name));
    CREATE TABLE metrics(
      cell TEXT NOT NULL REFERENCES cells(id), evaluation TEXT NOT NULL, attack TEXT NOT NULL, norm TEXT NOT NULL,
      eps REAL NOT NULL, points INTEGER NOT NULL, clean_accuracy REAL NOT NULL, robust_accuracy REAL NOT NULL,
      description TEXT, stages TEXT, median_distance REAL, seconds REAL NOT NULL, run TEXT, finished REAL NOT NULL,
      PRIMARY KEY(cell, evaluation));
    CREATE TABLE distances(
      cell TEXT NOT NULL REFERENCES cells(id), evaluation TEXT NOT NULL, point INTEGER NOT NULL, distance REAL,
      PRIMARY KEY(cell, evaluation, point));
    CREATE TABLE checks(
      cell TEXT NOT NULL REFERENCES cells(id), evaluation TEXT NOT NULL, name TEXT NOT NULL, passed INTEGER NOT NULL,
      detail TEXT, PRIMARY KEY(cell, evaluation, name));
    CREATE TABLE failures(
      cell TEXT NOT NULL, step TEXT NOT NULL, message TEXT NOT NULL, run TEXT NOT NULL, at REAL NOT NULL,
      PRIMARY KEY(cell, step, run));
    """

  // MARK: Writing

  public struct Environment: Sendable {
    public var host: String
    public var os: String
    public var backend: String
    public var device: String
    public var driver: String
    public var version: String
    public var commit: String

    public init(host: String, os: String, backend: String, device: String, driver: String, version: String, commit: String) {
      self.host = host
      self.os = os
      self.backend = backend
      self.device = device
      self.driver = driver
      self.version = version
      self.commit = commit
    }
  }

  func beginRun(id: String, config: BenchConfig, shard: Shard?, environment e: Environment) throws {
    try guarded {
      // A run that was killed never set its status: say so instead of leaving it "running".
      try db.query("UPDATE runs SET status = 'interrupted' WHERE status = 'running'")
      try db.query(
        """
        INSERT INTO runs(id, config_name, config_path, shard, status, started, host, os, backend, device, driver, advprune_version, git_commit)
        VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        [
          .text(id), .text(config.name), .text(config.path), SQLValue(shard?.description), .real(Date().timeIntervalSince1970), .text(e.host),
          .text(e.os), .text(e.backend), .text(e.device), .text(e.driver), .text(e.version), .text(e.commit),
        ])
    }
  }

  func finishRun(id: String, status: String) throws {
    try guarded {
      try db.query(
        "UPDATE runs SET status = ?, finished = ?, current_cell = NULL WHERE id = ?", [.text(status), .real(Date().timeIntervalSince1970), .text(id)])
    }
  }

  func setCurrent(run: String, cell: String?) throws {
    try guarded { try db.query("UPDATE runs SET current_cell = ? WHERE id = ?", [SQLValue(cell), .text(run)]) }
  }

  func register(_ cell: BenchCell) throws {
    let s = cell.spec
    let t = cell.taxonomy
    try guarded {
      try db.query(
        """
        INSERT INTO cells(id, kind, dataset, architecture, method, title, taxonomy, pipeline, structure, locality, criterion,
          target_sparsity, seed, parent, spec) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
          ON CONFLICT(id) DO UPDATE SET title = excluded.title
        """,
        [
          .text(cell.id), .text(s.kind.rawValue), .text(s.dataset), .text(s.architecture), SQLValue(s.method?.name ?? s.method.map { _ in "free" }),
          .text(cell.title), SQLValue(t?.code), SQLValue(t?.pipeline.rawValue), SQLValue(s.method?.structure),
          SQLValue(s.method?.locality ?? t?.localities.first?.rawValue), SQLValue(t?.criterion.rawValue), SQLValue(s.sparsity),
          .int(Int64(s.seed)), SQLValue(s.parent), .text(s.canonicalJSON),
        ])
    }
  }

  func recordModel(
    cell: String, checkpoint: String, sparsity: Double, seconds: Double, details: [String: String], layers: [LayerSparsity], run: String
  )
    throws
  {
    let detailJSON = String(data: try JSONSerialization.data(withJSONObject: details, options: [.sortedKeys]), encoding: .utf8)
    try guarded {
      try db.transaction {
        try db.query("DELETE FROM layers WHERE cell = ?", [.text(cell)])
        for (i, l) in layers.enumerated() {
          try db.query(
            "INSERT INTO layers(cell, position, name, weights, kept, sparsity) VALUES (?, ?, ?, ?, ?, ?)",
            [.text(cell), SQLValue(i), .text(l.name), SQLValue(l.weights), SQLValue(l.kept), .real(l.sparsity)])
        }
        try db.query(
          "INSERT OR REPLACE INTO models(cell, checkpoint, sparsity, seconds, details, run, finished) VALUES (?, ?, ?, ?, ?, ?, ?)",
          [.text(cell), .text(checkpoint), .real(sparsity), .real(seconds), SQLValue(detailJSON), .text(run), .real(Date().timeIntervalSince1970)])
      }
    }
  }

  struct MetricRecord {
    var cell: String
    var evaluation: EvaluationSpec
    var cleanAccuracy: Double
    var robustAccuracy: Double
    var description: String
    var stages: String?
    var medianDistance: Double?
    var seconds: Double
    var distances: [Float]?
    var checks: [SanityCheck]?
  }

  func recordMetric(_ m: MetricRecord, run: String) throws {
    let key = m.evaluation.key
    try guarded {
      try db.transaction {
        if let distances = m.distances {
          try db.query("DELETE FROM distances WHERE cell = ? AND evaluation = ?", [.text(m.cell), .text(key)])
          for (i, d) in distances.enumerated() {
            // +inf (not fooled) is stored as NULL: SQLite has no portable infinity literal.
            try db.query(
              "INSERT INTO distances(cell, evaluation, point, distance) VALUES (?, ?, ?, ?)",
              [.text(m.cell), .text(key), SQLValue(i), d.isFinite ? .real(Double(d)) : .null])
          }
        }
        for c in m.checks ?? [] {
          try db.query(
            "INSERT OR REPLACE INTO checks(cell, evaluation, name, passed, detail) VALUES (?, ?, ?, ?, ?)",
            [.text(m.cell), .text(key), .text(c.name), SQLValue(c.passed ? 1 : 0), .text(c.detail)])
        }
        try db.query(
          """
          INSERT OR REPLACE INTO metrics(cell, evaluation, attack, norm, eps, points, clean_accuracy, robust_accuracy, description, stages,
            median_distance, seconds, run, finished) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
          """,
          [
            .text(m.cell), .text(key), .text(m.evaluation.attack + (m.evaluation.version.map { "-\($0)" } ?? "")), .text(m.evaluation.norm),
            .real(m.evaluation.eps), SQLValue(m.evaluation.points), .real(m.cleanAccuracy), .real(m.robustAccuracy), .text(m.description),
            SQLValue(m.stages), SQLValue(m.medianDistance), .real(m.seconds), .text(run), .real(Date().timeIntervalSince1970),
          ])
      }
    }
  }

  func recordFailure(cell: String, step: String, message: String, run: String) throws {
    try guarded {
      try db.query(
        "INSERT OR REPLACE INTO failures(cell, step, message, run, at) VALUES (?, ?, ?, ?, ?)",
        [.text(cell), .text(step), .text(message), .text(run), .real(Date().timeIntervalSince1970)])
    }
  }

  // MARK: Reading

  func model(of cell: String) throws -> (checkpoint: String, seconds: Double)? {
    try guarded {
      try db.query("SELECT checkpoint, seconds FROM models WHERE cell = ?", [.text(cell)]).first.map {
        ($0["checkpoint"].text ?? "", $0["seconds"].double ?? 0)
      }
    }
  }

  func evaluationsDone(of cell: String) throws -> [String: Double] {
    try guarded {
      Dictionary(
        try db.query("SELECT evaluation, seconds FROM metrics WHERE cell = ?", [.text(cell)]).map {
          ($0["evaluation"].text ?? "", $0["seconds"].double ?? 0)
        },
        uniquingKeysWith: { a, _ in a })
    }
  }

  func failures(of cell: String) throws -> [String] {
    try guarded { try db.query("SELECT message FROM failures WHERE cell = ? ORDER BY at", [.text(cell)]).compactMap { $0["message"].text } }
  }

  func query(_ sql: String, _ parameters: [SQLValue] = []) throws -> [SQLRow] {
    try guarded { try db.query(sql, parameters) }
  }
}

/// An exclusive lock on `<database>.lock`, held while a run writes: a second run on the same
/// database refuses at once instead of interleaving with the first. The kernel drops it when the
/// process dies, so a killed run never leaves a stale lock.
final class RunLock {
  let path: String
  private var fd: Int32 = -1

  init(database: String) throws {
    path = database + ".lock"
    fd = open(path, O_RDWR | O_CREAT, 0o644)
    guard fd >= 0 else {
      throw UserError.cannotWrite(path: path, problem: String(cString: strerror(errno)))
    }
    if flock(fd, LOCK_EX | LOCK_NB) != 0 {
      close(fd)
      fd = -1
      throw UserError.badDatabase(
        path: database, problem: "another advprune bench run is writing it (lock \(path) is held); wait for it, or use another --db")
    }
  }

  /// Waits for the lock of `path` (a checkpoint that shards sharing a checkpoint directory may
  /// all need): the first trains it, the others then find it finished.
  init(waitingFor path: String) throws {
    self.path = path + ".lock"
    fd = open(self.path, O_RDWR | O_CREAT, 0o644)
    guard fd >= 0 else { throw UserError.cannotWrite(path: self.path, problem: String(cString: strerror(errno))) }
    while flock(fd, LOCK_EX) != 0 {
      guard errno == EINTR else { throw UserError.cannotWrite(path: self.path, problem: String(cString: strerror(errno))) }
    }
  }

  /// Whether some process holds the lock of `database` now (for `bench status`).
  static func isHeld(database: String) -> Bool {
    let fd = open(database + ".lock", O_RDONLY)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    if flock(fd, LOCK_SH | LOCK_NB) != 0 { return true }
    flock(fd, LOCK_UN)
    return false
  }

  deinit {
    if fd >= 0 {
      flock(fd, LOCK_UN)
      close(fd)
    }
  }
}
