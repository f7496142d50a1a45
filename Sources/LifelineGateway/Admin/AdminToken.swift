import Crypto
import Foundation
import LifelineStore
import Logging

/// The operator's bearer token for `/admin/v1/…`: from config or `LIFELINE_ADMIN_TOKEN`, or made at
/// first start, printed once, and kept only as a SHA-256 hash under the data directory.
public struct AdminToken: Sendable {
    private let digest: [UInt8]

    public init(secret: String) { digest = Array(SHA256.hash(data: Data(secret.utf8))) }
    init(digest: [UInt8]) { self.digest = digest }

    /// Constant-time check of a presented token.
    public func matches(_ presented: String) -> Bool {
        let candidate = Array(SHA256.hash(data: Data(presented.utf8)))
        var difference: UInt8 = 0
        for (a, b) in zip(candidate, digest) { difference |= a ^ b }
        return difference == 0 && candidate.count == digest.count
    }

    /// The configured token, else the stored hash, else a new token announced on standard output.
    public static func resolve(configured: String?, dataDirectory: String, logger: Logger) throws -> AdminToken {
        if let configured, !configured.isEmpty { return AdminToken(secret: configured) }
        if let fromEnvironment = ProcessInfo.processInfo.environment["LIFELINE_ADMIN_TOKEN"], !fromEnvironment.isEmpty {
            SecretRedactor.shared.register([fromEnvironment])
            return AdminToken(secret: fromEnvironment)
        }
        let file = URL(fileURLWithPath: dataDirectory).appendingPathComponent("admin-token.sha256")
        if let stored = try? String(contentsOf: file, encoding: .utf8), let digest = hexBytes(stored.trimmingCharacters(in: .whitespacesAndNewlines)),
           digest.count == 32
        {
            return AdminToken(digest: digest)
        }
        var random = SystemRandomNumberGenerator()
        let secret = "ll-admin-" + (0..<32).map { _ in String(UInt8.random(in: 0...15, using: &random), radix: 16) }.joined()
        let token = AdminToken(secret: secret)
        try PrivateFiles.makeDirectory(dataDirectory)
        try PrivateFiles.createFile(file.path)
        PrivateFiles.restrict(file.path)
        let handle = try FileHandle(forWritingTo: file)
        try handle.truncate(atOffset: 0)
        try handle.write(contentsOf: Data(token.digest.map { String(format: "%02x", $0) }.joined().utf8))
        try handle.close()
        // Written straight to the descriptor: print() is buffered when stdout is a file.
        FileHandle.standardOutput.write(Data("""
        Lifeline admin token (shown once; only its hash is kept in \(file.path)):
          \(secret)
        Use it as: export LIFELINE_ADMIN_TOKEN=\(secret)

        """.utf8))
        logger.notice("a new admin token was generated and printed once")
        return token
    }

    static func hexBytes(_ text: String) -> [UInt8]? {
        guard text.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            guard let byte = UInt8(text[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        return bytes
    }
}
