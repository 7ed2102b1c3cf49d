import ArgumentParser
import Foundation
import GPU
import Prune

struct Models: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "List the architectures with their parameter counts and FLOPs per image.")

  @Option(help: "Channel multiplier (1 = the published models).") var width: Double = 1
  @OptionGroup var common: CommonOptions

  struct Row: Encodable {
    let name: String
    let input: [Int]
    let parameters: Int
    let prunableWeights: Int
    let flopsPerImage: Int
    let description: String
  }

  func run() throws {
    try reportingErrors {
      let rows = try Architecture.allCases.map { arch -> Row in
        let model = try arch.build(backend: CPUBackend(), seed: 0, width: width)
        return Row(
          name: arch.rawValue, input: arch.inputShape, parameters: model.parameterCount,
          prunableWeights: model.prunableParameters.reduce(0) { $0 + $1.count }, flopsPerImage: 2 * model.macsPerImage,
          description: arch.summary)
      }
      if common.json { return try printJSON(rows) }
      print("model           input        params   prunable   GFLOPs/img  description")
      for r in rows {
        print(
          r.name.padding(toLength: 15, withPad: " ", startingAt: 0) + "\(r.input)".padding(toLength: 12, withPad: " ", startingAt: 0)
            + String(format: "%8.2fM  %8.2fM  %10.3f  ", Double(r.parameters) / 1e6, Double(r.prunableWeights) / 1e6, Double(r.flopsPerImage) / 1e9)
            + r.description)
      }
    }
  }
}
