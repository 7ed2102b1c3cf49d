extension OpenCLBackend {
  /// The first OpenCL device of the first platform, whatever its type (PoCL on a CPU included).
  public static func first(kernelsDirectory: String? = nil) throws -> OpenCLBackend {
    guard let device = try openCLDevices().first else {
      throw CLError.noDevice("no OpenCL platform or device found (is an ICD such as pocl-opencl-icd installed?)")
    }
    return try OpenCLBackend(device: device, kernelsDirectory: kernelsDirectory)
  }
}
