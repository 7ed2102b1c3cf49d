import ArgumentParser
import Foundation
import Prune

struct Report: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Turn a benchmark results database into an offline HTML leaderboard with SVG plots (and Markdown / CSV).")

  @Argument(help: "Results database written by `advprune bench run`.") var database: String
  @Option(help: "Directory of the HTML report (index.html and the SVG plots).") var out: String?
  @Option(help: "Also write the leaderboard as a Markdown table here.") var markdown: String?
  @Option(help: "Also write one CSV row per cell and evaluation here.") var csv: String?

  func run() throws {
    try reportingErrors {
      guard out != nil || markdown != nil || csv != nil else {
        throw UserError.badValue(name: "--out", value: "", problem: "say where to write: --out DIR, --markdown FILE or --csv FILE")
      }
      let report = try BenchReport(database: database)
      if let out {
        let files = try report.write(to: out)
        print("wrote \(files[0]) and \(files.count - 1) plots")
      }
      if let markdown {
        try writeFile(report.markdown(), to: markdown)
        print("wrote \(markdown)")
      }
      if let csv {
        try writeFile(report.csv(), to: csv)
        print("wrote \(csv)")
      }
    }
  }

  func writeFile(_ text: String, to path: String) throws {
    guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8)) else {
      throw UserError.cannotWrite(path: path, problem: "cannot create the file")
    }
  }
}
