import Foundation

/// The one small random generator of advprune: SplitMix64, seeded, shared by the CLI and tests.
///
/// Host-side randomness (initial weights, data order, test inputs) comes from here, so a `--seed`
/// fixes a whole run.
public struct SeededRNG: RandomNumberGenerator {
  private var state: UInt64

  public init(seed: UInt64) { state = seed }

  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// Uniform in [low, high).
  public mutating func uniform(_ low: Float, _ high: Float) -> Float {
    low + (high - low) * Float(next() >> 40) * (1.0 / 16_777_216.0)
  }

  /// `count` uniform values in [low, high).
  public mutating func uniformArray(_ count: Int, _ low: Float = -1, _ high: Float = 1) -> [Float] {
    (0..<count).map { _ in uniform(low, high) }
  }

  /// Standard normal by Box-Muller (one value per call; the pair's second half is dropped).
  public mutating func normal() -> Float {
    let u1 = max(Double(next() >> 11) * 0x1.0p-53, 1e-300)
    let u2 = Double(next() >> 11) * 0x1.0p-53
    return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
  }

  /// A generator for a named sub-stream, so adding one random draw does not shift all later ones.
  public static func derive(_ seed: UInt64, _ stream: UInt64) -> SeededRNG {
    var mixer = SeededRNG(seed: seed ^ (stream &* 0xD6E8_FEB8_6659_FD93))
    return SeededRNG(seed: mixer.next())
  }
}

/// Counter-based uniform random numbers: value `i` of stream `seed` depends only on (seed, i).
///
/// The OpenCL kernel `random_uniform` computes the same 32-bit arithmetic, so both backends
/// draw bit-identical attack starts without moving noise between host and device.
/// `u = (hash(i, seed) >> 8) * 2^-24`, value `= low + (high - low) * u`.
public enum CounterRandom {
  @inline(__always)
  static func mix(_ x0: UInt32) -> UInt32 {
    // murmur3's finaliser: every input bit affects every output bit.
    var x = x0
    x ^= x >> 16
    x &*= 0x85EB_CA6B
    x ^= x >> 13
    x &*= 0xC2B2_AE35
    x ^= x >> 16
    return x
  }

  @inline(__always)
  public static func unit(index: UInt32, seed: UInt64) -> Float {
    let lo = UInt32(truncatingIfNeeded: seed)
    let hi = UInt32(truncatingIfNeeded: seed >> 32)
    let h = mix(mix((index &* 0x9E37_79B9) ^ lo) ^ hi)
    return Float(h >> 8) * (1.0 / 16_777_216.0)
  }
}
