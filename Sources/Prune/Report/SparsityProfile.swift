import Foundation

/// Per-layer sparsity of several models of one architecture: one line per method over the layers
/// in model order, so that where each method takes its weights from is visible at a glance.
enum SparsityProfile {
  static func svg(title: String, layers: [String], series: [(label: String, sparsity: [Double])]) -> String {
    typealias C = RobustnessCurvePlot
    let width = 760.0
    let height = 420.0
    let legendWidth = min(220, 40 + (series.map { C.textWidth($0.label, size: 12) }.max() ?? 0))
    let left = 60.0
    let top = 50.0
    let right = width - legendWidth - 20
    let bottom = height - 110
    let step = layers.count > 1 ? (right - left) / Double(layers.count - 1) : 0
    let x = { (i: Int) in layers.count > 1 ? left + step * Double(i) : (left + right) / 2 }
    let y = { (s: Double) in bottom - (bottom - top) * s }
    var s = """
      <svg xmlns="http://www.w3.org/2000/svg" width="\(C.num(width))" height="\(C.num(height))" viewBox="0 0 \(C.num(width)) \(C.num(height))" \
      font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12" fill="#222222">
      <rect width="100%" height="100%" fill="#ffffff"/>
      <text x="\(C.num(width / 2))" y="24" text-anchor="middle" font-size="15">\(C.xml(title))</text>

      """
    s += "<g stroke=\"#e6e6e6\">\n"
    for pct in stride(from: 0, through: 100, by: 20) { s += C.line(left, y(Double(pct) / 100), right, y(Double(pct) / 100)) + "\n" }
    s += "</g>\n<g font-size=\"11\" fill=\"#444444\">\n"
    for pct in stride(from: 0, through: 100, by: 20) {
      s += "<text x=\"\(C.num(left - 8))\" y=\"\(C.num(y(Double(pct) / 100) + 4))\" text-anchor=\"end\">\(pct)</text>\n"
    }
    for (i, name) in layers.enumerated() {
      let px = x(i)
      s += "<text x=\"\(C.num(px))\" y=\"\(C.num(bottom + 12))\" text-anchor=\"end\" transform=\"rotate(-45 \(C.num(px)) \(C.num(bottom + 12)))\">"
      s += C.xml(C.truncated(name)) + "</text>\n"
    }
    s += "</g>\n"
    let mid = (top + bottom) / 2
    s +=
      "<text x=\"18\" y=\"\(C.num(mid))\" text-anchor=\"middle\" font-size=\"13\" transform=\"rotate(-90 18 \(C.num(mid)))\">sparsity of the layer (%)</text>\n"
    for (k, series) in series.enumerated() {
      let style = C.curveStyle(k)
      let points = series.sparsity.enumerated().map { "\(C.num(x($0.offset))),\(C.num(y($0.element)))" }.joined(separator: " ")
      s += "<g class=\"series\" stroke=\"\(style.colour)\" fill=\"\(style.colour)\">"
      s += "<polyline fill=\"none\" stroke-width=\"2\" points=\"\(points)\"\(style.dash.isEmpty ? "" : " stroke-dasharray=\"\(style.dash)\"")/>"
      for (i, v) in series.sparsity.enumerated() { s += "<circle cx=\"\(C.num(x(i)))\" cy=\"\(C.num(y(v)))\" r=\"3\"/>" }
      s += "</g>\n"
      let ly = top + 8 + 20 * Double(k)
      s +=
        "<line x1=\"\(C.num(right + 16))\" y1=\"\(C.num(ly))\" x2=\"\(C.num(right + 40))\" y2=\"\(C.num(ly))\" stroke=\"\(style.colour)\" stroke-width=\"2\"/>"
      s += "<text x=\"\(C.num(right + 46))\" y=\"\(C.num(ly + 4))\">\(C.xml(C.truncated(series.label)))</text>\n"
    }
    return s + "</svg>\n"
  }
}
