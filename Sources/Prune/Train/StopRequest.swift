#if canImport(Glibc)
  import Glibc
#endif

/// A request to stop a long job at its next safe point — after the training step in progress,
/// or between a benchmark's steps — set by the CLI's SIGINT / SIGTERM handler. The job writes
/// its checkpoint there and throws `TrainingError.interrupted`.
public enum StopRequest {
  /// The signal number, 0 when none; written from a signal handler, so a plain word.
  nonisolated(unsafe) public static var pendingSignal: Int32 = 0

  public static var signal: Int32? { pendingSignal == 0 ? nil : pendingSignal }

  public static func reset() { pendingSignal = 0 }

  /// Throws `interrupted` when a stop was requested; `at` says where the job stands.
  static func check(at position: String, saved: Bool) throws {
    if let signal { throw TrainingError.interrupted(signal: signal, at: position, saved: saved) }
  }

  /// "SIGINT", "SIGTERM", or the number.
  public static func name(_ signal: Int32) -> String {
    switch signal {
    case SIGINT: "SIGINT"
    case SIGTERM: "SIGTERM"
    default: "signal \(signal)"
    }
  }
}
