import COpenCL
import Foundation

/// One OpenCL device as the ICD loader reports it.
public struct CLDeviceInfo: CustomStringConvertible {
  /// Index over all devices of all platforms, as `--device opencl:N` counts them.
  public let index: Int
  public let platformName: String
  public let platformVersion: String
  public let name: String
  public let driverVersion: String
  public let isGPU: Bool
  public let computeUnits: Int
  public let globalMemoryBytes: Int
  /// The largest single buffer the device allows (CL_DEVICE_MAX_MEM_ALLOC_SIZE).
  public let maxAllocationBytes: Int
  let platform: cl_platform_id
  let device: cl_device_id

  public var description: String {
    "opencl:\(index) \(name) [\(isGPU ? "GPU" : "non-GPU")] on \(platformName), \(computeUnits) CUs, \(globalMemoryBytes >> 20) MiB, driver \(driverVersion)"
  }
}

/// Lists every OpenCL device of every platform; an empty list when no ICD or platform exists.
public func openCLDevices() throws -> [CLDeviceInfo] {
  var platformCount: cl_uint = 0
  let status = clGetPlatformIDs(0, nil, &platformCount)
  if status == -1001 || platformCount == 0 { return [] }  // no ICD installed: simply no devices
  try check(status, "clGetPlatformIDs")
  var platforms = [cl_platform_id?](repeating: nil, count: Int(platformCount))
  try check(clGetPlatformIDs(platformCount, &platforms, nil), "clGetPlatformIDs")
  var result: [CLDeviceInfo] = []
  for case let platform? in platforms {
    var deviceCount: cl_uint = 0
    let s = clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), 0, nil, &deviceCount)
    if s == CL_DEVICE_NOT_FOUND || deviceCount == 0 { continue }
    try check(s, "clGetDeviceIDs")
    var devices = [cl_device_id?](repeating: nil, count: Int(deviceCount))
    try check(clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), deviceCount, &devices, nil), "clGetDeviceIDs")
    for case let device? in devices {
      var type: cl_device_type = 0
      try check(clGetDeviceInfo(device, cl_device_info(CL_DEVICE_TYPE), MemoryLayout<cl_device_type>.size, &type, nil), "clGetDeviceInfo(TYPE)")
      var units: cl_uint = 0
      try check(
        clGetDeviceInfo(device, cl_device_info(CL_DEVICE_MAX_COMPUTE_UNITS), MemoryLayout<cl_uint>.size, &units, nil),
        "clGetDeviceInfo(MAX_COMPUTE_UNITS)")
      var memory: cl_ulong = 0
      try check(
        clGetDeviceInfo(device, cl_device_info(CL_DEVICE_GLOBAL_MEM_SIZE), MemoryLayout<cl_ulong>.size, &memory, nil),
        "clGetDeviceInfo(GLOBAL_MEM_SIZE)")
      var maxAllocation: cl_ulong = 0
      try check(
        clGetDeviceInfo(device, cl_device_info(CL_DEVICE_MAX_MEM_ALLOC_SIZE), MemoryLayout<cl_ulong>.size, &maxAllocation, nil),
        "clGetDeviceInfo(MAX_MEM_ALLOC_SIZE)")
      result.append(
        CLDeviceInfo(
          index: result.count,
          platformName: try platformString(platform, cl_platform_info(CL_PLATFORM_NAME)),
          platformVersion: try platformString(platform, cl_platform_info(CL_PLATFORM_VERSION)),
          name: try deviceString(device, cl_device_info(CL_DEVICE_NAME)),
          driverVersion: try deviceString(device, cl_device_info(CL_DRIVER_VERSION)),
          isGPU: type & cl_device_type(CL_DEVICE_TYPE_GPU) != 0,
          computeUnits: Int(units), globalMemoryBytes: Int(memory), maxAllocationBytes: Int(min(maxAllocation, cl_ulong(Int.max))),
          platform: platform, device: device))
    }
  }
  return result
}

private func platformString(_ platform: cl_platform_id, _ what: cl_platform_info) throws -> String {
  var size = 0
  try check(clGetPlatformInfo(platform, what, 0, nil, &size), "clGetPlatformInfo")
  var bytes = [CChar](repeating: 0, count: size + 1)
  try check(clGetPlatformInfo(platform, what, size, &bytes, nil), "clGetPlatformInfo")
  return String(cString: bytes).trimmingCharacters(in: .whitespaces)
}

func deviceString(_ device: cl_device_id, _ what: cl_device_info) throws -> String {
  var size = 0
  try check(clGetDeviceInfo(device, what, 0, nil, &size), "clGetDeviceInfo")
  var bytes = [CChar](repeating: 0, count: size + 1)
  try check(clGetDeviceInfo(device, what, size, &bytes, nil), "clGetDeviceInfo")
  return String(cString: bytes).trimmingCharacters(in: .whitespaces)
}
