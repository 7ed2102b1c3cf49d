import GPU
import XCTest

@testable import Prune

/// A PGD-AT loop on OpenCL allocates every device buffer in its first batch and none after;
/// the ledger gives back what it lends.
final class DeviceMemoryTests: XCTestCase {
  func testTrainingLoopAllocatesNothingAfterItsFirstBatch() throws {
    let cl = try OpenCLBackend(device: try OpenCLFixture.backend().device)
    for architecture in [Architecture.smallcnn, .resnet18] {
      var bench = ThroughputBenchmark(batchSize: 4, attackSteps: 2, warmup: 1, batches: 2)
      bench.architecture = architecture
      bench.width = 0.25
      let result = try bench.run(backend: cl, progress: SilentProgress())
      XCTAssertEqual(result.allocationsAfterWarmup, 0, "\(architecture)")
      XCTAssertGreaterThan(result.peakDeviceBytes ?? 0, 0)
    }
    let cpu = try ThroughputBenchmark(batchSize: 2, attackSteps: 1, warmup: 1, batches: 1).run(backend: CPUBackend(), progress: SilentProgress())
    XCTAssertNil(cpu.allocationsAfterWarmup)
  }

  func testLedgerCountsBuffersAndGivesBackWhatIsReleased() throws {
    let cl = try OpenCLBackend(device: try OpenCLFixture.backend().device)
    let before = (cl.memory.allocations, cl.memory.liveBytes)
    do {
      let t = try cl.zeros([1000])
      XCTAssertEqual(cl.memory.allocations, before.0 + 1)
      XCTAssertEqual(cl.memory.liveBytes, before.1 + 4000)
      _ = t
    }
    XCTAssertEqual(cl.memory.liveBytes, before.1)
    XCTAssertGreaterThanOrEqual(cl.memory.peakBytes, before.1 + 4000)
  }
}
