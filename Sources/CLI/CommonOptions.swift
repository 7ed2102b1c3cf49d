import ArgumentParser
import Foundation
import GPU
import Prune

/// Options every subcommand shares.
struct CommonOptions: ParsableArguments {
  @Option(help: "Backend: auto (first OpenCL GPU, else CPU), cpu, opencl or opencl:N. Default: $ADVPRUNE_DEVICE or auto.")
  var device: String?

  @Option(help: "Seed of every random choice (initialisation, data order, attack starts).")
  var seed: UInt64 = 0

  @Flag(help: "Print one JSON object with the results on stdout, and nothing else there.")
  var json = false

  @Option(help: "Directory of the OpenCL kernel sources (default: $ADVPRUNE_KERNELS, next to the executable, or the package's kernels/).")
  var kernelsDir: String?

  @Flag(help: "No progress output.")
  var quiet = false

  func deviceRequest() throws -> DeviceRequest {
    let text = device ?? ProcessInfo.processInfo.environment["ADVPRUNE_DEVICE"] ?? "auto"
    guard let request = DeviceRequest(parsing: text) else {
      throw UserError.badValue(name: "--device", value: text, problem: "expected auto, cpu, opencl or opencl:N")
    }
    return request
  }

  /// The backend to run on; says which on stderr (stdout stays clean for --json). An OpenCL
  /// backend's kernels compile with `tunableAssignments` (`--set NAME=V`) applied.
  func backend(tunableAssignments: [String] = []) throws -> Backend {
    let (backend, reason) = try makeBackend(
      try deviceRequest(), kernelsDirectory: kernelsDir, tuning: { try applying(tunableAssignments, to: $0) })
    if !quiet { printErr("device: \(reason)") }
    return backend
  }

  func progress() -> ProgressSink {
    quiet ? SilentProgress() : TerminalProgress()
  }
}

func printErr(_ text: String) {
  FileHandle.standardError.write((text + "\n").data(using: .utf8)!)
}

/// Runs a command body, turning known failures into one line on stderr and exit code 2; a stop by
/// SIGINT / SIGTERM (see `GracefulStop`) exits 130 / 143 with `resume`, how to continue.
func reportingErrors(resume: String? = nil, _ body: () throws -> Void) throws {
  do {
    try body()
  } catch let error as ExitCode {
    throw error
  } catch TrainingError.interrupted(let signal, let at, let saved) {
    let how = saved ? (resume ?? "run the same command again") : "run the same command again"
    printErr("advprune: stopped by \(StopRequest.name(signal)) after \(at)\(saved ? ", checkpoint written" : ""); to continue: \(how)")
    throw ExitCode(128 + signal)
  } catch let error as UserError {
    printErr("advprune: error: \(error)")
    throw ExitCode(2)
  } catch let error as CLError {
    printErr("advprune: error: \(error)")
    throw ExitCode(2)
  } catch let error as TrainingError {
    printErr("advprune: error: \(error)")
    throw ExitCode(2)
  } catch {
    printErr("advprune: error: \(error)")
    throw ExitCode(2)
  }
}

/// Writes `value` as one JSON object on stdout.
func printJSON<T: Encodable>(_ value: T) throws {
  let encoder = JSONEncoder()
  encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
  encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
  print(String(data: try encoder.encode(value), encoding: .utf8)!)
}

/// Shared parsers for the science options.
extension PerturbationNorm: ExpressibleByArgument {}
extension Locality: ExpressibleByArgument {}
extension Structure: ExpressibleByArgument {
  /// `structured` (the taxonomy's word, DESIGN.md) and `filter` also name filter pruning.
  public init?(argument: String) {
    guard let s = try? Structure(parsing: argument) else { return nil }
    self = s
  }
}
extension LRSchedule: ExpressibleByArgument {}
