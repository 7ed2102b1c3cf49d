import CZlib
import Foundation

/// One numeric array of a MATLAB file: `dims` in MATLAB order, elements column-major as stored.
public struct MATArray: Sendable {
  public var name: String
  public var dims: [Int]
  /// MATLAB's class name: "uint8", "double", ...
  public var className: String
  /// Elements of a uint8 array stored as bytes, kept as they are (SVHN's images are 225 MB of them).
  public var bytes: [UInt8]?
  /// Elements of every other numeric array, converted.
  public var doubles: [Double]?

  public var count: Int { dims.reduce(1, *) }
}

/// Reads the numeric arrays of a MATLAB level-5 MAT-file (what `save` writes up to -v7, with or
/// without compression; SVHN's `train_32x32.mat` is one).
///
/// Layout: a 128-byte header ending in version 0x0100 and the endian mark "IM" (little-endian
/// writer) or "MI"; then data elements, each an 8-byte tag (u32 type, u32 byte count) or a 4-byte
/// "small" tag (u16 count, u16 type) with up to 4 bytes of data inline. A top-level element is a
/// miMATRIX (14) or a zlib stream (miCOMPRESSED, 15) holding one. A matrix holds sub-elements
/// padded to 8 bytes: array flags (class in the low byte), dimensions, name, real part.
/// Cells, structs, sparse and char arrays are skipped; complex arrays are rejected by name.
public enum MATv5 {
  static let classNames: [UInt8: String] = [
    6: "double", 7: "single", 8: "int8", 9: "uint8", 10: "int16", 11: "uint16",
    12: "int32", 13: "uint32", 14: "int64", 15: "uint64",
  ]

  /// Reads `path`; with `only`, arrays of other names are skipped without being decompressed
  /// further than their name.
  public static func read(path: String, only names: Set<String>? = nil) throws -> [String: MATArray] {
    let bytes: [UInt8]
    do { bytes = try FileBytes.read(path: path) } catch let failure as FileBytes.Failure {
      throw UserError.badDataFile(path: path, problem: failure.problem)
    }
    return try parse(bytes, path: path, only: names)
  }

  /// Parses a whole file's bytes; `path` only names the source in errors.
  public static func parse(_ bytes: [UInt8], path: String, only names: Set<String>? = nil) throws -> [String: MATArray] {
    func bad(_ problem: String) -> UserError { .badDataFile(path: path, problem: problem) }
    guard bytes.count >= 128 else {
      throw bad("truncated: \(bytes.count) bytes, too short for the 128-byte MAT-file header")
    }
    guard bytes.starts(with: Array("MATLAB".utf8)) else {
      throw bad("not a MATLAB 5.0 MAT-file (the header does not start with \"MATLAB\")")
    }
    // MATLAB 7.3 files keep the 128-byte text header (version 0x0200) and put an HDF5 file after it.
    let hdf5 = bytes.starts(with: Array("MATLAB 7.3".utf8)) || (bytes[124] == 0 && bytes[125] == 2) || (bytes[124] == 2 && bytes[125] == 0)
    if hdf5 {
      throw bad(
        "a MATLAB 7.3 (HDF5) MAT-file, which advprune does not read; save it as a level-5 file instead "
          + "(MATLAB: save(file, 'X', 'y', '-v7'); Python: scipy.io.savemat) or use the data set's published v5 files")
    }
    let swap: Bool
    switch (bytes[126], bytes[127]) {
    case (UInt8(ascii: "I"), UInt8(ascii: "M")): swap = false
    case (UInt8(ascii: "M"), UInt8(ascii: "I")): swap = true
    default: throw bad("no endian mark at bytes 126-127; not a level-5 MAT-file")
    }

    var arrays: [String: MATArray] = [:]
    var at = 128
    while at < bytes.count {
      // Some writers pad the file's end with zeros.
      if bytes.count - at < 8, bytes[at...].allSatisfy({ $0 == 0 }) { break }
      let reader = MATReader(bytes: bytes, swap: swap, path: path)
      let element = try reader.tag(at: at, what: "top-level element at byte \(at)")
      let end = element.dataStart + element.size
      switch element.type {
      case 14:
        if let array = try reader.matrix(in: element.dataStart..<end, only: names) { arrays[array.name] = array }
      case 15:
        let inflated = try inflate(bytes[element.dataStart..<end], path: path, at: at)
        let inner = MATReader(bytes: inflated, swap: swap, path: path)
        let matrix = try inner.tag(at: 0, what: "compressed element at byte \(at)")
        guard matrix.type == 14 else {
          throw bad("compressed element at byte \(at) holds data type \(matrix.type), expected a matrix (14)")
        }
        if let array = try inner.matrix(in: matrix.dataStart..<(matrix.dataStart + matrix.size), only: names) {
          arrays[array.name] = array
        }
      default:
        throw bad("top-level element at byte \(at) has data type \(element.type); expected a matrix (14) or compressed data (15)")
      }
      at = end
    }
    return arrays
  }

  /// Inflates one zlib stream whose decompressed size is not recorded anywhere.
  static func inflate(_ source: ArraySlice<UInt8>, path: String, at: Int) throws -> [UInt8] {
    func bad(_ problem: String) -> UserError { .badDataFile(path: path, problem: "compressed element at byte \(at): \(problem)") }
    var stream = z_stream()
    guard inflateInit_(&stream, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
      throw bad("zlib could not start")
    }
    defer { inflateEnd(&stream) }
    var out = [UInt8](repeating: 0, count: max(4096, source.count * 2))
    var produced = 0
    var code: Int32 = Z_OK
    try source.withUnsafeBufferPointer { input in
      stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
      stream.avail_in = UInt32(input.count)
      while true {
        if produced == out.count { out += [UInt8](repeating: 0, count: out.count) }
        let room = min(out.count - produced, Int(UInt32.max))
        code = out.withUnsafeMutableBufferPointer { output in
          stream.next_out = output.baseAddress! + produced
          stream.avail_out = UInt32(room)
          let result = CZlib.inflate(&stream, Z_NO_FLUSH)
          produced += room - Int(stream.avail_out)
          return result
        }
        if code == Z_STREAM_END { return }
        if code == Z_BUF_ERROR, stream.avail_in == 0 { throw bad("truncated zlib stream") }
        guard code == Z_OK || code == Z_BUF_ERROR else {
          let message = stream.msg.map { String(cString: $0) } ?? "zlib error \(code)"
          throw bad("corrupt zlib stream (\(message))")
        }
      }
    }
    return Array(out[0..<produced])
  }
}

/// A cursor over one buffer of MAT-file data elements.
struct MATReader {
  struct Tag {
    var type: UInt32
    var size: Int
    var dataStart: Int
    var end: Int
  }

  let bytes: [UInt8]
  let swap: Bool
  let path: String

  func bad(_ problem: String) -> UserError { .badDataFile(path: path, problem: problem) }

  func u32(_ at: Int) -> UInt32 {
    let value = UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
    return swap ? value.byteSwapped : value
  }

  /// The tag at `at`; `end` is where the next sub-element starts (data padded to 8 bytes).
  func tag(at: Int, what: String) throws -> Tag {
    guard at + 8 <= bytes.count else { throw bad("truncated: \(what) needs an 8-byte tag, \(max(0, bytes.count - at)) bytes left") }
    let first = u32(at)
    if first >> 16 != 0 {
      let size = Int(first >> 16)
      guard size <= 4 else { throw bad("\(what): a small element cannot hold \(size) bytes") }
      return Tag(type: first & 0xFFFF, size: size, dataStart: at + 4, end: at + 8)
    }
    let size = Int(u32(at + 4))
    guard at + 8 + size <= bytes.count else {
      throw bad("truncated: \(what) says \(size) bytes, \(bytes.count - at - 8) are left")
    }
    return Tag(type: first, size: size, dataStart: at + 8, end: min(bytes.count, at + 8 + (size + 7) / 8 * 8))
  }

  /// Parses a matrix's sub-elements; nil for classes we skip or names not asked for.
  func matrix(in range: Range<Int>, only names: Set<String>?) throws -> MATArray? {
    let flags = try tag(at: range.lowerBound, what: "array flags")
    guard flags.type == 6, flags.size == 8 else {
      throw bad("array flags have type \(flags.type) and \(flags.size) bytes; expected uint32 (6), 8 bytes")
    }
    let flagWord = u32(flags.dataStart)
    let classCode = UInt8(flagWord & 0xFF)

    let dimsTag = try tag(at: flags.end, what: "dimensions")
    guard dimsTag.type == 5, dimsTag.size >= 8, dimsTag.size % 4 == 0 else {
      throw bad("dimensions have type \(dimsTag.type) and \(dimsTag.size) bytes; expected at least two int32")
    }
    var dims: [Int] = []
    for i in 0..<(dimsTag.size / 4) {
      let d = Int(Int32(bitPattern: u32(dimsTag.dataStart + 4 * i)))
      guard d >= 0 else { throw bad("negative dimension \(d)") }
      dims.append(d)
    }
    let nameTag = try tag(at: dimsTag.end, what: "array name")
    guard nameTag.type == 1 || nameTag.type == 16 else { throw bad("array name has type \(nameTag.type); expected int8 (1)") }
    let name = String(decoding: bytes[nameTag.dataStart..<(nameTag.dataStart + nameTag.size)], as: UTF8.self)

    if let names, !names.contains(name) { return nil }
    guard let className = MATv5.classNames[classCode] else { return nil }
    guard flagWord & 0x800 == 0 else { throw bad("variable '\(name)' is complex; only real arrays are supported") }
    let (count, overflow) = dims.reduce((1, false)) { acc, d in
      let (p, o) = acc.0.multipliedReportingOverflow(by: d)
      return (p, acc.1 || o)
    }
    guard !overflow else { throw bad("variable '\(name)': dims \(dims) are too large") }

    let real = try tag(at: nameTag.end, what: "data of variable '\(name)'")
    guard real.dataStart + real.size <= range.upperBound else { throw bad("variable '\(name)': data run past the end of its matrix") }
    let data = bytes[real.dataStart..<(real.dataStart + real.size)]
    guard let width = Self.elementSize[real.type] else {
      throw bad("variable '\(name)': data type \(real.type) is not numeric")
    }
    guard real.size == count * width else {
      throw bad("variable '\(name)': dims \(dims) need \(count) elements, the data holds \(real.size) bytes of \(width)-byte elements")
    }
    var array = MATArray(name: name, dims: dims, className: className)
    if className == "uint8", real.type == 2 {
      array.bytes = Array(data)
    } else {
      array.doubles = (0..<count).map { convert(type: real.type, at: real.dataStart + $0 * width) }
    }
    return array
  }

  static let elementSize: [UInt32: Int] = [1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8]

  func unsigned(at: Int, width: Int) -> UInt64 {
    var value: UInt64 = 0
    for i in 0..<width {
      let byte = UInt64(bytes[swap ? at + width - 1 - i : at + i])
      value |= byte << (8 * UInt64(i))
    }
    return value
  }

  func convert(type: UInt32, at: Int) -> Double {
    switch type {
    case 1: return Double(Int8(bitPattern: bytes[at]))
    case 2: return Double(bytes[at])
    case 3: return Double(Int16(truncatingIfNeeded: unsigned(at: at, width: 2)))
    case 4: return Double(unsigned(at: at, width: 2))
    case 5: return Double(Int32(truncatingIfNeeded: unsigned(at: at, width: 4)))
    case 6: return Double(unsigned(at: at, width: 4))
    case 7: return Double(Float(bitPattern: UInt32(unsigned(at: at, width: 4))))
    case 9: return Double(bitPattern: unsigned(at: at, width: 8))
    case 12: return Double(Int64(bitPattern: unsigned(at: at, width: 8)))
    default: return Double(unsigned(at: at, width: 8))
    }
  }
}
