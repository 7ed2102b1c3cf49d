import Foundation
import Prune

/// Progress on stderr: a redrawn bar with rate and ETA on a terminal, plain lines otherwise
/// (one every few seconds, so logs stay readable).
final class TerminalProgress: ProgressSink {
  private let isTerminal = isatty(STDERR_FILENO) != 0
  private var phaseStart = Date()
  private var phase = ""
  private var lastPlain = Date.distantPast
  private var drawn = false

  func update(_ u: ProgressUpdate) {
    if u.phase != phase {
      phase = u.phase
      phaseStart = Date()
    }
    let elapsed = Date().timeIntervalSince(phaseStart)
    let eta = u.step > 0 ? elapsed / Double(u.step) * Double(u.total - u.step) : 0
    let metrics = u.metrics.map { "\($0.name) \($0.value)" }.joined(separator: "  ")
    let counts = "\(u.step)/\(u.total)"
    let rate = String(format: "%.0f img/s", u.imagesPerSecond)
    if isTerminal {
      let width = 24
      let filled = u.total > 0 ? width * u.step / u.total : 0
      let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
      FileHandle.standardError.write("\r\u{1B}[K\(u.phase) [\(bar)] \(counts)  \(metrics)  \(rate)  ETA \(clock(eta))".data(using: .utf8)!)
      drawn = true
    } else if Date().timeIntervalSince(lastPlain) >= 5 || u.step == u.total {
      lastPlain = Date()
      printErr("\(u.phase) \(counts)  \(metrics)  \(rate)  elapsed \(clock(elapsed))  eta \(clock(eta))")
    }
  }

  func finish(_ line: String) {
    if drawn {
      FileHandle.standardError.write("\r\u{1B}[K".data(using: .utf8)!)
      drawn = false
    }
    printErr(line)
  }

  private func clock(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
  }
}
