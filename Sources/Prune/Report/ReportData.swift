import Foundation

/// A mean over seeds with its spread (half the range: min..max is mean ± spread for two seeds).
public struct SeedStat: Codable, Sendable {
  public let mean: Double
  public let spread: Double
  public let count: Int

  init?(_ values: [Double]) {
    guard !values.isEmpty else { return nil }
    mean = values.reduce(0, +) / Double(values.count)
    spread = ((values.max() ?? 0) - (values.min() ?? 0)) / 2
    count = values.count
  }
}

/// One leaderboard row: a method at a sparsity on a data set and architecture, over its seeds.
public struct LeaderboardRow: Codable, Sendable {
  public let dataset: String
  public let architecture: String
  public let method: String
  public let taxonomy: String
  public let pipeline: String
  public let structure: String
  public let locality: String
  public let criterion: String
  public let targetSparsity: Double
  public let sparsity: SeedStat?
  public let clean: SeedStat?
  public let pgd: SeedStat?
  public let autoattack: SeedStat?
  public let medianDistance: SeedStat?
  public let seconds: SeedStat?
  public let seeds: Int
  public let cells: [String]

  /// The strongest robust accuracy measured: AutoAttack, else PGD.
  public var robust: SeedStat? { autoattack ?? pgd }
}

/// Everything the report shows, read from a results database.
public struct ReportData: Sendable {
  public struct CellRow: Sendable {
    public let id: String
    public let kind: String
    public let dataset: String
    public let architecture: String
    public let title: String
    public let taxonomy: String
    public let pipeline: String
    public let structure: String
    public let locality: String
    public let criterion: String
    public let targetSparsity: Double
    public let seed: Int
    public let sparsity: Double?
    public let modelSeconds: Double?
    /// evaluation key -> metric values.
    public let metrics: [Metric]
  }

  public struct Metric: Sendable {
    public let evaluation: String
    public let attack: String
    public let eps: Double
    public let norm: String
    public let points: Int
    public let clean: Double
    public let robust: Double
    public let medianDistance: Double?
    public let seconds: Double
  }

  public struct Check: Sendable {
    public let cell: String
    public let title: String
    public let name: String
    public let detail: String
  }

  public let cells: [CellRow]
  public let rows: [LeaderboardRow]
  /// Per cell id: layer name, weights, sparsity (in model order).
  public let layers: [String: [(name: String, weights: Int, sparsity: Double)]]
  /// Per cell id: FMN's per-point distances (+inf where not fooled).
  public let distances: [String: [Double]]
  public let failedChecks: [Check]
  public let failures: [(title: String, message: String)]
  public let runs: [[String: String]]

  public init(database: String) throws {
    let store = try ResultsStore(path: database, create: false)
    var metrics: [String: [Metric]] = [:]
    for r in try store.query("SELECT * FROM metrics ORDER BY cell, evaluation") {
      metrics[r["cell"].text ?? "", default: []].append(
        Metric(
          evaluation: r["evaluation"].text ?? "", attack: r["attack"].text ?? "", eps: r["eps"].double ?? 0, norm: r["norm"].text ?? "",
          points: r["points"].int ?? 0, clean: r["clean_accuracy"].double ?? 0, robust: r["robust_accuracy"].double ?? 0,
          medianDistance: r["median_distance"].double, seconds: r["seconds"].double ?? 0))
    }
    let rows = try store.query(
      """
      SELECT c.*, m.sparsity AS achieved, m.seconds AS model_seconds FROM cells c LEFT JOIN models m ON m.cell = c.id
      ORDER BY c.dataset, c.architecture, c.kind != 'dense', c.taxonomy, c.title, c.target_sparsity, c.seed
      """)
    cells = rows.map { r in
      let id = r["id"].text ?? ""
      let dense = r["kind"].text == "dense"
      return CellRow(
        id: id, kind: r["kind"].text ?? "", dataset: r["dataset"].text ?? "", architecture: r["architecture"].text ?? "",
        title: r["title"].text ?? "",
        taxonomy: dense ? "dense" : r["taxonomy"].text ?? "", pipeline: dense ? "dense" : r["pipeline"].text ?? "",
        structure: r["structure"].text ?? "-",
        locality: r["locality"].text ?? "-", criterion: r["criterion"].text ?? "-", targetSparsity: r["target_sparsity"].double ?? 0,
        seed: r["seed"].int ?? 0, sparsity: r["achieved"].double, modelSeconds: r["model_seconds"].double, metrics: metrics[id] ?? [])
    }
    var layers: [String: [(String, Int, Double)]] = [:]
    for r in try store.query("SELECT cell, name, weights, sparsity FROM layers ORDER BY cell, position") {
      layers[r["cell"].text ?? "", default: []].append((r["name"].text ?? "", r["weights"].int ?? 0, r["sparsity"].double ?? 0))
    }
    self.layers = layers
    var distances: [String: [Double]] = [:]
    for r in try store.query("SELECT cell, distance FROM distances ORDER BY cell, evaluation, point") {
      distances[r["cell"].text ?? "", default: []].append(r["distance"].double ?? .infinity)
    }
    self.distances = distances
    let titles = Dictionary(cells.map { ($0.id, $0.title) }, uniquingKeysWith: { a, _ in a })
    failedChecks = try store.query("SELECT cell, name, detail FROM checks WHERE passed = 0 ORDER BY cell, name").map {
      Check(cell: $0["cell"].text ?? "", title: titles[$0["cell"].text ?? ""] ?? "", name: $0["name"].text ?? "", detail: $0["detail"].text ?? "")
    }
    // A failure that a later step of the same cell mended is history, not news (one that came
    // after the model was made, in an evaluation, still is news).
    failures = try store.query(
      """
      SELECT f.cell, f.message FROM failures f
      WHERE f.at > coalesce((SELECT max(finished) FROM metrics WHERE cell = f.cell), 0)
        AND f.at > coalesce((SELECT finished FROM models WHERE cell = f.cell), 0)
      ORDER BY f.at
      """
    ).map { (titles[$0["cell"].text ?? ""] ?? $0["cell"].text ?? "", $0["message"].text ?? "") }
    runs = try store.query("SELECT * FROM runs ORDER BY started").map { r in
      r.columns.compactMapValues { v -> String? in v.text }
    }
    self.rows = Self.leaderboard(cells)
  }

  static func leaderboard(_ cells: [CellRow]) -> [LeaderboardRow] {
    var order: [String] = []
    var groups: [String: [CellRow]] = [:]
    for c in cells where !c.metrics.isEmpty {
      let key = [c.dataset, c.architecture, c.title, c.taxonomy, String(c.targetSparsity)].joined(separator: "\u{1}")
      if groups[key] == nil { order.append(key) }
      groups[key, default: []].append(c)
    }
    return order.map { key in
      let g = groups[key]!
      let first = g[0]
      func stat(_ pick: (CellRow) -> Double?) -> SeedStat? { SeedStat(g.compactMap(pick)) }
      func metric(_ prefix: String, _ value: (Metric) -> Double?) -> SeedStat? {
        stat { c in c.metrics.first { $0.attack.hasPrefix(prefix) }.flatMap(value) }
      }
      return LeaderboardRow(
        dataset: first.dataset, architecture: first.architecture, method: first.title, taxonomy: first.taxonomy, pipeline: first.pipeline,
        structure: first.structure, locality: first.locality, criterion: first.criterion, targetSparsity: first.targetSparsity,
        sparsity: stat(\.sparsity), clean: stat { $0.metrics.first?.clean }, pgd: metric("pgd") { $0.robust },
        autoattack: metric("autoattack") { $0.robust }, medianDistance: metric("fmn") { $0.medianDistance },
        seconds: stat { c in c.modelSeconds.map { $0 + c.metrics.map(\.seconds).reduce(0, +) } }, seeds: g.count, cells: g.map(\.id))
    }
  }
}
