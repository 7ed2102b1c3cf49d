import Synchronization

/// Device buffers a backend allocated: how many, the bytes alive now and at most, so a run can
/// show that a training loop allocates nothing after its first batch, and what it needed at peak.
public final class DeviceMemory: Sendable {
  private struct Counts {
    var allocations = 0
    var live = 0
    var peak = 0
  }
  private let counts = Mutex(Counts())

  public init() {}

  public var allocations: Int { counts.withLock { $0.allocations } }
  public var liveBytes: Int { counts.withLock { $0.live } }
  public var peakBytes: Int { counts.withLock { $0.peak } }

  func allocated(_ bytes: Int) {
    counts.withLock {
      $0.allocations += 1
      $0.live += bytes
      $0.peak = max($0.peak, $0.live)
    }
  }

  func released(_ bytes: Int) { counts.withLock { $0.live -= bytes } }
}

extension Backend {
  public var deviceMemory: DeviceMemory? { nil }
}
