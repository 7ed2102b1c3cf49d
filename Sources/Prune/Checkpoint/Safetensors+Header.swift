import Foundation

// Validation of a safetensors header: every entry's dtype, shape and byte range.
extension Safetensors {
  /// One validated header entry, before its bytes are converted.
  struct Entry {
    var name: String
    var dtype: DType
    var shape: [Int]
    var begin: Int
    var end: Int
  }

  enum DType: String {
    // I64 is what PyTorch saves BatchNorm's num_batches_tracked as.
    case f32 = "F32"
    case f64 = "F64"
    case f16 = "F16"
    case bf16 = "BF16"
    case i64 = "I64"

    var size: Int {
      switch self {
      case .f32: return 4
      case .f64, .i64: return 8
      case .f16, .bf16: return 2
      }
    }
  }

  static func parseMetadata(_ value: HeaderJSON, bad: (String) -> UserError) throws -> [String: String] {
    guard case .object(let members) = value else {
      throw bad("__metadata__ is a JSON \(value.kind), expected an object of strings")
    }
    var metadata: [String: String] = [:]
    for (key, value) in members {
      guard case .string(let text) = value else {
        throw bad("__metadata__ value for '\(key)' is a JSON \(value.kind), expected a string")
      }
      metadata[key] = text
    }
    return metadata
  }

  static func parseEntry(
    name: String, _ value: HeaderJSON, dataCount: Int, bad: (String) -> UserError
  ) throws -> Entry {
    guard case .object(let members) = value else {
      throw bad("entry for tensor '\(name)' is a JSON \(value.kind), expected an object")
    }
    let fields = Dictionary(members, uniquingKeysWith: { first, _ in first })

    guard let dtypeValue = fields["dtype"] else { throw bad("tensor '\(name)' has no dtype") }
    guard case .string(let dtypeName) = dtypeValue else {
      throw bad("tensor '\(name)' dtype is a JSON \(dtypeValue.kind), expected a string")
    }
    guard let dtype = DType(rawValue: dtypeName) else {
      throw bad("tensor '\(name)' has dtype \(dtypeName); only F32 (and F64, F16, BF16, I64) are supported")
    }

    guard let shapeValue = fields["shape"] else { throw bad("tensor '\(name)' has no shape") }
    guard let shape = nonNegativeInts(shapeValue) else {
      throw bad("tensor '\(name)' shape \(shapeValue.brief) is not a list of non-negative integers")
    }

    guard let offsetsValue = fields["data_offsets"] else {
      throw bad("tensor '\(name)' has no data_offsets")
    }
    guard let offsets = nonNegativeInts(offsetsValue), offsets.count == 2 else {
      throw bad(
        "tensor '\(name)' data_offsets \(offsetsValue.brief) is not two non-negative integers")
    }
    let (begin, end) = (offsets[0], offsets[1])
    guard begin <= end else {
      throw bad("tensor '\(name)' data_offsets [\(begin), \(end)] has begin after end")
    }
    guard end <= dataCount else {
      throw bad(
        "tensor '\(name)' data_offsets end \(end) is beyond the \(dataCount)-byte data buffer")
    }

    var needed = dtype.size
    for dim in shape {
      let (product, overflow) = needed.multipliedReportingOverflow(by: dim)
      guard !overflow else { throw bad("tensor '\(name)' shape \(shape) is too large") }
      needed = product
    }
    guard end - begin == needed else {
      throw bad(
        "tensor '\(name)' has \(end - begin) bytes but shape \(shape) of \(dtype.rawValue) "
          + "needs \(needed)")
    }
    return Entry(name: name, dtype: dtype, shape: shape, begin: begin, end: end)
  }

  static func nonNegativeInts(_ value: HeaderJSON) -> [Int]? {
    guard case .array(let items) = value else { return nil }
    var ints: [Int] = []
    for item in items {
      guard case .integer(let int) = item, int >= 0 else { return nil }
      ints.append(int)
    }
    return ints
  }

  /// Reads little-endian values of `entry.dtype` as Float, rejecting NaN, Inf and F64 overflow.
  static func convert(
    _ bytes: UnsafeRawBufferPointer, entry: Entry, bad: (String) -> UserError
  ) throws -> [Float] {
    let count = bytes.count / entry.dtype.size
    var values = [Float](repeating: 0, count: count)
    for index in 0..<count {
      let offset = index * entry.dtype.size
      let value: Float
      switch entry.dtype {
      case .f32:
        let bits = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
        value = Float(bitPattern: bits)
      case .f64:
        let bits = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
        let double = Double(bitPattern: bits)
        value = Float(double)
        if double.isFinite && !value.isFinite {
          throw bad("tensor '\(entry.name)' value \(double) at index \(index) does not fit in F32")
        }
      case .f16:
        let bits = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
        value = floatFromHalf(bits)
      case .bf16:
        let bits = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
        value = Float(bitPattern: UInt32(bits) << 16)
      case .i64:
        value = Float(Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: Int64.self)))
      }
      guard value.isFinite else {
        throw bad("tensor '\(entry.name)' contains \(value.isNaN ? "NaN" : "Inf") at index \(index)")
      }
      values[index] = value
    }
    return values
  }

  /// IEEE binary16 to Float; done by hand because `Float16` is missing on some platforms.
  static func floatFromHalf(_ half: UInt16) -> Float {
    let negative = half & 0x8000 != 0
    let exponent = UInt32((half >> 10) & 0x1F)
    let mantissa = UInt32(half & 0x3FF)
    if exponent == 0 {
      let magnitude = Float(mantissa) * 0x1p-24
      return negative ? -magnitude : magnitude
    }
    let sign: UInt32 = negative ? 0x8000_0000 : 0
    if exponent == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13)) }
    return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
  }

  /// Byte-wise order, so the encoding does not depend on Unicode collation.
  static func utf8Less(_ a: String, _ b: String) -> Bool {
    a.utf8.lexicographicallyPrecedes(b.utf8)
  }

  static func appendJSONString(_ text: String, to out: inout [UInt8]) {
    out.append(UInt8(ascii: "\""))
    for byte in text.utf8 {
      switch byte {
      case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
      case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
      case 0x0A: out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
      case 0x0D: out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
      case 0x09: out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
      case 0..<0x20: out += Array(String(format: "\\u%04x", Int(byte)).utf8)
      default: out.append(byte)
      }
    }
    out.append(UInt8(ascii: "\""))
  }
}
