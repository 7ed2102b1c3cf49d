import ArgumentParser
import GPU

struct Devices: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "List the backends and the OpenCL platforms and devices found.")

  @OptionGroup var common: CommonOptions

  struct Report: Encodable {
    struct Device: Encodable {
      let index: Int
      let name: String
      let platform: String
      let type: String
      let computeUnits: Int
      let memoryMiB: Int
      let driver: String
    }
    let backends: [String]
    let openclDevices: [Device]
    let openclError: String?
    let auto: String
  }

  func run() throws {
    try reportingErrors {
      var error: String?
      var devices: [CLDeviceInfo] = []
      do { devices = try openCLDevices() } catch let e { error = "\(e)" }
      let auto = try makeBackend(.auto, kernelsDirectory: common.kernelsDir).reason
      let report = Report(
        backends: ["cpu"] + devices.map { "opencl:\($0.index)" },
        openclDevices: devices.map {
          .init(
            index: $0.index, name: $0.name, platform: $0.platformName, type: $0.isGPU ? "GPU" : "other", computeUnits: $0.computeUnits,
            memoryMiB: $0.globalMemoryBytes >> 20, driver: $0.driverVersion)
        },
        openclError: error, auto: auto)
      if common.json { return try printJSON(report) }
      print("cpu        CPU reference backend (Swift + CBLAS)")
      for d in devices { print(d.description) }
      if devices.isEmpty { print("no OpenCL devices\(error.map { " (\($0))" } ?? "")") }
      print("auto ->    \(auto)")
    }
  }
}
