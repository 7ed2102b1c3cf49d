import ArgumentParser
import Foundation
import GPU
import Prune

struct BenchKernel: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bench-kernel",
    abstract: "The kernel workbench: validate each OpenCL conv/GEMM variant against the CPU reference, then time it.",
    discussion: """
      For every layer shape of the chosen models (at --batch images), runs the op with our own kernels \
      (native) and with im2col + CLBlast (clblast), checks each against the CPU reference on the same \
      inputs, then times it: one warm-up, the median of --repeats runs. Prints ms, GFLOP/s, GB/s (operands \
      and result moved once) and the share of the device's FMA peak measured first. --set NAME=V compiles \
      the native kernels with other tunables (pix, rows, gemm_rows, kc, wtaps, rows_per_item, witems, group; \
      tm, tn, tk, split for the local-memory tiles GPUs run, tm=0 for the per-item kernel; winograd=0|1 for \
      3x3 stride-1 convolutions as Winograd F(4x4, 3x3), wrows_first=0|1 for the order of its products' \
      work-items; few_rb=N output rows per work-item of a one- to four-channel image's input gradient, 0 for \
      the implicit GEMM).
      """)

  @Argument(help: "conv-forward, conv-backward-data, conv-backward-weight, gemm or all.") var op: String = "all"
  @Option(help: "native, clblast or all.") var variant: String = "all"
  @Option(help: "Layer shapes: smallcnn, resnet18, or both comma-separated.") var models: String = "smallcnn,resnet18"
  @Option(help: "Images per op.") var batch: Int = 32
  @Option(help: "Timed runs per variant (median).") var repeats: Int = 5
  @Option(name: .customLong("set"), help: "A native tunable, NAME=V (repeatable).") var sets: [String] = []
  @OptionGroup var common: CommonOptions

  func run() throws {
    try reportingErrors {
      let ops = op == "all" ? KernelBench.ops : [op]
      guard ops.allSatisfy(KernelBench.ops.contains) else {
        throw UserError.badValue(name: "op", value: op, problem: "expected \(KernelBench.ops.joined(separator: ", ")) or all")
      }
      guard ["native", "clblast", "all"].contains(variant) else {
        throw UserError.badValue(name: "--variant", value: variant, problem: "expected native, clblast or all")
      }
      guard batch >= 1 else { throw UserError.badValue(name: "--batch", value: "\(batch)", problem: "must be at least 1") }
      guard repeats >= 1 else { throw UserError.badValue(name: "--repeats", value: "\(repeats)", problem: "must be at least 1") }
      var shapes: [KernelBench.Shape] = []
      for model in models.split(separator: ",").map(String.init) {
        guard let s = KernelBench.shapes(model: model, batch: batch) else {
          throw UserError.badValue(name: "--models", value: model, problem: "expected smallcnn or resnet18")
        }
        shapes += s
      }
      guard let cl = try common.backend(tunableAssignments: sets) as? OpenCLBackend else {
        throw UserError.badValue(
          name: "--device", value: common.device ?? "auto", problem: "the workbench times OpenCL kernels: use --device opencl[:N]")
      }
      var variants: [(name: String, backend: OpenCLBackend)] = []
      if variant != "clblast" {
        variants.append(("native", cl))
      }
      if variant != "native" {
        variants.append(("clblast", try OpenCLBackend(device: cl.device, kernelsDirectory: common.kernelsDir, engine: .clblast)))
      }
      let peak = try variants[0].backend.measurePeakGflops()
      if !common.json {
        print("device: \(cl.device.name); FMA peak \(String(format: "%.1f", peak)) GFLOP/s; native tunables: \(cl.tunables)")
        print(header)
      }
      let reference = CPUBackend.reference()
      var results: [KernelBench.Result] = []
      for op in ops {
        for shape in shapes where KernelBench.applies(op, to: shape) {
          let rows = try KernelBench.run(op: op, shape: shape, variants: variants, reference: reference, repeats: repeats, peakGflops: peak)
          if !common.json { for r in rows { print(line(r, baseline: rows.first { $0.variant == "clblast" })) } }
          results += rows
        }
      }
      if common.json { try printJSON(Report(device: cl.device.name, peakGflops: peak, tunables: cl.tunables.description, results: results)) }
      let failed = results.filter { !$0.passed }
      for f in failed { printErr("advprune: \(f.variant) \(f.op) \(f.shape) disagrees with the CPU reference (max abs error \(f.maxAbsError))") }
      if !failed.isEmpty { throw ExitCode(1) }
    }
  }

  struct Report: Encodable {
    let device: String
    let peakGflops: Double
    let tunables: String
    let results: [KernelBench.Result]
  }

  private var header: String {
    "op".padding(toLength: 21, withPad: " ", startingAt: 0) + "shape".padding(toLength: 52, withPad: " ", startingAt: 0)
      + "variant        ms   GFLOP/s    GB/s  peak  vs clblast  check"
  }

  private func line(_ r: KernelBench.Result, baseline: KernelBench.Result?) -> String {
    let speedup = baseline.map { String(format: "%8.2fx", $0.milliseconds / r.milliseconds) } ?? "        -"
    return r.op.padding(toLength: 21, withPad: " ", startingAt: 0) + r.shape.padding(toLength: 52, withPad: " ", startingAt: 0)
      + r.variant.padding(toLength: 8, withPad: " ", startingAt: 0)
      + String(
        format: "%8.2f %9.1f %7.1f %4.0f%%  %@  %@", r.milliseconds, r.gflops, r.gigabytesPerSecond, 100 * r.peakShare, speedup,
        r.passed ? "ok" : "FAIL")
  }
}
