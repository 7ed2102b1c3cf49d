/// One progress report of a long job: where it is and a few metrics to show.
public struct ProgressUpdate {
  /// What is running, e.g. "train 1/2" or "pgd-40".
  public let phase: String
  public let step: Int
  public let total: Int
  /// Images processed per second so far in this phase.
  public let imagesPerSecond: Double
  public let metrics: [(name: String, value: String)]

  public init(phase: String, step: Int, total: Int, imagesPerSecond: Double, metrics: [(name: String, value: String)]) {
    self.phase = phase
    self.step = step
    self.total = total
    self.imagesPerSecond = imagesPerSecond
    self.metrics = metrics
  }
}

/// Where long jobs report progress; the CLI draws a bar on a terminal and plain lines elsewhere.
public protocol ProgressSink: AnyObject {
  func update(_ update: ProgressUpdate)
  /// A phase ended: one line to keep on screen.
  func finish(_ line: String)
}

/// Discards progress (tests, `--quiet`).
public final class SilentProgress: ProgressSink {
  public init() {}
  public func update(_ update: ProgressUpdate) {}
  public func finish(_ line: String) {}
}
