import ArgumentParser
import Foundation
import GPU
import Prune

struct Profile: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Measure PGD adversarial-training throughput (images/s), and per-kernel time on OpenCL.",
    discussion: "Validates nothing by itself: run `advprune validate` first. Synthetic data, after warm-up.")

  @Option(help: "Architecture: smallcnn, resnet18, vgg16 or vgg16-classic.") var arch: String = "smallcnn"
  @Option(help: "Channel multiplier.") var width: Double = 1
  @Option(help: "Prune this share of every layer's weights first (magnitude): PGD-AT of a masked model, as fine-tuning after pruning runs.")
  var sparsity: Double = 0
  @Option(help: "Batch size.") var batchSize: Int = 128
  @Option(help: "PGD steps per batch.") var steps: Int = 10
  @Option(help: "Measured batches.") var batches: Int = 5
  @Option(help: "Unmeasured warm-up batches first (kernel compilation, allocation).") var warmup: Int = 1
  @Flag(
    help:
      "On OpenCL, also time every kernel and transfer from its profiling event (read after each batch), per convolution shape and pass, with GFLOP/s."
  ) var kernels = false
  @Flag(
    help:
      "Instead: time each conv and linear layer with the dense masked kernels and with the sparse ones (forward + input gradient) at densities 50 % to 1 %, the crossover behind --sparse auto."
  ) var sparseCrossover = false
  @Option(help: "On OpenCL: native (our kernels) or clblast (im2col + CLBlast, the baseline).") var engine: String = "native"
  @Option(help: "On OpenCL: compile our kernels with this tunable, NAME=V (repeatable; the names `bench-kernel --set` takes).")
  var set: [String] = []
  @OptionGroup var common: CommonOptions

  struct Report: Encodable {
    let throughput: ThroughputBenchmark.Result
    let imagesPerSecond: Double
    let kernels: [KernelRow]
  }

  func run() throws {
    try reportingErrors {
      guard let chosen = OpenCLEngine(rawValue: engine) else {
        throw UserError.badValue(name: "--engine", value: engine, problem: "expected native or clblast")
      }
      let backend = try common.backend(tunableAssignments: set)
      if let first = set.first, !(backend is OpenCLBackend) {
        throw UserError.badValue(name: "--set", value: first, problem: "tunables are of our OpenCL kernels: use --device opencl[:N]")
      }
      (backend as? OpenCLBackend)?.engine = chosen
      if sparseCrossover { return try runSparseCrossover(backend) }
      var bench = ThroughputBenchmark(batchSize: batchSize, attackSteps: steps, warmup: warmup, batches: batches)
      bench.architecture = try Architecture(parsing: arch)
      bench.width = width
      bench.sparsity = sparsity
      let result = try bench.run(backend: backend, progress: common.progress())
      var rows: [KernelRow] = []
      if kernels, let cl = backend as? OpenCLBackend {
        // One batch after a warm-up of its own: the model's setup (zeroed buffers) and first-use
        // costs (scratch growth) are not per-batch time.
        var once = bench
        once.warmup = 1
        once.batches = 1
        once.measuring = { KernelRow.startProfiling(cl) }
        _ = try once.run(backend: cl, progress: SilentProgress())
        rows = try KernelRow.stopProfiling(cl)
      }
      if common.json { return try printJSON(Report(throughput: result, imagesPerSecond: result.imagesPerSecond, kernels: rows)) }
      print(
        String(
          format: "%@  %@%@  batch %d  PGD-%d AT: %.1f images/s (median of %d batches; best %.1f)  %.3f s/batch", result.backend, result.architecture,
          result.sparsity > 0 ? String(format: " (%.0f %% pruned, masked)", 100 * result.sparsity) : "", result.batchSize, result.attackSteps,
          result.imagesPerSecond, result.batches, result.peakImagesPerSecond, result.medianSecondsPerBatch))
      if let allocations = result.allocationsAfterWarmup, let peak = result.peakDeviceBytes {
        print(String(format: "device memory: peak %.1f MiB; buffers allocated after warm-up: %d", Double(peak) / 1_048_576, allocations))
      }
      KernelRow.printTable(rows)
    }
  }

  private func runSparseCrossover(_ backend: Backend) throws {
    var job = SparseCrossover()
    job.architecture = try Architecture(parsing: arch)
    job.width = width
    job.batchSize = batchSize
    let result = try job.run(backend: backend, progress: common.progress())
    if common.json { return try printJSON(result) }
    print("\(result.backend)  \(result.architecture)  batch \(result.batchSize): forward + input gradient, ms (median of 3)")
    print(
      "layer".padding(toLength: 22, withPad: " ", startingAt: 0) + "  dense  "
        + result.densities.map { String(format: "%6.0f%%", 100 * $0) }.joined(separator: " ") + "   --sparse auto: sparse at or below")
    for row in result.rows {
      print(
        row.layer.padding(toLength: 22, withPad: " ", startingAt: 0) + String(format: " %7.1f ", row.denseMilliseconds)
          + row.sparseMilliseconds.map { String(format: "%7.1f", $0) }.joined() + String(format: "   %4.1f %%", 100 * row.crossover))
    }
  }
}
