import ArgumentParser
import Foundation
import Prune

struct Taxonomy: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "List the survey's adversarial pruning methods with their taxonomy cells, and which advprune runs.",
    discussion: """
      Cells read pipeline/structure/locality/criterion: A(fter), B(efore) or D(uring) training; U(nstructured) or
      S(tructured); L(ocal) or G(lobal); the criterion (lwm, lamp, lis, solwm, relwm, hgm, random, bcs).
      """)

  @OptionGroup var common: CommonOptions

  struct Row: Encodable {
    let key: String
    let name: String
    let year: Int
    let venue: String?
    let cell: String
    let pipeline: String
    let schedule: String?
    let structures: [String]
    let localities: [String]
    let criterion: String
    let paper: String
    let code: String?
    /// How to run it with advprune; nil when advprune does not implement it.
    let run: String?
  }

  func run() throws {
    try reportingErrors {
      let rows = SurveyMethod.catalogue.map { m in
        Row(
          key: m.key, name: m.name, year: m.year, venue: m.venue, cell: m.cell.code, pipeline: m.cell.pipeline.rawValue,
          schedule: m.cell.schedule?.rawValue, structures: m.cell.structures.map(\.rawValue), localities: m.cell.localities.map(\.rawValue),
          criterion: m.cell.criterion.rawValue, paper: m.paper, code: m.code,
          run: m.implementedAs.map { name in
            m.cell.pipeline == .after ? "advprune prune FILE --method \(name) --sparsity S" : "advprune train --method \(name) --sparsity S"
          })
      }
      if common.json { return try printJSON(rows) }
      print("method          year  venue            cell             advprune")
      for r in rows {
        print(
          r.name.padding(toLength: 16, withPad: " ", startingAt: 0) + "\(r.year)  "
            + (r.venue ?? "-").padding(toLength: 17, withPad: " ", startingAt: 0)
            + r.cell.padding(toLength: 17, withPad: " ", startingAt: 0) + (r.run ?? "not implemented"))
      }
      let done = rows.filter { $0.run != nil }.count
      print(
        "\(rows.count) methods, \(done) implemented. Also: lwm, lamp and random (prune --method), gmp (train --method), and free cells.")
    }
  }
}
