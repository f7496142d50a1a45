import LifelineCore
import XCTest

final class DeploymentSelectorTests: XCTestCase {
    func testLowerPriorityNumberIsAlwaysTriedFirst() {
        var random = SeededGenerator(seed: 1)
        let candidates = [RoutingCandidate(priority: 2, weight: 100), RoutingCandidate(priority: 1, weight: 1),
                          RoutingCandidate(priority: 3, weight: 1)]
        for _ in 0..<100 {
            XCTAssertEqual(DeploymentSelector.attemptOrder(candidates, using: &random), [1, 0, 2])
        }
    }

    func testUnavailableDeploymentsAreNeverChosen() {
        var random = SeededGenerator(seed: 2)
        let candidates = [RoutingCandidate(priority: 1, weight: 1, isAvailable: false), RoutingCandidate(priority: 1, weight: 1)]
        XCTAssertEqual(DeploymentSelector.attemptOrder(candidates, using: &random), [1])
    }

    func testTrafficWithinAPrioritySplitsByWeight() {
        var random = SeededGenerator(seed: 3)
        let candidates = [RoutingCandidate(priority: 1, weight: 3), RoutingCandidate(priority: 1, weight: 1)]
        var firstChoices = [0, 0]
        for _ in 0..<4000 { firstChoices[DeploymentSelector.attemptOrder(candidates, using: &random)[0]] += 1 }
        XCTAssertEqual(Double(firstChoices[0]) / 4000, 0.75, accuracy: 0.03)
    }

    func testEveryAvailableDeploymentAppearsOnceSoRetriesNeverRepeat() {
        var random = SeededGenerator(seed: 4)
        let candidates = (0..<6).map { RoutingCandidate(priority: $0 % 2, weight: Double($0 + 1)) }
        for _ in 0..<200 {
            XCTAssertEqual(DeploymentSelector.attemptOrder(candidates, using: &random).sorted(), [0, 1, 2, 3, 4, 5])
        }
    }

    func testZeroWeightDeploymentsStillServeAsLastResort() {
        var random = SeededGenerator(seed: 5)
        let candidates = [RoutingCandidate(priority: 1, weight: 0), RoutingCandidate(priority: 1, weight: 1)]
        for _ in 0..<50 {
            XCTAssertEqual(DeploymentSelector.attemptOrder(candidates, using: &random), [1, 0])
        }
    }
}
