import Foundation
import GPU

/// Measures adversarial-training throughput: full PGD-AT steps (attack + training step) on
/// synthetic batches, after warm-up, reporting images/s from the min and median batch time.
public struct ThroughputBenchmark {
  public var architecture: Architecture = .smallcnn
  public var width: Double = 1
  public var batchSize = 128
  public var attackSteps = 10
  public var warmup = 1
  public var batches = 5
  /// With a share of weights to prune (0 ..< 1): the model is pruned first (magnitude, every
  /// layer at that rate), so the run times adversarial fine-tuning of a masked model.
  public var sparsity = 0.0
  /// Called once the warm-up batches are done and the queue drained, before the first measured
  /// batch (a profiler starts here, so setup and first-use costs stay out of its table).
  public var measuring: (() throws -> Void)?

  public init(batchSize: Int = 128, attackSteps: Int = 10, warmup: Int = 1, batches: Int = 5) {
    self.batchSize = batchSize
    self.attackSteps = attackSteps
    self.warmup = warmup
    self.batches = batches
  }

  public struct Result: Codable, Sendable {
    public let backend: String
    public let architecture: String
    public let width: Double
    public let sparsity: Double
    public let batchSize: Int
    public let attackSteps: Int
    public let batches: Int
    public let minSecondsPerBatch: Double
    public let medianSecondsPerBatch: Double
    /// Device buffers allocated after the warm-up batches (OpenCL; nil on the CPU backend).
    public let allocationsAfterWarmup: Int?
    /// Most device memory alive at once during the run (OpenCL; nil on the CPU backend).
    public let peakDeviceBytes: Int?
    public var imagesPerSecond: Double { Double(batchSize) / medianSecondsPerBatch }
    public var peakImagesPerSecond: Double { Double(batchSize) / minSecondsPerBatch }
  }

  public func run(backend: Backend, progress: ProgressSink) throws -> Result {
    if batchSize < 1 || batches < 1 || warmup < 0 || attackSteps < 0 {
      throw UserError.badValue(name: "benchmark", value: "\(batchSize)x\(batches)", problem: "batch size and batches must be >= 1")
    }
    if !(0..<1).contains(sparsity) { throw UserError.badValue(name: "--sparsity", value: "\(sparsity)", problem: "must be in [0, 1)") }
    let model = try architecture.build(backend: backend, seed: 1, width: width)
    if sparsity > 0 { try Pruner.prune(model: model, criterion: .magnitude, locality: .local, sparsity: sparsity, seed: 1) }
    let shape = architecture.inputShape
    var rng = SeededRNG(seed: 2)
    let data = LabeledImages(
      images: rng.uniformArray(batchSize * shape.reduce(1, *), 0, 1), labels: (0..<batchSize).map { $0 % architecture.classes },
      channels: shape[0], height: shape[1], width: shape[2], classCount: architecture.classes)
    let (x, y, labels) = try BatchUploader(data: data, backend: backend).upload(0..<batchSize)
    let config = TrainConfig(
      epochs: 1, batchSize: batchSize, sgd: SGDHyper(learningRate: 0.01), attack: PGDConfig(eps: 0.1, alpha: 0.025, steps: attackSteps), seed: 3)
    let attack = PGDAttack(config: config.attack!, backend: backend)
    let trainer = Trainer(model: model, config: config)
    var times: [Double] = []
    var allocationsBefore = backend.deviceMemory?.allocations
    for i in 0..<(warmup + batches) {
      if i == warmup { allocationsBefore = backend.deviceMemory?.allocations }
      try backend.synchronize()
      if i == warmup { try measuring?() }
      let start = Date()
      let xAdv = try attack.perturb(model: model, x: x, labels: y, seed: UInt64(i))
      _ = try trainer.step(input: xAdv, labels: y, hostLabels: labels)
      try backend.synchronize()
      if i >= warmup { times.append(Date().timeIntervalSince(start)) }
      progress.update(
        ProgressUpdate(
          phase: "benchmark \(backend.name)", step: i + 1, total: warmup + batches,
          imagesPerSecond: Double(batchSize) / Date().timeIntervalSince(start), metrics: []))
    }
    times.sort()
    return Result(
      backend: backend.name, architecture: architecture.rawValue, width: width, sparsity: sparsity, batchSize: batchSize, attackSteps: attackSteps,
      batches: batches,
      minSecondsPerBatch: times[0], medianSecondsPerBatch: times[times.count / 2],
      allocationsAfterWarmup: backend.deviceMemory.map { $0.allocations - (allocationsBefore ?? 0) }, peakDeviceBytes: backend.deviceMemory?.peakBytes
    )
  }
}
