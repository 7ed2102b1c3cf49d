import GPU
import XCTest

/// OpenCL against the CPU reference, for every case of the op suite (the same cases as `advprune validate`).
final class ParityTests: XCTestCase {
  func testEveryOpMatchesTheCPUReference() throws {
    let cl = try OpenCLFixture.backend()
    for seed: UInt64 in [1, 2] {
      for result in try OpSuite.compare(candidate: cl, seed: seed) {
        for (i, report) in result.reports.enumerated() {
          XCTAssert(report.passed, "\(result.op) \(result.shape) output \(i) seed \(seed): \(report)")
        }
      }
    }
  }

  /// The CLBlast baseline, and our kernels compiled with other tunables than the device's
  /// (narrow and wide vectors, small tiles, a few channels per work-item, work-groups of several
  /// items, one batch split or many, the GPU's local-memory tiles and element-wise sparse
  /// kernels, Winograd's products in either order, the image's input gradient on its own
  /// kernel), agree with the reference on every GEMM, convolution and sparse convolution case.
  func testEveryEngineAndTunableSetMatchesTheReference() throws {
    let cl = try OpenCLFixture.backend()
    let variants: [(String, OpenCLEngine, CLTunables)] = [
      ("clblast", .clblast, cl.tunables),
      (
        "pix4 rows4 kc16 rows_per_item3 witems1", .native,
        CLTunables(pix: 4, rows: 4, kc: 16, weightTaps: 2, rowsPerItem: 3, weightItems: 1, groupSize: 1)
      ),
      (
        "pix16 group4 witems4096", .native,
        CLTunables(pix: 16, rows: 8, kc: 128, weightTaps: 4, rowsPerItem: 0, weightItems: 4096, groupSize: 4)
      ),
      ("pix2 rows16", .native, CLTunables(pix: 2, rows: 16, kc: 7, weightTaps: 3, rowsPerItem: 0, weightItems: 64, groupSize: 2)),
      // A CPU device's Winograd products in row-block order with work-groups of two (the padding
      // column blocks), and the image's input gradient three rows per item on 4-lane vectors.
      (
        "pix4 group2 winograd rows-first few_rb3", .native,
        CLTunables(
          pix: 4, rows: 4, kc: 16, weightTaps: 2, rowsPerItem: 0, weightItems: 64, groupSize: 2, winograd: 1, winogradRowsFirst: 1,
          fewRowBlock: 3)
      ),
      // The GPU's tiled convolution: tiles larger than most cases' rows and columns, a depth that
      // leaves a partial last slice, K split over several launches' groups (split 64: as many as
      // the shape allows) and not.
      ("tiled tm32 tn16 tk5 split64", .native, CLTunables.gpu.with(tileRows: 32, tileColumns: 16, tileDepth: 5, splitGroups: 64)),
      ("tiled tm16 tn64 tk16 no split", .native, CLTunables.gpu.with(tileRows: 16, tileColumns: 64, tileDepth: 16, splitGroups: 0)),
      // The GPU's tunables with Winograd on, as the GPU bundle's sweep runs them (off on GPUs
      // until measured on one).
      (
        "gpu winograd", .native,
        {
          var t = CLTunables.gpu
          t.winograd = 1
          return t
        }()
      ),
      // The GPU's tunables with the image's input gradient on conv_few_rows_dx (in the bundle's
      // sweep): 4-lane vectors, work-groups of 64.
      (
        "gpu few_rb4", .native,
        {
          var t = CLTunables.gpu
          t.fewRowBlock = 4
          return t
        }()
      ),
    ]
    let cases = OpSuite.cases().filter { ["gemm", "linear", "conv2d", "conv2d_relu", "sparse_conv2d", "resident_conv"].contains($0.op) }
    for (name, engine, tunables) in variants {
      let backend = try OpenCLBackend(device: cl.device, engine: engine, tunables: tunables)
      for c in cases {
        let want = try c.outputs(on: CPUBackend.reference(), seed: 5)
        let got = try c.outputs(on: backend, seed: 5)
        for (w, g) in zip(want, got) { assertClose(g, w, atol: c.atol, rtol: c.rtol, "\(name): \(c.op) \(c.shape)") }
      }
    }
  }

  func testSuiteCoversEveryOpFamily() {
    let ops = Set(OpSuite.cases().map(\.op))
    for op in [
      "gemm", "linear", "conv2d", "relu", "maxpool2x2", "multiply", "add", "avgpool", "batchnorm", "random_uniform", "softmax_xent", "softmax_kl",
      "sgd_step", "pgd_step", "attack_loss", "select_rows", "apgd_step", "fab_step", "square", "square_l2", "fmn_step", "axpby", "reduce",
      "top_k_mask", "sparse_conv2d", "conv2d_relu", "resident_conv", "residual_block",
    ] {
      XCTAssert(ops.contains(op), "op suite lacks \(op)")
    }
  }

  /// Slicing the batch (small column budget) must not change the convolution.
  func testBatchSlicingGivesTheSameConvolution() throws {
    let sliced = CPUBackend(maxColumnFloats: 200)
    for c in OpSuite.cases() where c.op == "conv2d" {
      let want = try c.outputs(on: CPUBackend(), seed: 3)
      let got = try c.outputs(on: sliced, seed: 3)
      for (w, g) in zip(want, got) { assertClose(g, w, atol: 1e-5, rtol: 1e-5, "sliced \(c.shape)") }
    }
    let cl = try OpenCLFixture.backend()
    let slicedCL = try OpenCLBackend(device: cl.device, maxColumnFloats: 200, engine: .clblast)
    for c in OpSuite.cases() where c.op == "conv2d" {
      let want = try c.outputs(on: CPUBackend(), seed: 4)
      let got = try c.outputs(on: slicedCL, seed: 4)
      for (w, g) in zip(want, got) { assertClose(g, w, atol: 1e-4, rtol: 1e-4, "sliced OpenCL \(c.shape)") }
    }
  }

  func testCounterRandomIsBitIdenticalAcrossBackends() throws {
    let cl = try OpenCLFixture.backend()
    let (a, b) = (try cl.zeros([4097]), try CPUBackend().zeros([4097]))
    try cl.randomUniform(a, low: 0, high: 1, seed: 99)
    try CPUBackend().randomUniform(b, low: 0, high: 1, seed: 99)
    let (x, y) = (try cl.download(a), try CPUBackend().download(b))
    XCTAssertEqual(x, y)
  }

  /// A buffer larger than the device allows is refused before the driver is asked, naming the
  /// device and what to do; the backend goes on working.
  func testAnAbsurdAllocationIsRefusedNamingTheDevice() throws {
    let cl = try OpenCLFixture.backend()
    XCTAssertThrowsError(try cl.zeros([1 << 40])) { error in
      guard case CLError.device(let name, let call, let code, _) = error else { return XCTFail("got \(error)") }
      XCTAssertEqual(name, cl.device.name)
      XCTAssertEqual(code, -61)
      XCTAssert(call.hasPrefix("clCreateBuffer(4096.0 GiB) over the device's"), call)
      XCTAssert("\(error)".contains("out of device memory; lower --batch-size"), "\(error)")
    }
    XCTAssertThrowsError(try cl.zeros([Int.max / 2])) { XCTAssert("\($0)".contains("floats"), "\($0)") }
    XCTAssertEqual(try cl.download(try cl.upload([1, 2, 3], shape: [3])), [1, 2, 3])
  }

  func testFailedKernelBuildReportsFileOptionsAndLog() throws {
    let cl = try OpenCLFixture.backend()
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("advprune-badkernels-\(getpid())")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    for file in OpenCLBackend.kernelFileNames {
      try "__kernel void broken(__global float* x) { x[0] = undefined_name; }".write(
        to: dir.appendingPathComponent(file), atomically: true, encoding: .utf8)
    }
    XCTAssertThrowsError(try OpenCLBackend(device: cl.device, kernelsDirectory: dir.path)) { error in
      guard case CLError.build(let file, let options, let log) = error else { return XCTFail("got \(error)") }
      XCTAssertEqual(file, OpenCLBackend.kernelFileNames[0])
      XCTAssertEqual(options, "-cl-std=CL1.2")
      XCTAssert(log.contains("undefined_name"), "build log should name the error: \(log)")
    }
  }
}
