import CKernels
import Dispatch
import Foundation
import Synchronization

/// The CPU backend's threads: `run(n) { i in }` calls the body for i in 0..<n on the calling
/// thread and on helper threads that stay up between calls, spinning for a while after each job
/// before they sleep. GCD's `concurrentPerform` woke a sleeping worker for every op: the second
/// half of a two-way split started about 30 us late on a 2-core host, where a compact model's
/// attack step is a hundred ops of 100-400 us.
///
/// Each index runs exactly once, on whichever thread claims it first, so a body indexed by worker
/// (its own scratch, its own images) gives the same result whatever thread runs it. A call made
/// while another is running (from inside a body, or from a second thread) goes to GCD instead
/// (one backend is still not for two threads at once: its scratch is shared).
final class WorkerPool: @unchecked Sendable {
  static let shared = WorkerPool(helpers: max(0, ProcessInfo.processInfo.activeProcessorCount - 1))

  /// How long a helper spins for the next job before it sleeps on its semaphore.
  static let spinNanoseconds: UInt64 = 100_000

  /// The caller's body and the job's counters. A helper may still hold the job after the call
  /// returned; the body (the caller's non-escaping closure) is dropped before it returns.
  private final class Job: @unchecked Sendable {
    var body: ((Int) -> Void)?
    let count: Int
    let next = Atomic<Int>(0)
    let finished = Atomic<Int>(0)
    init(body: @escaping (Int) -> Void, count: Int) { (self.body, self.count) = (body, count) }

    /// Claims indices until none is left.
    func drain() {
      while true {
        let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
        if i >= count { return }
        body?(i)
        finished.wrappingAdd(1, ordering: .releasing)
      }
    }
  }

  /// `sleeping` is set by the helper before it waits and cleared by whoever ends the wait: the
  /// caller that signals it, or the helper itself when it finds a job before waiting. So every
  /// signal meets a wait, and no permit is left over to cut a later sleep short.
  private final class Helper: Sendable {
    let sleeping = Atomic<Bool>(false)
    let wake = DispatchSemaphore(value: 0)
  }

  private let helpers: [Helper]
  private let generation = Atomic<Int>(0)
  private let busy = Atomic<Bool>(false)
  private let current = Mutex<Job?>(nil)

  /// Its helpers run, and keep the pool, for the life of the process (asleep when idle; the
  /// tests' pools stay too).
  init(helpers count: Int) {
    helpers = (0..<count).map { _ in Helper() }
    for (i, helper) in helpers.enumerated() {
      let thread = Thread { self.serve(helper) }
      thread.name = "advprune worker \(i + 1)"
      thread.start()
    }
  }

  func run(_ count: Int, _ body: (Int) -> Void) {
    if count <= 1 || helpers.isEmpty {
      for i in 0..<count { body(i) }
      return
    }
    guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
      DispatchQueue.concurrentPerform(iterations: count, execute: body)
      return
    }
    defer { busy.store(false, ordering: .releasing) }
    withoutActuallyEscaping(body) { escapable in
      let job = Job(body: escapable, count: count)
      current.withLock { $0 = job }
      // Sequentially consistent with the helpers' `sleeping` flag: either a helper about to sleep
      // sees the new generation, or this sees it asleep and wakes it; at most count - 1 are woken.
      generation.wrappingAdd(1, ordering: .sequentiallyConsistent)
      var woken = 0
      for helper in helpers where woken < count - 1 {
        if helper.sleeping.exchange(false, ordering: .sequentiallyConsistent) {
          helper.wake.signal()
          woken += 1
        }
      }
      job.drain()
      // A helper preempted inside the body needs a core: after a short spin, offer this one.
      var spins = 0
      while job.finished.load(ordering: .acquiring) < count {
        spins += 1
        if spins < 4096 { advprune_spin_pause() } else { sched_yield() }
      }
      current.withLock { $0 = nil }
      job.body = nil
    }
  }

  private func serve(_ helper: Helper) {
    var seen = 0
    while true {
      var idleSince: UInt64 = 0
      var spins = 0
      while generation.load(ordering: .acquiring) == seen {
        advprune_spin_pause()
        spins += 1
        guard spins % 64 == 0 else { continue }
        let now = DispatchTime.now().uptimeNanoseconds
        if idleSince == 0 { idleSince = now }
        guard now - idleSince > Self.spinNanoseconds else { continue }
        helper.sleeping.store(true, ordering: .sequentiallyConsistent)
        if generation.load(ordering: .sequentiallyConsistent) == seen {
          helper.wake.wait()
        } else if !helper.sleeping.exchange(false, ordering: .sequentiallyConsistent) {
          helper.wake.wait()  // a caller cleared the flag: its signal is on the way
        }
        (idleSince, spins) = (0, 0)
      }
      seen = generation.load(ordering: .acquiring)
      current.withLock { $0 }?.drain()
    }
  }
}
