import Foundation

/// `advprune bench status`: which cells of a grid are done, running, failed or left, with an ETA.
public struct BenchStatus: Codable, Sendable {
  public struct Cell: Codable, Sendable {
    public let id: String
    public let title: String
    public let kind: String
    public let architecture: String
    public let sparsity: Double?
    public let seed: UInt64
    /// done, running, failed, partial (model made, evaluations left) or left.
    public let state: String
    public let seconds: Double?
    public let failure: String?
  }

  public let config: String
  public let database: String
  public let cells: Int
  public let done: Int
  public let running: Int
  public let failed: Int
  public let left: Int
  /// A run holds the database's lock now.
  public let active: Bool
  /// Mean time of a finished cell times the cells not done (nil before the first finishes).
  public let etaSeconds: Double?
  public let states: [Cell]

  public static func read(config: BenchConfig, database: String, shard: Shard?) throws -> BenchStatus {
    let plan = try BenchPlan(config)
    let cells = shard.map { plan.shard($0.index, of: $0.count) } ?? plan.cells
    let store = FileManager.default.fileExists(atPath: database) ? try ResultsStore(path: database, create: false) : nil
    let active = RunLock.isHeld(database: database)
    let current =
      try store?.query("SELECT current_cell FROM runs WHERE status = 'running' AND current_cell IS NOT NULL").compactMap { $0["current_cell"].text }
      ?? []
    var states: [Cell] = []
    for cell in cells {
      let model = try store?.model(of: cell.id)
      let evaluations = try store?.evaluationsDone(of: cell.id) ?? [:]
      let complete = model != nil && cell.evaluations.allSatisfy { evaluations[$0.key] != nil }
      let failure = try store?.failures(of: cell.id).last
      let state: String
      if complete {
        state = "done"
      } else if active && current.contains(cell.id) {
        state = "running"
      } else if failure != nil {
        state = "failed"
      } else {
        state = model != nil ? "partial" : "left"
      }
      let seconds = complete ? (model?.seconds ?? 0) + cell.evaluations.compactMap { evaluations[$0.key] }.reduce(0, +) : nil
      states.append(
        Cell(
          id: cell.id, title: cell.title, kind: cell.spec.kind.rawValue, architecture: cell.spec.architecture, sparsity: cell.spec.sparsity,
          seed: cell.spec.seed, state: state, seconds: seconds, failure: complete ? nil : failure))
    }
    func count(_ s: String) -> Int { states.filter { $0.state == s }.count }
    let times = states.compactMap(\.seconds)
    let notDone = states.count - count("done")
    let eta = times.isEmpty || notDone == 0 ? (notDone == 0 ? 0 : nil) : times.reduce(0, +) / Double(times.count) * Double(notDone)
    return BenchStatus(
      config: config.path, database: database, cells: states.count, done: count("done"), running: count("running"), failed: count("failed"),
      left: count("left") + count("partial"), active: active, etaSeconds: eta, states: states)
  }
}
