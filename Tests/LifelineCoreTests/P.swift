import XCTest
final class PLifelineCoreTests: XCTestCase { func testX() {} }
