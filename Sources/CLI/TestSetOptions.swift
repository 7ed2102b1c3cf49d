import ArgumentParser
import Prune

/// Which test points an evaluation runs on and how a checkpoint without metadata is read
/// (`attack` and `curve`).
struct TestSetOptions: ParsableArguments {
  @Option(name: [.customLong("n"), .customLong("test-limit")], help: "Number of test points (the first N).") var n: Int = 1000
  @Option(name: [.customLong("batch-size"), .customLong("batch")], help: "Batch size.") var batchSize: Int = 200
  @Option(help: "Data set (default: the checkpoint's).") var dataset: String?
  @Option(help: "Directory of the data set's files.") var dataDir: String?
  @Option(help: "Architecture of a checkpoint saved from PyTorch (ours carry it in their metadata).") var arch: String?
  @Option(help: "Channel multiplier of such a checkpoint.") var width: Double?
  @Option(help: CompactMode.help) var compact: CompactMode = .auto
  @Option(help: SparseMode.help) var sparse: SparseMode = .auto
}

extension CompactMode: ExpressibleByArgument {
  static let help: ArgumentHelp =
    "auto: a filter-pruned model runs as its compact form (removed channels gone, the same function, faster); off: the masked model as stored."
}

extension SparseMode: ExpressibleByArgument {
  static let help: ArgumentHelp =
    "auto: on the CPU, pruned layers below their measured crossover density (30 % on large planes, less on small or strided ones) compute with their nonzeros only (same function, faster); on: every conv and linear layer sparse (either backend); off: dense masked kernels."
}
