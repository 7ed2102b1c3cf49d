import Foundation

/// What `--device` / `ADVPRUNE_DEVICE` asked for: `auto`, `cpu`, `opencl` or `opencl:N`.
public enum DeviceRequest: Equatable, CustomStringConvertible {
  case auto
  case cpu
  /// A specific OpenCL device index, or the first device when nil.
  case opencl(Int?)

  public init?(parsing text: String) {
    switch text.lowercased() {
    case "auto": self = .auto
    case "cpu": self = .cpu
    case "opencl": self = .opencl(nil)
    default:
      let parts = text.lowercased().split(separator: ":")
      guard parts.count == 2, parts[0] == "opencl", let index = Int(parts[1]), index >= 0 else { return nil }
      self = .opencl(index)
    }
  }

  public var description: String {
    switch self {
    case .auto: return "auto"
    case .cpu: return "cpu"
    case .opencl(nil): return "opencl"
    case .opencl(let i?): return "opencl:\(i)"
    }
  }
}

/// Makes the backend a request names, and says in one line why that one.
///
/// `auto` takes the first OpenCL GPU, else the CPU backend (on a CPU, our BLAS path beats
/// OpenCL-on-CPU); `opencl` forces OpenCL even on a CPU device such as PoCL.
///
/// `tuning` turns an OpenCL device's default tunables into the ones its kernels compile with
/// (`--set`); a CPU backend has none.
public func makeBackend(
  _ request: DeviceRequest, kernelsDirectory: String? = nil, tuning: (CLTunables) throws -> CLTunables = { $0 }
) throws -> (backend: Backend, reason: String) {
  switch request {
  case .cpu:
    return (CPUBackend(), "\(CPUBackend.summary) (requested)")
  case .opencl(let index):
    let devices = try openCLDevices()
    guard !devices.isEmpty else { throw CLError.noDevice("no OpenCL platform or device found (is an ICD such as pocl-opencl-icd installed?)") }
    let i = index ?? 0
    guard i < devices.count else { throw CLError.noDevice("opencl:\(i) requested but only \(devices.count) device(s) exist") }
    let tunables = try tuning(CLTunables.defaults(for: devices[i]))
    return (try OpenCLBackend(device: devices[i], kernelsDirectory: kernelsDirectory, tunables: tunables), "\(devices[i]) (requested)")
  case .auto:
    let devices = (try? openCLDevices()) ?? []
    if let gpu = devices.first(where: { $0.isGPU }) {
      let tunables = try tuning(CLTunables.defaults(for: gpu))
      do {
        return (try OpenCLBackend(device: gpu, kernelsDirectory: kernelsDirectory, tunables: tunables), "\(gpu) (auto: first OpenCL GPU)")
      } catch {
        return (CPUBackend(), "\(CPUBackend.summary) (auto: OpenCL GPU \(gpu.name) failed to start: \(error))")
      }
    }
    let why = devices.isEmpty ? "no OpenCL device" : "no OpenCL GPU, only \(devices.map(\.name).joined(separator: ", "))"
    return (CPUBackend(), "\(CPUBackend.summary) (auto: \(why); use --device opencl to force OpenCL)")
  }
}
