import Foundation

/// Robust accuracy of one model as a function of the perturbation size, from per-point minimal
/// adversarial distances: acc(ε) = |{ i : dᵢ > ε }| / n.
///
/// A minimal-distance attack gives the whole curve at once, so one attack run replaces a sweep of
/// fixed-ε attacks; each point's distance is where it stops being robust.
public struct RobustnessCurve: Sendable {
  /// Name of the model, shown in the legend and used as the CSV column header.
  public var label: String
  /// Per point: 0 if misclassified clean, `.infinity` where the attack failed, otherwise the
  /// smallest perturbation (in `norm`) found to change the prediction. A NaN counts as never robust.
  public var distances: [Double]
  /// "linf", "l2" or "l1".
  public var norm: String

  public init(label: String, distances: [Double], norm: String = "linf") {
    self.label = label
    self.distances = distances
    self.norm = norm
  }

  /// Share of points still robust at `eps`: |{ i : dᵢ > eps }| / n; 0 when there are no points.
  ///
  /// Strictly greater, because a perturbation of size exactly dᵢ is inside the ε-ball and breaks
  /// point i.
  public func accuracy(at eps: Double) -> Double {
    guard !distances.isEmpty else { return 0 }
    return Double(distances.lazy.filter { $0 > eps }.count) / Double(distances.count)
  }

  /// Median of all distances (mean of the two middle ones for an even count); `.infinity` when at
  /// least half the points resisted the attack, NaN when there are no points.
  ///
  /// It is the ε at which robust accuracy falls to 50 %, a summary that needs no chosen ε.
  public var medianDistance: Double {
    let sorted = sortedDistances()
    guard !sorted.isEmpty else { return .nan }
    let mid = sorted.count / 2
    if sorted.count % 2 == 1 { return sorted[mid] }
    let (a, b) = (sorted[mid - 1], sorted[mid])
    // (finite + inf) / 2 is inf, which is what a median straddling the failures should be.
    return a == b ? a : (a + b) / 2
  }

  /// `accuracy(at:)` at every ε of `grid`, in one sort: O((n + g) log n) instead of O(n g).
  public func accuracies(at grid: [Double]) -> [Double] {
    let sorted = sortedDistances()
    return grid.map { Self.fractionAbove($0, in: sorted) }
  }

  /// Ascending distances with NaN as -inf, so a NaN is never "> eps", as in `accuracy(at:)`.
  func sortedDistances() -> [Double] {
    distances.map { $0.isNaN ? -.infinity : $0 }.sorted()
  }

  /// |{ d ∈ sorted : d > eps }| / n by binary search for the first element above eps.
  static func fractionAbove(_ eps: Double, in sorted: [Double]) -> Double {
    guard !sorted.isEmpty, !eps.isNaN else { return 0 }
    var (lo, hi) = (0, sorted.count)
    while lo < hi {
      let mid = (lo + hi) / 2
      if sorted[mid] <= eps { lo = mid + 1 } else { hi = mid }
    }
    return Double(sorted.count - lo) / Double(sorted.count)
  }
}

/// One robust accuracy measured at a single ε (for example AutoAttack's at the evaluation ε),
/// drawn as a point on top of the curve whose label matches `label`.
public struct CurveMarker: Sendable {
  public var label: String
  public var eps: Double
  /// A fraction in [0, 1].
  public var accuracy: Double

  public init(label: String, eps: Double, accuracy: Double) {
    self.label = label
    self.eps = eps
    self.accuracy = accuracy
  }
}

/// Renders robustness curves as a self-contained SVG chart or a CSV table.
///
/// The SVG needs no fonts, CSS or scripts from outside, and the same input gives the same bytes,
/// so reports can be diffed and checked in.
public enum RobustnessCurvePlot {
  // MARK: Grid and CSV

  /// `count` evenly spaced ε from 0 to the axis maximum: εₖ = max · k / (count - 1).
  ///
  /// Without `maxEps`, the maximum is a round number a bit above the largest finite positive
  /// distance (and above `evaluationEps`), so every curve reaches its floor inside the grid; if no
  /// distance is finite and positive it is 3 · `evaluationEps` (1 without one).
  public static func epsGrid(
    curves: [RobustnessCurve], evaluationEps: Double? = nil, maxEps: Double?, count: Int = 101
  ) -> [Double] {
    let top = axisMax(curves: curves, evaluationEps: evaluationEps, markers: [], maxEps: maxEps)
    guard count > 1 else { return count == 1 ? [0] : [] }
    // k * top / (count - 1), not k * step: the last value is exactly `top` and small ones stay round.
    return (0..<count).map { top * Double($0) / Double(count - 1) }
  }

  /// CSV with header `eps,<label>,...` and one row per ε of `grid`; accuracies are fractions with
  /// six decimals.
  public static func csv(curves: [RobustnessCurve], grid: [Double]) -> String {
    var out = (["eps"] + curves.map { csvField($0.label) }).joined(separator: ",") + "\n"
    let columns = curves.map { $0.accuracies(at: grid) }
    for (row, eps) in grid.enumerated() {
      var fields = [String(format: "%.10g", eps)]
      for column in columns { fields.append(String(format: "%.6f", column[row])) }
      out += fields.joined(separator: ",") + "\n"
    }
    return out
  }

  // MARK: SVG

  /// Okabe-Ito colours, ordered so that the first few are the most distinct on white and the pale
  /// yellow comes last; beyond eight curves the colours repeat with a dash pattern.
  static let palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
  static let dashPatterns = ["", "7 4", "2 3", "9 3 2 3"]
  /// Colour of a marker whose label matches no curve.
  static let unmatchedMarkerColour = "#555555"

  static let width = 720.0
  static let height = 460.0

  /// A line chart of robust accuracy (%) against ε, one exact step curve per model, with the
  /// evaluation ε as a dashed line and `markers` as filled diamonds labelled with their value.
  ///
  /// Without `maxEps` the ε axis ends at a round number a bit above the largest finite distance,
  /// the evaluation ε and every marker's ε; markers beyond an explicit `maxEps` are left out.
  public static func svg(
    curves: [RobustnessCurve], evaluationEps: Double?, markers: [CurveMarker], maxEps: Double?, title: String
  ) -> String {
    let top = axisMax(curves: curves, evaluationEps: evaluationEps, markers: markers, maxEps: maxEps)

    // The legend sits right of the plot, never over the curves; its width follows the labels.
    let markerOnly = markers.filter { m in !curves.contains { $0.label == m.label } }
    let legendLabels = curves.map(\.label) + markerOnly.map(\.label)
    let legendTextWidth = min(legendMaxTextWidth, legendLabels.map { textWidth($0, size: 12) }.max() ?? 0)
    let legendWidth = legendLabels.isEmpty ? 0 : max(90, 34 + legendTextWidth)
    let plot = Frame(
      left: 66, top: 60, right: width - 14 - (legendLabels.isEmpty ? 0 : legendWidth + 18), bottom: height - 58)
    let x = { (eps: Double) in plot.left + (plot.right - plot.left) * eps / top }
    let y = { (acc: Double) in plot.bottom - (plot.bottom - plot.top) * acc }

    var s = """
      <svg xmlns="http://www.w3.org/2000/svg" width="\(num(width))" height="\(num(height))" \
      viewBox="0 0 \(num(width)) \(num(height))" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" \
      font-size="12" fill="#222222">
      <rect width="100%" height="100%" fill="#ffffff"/>
      <defs><clipPath id="plot-area"><rect x="\(num(plot.left))" y="\(num(plot.top - 2))" \
      width="\(num(plot.right - plot.left + 2))" height="\(num(plot.bottom - plot.top + 4))"/></clipPath></defs>

      """

    // Grid first so that everything else is drawn over it.
    s += "<g class=\"grid\" stroke=\"#e6e6e6\" stroke-width=\"1\">\n"
    for pct in stride(from: 10, through: 90, by: 10) {
      s += line(plot.left, y(Double(pct) / 100), plot.right, y(Double(pct) / 100)) + "\n"
    }
    let xTicks = ticks(upTo: top, pixels: plot.right - plot.left)
    for t in xTicks.values where t > 0 && x(t) < plot.right - 0.5 {
      s += line(x(t), plot.top, x(t), plot.bottom) + "\n"
    }
    s += "</g>\n"

    s += "<g class=\"axes\" stroke=\"#777777\" stroke-width=\"1\" fill=\"none\">\n"
    s += "<rect x=\"\(num(plot.left))\" y=\"\(num(plot.top))\" width=\"\(num(plot.right - plot.left))\" "
    s += "height=\"\(num(plot.bottom - plot.top))\"/>\n"
    for t in xTicks.values {
      s += line(x(t), plot.bottom, x(t), plot.bottom + 5) + "\n"
    }
    for pct in stride(from: 0, through: 100, by: 20) {
      s += line(plot.left - 5, y(Double(pct) / 100), plot.left, y(Double(pct) / 100)) + "\n"
    }
    s += "</g>\n"

    s += "<g class=\"tick-labels\" font-size=\"11\" fill=\"#444444\">\n"
    for (t, text) in zip(xTicks.values, xTicks.labels) {
      s += "<text x=\"\(num(x(t)))\" y=\"\(num(plot.bottom + 18))\" text-anchor=\"middle\">\(text)</text>\n"
    }
    for pct in stride(from: 0, through: 100, by: 20) {
      s += "<text x=\"\(num(plot.left - 8))\" y=\"\(num(y(Double(pct) / 100) + 4))\" text-anchor=\"end\">\(pct)</text>\n"
    }
    s += "</g>\n"

    let axisNorm = normNames(curves)
    s += "<text class=\"x-label\" x=\"\(num((plot.left + plot.right) / 2))\" y=\"\(num(height - 16))\" "
    s += "text-anchor=\"middle\" font-size=\"13\">"
    s += xml("perturbation size ε" + (axisNorm.isEmpty ? "" : " (\(axisNorm))")) + "</text>\n"
    let yMid = (plot.top + plot.bottom) / 2
    s += "<text class=\"y-label\" x=\"20\" y=\"\(num(yMid))\" text-anchor=\"middle\" font-size=\"13\" "
    s += "transform=\"rotate(-90 20 \(num(yMid)))\">robust accuracy (%)</text>\n"

    // Under the curves, so that a curve crossing it stays visible.
    if let eps = evaluationEps, eps.isFinite, eps >= 0, eps <= top {
      let ex = x(eps)
      s += "<g class=\"eps-line\">\n"
      s += line(ex, plot.top, ex, plot.bottom, " stroke=\"#444444\" stroke-width=\"1.2\" stroke-dasharray=\"6 4\"") + "\n"
      // Above the plot area: curves start high on the left, so a label inside could cover one.
      let text = "ε = " + epsText(eps)
      let half = textWidth(text, size: 12) / 2
      let anchor = ex + half > width - 4 ? "end" : (ex - half < 4 ? "start" : "middle")
      s += "<text x=\"\(num(ex))\" y=\"\(num(plot.top - 7))\" text-anchor=\"\(anchor)\">\(xml(text))</text>\n"
      s += "</g>\n"
    }

    s += "<g class=\"curves\" clip-path=\"url(#plot-area)\" fill=\"none\" stroke-width=\"2\" stroke-linejoin=\"round\">\n"
    for (i, curve) in curves.enumerated() {
      let style = curveStyle(i)
      s += "<path class=\"curve\" stroke=\"\(style.colour)\""
      if !style.dash.isEmpty { s += " stroke-dasharray=\"\(style.dash)\"" }
      s += " d=\"\(stepPath(curve, top: top, x: x, y: y))\"><title>\(xml(curve.label))</title></path>\n"
    }
    s += "</g>\n"

    let shown = markers.filter { $0.eps.isFinite && $0.eps >= 0 && $0.eps <= top && $0.accuracy.isFinite }
    if !shown.isEmpty {
      s += "<g class=\"markers\">\n"
      for m in shown {
        let colour = markerColour(m, curves: curves)
        s += "<path class=\"marker\" d=\"\(diamond(x(m.eps), y(min(1, max(0, m.accuracy))), r: 6))\" "
        s += "fill=\"\(colour)\" stroke=\"#ffffff\" stroke-width=\"1.2\"><title>\(xml(m.label))</title></path>\n"
      }
      // A curve falls to the right of its marker, so the free space is above-right (or, near the
      // right edge, below-left). Markers of several models at one ε sit in a column; their labels
      // are spread so that none overlap.
      let texts = shown.map { String(format: "%.1f %%", $0.accuracy * 100) }
      let onRight = zip(shown, texts).map { x($0.eps) + 8 + textWidth($1, size: 11) < plot.right - 2 }
      let placed = spreadLabels(
        zip(shown, onRight).map { y(min(1, max(0, $0.accuracy))) + ($1 ? -5 : 15) },
        gap: 13, low: plot.top + 11, high: plot.bottom - 3)
      for (i, m) in shown.enumerated() {
        let (text, right, mx) = (texts[i], onRight[i], x(m.eps))
        s += "<text class=\"marker-label\" x=\"\(num(right ? mx + 7 : mx - 7))\" y=\"\(num(placed[i]))\" "
        s += "text-anchor=\"\(right ? "start" : "end")\" font-size=\"11\" font-weight=\"bold\" "
        s += "fill=\"\(darkened(markerColour(m, curves: curves)))\" stroke=\"#ffffff\" stroke-width=\"3\" "
        s += "stroke-linejoin=\"round\" paint-order=\"stroke\">\(xml(text))</text>\n"
      }
      s += "</g>\n"
    }

    if !legendLabels.isEmpty {
      let lx = plot.right + 18
      s += "<g class=\"legend\">\n"
      var ly = plot.top + 8
      for (i, curve) in curves.enumerated() {
        let style = curveStyle(i)
        s += "<g class=\"legend-item\"><title>\(xml(curve.label))</title>"
        let dash = style.dash.isEmpty ? "" : " stroke-dasharray=\"\(style.dash)\""
        s += line(lx, ly, lx + 24, ly, " stroke=\"\(style.colour)\" stroke-width=\"2.5\"" + dash)
        if markers.contains(where: { $0.label == curve.label }) {
          s += "<path d=\"\(diamond(lx + 12, ly, r: 5))\" fill=\"\(style.colour)\"/>"
        }
        s += "<text x=\"\(num(lx + 32))\" y=\"\(num(ly + 4))\">\(xml(truncated(curve.label)))</text></g>\n"
        ly += 20
      }
      for m in markerOnly {
        s += "<g class=\"legend-item\"><title>\(xml(m.label))</title>"
        s += "<path d=\"\(diamond(lx + 12, ly, r: 5))\" fill=\"\(unmatchedMarkerColour)\"/>"
        s += "<text x=\"\(num(lx + 32))\" y=\"\(num(ly + 4))\">\(xml(truncated(m.label)))</text></g>\n"
        ly += 20
      }
      s += "</g>\n"
    }

    // Shrunk rather than clipped when long: a title cut at the edge loses its end silently.
    let titleSize = min(16, (width - 20) / max(1, textWidth(title, size: 1)))
    s += "<text class=\"title\" x=\"\(num(width / 2))\" y=\"28\" text-anchor=\"middle\" font-size=\"\(num(titleSize))\" "
    s += "font-weight=\"bold\">\(xml(title))</text>\n"
    s += "</svg>\n"
    return s
  }

  // MARK: Helpers

  struct Frame {
    var left, top, right, bottom: Double
  }

  static let legendMaxTextWidth = 190.0

  /// The ε axis maximum: `maxEps` if usable, else a round number ≥ 1.05 × the largest finite
  /// positive distance, evaluation ε and marker ε.
  static func axisMax(
    curves: [RobustnessCurve], evaluationEps: Double?, markers: [CurveMarker], maxEps: Double?
  ) -> Double {
    if let maxEps, maxEps.isFinite, maxEps > 0 { return maxEps }
    let largest = curves.flatMap(\.distances).filter { $0.isFinite && $0 > 0 }.max()
    let eval = evaluationEps.flatMap { $0.isFinite && $0 > 0 ? $0 : nil }
    guard let largest else { return eval.map { $0 * 3 } ?? 1 }
    let others = ([eval] + markers.map { Optional($0.eps) }).compactMap { $0 }.filter { $0.isFinite && $0 > 0 }
    return niceCeil(max(largest, others.max() ?? 0) * 1.05)
  }

  /// The smallest of 1, 1.2, 1.5, 2, 2.5, 3, 3.5, 4, 5, 6, 7, 8 × 10ᵏ that is ≥ v: round enough
  /// for tick labels yet close above v, so curves are not squeezed to the left.
  static func niceCeil(_ v: Double) -> Double {
    guard v.isFinite, v > 0 else { return 1 }
    let e = floor(log10(v))
    for m in [1, 1.2, 1.5, 2, 2.5, 3, 3.5, 4, 5, 6, 7, 8, 10] {
      let c = scaled(m, e)
      if c >= v * (1 - 1e-12) { return c }
    }
    return scaled(10, e)
  }

  /// m · 10ᵉ, dividing for negative e because 10⁻ᵏ is inexact while 10ᵏ is exact.
  static func scaled(_ m: Double, _ e: Double) -> Double {
    e >= 0 ? m * pow(10, e) : m / pow(10, -e)
  }

  /// Ticks at multiples of a 1-2-2.5-5 step, as many as fit with their labels not touching.
  static func ticks(upTo top: Double, pixels: Double) -> (values: [Double], labels: [String]) {
    var best: (values: [Double], labels: [String]) = ([0], ["0"])
    for target in stride(from: 10, through: 2, by: -1) {
      let raw = top / Double(target)
      let e = floor(log10(raw))
      guard let m = [1, 2, 2.5, 5, 10].first(where: { scaled($0, e) >= raw * (1 - 1e-12) }) else { continue }
      let step = scaled(m, e)
      let decimals = max(0, Int(-e) + (m == 2.5 ? 1 : 0) - (m == 10 ? 1 : 0))
      let n = Int((top / step + 1e-9).rounded(.down))
      let values = (0...n).map { Double($0) * step }
      let labels = values.map { String(format: "%.\(decimals)f", $0) }
      best = (values, labels)
      let widest = labels.map { textWidth($0, size: 11) }.max() ?? 0
      if n == 0 || pixels * step / top >= widest + 14 { return best }
    }
    return best
  }

  /// exact step path of acc(ε) on [0, top]: it drops at each distinct distance in (0, top].
  static func stepPath(
    _ curve: RobustnessCurve, top: Double, x: (Double) -> Double, y: (Double) -> Double
  ) -> String {
    let sorted = curve.sortedDistances()
    let n = Double(max(1, sorted.count))
    var above = sorted.filter { $0 > 0 }.count
    var d = "M\(num(x(0))),\(num(y(sorted.isEmpty ? 0 : Double(above) / n)))"
    var i = sorted.firstIndex { $0 > 0 } ?? sorted.count
    while i < sorted.count, sorted[i] <= top {
      let v = sorted[i]
      while i < sorted.count, sorted[i] == v {
        i += 1
        above -= 1
      }
      d += "H\(num(x(v)))V\(num(y(Double(above) / n)))"
    }
    return d + "H\(num(x(top)))"
  }

  static func curveStyle(_ i: Int) -> (colour: String, dash: String) {
    (palette[i % palette.count], dashPatterns[(i / palette.count) % dashPatterns.count])
  }

  static func markerColour(_ m: CurveMarker, curves: [RobustnessCurve]) -> String {
    curves.firstIndex { $0.label == m.label }.map { curveStyle($0).colour } ?? unmatchedMarkerColour
  }

  static func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, _ attributes: String = "") -> String {
    "<line x1=\"\(num(x1))\" y1=\"\(num(y1))\" x2=\"\(num(x2))\" y2=\"\(num(y2))\"\(attributes)/>"
  }

  /// The colour at 65 % brightness: orange, sky blue and yellow text is too faint on white, and
  /// a darker shade still ties the value to its curve.
  static func darkened(_ hex: String) -> String {
    guard hex.count == 7, let v = UInt32(hex.dropFirst(), radix: 16) else { return hex }
    let channels = [(v >> 16) & 0xFF, (v >> 8) & 0xFF, v & 0xFF].map { UInt32((Double($0) * 0.65).rounded()) }
    return String(format: "#%02X%02X%02X", channels[0], channels[1], channels[2])
  }

  static func diamond(_ cx: Double, _ cy: Double, r: Double) -> String {
    "M\(num(cx)),\(num(cy - r))L\(num(cx + r)),\(num(cy))L\(num(cx)),\(num(cy + r))L\(num(cx - r)),\(num(cy))Z"
  }

  /// Moves label baselines apart by at least `gap`, keeping their order and staying in [low, high].
  static func spreadLabels(_ ys: [Double], gap: Double, low: Double, high: Double) -> [Double] {
    let order = ys.indices.sorted { ys[$0] != ys[$1] ? ys[$0] < ys[$1] : $0 < $1 }
    var placed = ys
    var previous = -Double.infinity
    for i in order {
      placed[i] = max(ys[i], previous + gap, low)
      previous = placed[i]
    }
    // Push back up from the bottom if the column ran past it.
    var next = Double.infinity
    for i in order.reversed() {
      placed[i] = min(placed[i], next - gap, high)
      next = placed[i]
    }
    return placed
  }

  /// "L∞", "L2", "L1" for the curves' norms, joined if they differ (which makes the ε axis mean
  /// different things, so the label must not hide it).
  static func normNames(_ curves: [RobustnessCurve]) -> String {
    var names: [String] = []
    for c in curves {
      let name: String
      switch c.norm.lowercased() {
      case "linf", "l_inf", "inf", "l∞": name = "L∞"
      case "l2", "l_2": name = "L2"
      case "l1", "l_1": name = "L1"
      default: name = c.norm
      }
      if !names.contains(name) { names.append(name) }
    }
    return names.joined(separator: " / ")
  }

  /// Short decimal for ε; k/255 (the usual image ε) is written as such, with its decimal value.
  static func epsText(_ eps: Double) -> String {
    let plain = String(format: "%.4g", eps)
    let k = (eps * 255).rounded()
    if k >= 1, abs(eps * 255 - k) < 1e-6, Double(plain) != eps {
      return "\(Int(k))/255 (\(String(format: "%.3g", eps)))"
    }
    return plain
  }

  /// Coordinates with at most two decimals: sub-pixel enough, and the same bytes on every run.
  static func num(_ v: Double) -> String {
    var s = String(format: "%.2f", v)
    while s.hasSuffix("0") { s.removeLast() }
    if s.hasSuffix(".") { s.removeLast() }
    return s == "-0" ? "0" : s
  }

  /// Rough width of sans-serif text; enough to keep labels apart and inside the canvas.
  static func textWidth(_ text: String, size: Double) -> Double {
    Double(text.count) * size * 0.6
  }

  static func truncated(_ label: String) -> String {
    let maxChars = Int(legendMaxTextWidth / (12 * 0.6))
    return label.count <= maxChars ? label : String(label.prefix(maxChars - 1)) + "…"
  }

  /// Escapes markup and drops characters XML 1.0 forbids, so any label keeps the file well-formed.
  static func xml(_ text: String) -> String {
    var out = ""
    for u in text.unicodeScalars {
      switch u {
      case "&": out += "&amp;"
      case "<": out += "&lt;"
      case ">": out += "&gt;"
      case "\"": out += "&quot;"
      case "'": out += "&apos;"
      case "\t", "\n", "\r": out += " "
      default:
        if u.value < 0x20 || u.value == 0xFFFE || u.value == 0xFFFF { continue }
        out.unicodeScalars.append(u)
      }
    }
    return out
  }

  /// RFC 4180 quoting: only fields with a comma, quote or line break are quoted.
  static func csvField(_ text: String) -> String {
    guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" }) else { return text }
    return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
  }
}
