import Foundation
import GPU
import XCTest

@testable import Prune

/// Evaluations run a filter-pruned model as its compact form: the same accuracies as the masked
/// model, fewer parameters computed, and the masked path on request or where nothing can go.
final class CompactEvaluationTests: XCTestCase {
  func filterPruned(seed: UInt64) throws -> Model {
    let model = try responsiveSmallCNN(backend: CPUBackend(), seed: seed)
    try FilterPruner.prune(model: model, criterion: .magnitude, locality: .local, sparsity: 0.5, seed: 1)
    return model
  }

  func testTheCompactModelComputesTheMaskedModelsFunction() throws {
    let masked = try filterPruned(seed: 3)
    let logits = try evalLogits(masked, seed: 4)
    let run = try EvaluationModel(masked, mode: .auto)
    XCTAssertEqual(run.path, "compact")
    XCTAssertLessThan(run.parametersRun, run.parametersStored)
    XCTAssertEqual(run.sparsity, try masked.sparsity(), "the stored model's sparsity is reported")
    assertClose(try evalLogits(run.model, seed: 4), logits, atol: 1e-5, rtol: 1e-5, "compact logits")
    XCTAssertEqual(try EvaluationModel(masked, mode: .off).path, "masked")
  }

  func testNothingToRemoveRunsTheMaskedModel() throws {
    let unstructured = try responsiveSmallCNN(backend: CPUBackend(), seed: 5)
    try Pruner.prune(model: unstructured, criterion: .magnitude, locality: .global, sparsity: 0.9, seed: 1)
    XCTAssertEqual(try EvaluationModel(unstructured, mode: .auto).path, "masked")
    XCTAssertEqual(try EvaluationModel(try responsiveSmallCNN(backend: CPUBackend(), seed: 5), mode: .auto).path, "masked")
  }

  func testAttackGivesTheSameAccuraciesOnBothPaths() throws {
    let data = try FashionMNISTFixture.directory()
    let dir = try temporaryDirectory(self)
    let path = dir + "/filters.safetensors"
    try Checkpoint.save(try filterPruned(seed: 6), metadata: ["dataset": "fashion-mnist"], to: path)
    func attack(_ mode: CompactMode) throws -> AttackJob.Result {
      var job = AttackJob(
        input: path, dataset: nil, dataDirectory: data, points: 24, plan: AttackPlan(kind: .pgd, norm: .linf, eps: 0.1), batchSize: 12, seed: 2)
      job.plan.steps = 5
      job.compact = mode
      return try job.run(backend: CPUBackend(), progress: SilentProgress())
    }
    let (compact, masked) = (try attack(.auto), try attack(.off))
    XCTAssertEqual([compact.path, masked.path], ["compact", "masked"])
    XCTAssertEqual(compact.sparsity, masked.sparsity)
    XCTAssertEqual(compact.evaluation?.cleanAccuracy, masked.evaluation?.cleanAccuracy)
    XCTAssertEqual(compact.evaluation?.robustAccuracy, masked.evaluation?.robustAccuracy)
  }
}
