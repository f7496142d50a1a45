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

    func testConcurrentTrafficGoesFirstToTheLeastLoadedForItsWeight() {
        var random = SeededGenerator(seed: 6)
        // Two upstreams of equal weight, one with 9 attempts in flight and one with 7: the next
        // goes to the one with room, every time.
        let uneven = [RoutingCandidate(priority: 1, weight: 1, inFlight: 9), RoutingCandidate(priority: 1, weight: 1, inFlight: 7)]
        for _ in 0..<50 { XCTAssertEqual(DeploymentSelector.attemptOrder(uneven, using: &random), [1, 0]) }
        // Loaded in proportion to their weights (6 of 3 and 2 of 1): a tie, drawn by weight.
        let proportional = [RoutingCandidate(priority: 1, weight: 3, inFlight: 6), RoutingCandidate(priority: 1, weight: 1, inFlight: 2)]
        var firstChoices = [0, 0]
        for _ in 0..<4000 { firstChoices[DeploymentSelector.attemptOrder(proportional, using: &random)[0]] += 1 }
        XCTAssertEqual(Double(firstChoices[0]) / 4000, 0.75, accuracy: 0.03)
        // Filling the group one attempt at a time keeps the work in flight at the weights' ratio.
        var group = [RoutingCandidate(priority: 1, weight: 3), RoutingCandidate(priority: 1, weight: 1)]
        for _ in 0..<400 { group[DeploymentSelector.attemptOrder(group, using: &random)[0]].inFlight += 1 }
        XCTAssertEqual(group.map(\.inFlight), [300, 100])
    }
}
