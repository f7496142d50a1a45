import XCTest
final class PLifelineGatewayTests: XCTestCase { func testX() {} }
