import Foundation
import XCTest

@testable import Prune

#if canImport(FoundationXML)
  import FoundationXML
#endif

final class RobustnessCurveTests: XCTestCase {
  /// 10 points: 2 misclassified clean, 2 never broken, the rest broken at known sizes.
  let handMade = RobustnessCurve(
    label: "hand", distances: [0, 0.1, .infinity, 0.05, 0.3, 0, 0.1, 0.2, .infinity, 0.15], norm: "linf")

  func testAccuracyAtEps() {
    let c = handMade
    XCTAssertEqual(c.accuracy(at: 0), 0.8, accuracy: 1e-12)  // only the two clean mistakes are out
    XCTAssertEqual(c.accuracy(at: 0.04), 0.8, accuracy: 1e-12)
    XCTAssertEqual(c.accuracy(at: 0.05), 0.7, accuracy: 1e-12)  // a tie at ε is not robust
    XCTAssertEqual(c.accuracy(at: 0.1), 0.5, accuracy: 1e-12)  // both 0.1 go at once
    XCTAssertEqual(c.accuracy(at: 0.12), 0.5, accuracy: 1e-12)
    XCTAssertEqual(c.accuracy(at: 0.3), 0.2, accuracy: 1e-12)
    XCTAssertEqual(c.accuracy(at: 1e9), 0.2, accuracy: 1e-12)  // the failures stay robust forever
    XCTAssertEqual(c.accuracy(at: .infinity), 0, accuracy: 1e-12)
    XCTAssertEqual(RobustnessCurve(label: "empty", distances: [], norm: "l2").accuracy(at: 0.1), 0)
    XCTAssertEqual(RobustnessCurve(label: "empty", distances: [], norm: "l2").accuracies(at: [0, 1]), [0, 0])
  }

  func testAccuraciesMatchAccuracyAndNeverIncrease() {
    // Scrambled, with many ties, some landing exactly on grid points.
    let distances = (0..<500).map { i -> Double in
      if i % 17 == 0 { return 0 }
      if i % 23 == 0 { return .infinity }
      return Double((i * 37) % 31) / 100
    }
    let c = RobustnessCurve(label: "random", distances: distances, norm: "linf")
    let grid = RobustnessCurvePlot.epsGrid(curves: [c], maxEps: 0.3, count: 61)
    let accs = c.accuracies(at: grid)
    for (eps, acc) in zip(grid, accs) { XCTAssertEqual(acc, c.accuracy(at: eps), accuracy: 1e-12, "eps \(eps)") }
    for (a, b) in zip(accs, accs.dropFirst()) { XCTAssertLessThanOrEqual(b, a) }
    XCTAssertEqual(accs.last!, Double(distances.filter { $0 == .infinity }.count) / 500, accuracy: 1e-12)
  }

  func testMedianDistance() {
    XCTAssertEqual(RobustnessCurve(label: "a", distances: [0.3, 0.1, 0.2], norm: "linf").medianDistance, 0.2)
    XCTAssertEqual(RobustnessCurve(label: "a", distances: [0.4, 0.1, 0.2, 0], norm: "linf").medianDistance, 0.15, accuracy: 1e-12)
    XCTAssertEqual(RobustnessCurve(label: "a", distances: [.infinity, 0.1, .infinity], norm: "linf").medianDistance, .infinity)
    XCTAssertEqual(RobustnessCurve(label: "a", distances: [.infinity, 0.1], norm: "linf").medianDistance, .infinity)
  }

  func testEpsGrid() {
    let grid = RobustnessCurvePlot.epsGrid(curves: [handMade], maxEps: 0.5, count: 11)
    XCTAssertEqual(grid.count, 11)
    XCTAssertEqual(grid.first, 0)
    XCTAssertEqual(grid.last, 0.5)
    // Default: a round number a bit above the largest finite distance, 0.3.
    let auto = RobustnessCurvePlot.epsGrid(curves: [handMade], maxEps: nil)
    XCTAssertEqual(auto.count, 101)
    XCTAssertGreaterThan(auto.last!, 0.3)
    XCTAssertLessThanOrEqual(auto.last!, 0.4)
    // Nothing finite and positive: three times the evaluation ε.
    let none = RobustnessCurve(label: "x", distances: [0, .infinity], norm: "linf")
    XCTAssertEqual(RobustnessCurvePlot.epsGrid(curves: [none], evaluationEps: 0.1, maxEps: nil, count: 3).last!, 0.3, accuracy: 1e-12)
  }

  func testCSV() {
    let other = RobustnessCurve(label: "90 %, pruned", distances: [0.2, 0.2], norm: "linf")
    let grid = [0, 0.1, 0.2]
    let csv = RobustnessCurvePlot.csv(curves: [handMade, other], grid: grid)
    let rows = csv.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
    XCTAssertTrue(csv.hasSuffix("\n"))
    XCTAssertEqual(rows.count, grid.count + 1)
    XCTAssertEqual(rows[0], "eps,hand,\"90 %, pruned\"")
    XCTAssertEqual(rows[1], "0,0.800000,1.000000")
    XCTAssertEqual(rows[2], "0.1,0.500000,1.000000")
    XCTAssertEqual(rows[3], "0.2,0.300000,0.000000")
    XCTAssertEqual(RobustnessCurvePlot.csvField("say \"hi\""), "\"say \"\"hi\"\"\"")
  }

  func testSVGIsWellFormedAndComplete() throws {
    let curves = [
      handMade,
      RobustnessCurve(label: "a<b & \"c\"", distances: [0.02, 0.07, 0.2, .infinity], norm: "linf"),
      RobustnessCurve(label: "99 %", distances: [0, 0.01, 0.03], norm: "linf"),
    ]
    let markers = [CurveMarker(label: "hand", eps: 0.1, accuracy: 0.45), CurveMarker(label: "orphan", eps: 0.1, accuracy: 0.3)]
    let svg = RobustnessCurvePlot.svg(curves: curves, evaluationEps: 0.1, markers: markers, maxEps: nil, title: "Robustness <test>")

    let elements = try parseSVG(svg)
    XCTAssertEqual(elements.first?.name, "svg")
    XCTAssertEqual(elements.filter { $0.name == "path" && $0.classes == "curve" }.count, curves.count)
    XCTAssertEqual(elements.filter { $0.name == "path" && $0.classes == "marker" }.count, markers.count)
    XCTAssertEqual(elements.filter { $0.name == "g" && $0.classes == "legend-item" }.count, 4)  // 3 curves + orphan
    let texts = elements.filter { $0.name == "text" }.map(\.text)
    for label in curves.map(\.label) + ["orphan"] { XCTAssertTrue(texts.contains(label), "legend lacks \(label)") }
    XCTAssertTrue(texts.contains("ε = 0.1"))
    XCTAssertTrue(texts.contains("Robustness <test>"))
    XCTAssertTrue(texts.contains("perturbation size ε (L∞)"))
    XCTAssertTrue(texts.contains("robust accuracy (%)"))
    XCTAssertTrue(texts.contains("45.0 %"))
    let epsLine = elements.first { $0.name == "line" && $0.parentClasses == "eps-line" }
    XCTAssertNotNil(epsLine?.attributes["stroke-dasharray"])
    XCTAssertTrue(svg.contains("a&lt;b &amp; &quot;c&quot;"))
    XCTAssertFalse(svg.contains("a<b"))
  }

  func testSVGAxisNamesNorm() throws {
    let l2 = RobustnessCurve(label: "l2 model", distances: [0.5, 1.2, .infinity], norm: "l2")
    let svg = RobustnessCurvePlot.svg(curves: [l2], evaluationEps: 0.5, markers: [], maxEps: nil, title: "L2")
    XCTAssertTrue(try parseSVG(svg).contains { $0.text == "perturbation size ε (L2)" })
    let l1 = RobustnessCurve(label: "l1 model", distances: [3], norm: "l1")
    let svg1 = RobustnessCurvePlot.svg(curves: [l1], evaluationEps: nil, markers: [], maxEps: nil, title: "L1")
    XCTAssertTrue(try parseSVG(svg1).contains { $0.text == "perturbation size ε (L1)" })
    XCTAssertFalse(svg1.contains("eps-line"))
  }

  func testStepPathIsExact() {
    // Axis 0...0.4 over the plot width; the curve must step exactly at 0.05, 0.1, ... not on a grid.
    let path = RobustnessCurvePlot.stepPath(handMade, top: 0.4, x: { $0 * 1000 }, y: { $0 * 100 })
    XCTAssertEqual(path, "M0,80H50V70H100V50H150V40H200V30H300V20H400")
  }

  func testSVGIsDeterministic() {
    let curves = [handMade, RobustnessCurve(label: "b", distances: [0.01, 0.2, 0.33], norm: "linf")]
    let markers = [CurveMarker(label: "b", eps: 8.0 / 255, accuracy: 0.5)]
    let a = RobustnessCurvePlot.svg(curves: curves, evaluationEps: 8.0 / 255, markers: markers, maxEps: nil, title: "t")
    let b = RobustnessCurvePlot.svg(curves: curves, evaluationEps: 8.0 / 255, markers: markers, maxEps: nil, title: "t")
    XCTAssertEqual(a, b)
    XCTAssertTrue(a.contains("ε = 8/255"))
  }

  func testEmptyInputsStillGiveValidSVG() throws {
    let svg = RobustnessCurvePlot.svg(curves: [], evaluationEps: nil, markers: [], maxEps: nil, title: "")
    XCTAssertEqual(try parseSVG(svg).first?.name, "svg")
    let empty = RobustnessCurve(label: "none", distances: [], norm: "linf")
    let svg2 = RobustnessCurvePlot.svg(curves: [empty], evaluationEps: 0.1, markers: [], maxEps: nil, title: "x")
    XCTAssertEqual(try parseSVG(svg2).filter { $0.classes == "curve" }.count, 1)
  }

  // MARK: XML

  struct Element {
    var name: String
    var attributes: [String: String]
    var text: String
    var parentClasses: String?
    var classes: String? { attributes["class"] }
  }

  /// Every element in document order, parsed with a real XML parser so malformed output fails.
  func parseSVG(_ svg: String) throws -> [Element] {
    let doc = try XMLDocument(xmlString: svg, options: [])
    var out: [Element] = []
    func walk(_ node: XMLElement, parentClasses: String?) {
      var attributes: [String: String] = [:]
      for a in node.attributes ?? [] { attributes[a.name ?? ""] = a.stringValue ?? "" }
      // Own text only, so a <title> child does not leak into its parent's text.
      let text = (node.children ?? []).filter { $0.kind == .text }.map { $0.stringValue ?? "" }.joined()
      out.append(Element(name: node.localName ?? node.name ?? "", attributes: attributes, text: text, parentClasses: parentClasses))
      for child in node.children ?? [] {
        if let e = child as? XMLElement { walk(e, parentClasses: attributes["class"]) }
      }
    }
    guard let root = doc.rootElement() else {
      XCTFail("no root element")
      return []
    }
    walk(root, parentClasses: nil)
    return out
  }
}
