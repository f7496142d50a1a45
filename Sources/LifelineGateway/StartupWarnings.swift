import LifelineStore
import Logging

/// What an operator should know about a configuration's exposure, said once at start.
enum StartupWarnings {
    static func log(config: LifelineConfig, authMode: AuthConfig.Mode, logger: Logger) {
        if authMode == .optional {
            logger.warning("""
            auth is optional: a request without a Lifeline key runs as the anonymous caller, so per-key limits and budgets are \
            advisory (a caller escapes its key's limits by leaving the key out); set auth.mode: required to enforce them
            """, metadata: ["anonymous_tier": .string(config.auth.anonymousTier.description)])
        }
        let hosts = HostAllowlist(config)
        logger.info("requests are answered for these hosts", metadata: ["allowed_hosts": .string(hosts.description)])
        if hosts.entries == nil {
            logger.warning("server.allowed_hosts is \"*\": any Host is answered, so a web page using DNS rebinding can reach this server")
        }
        if !config.auth.trustedProxies.isEmpty {
            logger.info("client addresses are read from X-Forwarded-For behind trusted proxies",
                        metadata: ["trusted_proxies": .string(config.auth.trustedProxies.map(\.description).joined(separator: ", "))])
        }
        for (path, mode) in PrivateFiles.tooOpen(in: config.server.dataDirectory) {
            logger.warning("a data file is readable by other users; it holds credentials (run chmod go-rwx on it)", metadata: [
                "path": .string(path), "mode": .string(String(mode, radix: 8)),
                "expected": .string(String(path == config.server.dataDirectory ? PrivateFiles.directoryMode : PrivateFiles.fileMode, radix: 8)),
            ])
        }
    }
}
