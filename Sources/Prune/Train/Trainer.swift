import Foundation
import GPU

/// How to train: SGD hyper-parameters and, for adversarial training, the PGD attack.
public struct TrainConfig: Sendable {
  public var epochs: Int
  public var batchSize: Int
  public var sgd: SGDHyper
  /// nil trains on clean inputs; otherwise PGD-AT (Madry) with these attack settings.
  public var attack: PGDConfig?
  public var seed: UInt64
  /// Learning-rate schedule over the whole run (`sgd.learningRate` is its base rate).
  public var schedule: LRSchedule
  /// With an attack: train with TRADES and this beta instead of PGD-AT.
  public var tradesBeta: Float?
  /// Applied to every training batch on the host before upload.
  public var augmentation: Augmentation = .none

  public init(
    epochs: Int, batchSize: Int, sgd: SGDHyper, attack: PGDConfig?, seed: UInt64, schedule: LRSchedule = .constant, tradesBeta: Float? = nil
  ) {
    self.epochs = epochs
    self.batchSize = batchSize
    self.sgd = sgd
    self.attack = attack
    self.seed = seed
    self.schedule = schedule
    self.tradesBeta = tradesBeta
  }

  /// The SGD settings at a point of training (`progress` in [0, 1)).
  public func hyper(progress: Double) -> SGDHyper {
    var h = sgd
    h.learningRate = Float(Double(sgd.learningRate) * schedule.factor(progress: progress))
    return h
  }

  public func validate() throws {
    if epochs < 0 { throw UserError.badValue(name: "--epochs", value: "\(epochs)", problem: "must be >= 0") }
    if batchSize < 1 { throw UserError.badValue(name: "--batch-size", value: "\(batchSize)", problem: "must be >= 1") }
    if !(sgd.learningRate > 0) { throw UserError.badValue(name: "--lr", value: "\(sgd.learningRate)", problem: "must be > 0") }
    if !(sgd.momentum >= 0 && sgd.momentum < 1) {
      throw UserError.badValue(name: "--momentum", value: "\(sgd.momentum)", problem: "must be in [0, 1)")
    }
    if !(sgd.weightDecay >= 0) { throw UserError.badValue(name: "--weight-decay", value: "\(sgd.weightDecay)", problem: "must be >= 0") }
    try attack?.validate()
    if let beta = tradesBeta {
      if attack == nil { throw UserError.badValue(name: "--beta", value: "\(beta)", problem: "TRADES needs an attack (eps, steps)") }
      if !(beta >= 0 && beta.isFinite) { throw UserError.badValue(name: "--beta", value: "\(beta)", problem: "must be >= 0") }
    }
  }
}

/// What one epoch did, on the (adversarial, when training adversarially) training batches.
public struct EpochSummary: Codable, Sendable {
  public let epoch: Int
  public let loss: Double
  public let accuracy: Double
  public let seconds: Double
  public let imagesPerSecond: Double
  /// Learning rate of the epoch's last step.
  public let learningRate: Double
  /// L2 norm of all parameter gradients at the epoch's last step.
  public let gradientNorm: Double
}

/// Where a training step is, for hooks.
public struct TrainingStep: Sendable {
  public let epoch: Int
  public let batch: Int
  public let batches: Int
  public let hyper: SGDHyper

  /// A step outside an epoch loop (tests, benchmarks).
  public static func single(_ hyper: SGDHyper) -> TrainingStep { TrainingStep(epoch: 0, batch: 0, batches: 1, hyper: hyper) }
}

/// What a pruning method adds to a training run (DESIGN.md, "How methods fit"): which tensors the
/// optimiser steps, penalty gradients after the backward, and work after each step and epoch.
/// Every method is a short list of these on top of the trainer's objective (CE or TRADES).
public protocol TrainingHooks: AnyObject {
  /// The tensors SGD steps (the model's trainable parameters unless a method freezes or adds some).
  func optimised(_ model: Model) -> [Parameter]
  /// After the objective's backward, before the step: adds penalty gradients and returns the
  /// penalty's mean value (reported in the loss).
  func afterBackward(_ model: Model, _ step: TrainingStep) throws -> Double
  /// After the SGD step (scores moved: refresh masks; ADMM's periodic projection).
  func afterStep(_ model: Model, _ step: TrainingStep) throws
  /// After an epoch, before its checkpoint is written.
  func afterEpoch(_ model: Model, epoch: Int) throws
}

extension TrainingHooks {
  public func optimised(_ model: Model) -> [Parameter] { model.trainableParameters }
  public func afterBackward(_ model: Model, _ step: TrainingStep) throws -> Double { 0 }
  public func afterStep(_ model: Model, _ step: TrainingStep) throws {}
  public func afterEpoch(_ model: Model, epoch: Int) throws {}
}

/// The training loop: per batch, PGD on the model in eval mode, then forward in training mode,
/// the objective (cross-entropy, or TRADES), backward, the hooks' penalties, and a masked SGD step
/// on what the hooks name (every trainable parameter by default).
public final class Trainer {
  public let model: Model
  public let config: TrainConfig
  /// A pruning method's additions to the loop; nil trains the model plainly.
  public let hooks: TrainingHooks?
  /// Saves the run mid-epoch (0-based epoch, batches of it done): every `checkpointEvery` steps,
  /// and at a stop request. Without it a stop loses the epoch in progress.
  public var midEpochCheckpoint: ((_ epoch: Int, _ batchesDone: Int) throws -> Void)?
  public var checkpointEvery: Int?
  let backend: Backend
  private let losses = BufferSlot()
  private let dLogits = BufferSlot()
  let trades = TRADESBuffers()

  public init(model: Model, config: TrainConfig, hooks: TrainingHooks? = nil) {
    self.model = model
    self.config = config
    self.hooks = hooks
    backend = model.backend
  }

  /// Trains epochs `firstEpoch..<config.epochs` (0-based; a resumed run starts later, and each
  /// epoch's data order, attack starts and learning rates depend only on the seed and the epoch,
  /// so a resumed run continues bit for bit); `afterEpoch` runs after each (checkpointing).
  /// `firstBatch` resumes inside `firstEpoch` (from a mid-epoch checkpoint): every batch's data,
  /// augmentation and attack start derive from (seed, epoch, batch), so that is bit for bit too.
  public func train(
    data: LabeledImages, firstEpoch: Int = 0, firstBatch: Int = 0, progress: ProgressSink, afterEpoch: (EpochSummary) throws -> Void = { _ in }
  ) throws
    -> [EpochSummary]
  {
    let uploader = BatchUploader(data: data, backend: backend)
    let attack = config.tradesBeta == nil ? config.attack.map { PGDAttack(config: $0, backend: backend) } : nil
    let tradesAttack = config.tradesBeta == nil ? nil : config.attack.map { TRADESAttack(config: $0, backend: backend) }
    let batches = (data.count + config.batchSize - 1) / config.batchSize
    var summaries: [EpochSummary] = []
    for epoch in firstEpoch..<config.epochs {
      let order = data.shuffledOrder(seed: config.seed, epoch: epoch)
      let start = Date()
      var (lossSum, correct, seen) = (0.0, 0, 0)
      var lastRate = Double(config.sgd.learningRate)
      for b in (epoch == firstEpoch ? min(firstBatch, batches) : 0)..<batches {
        let indices = order[(b * config.batchSize)..<min(data.count, (b + 1) * config.batchSize)]
        var rng = SeededRNG.derive(config.seed ^ 0xA06, UInt64(epoch) << 32 | UInt64(b))
        let (x, y, labels) = try uploader.upload(indices, augmentation: config.augmentation, rng: &rng)
        let stepSeed = config.seed ^ (UInt64(epoch) << 32 | UInt64(b))
        let hyper = config.hyper(progress: (Double(epoch) + Double(b) / Double(batches)) / Double(max(config.epochs, 1)))
        let position = TrainingStep(epoch: epoch, batch: b, batches: batches, hyper: hyper)
        let (loss, hits): (Double, Int)
        do {
          if let tradesAttack, let beta = config.tradesBeta {
            let xAdv = try tradesAdversarial(x: x, attack: tradesAttack, seed: stepSeed)
            (loss, hits) = try tradesStep(x: x, xAdv: xAdv, labels: y, hostLabels: labels, beta: beta, step: position)
          } else {
            let input = try attack?.perturb(model: model, x: x, labels: y, seed: stepSeed) ?? x
            (loss, hits) = try step(input: input, labels: y, hostLabels: labels, step: position)
          }
        } catch TrainingError.nonFiniteLoss {
          throw TrainingError.diverged(epoch: epoch + 1, step: b + 1, steps: batches, learningRate: hyper.learningRate)
        }
        lastRate = Double(hyper.learningRate)
        lossSum += loss * Double(labels.count)
        correct += hits
        seen += labels.count
        let rate = Double(seen) / max(Date().timeIntervalSince(start), 1e-9)
        progress.update(
          ProgressUpdate(
            phase: "train \(epoch + 1)/\(config.epochs)", step: b + 1, total: batches, imagesPerSecond: rate,
            metrics: [
              ("loss", String(format: "%.3f", lossSum / Double(seen))), ("acc", String(format: "%.1f%%", 100 * Double(correct) / Double(seen))),
            ]))
        if b + 1 < batches {
          let stopping = StopRequest.signal != nil
          if let midEpochCheckpoint, stopping || checkpointEvery.map({ (b + 1) % $0 == 0 }) == true { try midEpochCheckpoint(epoch, b + 1) }
          try StopRequest.check(at: "epoch \(epoch + 1), step \(b + 1) of \(batches)", saved: midEpochCheckpoint != nil)
        }
      }
      let seconds = Date().timeIntervalSince(start)
      let summary = EpochSummary(
        epoch: epoch + 1, loss: lossSum / Double(max(seen, 1)), accuracy: Double(correct) / Double(max(seen, 1)),
        seconds: seconds, imagesPerSecond: Double(seen) / max(seconds, 1e-9), learningRate: lastRate, gradientNorm: try gradientNorm())
      try hooks?.afterEpoch(model, epoch: epoch)
      summaries.append(summary)
      progress.finish(
        String(
          format: "epoch %d/%d  loss %.4f  %@acc %.2f%%  lr %.4g  |grad| %.3g  %.0f img/s  %.0f s", summary.epoch, config.epochs, summary.loss,
          config.tradesBeta != nil ? "clean " : (config.attack == nil ? "" : "adv "), 100 * summary.accuracy, summary.learningRate,
          summary.gradientNorm, summary.imagesPerSecond, seconds))
      try afterEpoch(summary)
      if epoch + 1 < config.epochs { try StopRequest.check(at: "epoch \(epoch + 1) of \(config.epochs)", saved: true) }
    }
    return summaries
  }

  /// L2 norm of every trainable parameter's gradient (from the last backward).
  public func gradientNorm() throws -> Double {
    try model.trainableParameters.reduce(0.0) { sum, p in
      sum + (try backend.download(p.grad)).reduce(0.0) { $0 + Double($1) * Double($1) }
    }.squareRoot()
  }

  /// One SGD step on a batch; returns the mean loss and the number of correct predictions.
  public func step(input: Tensor, labels: Tensor, hostLabels: [Int], hyper: SGDHyper? = nil) throws -> (loss: Double, correct: Int) {
    try step(input: input, labels: labels, hostLabels: hostLabels, step: .single(hyper ?? config.sgd))
  }

  func step(input: Tensor, labels: Tensor, hostLabels: [Int], step position: TrainingStep) throws -> (loss: Double, correct: Int) {
    let n = hostLabels.count
    model.setTraining(true)
    let logits = try model.forward(input)
    let l = try losses.get([n], backend)
    let d = try dLogits.get(logits.shape, backend)
    try backend.softmaxCrossEntropy(losses: l, dLogits: d, logits: logits, labels: labels, scale: 1 / Float(n))
    let predictions = argmaxRows(try backend.download(logits), classes: logits.shape[1])
    try model.backward(d, parameterGradients: true, inputGradient: false)
    let penalty = try update(position)
    let hostLosses = try backend.download(l)
    let loss = hostLosses.reduce(0) { $0 + Double($1) } / Double(n) + penalty
    guard loss.isFinite else { throw TrainingError.nonFiniteLoss }
    let correct = zip(predictions, hostLabels).filter { $0 == $1 }.count
    return (loss, correct)
  }

  /// The hooks' penalties, then a masked SGD step on what they optimise; returns the penalty.
  func update(_ step: TrainingStep) throws -> Double {
    let penalty = try hooks?.afterBackward(model, step) ?? 0
    for p in hooks?.optimised(model) ?? model.trainableParameters {
      try backend.sgdStep(weight: p.value, grad: p.grad, velocity: p.velocity, mask: model.mask(of: p), hyper: step.hyper)
    }
    try hooks?.afterStep(model, step)
    return penalty
  }
}

/// Training diverged.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
  /// A step's loss was NaN or infinite (where in the run is added by the epoch loop).
  case nonFiniteLoss
  case diverged(epoch: Int, step: Int, steps: Int, learningRate: Float)
  /// Stopped by a signal at a safe point (`at`: "epoch 2, step 37 of 157"); `saved`: the
  /// checkpoint holds that point, so a resume loses nothing.
  case interrupted(signal: Int32, at: String, saved: Bool)

  public var description: String {
    switch self {
    case .nonFiniteLoss:
      return "training diverged: the loss became NaN or infinite (lower --lr?)"
    case .diverged(let epoch, let step, let steps, let rate):
      return "training diverged at epoch \(epoch), step \(step) of \(steps) (learning rate \(rate)): the loss became NaN or infinite; "
        + "checkpoints of finished epochs are unchanged; try a lower --lr"
    case .interrupted(let signal, let at, let saved):
      return "stopped by \(StopRequest.name(signal)) after \(at)" + (saved ? "; the checkpoint holds it" : "; work since the last checkpoint is lost")
    }
  }
}
