import Dispatch
import Foundation
import Synchronization
import XCTest

@testable import GPU

/// The CPU backend's thread pool: every index once, whichever thread runs it, nested and
/// concurrent calls, and helpers woken from sleep.
final class WorkerPoolTests: XCTestCase {
  /// Each index's slot written once with its own value; the rest untouched.
  private func check(_ pool: WorkerPool, counts: [Int], rounds: Int, file: StaticString = #filePath, line: UInt = #line) {
    for _ in 0..<rounds {
      for n in counts {
        var hits = [Int](repeating: 0, count: n + 1)
        hits.withUnsafeMutableBufferPointer { h in
          let slots = h
          pool.run(n) { i in slots[i] += i + 1 }
        }
        XCTAssertEqual(hits, (0..<n).map { $0 + 1 } + [0], "n = \(n)", file: file, line: line)
      }
    }
  }

  func testEveryIndexRunsOnce() {
    for helpers in [0, 1, 3] {
      check(WorkerPool(helpers: helpers), counts: [0, 1, 2, 3, 5, 64], rounds: 200)
    }
    check(WorkerPool.shared, counts: [2, 7], rounds: 2000)
  }

  /// A call from inside a body runs on GCD instead of waiting for the pool it is part of.
  func testNestedCallsComplete() {
    let pool = WorkerPool(helpers: 1)
    var sums = [Int](repeating: 0, count: 4)
    sums.withUnsafeMutableBufferPointer { s in
      let slots = s
      pool.run(4) { i in
        var inner = [Int](repeating: 0, count: 3)
        inner.withUnsafeMutableBufferPointer { b in
          let cells = b
          pool.run(3) { j in cells[j] = i * 10 + j }
        }
        slots[i] = inner.reduce(0, +)
      }
    }
    XCTAssertEqual(sums, (0..<4).map { 30 * $0 + 3 })
  }

  /// Calls from several threads at once: one uses the pool, the others GCD.
  func testConcurrentCallersEachGetTheirOwnResult() {
    let pool = WorkerPool(helpers: 2)
    var totals = [Int](repeating: 0, count: 4)
    totals.withUnsafeMutableBufferPointer { t in
      let out = t
      DispatchQueue.concurrentPerform(iterations: 4) { caller in
        var sum = 0
        for round in 0..<300 {
          var cells = [Int](repeating: 0, count: 5)
          cells.withUnsafeMutableBufferPointer { b in
            let c = b
            pool.run(5) { i in c[i] = caller + round + i }
          }
          sum += cells.reduce(0, +)
        }
        out[caller] = sum
      }
    }
    // sum over rounds of (5 caller + 5 round + 10)
    XCTAssertEqual(totals, (0..<4).map { 300 * (5 * $0 + 10) + 5 * (299 * 300 / 2) })
  }

  /// Helpers asleep (idle past their spin) are woken and take part: the two indices of a job run
  /// at the same time on two threads (each waits, up to a second, for the other to start).
  func testSleepingHelpersWakeForTheNextJob() {
    let pool = WorkerPool(helpers: 1)
    for _ in 0..<5 {
      Thread.sleep(forTimeInterval: Double(WorkerPool.spinNanoseconds) * 3e-9)
      let started = Started()
      var met = [false, false]
      met.withUnsafeMutableBufferPointer { m in
        let meetings = m
        pool.run(2) { i in
          started.bits.bitwiseOr(1 << i, ordering: .sequentiallyConsistent)
          let deadline = Date().addingTimeInterval(1)
          while started.bits.load(ordering: .sequentiallyConsistent) != 3 && Date() < deadline {}
          meetings[i] = started.bits.load(ordering: .sequentiallyConsistent) == 3
        }
      }
      XCTAssertEqual(met, [true, true], "a sleeping helper did not take part")
      check(pool, counts: [3, 16], rounds: 1)
    }
  }
}

/// Which of a job's indices have started (bit i).
private final class Started: Sendable {
  let bits = Atomic<Int>(0)
}
