/// Every failure of the OpenCL layer, as one typed error.
public enum CLError: Error, CustomStringConvertible {
  /// An API call returned a non-success status.
  case api(code: Int32, name: String, call: String)
  /// A kernel file failed to compile: the file, the options and the whole build log.
  case build(file: String, options: String, log: String)
  /// No OpenCL platform or device matched the request.
  case noDevice(String)
  /// A kernel name that no loaded program defines.
  case kernelNotFound(String)
  /// A kernel source file that cannot be found or read.
  case kernelSourceMissing(file: String, searched: [String])
  /// Operands whose shapes do not fit an op.
  case shapeMismatch(op: String, expected: String, got: String)

  public var description: String {
    switch self {
    case .api(let code, let name, let call): return "OpenCL call \(call) failed: \(name) (\(code))"
    case .build(let file, let options, let log):
      return "OpenCL build of \(file) failed (options: '\(options)'):\n\(log)"
    case .noDevice(let what): return "no OpenCL device: \(what)"
    case .kernelNotFound(let name): return "OpenCL kernel '\(name)' not found in any program"
    case .kernelSourceMissing(let file, let searched):
      return "kernel source \(file) not found; searched: \(searched.joined(separator: ", ")) (set --kernels-dir or ADVPRUNE_KERNELS)"
    case .shapeMismatch(let op, let expected, let got): return "\(op): expected \(expected), got \(got)"
    }
  }
}
