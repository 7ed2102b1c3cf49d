import COpenCL
import Foundation

/// Compiles kernel files for one device, keeping compiled binaries on disk.
///
/// The cache key hashes the source, the build options, the device, its driver and the platform
/// version, so a changed kernel or driver never loads a stale binary. A binary that fails to load
/// is rebuilt from source. Directory: `ADVPRUNE_CACHE_DIR`, else `$XDG_CACHE_HOME/advprune`,
/// else `~/.cache/advprune`.
struct CLProgramCache {
  let context: cl_context
  let device: CLDeviceInfo

  static var directory: URL {
    let env = ProcessInfo.processInfo.environment
    if let dir = env["ADVPRUNE_CACHE_DIR"], !dir.isEmpty { return URL(fileURLWithPath: dir) }
    if let xdg = env["XDG_CACHE_HOME"], !xdg.isEmpty { return URL(fileURLWithPath: xdg).appendingPathComponent("advprune") }
    return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/advprune")
  }

  func build(file: String, source: String, options: String) throws -> cl_program {
    let key = fnv1a64([source, options, device.name, device.driverVersion, device.platformVersion].joined(separator: "\u{1}"))
    let cached = Self.directory.appendingPathComponent("\((file as NSString).deletingPathExtension)-\(String(key, radix: 16)).bin")
    if let binary = try? Data(contentsOf: cached), let program = try? load(binary: binary, options: options) {
      return program
    }
    let program = try compile(file: file, source: source, options: options)
    if let binary = try? binaryOf(program) { store(binary, at: cached) }
    return program
  }

  private func compile(file: String, source: String, options: String) throws -> cl_program {
    var status: cl_int = 0
    let program: cl_program? = source.withCString { text in
      var pointer: UnsafePointer<CChar>? = text
      return clCreateProgramWithSource(context, 1, &pointer, nil, &status)
    }
    try check(status, "clCreateProgramWithSource(\(file))")
    guard let program else { throw CLError.api(code: status, name: clErrorName(status), call: "clCreateProgramWithSource") }
    var dev: cl_device_id? = device.device
    let built = clBuildProgram(program, 1, &dev, options, nil, nil)
    if built != CL_SUCCESS {
      let log = (try? buildLog(program)) ?? "(no build log)"
      clReleaseProgram(program)
      throw CLError.build(file: file, options: options, log: log)
    }
    return program
  }

  private func load(binary: Data, options: String) throws -> cl_program {
    var status: cl_int = 0
    var binaryStatus: cl_int = 0
    var dev: cl_device_id? = device.device
    var length = binary.count
    let program: cl_program? = binary.withUnsafeBytes { raw in
      var pointer: UnsafePointer<UInt8>? = raw.bindMemory(to: UInt8.self).baseAddress
      return clCreateProgramWithBinary(context, 1, &dev, &length, &pointer, &binaryStatus, &status)
    }
    try check(status, "clCreateProgramWithBinary")
    try check(binaryStatus, "clCreateProgramWithBinary(binary status)")
    guard let program else { throw CLError.noDevice("binary load returned no program") }
    let built = clBuildProgram(program, 1, &dev, options, nil, nil)
    if built != CL_SUCCESS {
      clReleaseProgram(program)
      try check(built, "clBuildProgram(cached binary)")
    }
    return program
  }

  private func binaryOf(_ program: cl_program) throws -> Data {
    var size = 0
    try check(
      clGetProgramInfo(program, cl_program_info(CL_PROGRAM_BINARY_SIZES), MemoryLayout<Int>.size, &size, nil), "clGetProgramInfo(BINARY_SIZES)")
    guard size > 0 else { throw CLError.noDevice("driver returned an empty program binary") }
    var bytes = [UInt8](repeating: 0, count: size)
    try bytes.withUnsafeMutableBufferPointer { buffer in
      var pointer: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
      try check(
        clGetProgramInfo(program, cl_program_info(CL_PROGRAM_BINARIES), MemoryLayout<UnsafeMutablePointer<UInt8>?>.size, &pointer, nil),
        "clGetProgramInfo(BINARIES)")
    }
    return Data(bytes)
  }

  private func buildLog(_ program: cl_program) throws -> String {
    var size = 0
    try check(clGetProgramBuildInfo(program, device.device, cl_program_build_info(CL_PROGRAM_BUILD_LOG), 0, nil, &size), "clGetProgramBuildInfo")
    var bytes = [CChar](repeating: 0, count: size + 1)
    try check(clGetProgramBuildInfo(program, device.device, cl_program_build_info(CL_PROGRAM_BUILD_LOG), size, &bytes, nil), "clGetProgramBuildInfo")
    return String(cString: bytes)
  }

  /// Best effort and atomic: a cache that cannot be written only costs a rebuild next time.
  private func store(_ binary: Data, at url: URL) {
    let dir = url.deletingLastPathComponent()
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).\(getpid()).tmp")
    do {
      try binary.write(to: tmp)
      if rename(tmp.path, url.path) != 0 { try? FileManager.default.removeItem(at: tmp) }
    } catch {
      try? FileManager.default.removeItem(at: tmp)
    }
  }
}

/// 64-bit FNV-1a: a stable content hash for cache keys (not for security).
public func fnv1a64(_ text: String) -> UInt64 {
  var hash: UInt64 = 0xCBF2_9CE4_8422_2325
  for byte in text.utf8 {
    hash ^= UInt64(byte)
    hash &*= 0x0000_0100_0000_01B3
  }
  return hash
}
