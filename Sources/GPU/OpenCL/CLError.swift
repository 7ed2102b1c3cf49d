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
  /// A call on a device failed (out of memory, device lost mid-run, ...): the device is named and
  /// the failures a user can act on carry what to do.
  case device(name: String, call: String, code: Int32, codeName: String)

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
    case .device(let name, let call, let code, let codeName):
      return "OpenCL device \(name): \(call) failed with \(codeName) (\(code))" + (Self.advice(code).map { ": \($0)" } ?? "")
    }
  }

  /// What to do about a failure, for the codes that mean memory ran out or the device went away.
  static func advice(_ code: Int32) -> String? {
    switch code {
    case -4, -6, -61:  // MEM_OBJECT_ALLOCATION_FAILURE, OUT_OF_HOST_MEMORY, INVALID_BUFFER_SIZE
      return "out of device memory; lower --batch-size, use a narrower model (--width), or run on --device cpu"
    case -2, -5, -36, -9999:  // DEVICE_NOT_AVAILABLE, OUT_OF_RESOURCES, INVALID_COMMAND_QUEUE, NVIDIA's fault
      return "the device failed or was lost (driver reset, GPU fault, or a kernel out of resources); "
        + "finished work is in the last checkpoint (train --resume and bench run continue from it), or run on --device cpu"
    default: return nil
    }
  }
}
