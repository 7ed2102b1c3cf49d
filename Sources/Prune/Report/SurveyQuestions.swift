import Foundation

/// The survey's questions (README "Benchmark"), answered from a leaderboard with numbers, or
/// said to be out of reach of this grid and what it would need.
public struct SurveyAnswer: Sendable {
  public let question: String
  public let answer: String
}

enum SurveyQuestions {
  static func percent(_ v: Double) -> String { String(format: "%.1f", 100 * v) }
  static func sparsityText(_ s: Double) -> String { String(format: "%g%%", 100 * s) }

  static func answers(_ rows: [LeaderboardRow]) -> [SurveyAnswer] {
    let pruned = rows.filter { $0.pipeline != "dense" && $0.robust != nil }
    let metricName = rows.contains { $0.autoattack != nil } ? "AutoAttack" : "PGD"
    var out: [SurveyAnswer] = []
    let families = Dictionary(grouping: pruned) { "\($0.dataset) \($0.architecture)" }
    for (family, rows) in families.sorted(by: { $0.key < $1.key }) {
      let sparsities = Set(rows.map(\.targetSparsity)).sorted()
      func robust(_ r: LeaderboardRow) -> Double { r.robust!.mean }
      // Which method leads at each sparsity.
      let best = sparsities.map { s -> String in
        let at = rows.filter { $0.targetSparsity == s }.sorted { robust($0) > robust($1) }
        return "\(sparsityText(s)): \(at[0].method) \(percent(robust(at[0])))"
      }
      out.append(
        SurveyAnswer(question: "\(family): which method keeps the most robust accuracy (\(metricName))?", answer: best.joined(separator: "; ")))

      // Global vs local: the same criterion, structure and pipeline in both localities.
      var pairs: [String] = []
      var gaps: [Double] = []
      for s in sparsities {
        let at = rows.filter { $0.targetSparsity == s }
        for g in at where g.locality == "global" {
          if let l = at.first(where: {
            $0.locality == "local" && $0.criterion == g.criterion && $0.structure == g.structure && $0.pipeline == g.pipeline
          }) {
            gaps.append(robust(g) - robust(l))
            pairs.append("\(sparsityText(s)) \(g.criterion): global \(percent(robust(g))) vs local \(percent(robust(l)))")
          }
        }
      }
      out.append(
        SurveyAnswer(
          question: "\(family): global or local allocation?",
          answer: gaps.isEmpty
            ? "not answerable with this grid: add one criterion in both localities (e.g. lwm local and lwm global)"
            : "\(verdict(gaps, positive: "global", negative: "local")) (\(pairs.joined(separator: "; ")))"))

      // Criterion vs allocation: spread across criteria at fixed locality, against the locality gap.
      var criterionSpreads: [Double] = []
      for s in sparsities {
        let at = rows.filter { $0.targetSparsity == s && $0.structure == "unstructured" }
        for locality in ["global", "local"] {
          let same = at.filter { $0.locality == locality }
          let byCriterion = Dictionary(grouping: same, by: \.criterion).mapValues { $0.map(robust).max()! }
          if byCriterion.count >= 2 { criterionSpreads.append(byCriterion.values.max()! - byCriterion.values.min()!) }
        }
      }
      let criterionAnswer: String
      if criterionSpreads.isEmpty || gaps.isEmpty {
        criterionAnswer = "not answerable with this grid: it needs two criteria in one locality and one criterion in both localities"
      } else {
        let c = criterionSpreads.reduce(0, +) / Double(criterionSpreads.count)
        let a = gaps.map(abs).reduce(0, +) / Double(gaps.count)
        criterionAnswer = String(
          format: "%@ matters more here: criteria differ by %.1f points on average at one locality, allocations by %.1f for one criterion",
          c > a ? "the criterion" : "the allocation", 100 * c, 100 * a)
      }
      out.append(SurveyAnswer(question: "\(family): does the criterion or the layer-wise allocation matter more?", answer: criterionAnswer))

      // Structured vs unstructured, and the pipelines: the best of each at each sparsity.
      for (question, field, values) in [
        ("structured or unstructured?", \LeaderboardRow.structure, ["unstructured", "filters", "channels"]),
        ("before, after or during training?", \LeaderboardRow.pipeline, ["before", "after", "during"]),
      ] {
        var lines: [String] = []
        for s in sparsities {
          let at = rows.filter { $0.targetSparsity == s }
          let bests = values.compactMap { v -> String? in
            at.filter { $0[keyPath: field] == v }.max { robust($0) < robust($1) }.map { "\(v) \(percent(robust($0))) (\($0.method))" }
          }
          if bests.count >= 2 { lines.append("\(sparsityText(s)): " + bests.joined(separator: ", ")) }
        }
        out.append(
          SurveyAnswer(
            question: "\(family): \(question)",
            answer: lines.isEmpty
              ? "not answerable with this grid: no sparsity has methods of two kinds" : "best of each: " + lines.joined(separator: "; ")))
      }
    }
    return out
  }

  static func verdict(_ gaps: [Double], positive: String, negative: String) -> String {
    let mean = gaps.reduce(0, +) / Double(gaps.count)
    let wins = gaps.filter { $0 > 0 }.count
    if abs(mean) < 0.005 { return String(format: "level (mean difference %.1f points)", 100 * mean) }
    return String(
      format: "%@ wins %d of %d comparisons, by %.1f points on average", mean > 0 ? positive : negative, mean > 0 ? wins : gaps.count - wins,
      gaps.count,
      100 * abs(mean))
  }
}
