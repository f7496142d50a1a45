import XCTest
final class PLifelineWireTests: XCTestCase { func testX() {} }
