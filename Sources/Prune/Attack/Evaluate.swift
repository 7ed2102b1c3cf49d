import Foundation
import GPU

/// Clean and robust accuracy of a model on the first `count` points of a data set.
public struct RobustnessResult: Codable, Sendable {
  public let points: Int
  public let cleanCorrect: Int
  /// Points classified correctly whose every attack iterate was also classified correctly.
  public let robustCorrect: Int
  public let attack: String
  public let seconds: Double

  public var cleanAccuracy: Double { points == 0 ? 0 : Double(cleanCorrect) / Double(points) }
  public var robustAccuracy: Double { points == 0 ? 0 : Double(robustCorrect) / Double(points) }
}

/// Evaluates clean accuracy and, with `attack`, robust accuracy: a point is robust only if it is
/// classified correctly and no iterate of any restart misclassifies it.
public func evaluateRobustness(
  model: Model, data: LabeledImages, count: Int, attack: PGDConfig?, batchSize: Int = 200, seed: UInt64,
  progress: ProgressSink
) throws -> RobustnessResult {
  let n = min(count, data.count)
  let backend = model.backend
  model.setTraining(false)
  let uploader = BatchUploader(data: data, backend: backend)
  let pgd = attack.map { PGDAttack(config: $0, backend: backend) }
  let name = attack.map { "pgd-\($0.steps) \($0.norm.rawValue) eps \($0.eps) alpha \($0.alpha) restarts \($0.restarts)" } ?? "none"
  let start = Date()
  var (clean, robust) = (0, 0)
  let batches = (n + batchSize - 1) / batchSize
  for b in 0..<batches {
    let indices = Array(0..<n)[(b * batchSize)..<min(n, (b + 1) * batchSize)]
    let (x, y, labels) = try uploader.upload(indices)
    let logits = try model.forward(x)
    let correct = zip(argmaxRows(try backend.download(logits), classes: logits.shape[1]), labels).map { $0 == $1 }
    clean += correct.filter { $0 }.count
    if let pgd {
      let fooled = try pgd.fooled(model: model, x: x, labels: y, hostLabels: labels, seed: seed ^ UInt64(b))
      robust += zip(correct, fooled).filter { $0 && !$1 }.count
    }
    let done = min(n, (b + 1) * batchSize)
    progress.update(
      ProgressUpdate(
        phase: attack == nil ? "eval" : "eval pgd-\(attack!.steps)", step: b + 1, total: batches,
        imagesPerSecond: Double(done) / max(Date().timeIntervalSince(start), 1e-9),
        metrics: [("clean", String(format: "%.1f%%", 100 * Double(clean) / Double(done)))]
          + (attack == nil ? [] : [("robust", String(format: "%.1f%%", 100 * Double(robust) / Double(done)))])))
  }
  return RobustnessResult(
    points: n, cleanCorrect: clean, robustCorrect: attack == nil ? clean : robust, attack: name,
    seconds: Date().timeIntervalSince(start))
}
