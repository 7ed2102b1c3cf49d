import Foundation

/// `advprune report`: a static HTML leaderboard (offline: no network, no scripts from elsewhere)
/// with SVG plots, and the same table as Markdown and CSV.
public struct BenchReport {
  public let database: String
  public let data: ReportData

  public init(database: String) throws {
    self.database = database
    data = try ReportData(database: database)
  }

  typealias C = RobustnessCurvePlot

  static func cell(_ s: SeedStat?, scale: Double = 100, digits: Int = 1) -> String {
    guard let s else { return "–" }
    let mean = String(format: "%.\(digits)f", scale * s.mean)
    return s.count > 1 ? mean + String(format: " ± %.\(digits)f", scale * s.spread) : mean
  }

  static func sparsityText(_ s: Double) -> String { s == 0 ? "0" : String(format: "%g", 100 * s) }

  static func fileName(_ parts: String...) -> String {
    parts.joined(separator: "-").map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." ? $0 : "_" }.map(String.init).joined()
  }

  /// The plots, by file name: robustness curves per data set, architecture and sparsity, and
  /// per-layer sparsity profiles of the pruned models.
  func plots() -> [(file: String, title: String, svg: String)] {
    var out: [(String, String, String)] = []
    let families = Dictionary(grouping: data.cells) { "\($0.dataset)\u{1}\($0.architecture)" }
    for key in families.keys.sorted() {
      let cells = families[key]!
      let (dataset, architecture) = (cells[0].dataset, cells[0].architecture)
      let dense = cells.filter { $0.kind == "dense" }
      for s in Set(cells.filter { $0.kind != "dense" }.map(\.targetSparsity)).sorted() {
        let pruned = cells.filter { $0.kind != "dense" && $0.targetSparsity == s }
        // Curves pool the seeds' points: the pooled curve is the mean of the seeds' curves.
        var curves: [RobustnessCurve] = []
        var markers: [CurveMarker] = []
        var eps: Double?
        for (title, group) in Dictionary(grouping: dense + pruned, by: \.title).sorted(by: {
          ($0.key == "dense" ? "" : $0.key) < ($1.key == "dense" ? "" : $1.key)
        }) {
          let distances = group.flatMap { data.distances[$0.id] ?? [] }
          let fmn = group.compactMap { $0.metrics.first { $0.attack == "fmn" } }
          if !distances.isEmpty, let norm = fmn.first?.norm {
            curves.append(RobustnessCurve(label: title, distances: distances, norm: norm))
            eps = fmn.first?.eps
          }
          let aa = group.compactMap { $0.metrics.first { $0.attack.hasPrefix("autoattack") } }
          if !aa.isEmpty, !distances.isEmpty {
            markers.append(CurveMarker(label: title, eps: aa[0].eps, accuracy: aa.map(\.robust).reduce(0, +) / Double(aa.count)))
          }
        }
        if !curves.isEmpty {
          let title = "\(dataset) \(architecture) at \(Self.sparsityText(s))% sparsity"
          out.append(
            (
              Self.fileName("curves", dataset, architecture, Self.sparsityText(s)) + ".svg", title,
              C.svg(curves: curves, evaluationEps: eps, markers: markers, maxEps: nil, title: "Robustness curves: " + title)
            ))
        }
        var series: [(String, [Double])] = []
        var names: [String] = []
        for (title, group) in Dictionary(grouping: pruned, by: \.title).sorted(by: { $0.key < $1.key }) {
          guard let layers = group.lazy.compactMap({ self.data.layers[$0.id] }).first, !layers.isEmpty else { continue }
          names = layers.map(\.name)
          series.append((title, layers.map(\.sparsity)))
        }
        if !series.isEmpty {
          let title = "\(dataset) \(architecture) at \(Self.sparsityText(s))%"
          out.append(
            (
              Self.fileName("layers", dataset, architecture, Self.sparsityText(s)) + ".svg", title,
              SparsityProfile.svg(title: "Per-layer sparsity: " + title, layers: names, series: series)
            ))
        }
      }
    }
    return out
  }

  static let columns: [(key: String, title: String, numeric: Bool)] = [
    ("cell", "taxonomy cell", false), ("method", "method", false), ("target", "target sparsity %", true), ("sparsity", "sparsity %", true),
    ("clean", "clean %", true), ("pgd", "PGD %", true), ("autoattack", "AutoAttack %", true), ("distance", "median distance", true),
    ("seeds", "seeds", true), ("seconds", "time s", true),
  ]

  /// Writes index.html and the SVG plots into `directory`; returns the files written.
  public func write(to directory: String) throws -> [String] {
    do {
      try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    } catch {
      throw UserError.cannotWrite(path: directory, problem: "cannot create the report directory (\(error.localizedDescription))")
    }
    let plots = plots()
    var files: [String] = []
    for p in plots {
      let path = (directory as NSString).appendingPathComponent(p.file)
      try writeAtomically(Data(p.svg.utf8), to: path)
      files.append(path)
    }
    let index = (directory as NSString).appendingPathComponent("index.html")
    try writeAtomically(Data(html(plots: plots).utf8), to: index)
    return [index] + files
  }

  func html(plots: [(file: String, title: String, svg: String)]) -> String {
    let x = C.xml
    let name = (database as NSString).lastPathComponent
    var h = """
      <!doctype html>
      <html lang="en"><head><meta charset="utf-8"><title>advprune benchmark: \(x(name))</title>
      <style>
      body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;margin:24px auto;max-width:1100px;color:#222;padding:0 16px}
      table{border-collapse:collapse;margin:8px 0 24px;font-size:14px}
      th,td{border-bottom:1px solid #ddd;padding:4px 10px;text-align:right}
      th{background:#f3f3f3;cursor:pointer;user-select:none;position:sticky;top:0}
      th.sorted-asc::after{content:" ▲"} th.sorted-desc::after{content:" ▼"}
      td.text,th.text{text-align:left} tr.group td{background:#fafafa;font-weight:bold;text-align:left}
      tr.dense td{color:#555} .warn{color:#a40000} img{max-width:100%;border:1px solid #eee;margin:6px 0}
      dt{font-weight:bold;margin-top:10px} code{background:#f3f3f3;padding:1px 4px}
      </style></head><body>
      <h1>advprune benchmark</h1>
      <p>Results of <code>\(x(name))</code>: \(data.cells.count) cells, \(data.rows.count) leaderboard rows. Robust accuracy is the share of
      evaluation points that every attack failed on; with several seeds a value reads mean ± half the range. Click a column to sort.</p>

      """
    h += "<h2 id=\"leaderboard\">Leaderboard</h2>\n"
    let families = Dictionary(grouping: data.rows) { "\($0.dataset) \($0.architecture)" }
    for family in families.keys.sorted() {
      h += "<h3>\(x(family))</h3>\n<table class=\"leaderboard\" data-family=\"\(x(family))\"><thead><tr>"
      for c in Self.columns { h += "<th data-key=\"\(c.key)\" class=\"\(c.numeric ? "num" : "text")\">\(x(c.title))</th>" }
      h += "</tr></thead><tbody>\n"
      var group = ""
      for r in families[family]! {
        if r.taxonomy != group {
          group = r.taxonomy
          h += "<tr class=\"group\"><td colspan=\"\(Self.columns.count)\">\(x(group == "dense" ? "dense model" : "cell " + group))</td></tr>\n"
        }
        let values: [(String, Double?)] = [
          (r.taxonomy, nil), (r.method, nil), (Self.sparsityText(r.targetSparsity), r.targetSparsity),
          (Self.cell(r.sparsity), r.sparsity?.mean), (Self.cell(r.clean), r.clean?.mean), (Self.cell(r.pgd), r.pgd?.mean),
          (Self.cell(r.autoattack), r.autoattack?.mean), (Self.cell(r.medianDistance, scale: 1, digits: 4), r.medianDistance?.mean),
          ("\(r.seeds)", Double(r.seeds)), (Self.cell(r.seconds, scale: 1, digits: 0), r.seconds?.mean),
        ]
        h += "<tr class=\"row\(r.pipeline == "dense" ? " dense" : "")\">"
        for (c, v) in zip(Self.columns, values) {
          let sortValue = v.1.map { String($0) } ?? (c.numeric ? "-1" : v.0)
          h += "<td class=\"\(c.numeric ? "num" : "text")\" data-v=\"\(x(sortValue))\">\(x(v.0))</td>"
        }
        h += "</tr>\n"
      }
      h += "</tbody></table>\n"
    }
    h += "<h2 id=\"questions\">The survey's questions on this data</h2>\n<dl>\n"
    for a in SurveyQuestions.answers(data.rows) { h += "<dt>\(x(a.question))</dt><dd>\(x(a.answer))</dd>\n" }
    h += "</dl>\n"
    let curves = plots.filter { $0.file.hasPrefix("curves") }
    h += "<h2 id=\"curves\">Robustness curves</h2>\n"
    h +=
      curves.isEmpty
      ? "<p>No minimum-norm evaluation in this database (set <code>curve_steps</code> in the config's [evaluate]).</p>\n"
      : "<p>Robust accuracy against the perturbation size from FMN's per-point minimal distances; diamonds: AutoAttack at the evaluation ε.</p>\n"
    for p in curves {
      h += "<figure><img class=\"plot\" src=\"\(x(p.file))\" alt=\"\(x(p.title))\"><figcaption>\(x(p.title))</figcaption></figure>\n"
    }
    h += "<h2 id=\"layers\">Per-layer sparsity</h2>\n"
    for p in plots where p.file.hasPrefix("layers") {
      h += "<figure><img class=\"plot\" src=\"\(x(p.file))\" alt=\"\(x(p.title))\"><figcaption>\(x(p.title))</figcaption></figure>\n"
    }
    h += "<h2 id=\"checks\">Sanity checks</h2>\n"
    if data.failedChecks.isEmpty {
      h += "<p>No failed sanity check" + (data.cells.isEmpty ? "" : " (checks run where the config sets <code>checks = true</code>)") + ".</p>\n"
    } else {
      h += "<ul class=\"warn\">\n"
      for c in data.failedChecks { h += "<li>\(x(c.title)) [\(x(c.cell))]: \(x(c.name)): \(x(c.detail))</li>\n" }
      h += "</ul>\n"
    }
    if !data.failures.isEmpty {
      h += "<h2 id=\"failures\">Failed cells</h2>\n<ul class=\"warn\">\n"
      for f in data.failures { h += "<li>\(x(f.title)): \(x(f.message))</li>\n" }
      h += "</ul>\n"
    }
    h += "<h2 id=\"cells\">Cells and their time</h2>\n<table class=\"cells\"><thead><tr>"
    for t in ["cell id", "data set", "architecture", "method", "target %", "seed", "model s", "evaluations s"] { h += "<th class=\"text\">\(t)</th>" }
    h += "</tr></thead><tbody>\n"
    for c in data.cells {
      let evaluation = c.metrics.map(\.seconds).reduce(0, +)
      h += "<tr><td class=\"text\"><code>\(x(c.id))</code></td><td class=\"text\">\(x(c.dataset))</td><td class=\"text\">\(x(c.architecture))</td>"
      h += "<td class=\"text\">\(x(c.title))</td><td>\(Self.sparsityText(c.targetSparsity))</td><td>\(c.seed)</td>"
      h += "<td>\(c.modelSeconds.map { String(format: "%.0f", $0) } ?? "–")</td><td>\(String(format: "%.0f", evaluation))</td></tr>\n"
    }
    h += "</tbody></table>\n<h2 id=\"environment\">Environment</h2>\n<table class=\"runs\"><thead><tr>"
    let runColumns = ["id", "status", "shard", "host", "os", "device", "driver", "advprune_version", "git_commit"]
    for c in runColumns { h += "<th class=\"text\">\(x(c))</th>" }
    h += "</tr></thead><tbody>\n"
    for r in data.runs {
      h += "<tr>" + runColumns.map { "<td class=\"text\">\(x(r[$0] ?? ""))</td>" }.joined() + "</tr>\n"
    }
    h += "</tbody></table>\n<script>\n\(Self.sortScript)\n</script>\n</body></html>\n"
    return h
  }

  /// Click a header to sort its table (again to reverse); `#sort=KEY` or `#sort=KEY-asc` in the
  /// address sorts every leaderboard on load. Sorting flattens the taxonomy groups.
  static let sortScript = """
    function sortTable(table, key, dir) {
      const heads = [...table.tHead.rows[0].cells];
      const col = heads.findIndex(th => th.dataset.key === key);
      if (col < 0) return;
      const numeric = heads[col].classList.contains('num');
      const body = table.tBodies[0];
      const rows = [...body.querySelectorAll('tr.row')];
      body.querySelectorAll('tr.group').forEach(g => g.style.display = 'none');
      rows.sort((a, b) => {
        const x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
        const c = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
        return dir === 'asc' ? c : -c;
      });
      rows.forEach(r => body.appendChild(r));
      heads.forEach(th => th.classList.remove('sorted-asc', 'sorted-desc'));
      heads[col].classList.add('sorted-' + dir);
      table.dataset.sorted = key + '-' + dir;
    }
    document.querySelectorAll('table.leaderboard').forEach(table => {
      table.tHead.querySelectorAll('th').forEach(th => th.addEventListener('click', () => {
        const dir = th.classList.contains('sorted-desc') ? 'asc' : 'desc';
        sortTable(table, th.dataset.key, dir);
      }));
    });
    const wanted = /^#sort=([a-z]+)(?:-(asc|desc))?$/.exec(location.hash);
    if (wanted) document.querySelectorAll('table.leaderboard').forEach(t => sortTable(t, wanted[1], wanted[2] || 'desc'));
    """

  /// A README-ready table: one row per method and sparsity.
  public func markdown() -> String {
    var out = ""
    let families = Dictionary(grouping: data.rows) { "\($0.dataset) \($0.architecture)" }
    for family in families.keys.sorted() {
      out += "**\(family)**\n\n| cell | method | sparsity % | clean % | PGD % | AutoAttack % | median distance | seeds |\n"
      out += "|---|---|---:|---:|---:|---:|---:|---:|\n"
      for r in families[family]! {
        out += "| \(r.taxonomy) | \(r.method) | \(Self.sparsityText(r.targetSparsity)) | \(Self.cell(r.clean)) | \(Self.cell(r.pgd)) | "
        out += "\(Self.cell(r.autoattack)) | \(Self.cell(r.medianDistance, scale: 1, digits: 4)) | \(r.seeds) |\n"
      }
      out += "\n"
    }
    return out
  }

  /// One row per cell and evaluation, for pandas.
  public func csv() -> String {
    let header = [
      "cell", "kind", "dataset", "architecture", "method", "taxonomy", "pipeline", "structure", "locality", "criterion", "target_sparsity",
      "sparsity",
      "seed", "evaluation", "attack", "norm", "eps", "points", "clean_accuracy", "robust_accuracy", "median_distance", "model_seconds",
      "evaluation_seconds",
    ]
    var out = header.joined(separator: ",") + "\n"
    func number(_ v: Double?) -> String { v.map { String(format: "%.10g", $0) } ?? "" }
    for c in data.cells {
      for m in c.metrics {
        let fields = [
          c.id, c.kind, c.dataset, c.architecture, c.title, c.taxonomy, c.pipeline, c.structure, c.locality, c.criterion, number(c.targetSparsity),
          number(c.sparsity), "\(c.seed)", m.evaluation, m.attack, m.norm, number(m.eps), "\(m.points)", number(m.clean), number(m.robust),
          number(m.medianDistance), number(c.modelSeconds), number(m.seconds),
        ]
        out += fields.map(C.csvField).joined(separator: ",") + "\n"
      }
    }
    return out
  }
}
