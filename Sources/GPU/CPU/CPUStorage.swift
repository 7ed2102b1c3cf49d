import Foundation

/// Host memory for the CPU backend: a zero-initialised float array it owns.
final class CPUStorage: TensorStorage {
  let pointer: UnsafeMutablePointer<Float>
  let count: Int

  init(count: Int) {
    self.count = count
    pointer = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
    pointer.initialize(repeating: 0, count: max(count, 1))
  }

  deinit { pointer.deallocate() }

  /// Set by `CPUBackend.freeze`: the values do not change until the next freeze, so what an op
  /// derives from them may be kept meanwhile (`derived`).
  private(set) var isFrozen = false
  private var kept: [String: CPUScratch] = [:]
  private let lock = NSLock()

  /// The values are final until the next call: what was derived from earlier ones goes.
  func freeze() {
    lock.lock()
    defer { lock.unlock() }
    isFrozen = true
    kept.removeAll()
  }

  /// The array `key` derived from these values, computed by `compute` the first time.
  func derived(_ key: String, count: Int, compute: (UnsafeMutablePointer<Float>) -> Void) -> UnsafePointer<Float> {
    precondition(isFrozen, "derived values of storage that may still change")
    lock.lock()
    defer { lock.unlock() }
    if let values = kept[key] { return UnsafePointer(values.pointer) }
    let values = CPUScratch()
    compute(values.reserve(count))
    kept[key] = values
    return UnsafePointer(values.pointer)
  }
}

/// A growable scratch array reused across ops (im2col columns, transposed gradients).
final class CPUScratch {
  private(set) var pointer = UnsafeMutablePointer<Float>.allocate(capacity: 1)
  private var capacity = 1

  func reserve(_ count: Int) -> UnsafeMutablePointer<Float> {
    if count > capacity {
      pointer.deallocate()
      pointer = UnsafeMutablePointer<Float>.allocate(capacity: count)
      capacity = count
    }
    return pointer
  }

  deinit { pointer.deallocate() }
}

/// Splits `0..<count` into one contiguous range per core when the work is large enough to pay
/// for the threads; small loops stay on the calling thread.
func parallelRanges(_ count: Int, minimumPerThread: Int = 32_768, _ body: (Range<Int>) -> Void) {
  let threads = min(ProcessInfo.processInfo.activeProcessorCount, max(1, count / minimumPerThread))
  if threads <= 1 {
    body(0..<count)
    return
  }
  let chunk = (count + threads - 1) / threads
  WorkerPool.shared.run(threads) { t in
    let start = t * chunk
    let end = min(count, start + chunk)
    if start < end { body(start..<end) }
  }
}
