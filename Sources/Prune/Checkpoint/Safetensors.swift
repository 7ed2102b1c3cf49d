import Foundation

/// A tensor held in host memory: a shape and its values in row-major order.
public struct HostTensor: Equatable, Sendable {
  public var shape: [Int]
  public var values: [Float]

  /// Makes a tensor; `values.count` must equal the product of `shape` (an empty shape is a scalar).
  public init(shape: [Int], values: [Float]) {
    precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in shape \(shape)")
    precondition(
      shape.reduce(1, *) == values.count,
      "shape \(shape) holds \(shape.reduce(1, *)) values, got \(values.count)")
    self.shape = shape
    self.values = values
  }
}

/// The contents of one safetensors file: named tensors plus free-form string metadata.
public struct SafetensorsFile: Equatable, Sendable {
  public var tensors: [String: HostTensor]
  public var metadata: [String: String]

  /// Makes a file; `__metadata__` is reserved by the format and cannot name a tensor.
  public init(tensors: [String: HostTensor], metadata: [String: String] = [:]) {
    precondition(tensors["__metadata__"] == nil, "'__metadata__' cannot name a tensor")
    self.tensors = tensors
    self.metadata = metadata
  }
}

/// Reads and writes the safetensors format, the interchange format PyTorch users load with
/// `safetensors.torch.load_file`.
///
/// Layout: an 8-byte little-endian header length N, N bytes of UTF-8 JSON, then the data buffer.
/// We write F32 only; we read F32, F64, F16 and BF16 and widen or narrow to Float.
public enum Safetensors {
  /// Headers beyond this are corrupt or hostile; real ones are a few KB.
  static let maxHeaderBytes: UInt64 = 100_000_000

  /// Reads and validates the file at `path`; every problem throws `UserError.badCheckpoint`.
  public static func read(path: String) throws -> SafetensorsFile {
    let bytes: [UInt8]
    do {
      bytes = try FileBytes.read(path: path)
    } catch let error as FileBytes.Failure {
      throw UserError.badCheckpoint(path: path, problem: error.problem)
    }
    return try decode(bytes, path: path)
  }

  /// Serialises `file` deterministically: sorted names, compact sorted-key JSON, and a header
  /// padded with spaces so the data buffer starts 8-byte aligned.
  ///
  /// NaN and Inf values are written as they are, although `decode` rejects them.
  public static func encode(_ file: SafetensorsFile) -> [UInt8] {
    // The fields are public vars, so the init's checks may have been bypassed since.
    precondition(file.tensors["__metadata__"] == nil, "'__metadata__' cannot name a tensor")
    for (name, tensor) in file.tensors {
      precondition(
        tensor.shape.reduce(1, *) == tensor.values.count,
        "tensor '\(name)' shape \(tensor.shape) does not match its \(tensor.values.count) values")
    }
    let names = file.tensors.keys.sorted(by: utf8Less)
    var members: [(key: String, json: [UInt8])] = []
    var offset = 0
    for name in names {
      guard let tensor = file.tensors[name] else { continue }
      let end = offset + tensor.values.count * 4
      var json = Array(#"{"data_offsets":["#.utf8)
      json += Array("\(offset),\(end)],\"dtype\":\"F32\",\"shape\":[".utf8)
      json += Array(tensor.shape.map(String.init).joined(separator: ",").utf8)
      json += Array("]}".utf8)
      members.append((name, json))
      offset = end
    }
    if !file.metadata.isEmpty {
      var json: [UInt8] = [UInt8(ascii: "{")]
      for (index, key) in file.metadata.keys.sorted(by: utf8Less).enumerated() {
        if index > 0 { json.append(UInt8(ascii: ",")) }
        appendJSONString(key, to: &json)
        json.append(UInt8(ascii: ":"))
        appendJSONString(file.metadata[key] ?? "", to: &json)
      }
      json.append(UInt8(ascii: "}"))
      members.append(("__metadata__", json))
    }
    members.sort { utf8Less($0.key, $1.key) }

    var header: [UInt8] = [UInt8(ascii: "{")]
    for (index, member) in members.enumerated() {
      if index > 0 { header.append(UInt8(ascii: ",")) }
      appendJSONString(member.key, to: &header)
      header.append(UInt8(ascii: ":"))
      header += member.json
    }
    header.append(UInt8(ascii: "}"))
    while header.count % 8 != 0 { header.append(UInt8(ascii: " ")) }

    var out: [UInt8] = []
    out.reserveCapacity(8 + header.count + offset)
    withUnsafeBytes(of: UInt64(header.count).littleEndian) { out += $0 }
    out += header
    for name in names {
      guard let tensor = file.tensors[name] else { continue }
      for value in tensor.values {
        withUnsafeBytes(of: value.bitPattern.littleEndian) { out += $0 }
      }
    }
    return out
  }

  /// Parses and validates safetensors bytes; `path` only names the source in errors.
  public static func decode(_ bytes: [UInt8], path: String) throws -> SafetensorsFile {
    func bad(_ problem: String) -> UserError { .badCheckpoint(path: path, problem: problem) }

    guard bytes.count >= 8 else {
      throw bad("file is \(bytes.count) bytes, too short for the 8-byte header length")
    }
    var headerLength: UInt64 = 0
    for index in 0..<8 { headerLength |= UInt64(bytes[index]) << (8 * UInt64(index)) }
    guard headerLength <= maxHeaderBytes else {
      throw bad("header length \(headerLength) is absurd (over 100 MB); not a safetensors file?")
    }
    let dataStart = 8 + Int(headerLength)
    guard dataStart <= bytes.count else {
      throw bad("header length \(headerLength) runs past the end of the \(bytes.count)-byte file")
    }
    let headerBytes = Array(bytes[8..<dataStart])
    guard String(validating: headerBytes, as: UTF8.self) != nil else {
      throw bad("header is not valid UTF-8")
    }
    let header: HeaderJSON
    do {
      header = try HeaderJSONParser.parse(headerBytes)
    } catch let error as HeaderJSONParser.Failure {
      throw bad("header is not valid JSON: \(error.message)")
    }
    guard case .object(let members) = header else {
      throw bad("header is a JSON \(header.kind), expected an object")
    }

    let dataCount = bytes.count - dataStart
    var metadata: [String: String] = [:]
    var entries: [Entry] = []
    for (key, value) in members {
      if key == "__metadata__" {
        metadata = try parseMetadata(value, bad: bad)
      } else {
        entries.append(try parseEntry(name: key, value, dataCount: dataCount, bad: bad))
      }
    }

    // Tensors may come in any order, but no two may share bytes.
    let byStart = entries.filter { $0.begin < $0.end }.sorted { $0.begin < $1.begin }
    for (previous, next) in zip(byStart, byStart.dropFirst()) where next.begin < previous.end {
      throw bad(
        "tensors '\(previous.name)' [\(previous.begin), \(previous.end)) and "
          + "'\(next.name)' [\(next.begin), \(next.end)) overlap in the data buffer")
    }

    var tensors: [String: HostTensor] = [:]
    try bytes.withUnsafeBytes { raw in
      for entry in entries {
        let slice = UnsafeRawBufferPointer(
          rebasing: raw[(dataStart + entry.begin)..<(dataStart + entry.end)])
        let values = try convert(slice, entry: entry, bad: bad)
        tensors[entry.name] = HostTensor(shape: entry.shape, values: values)
      }
    }
    return SafetensorsFile(tensors: tensors, metadata: metadata)
  }

  /// Writes `file` atomically: a temporary file in the same directory is renamed over `path`,
  /// so readers see the old file or the new one, never a partial one.
  public static func write(_ file: SafetensorsFile, path: String) throws {
    do {
      try FileBytes.writeAtomically(encode(file), path: path)
    } catch let error as FileBytes.Failure {
      throw UserError.cannotWrite(path: path, problem: error.problem)
    }
  }
}
