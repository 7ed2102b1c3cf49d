import ArgumentParser
import Foundation
import GPU
import Prune

struct Predict: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Print the logits and predicted classes of a checkpoint on the first N test images.")

  @Argument(help: "Checkpoint (.safetensors), ours or saved from PyTorch (then give --arch).") var checkpoint: String
  @Option(help: "Architecture, for files without advprune metadata.") var arch: String?
  @Option(name: [.customLong("n"), .customLong("test-limit")], help: "Number of test images (the first N).") var n: Int = 10
  @Option(help: "Data set (default: the checkpoint's).") var dataset: String?
  @Option(help: "Directory of the data set's files.") var dataDir: String?
  @Option(help: CompactMode.help) var compact: CompactMode = .auto
  @Option(help: SparseMode.help) var sparse: SparseMode = .auto
  @Flag(
    help:
      "On OpenCL, also time every kernel and transfer of the timed forward pass from its profiling event (which serialises the queue, so the pass itself reads slower)."
  ) var kernels = false
  @Flag(
    help:
      "Time each step of the model (a residual block, a conv with its ReLU, a pooling, a linear layer) in the timed pass and print a table: time, share, MACs and GMAC/s per step (JSON: layerTimes)."
  ) var layerTimes = false
  @OptionGroup var common: CommonOptions

  struct Report: Encodable {
    let predict: PredictJob.Result
    let kernels: [KernelRow]
  }

  func run() throws {
    try reportingErrors {
      var job = PredictJob(
        input: checkpoint, architecture: try arch.map(Architecture.init(parsing:)), dataset: try dataset.map(DatasetName.init(parsing:)),
        dataDirectory: dataDir, points: n)
      job.compact = compact
      job.sparse = sparse
      job.layerTimes = layerTimes
      let backend = try common.backend()
      let cl = kernels ? backend as? OpenCLBackend : nil
      if kernels && cl == nil { printErr("advprune: --kernels times OpenCL kernels; this backend runs none") }
      if let cl { job.measuring = { KernelRow.startProfiling(cl) } }
      let result = try job.run(backend: backend)
      let rows = try cl.map(KernelRow.stopProfiling) ?? []
      if common.json { return try kernels ? printJSON(Report(predict: result, kernels: rows)) : printJSON(result) }
      for (i, row) in result.logits.enumerated() {
        print(
          "\(i)  label \(result.labels[i])  predicted \(result.predictions[i])  logits "
            + row.map { String(format: "%.4f", $0) }.joined(separator: " "))
      }
      let runs = result.gridRuns == 1 ? "1 run" : "\(result.gridRuns) runs"
      let grid = result.gridRuns > 0 ? ", \(runs) of layers kept on the sparse grid" : ""
      print(String(format: "accuracy %.2f%% on %d images (%@ model%@)", 100 * result.accuracy, result.labels.count, result.path, grid))
      KernelRow.printTable(rows)
      if let steps = result.layerTimes { StepTimeTable.print(steps, passes: "the timed forward pass") }
    }
  }
}
