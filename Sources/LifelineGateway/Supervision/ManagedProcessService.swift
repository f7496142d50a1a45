import AsyncHTTPClient
import Foundation
import LifelineCore
import LifelineStore
import ServiceLifecycle
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs one managed upstream process for as long as Lifeline runs: launches it, waits for its
/// health endpoint, relaunches it with backoff when it dies or never turns healthy, and on
/// shutdown stops it (SIGTERM, then SIGKILL after the grace period).
///
/// The decisions are `ProcessSupervisor`'s; this only carries them out with Foundation's `Process`,
/// started so that the child dies with Lifeline even when Lifeline is SIGKILLed (`LaunchThread`,
/// `ParentDeathSignal`) and recorded in a pid file for the next start (`ProcessRecord`).
struct ManagedProcessService: Service {
    let process: ManagedProcess

    /// Ticks are short so exits and shutdown are acted on quickly.
    static let tick = Duration.milliseconds(50)

    func run() async throws {
        // The running child's `Process`, kept alive (with its termination handler) until it is replaced or stopped.
        var child: Process?
        var warnedUnguarded = false
        await withGracefulShutdownHandler {
            while !Task.isCancelled, !Task.isShuttingDownGracefully {
                switch process.action() {
                case .launch:
                    child = await launch(warnedUnguarded: &warnedUnguarded)
                case .checkHealth:
                    if await isHealthy() { process.healthy() } else {
                        try? await Task.sleep(for: .milliseconds(process.config.healthIntervalMilliseconds))
                    }
                case .killStalledStart:
                    process.killedStalledStart()
                    if let pid = process.pid { _ = kill(pid, SIGKILL) }
                case .wait(let until):
                    let wait = until.map { max(0.001, min(0.05, $0 - process.clock())) } ?? 0.05
                    try? await Task.sleep(for: .seconds(wait))
                }
            }
        } onGracefulShutdown: { [process] in
            process.stop()
        }
        process.stop()
        // Stopping must finish even when this task was cancelled, so it runs in a task of its own.
        await Task { [process] in
            await Self.terminate(process)
            if !process.isAlive { try? FileManager.default.removeItem(atPath: process.pidFile) }
        }.value
        _ = child
    }

    /// Starts the process from the launch thread with the parent-death signal set, and records it
    /// in its pid file; an exit is reported by its termination handler.
    private func launch(warnedUnguarded: inout Bool) async -> Process? {
        let config = process.config
        let child = Process()
        do {
            let directory = config.workingDirectory.map { URL(fileURLWithPath: $0, isDirectory: true) }
            let executable = try Self.executable(config.command, in: directory)
            let wrapped = ParentDeathSignal.wrap(executable, process.resolvedArguments)
            if !wrapped.guarded, !warnedUnguarded {
                warnedUnguarded = true
                process.warnUnguarded()
            }
            child.executableURL = wrapped.executable
            child.arguments = wrapped.arguments
            child.environment = ProcessInfo.processInfo.environment.merging(process.resolvedEnvironment) { $1 }
            if let directory { child.currentDirectoryURL = directory }
            let log = try Self.openLog(process.logFile)
            child.standardInput = FileHandle.nullDevice
            child.standardOutput = log
            child.standardError = log
            child.terminationHandler = { [process] finished in
                let status = finished.terminationStatus
                let signalled = finished.terminationReason == .uncaughtSignal
                process.exited(status: signalled ? 128 + status : status,
                               description: signalled ? "killed by signal \(status)" : "exit status \(status)")
            }
            process.willLaunch()
            try await LaunchThread.shared.run { try child.run() }
            try? log.close()
            // Written before the launch is reported, so no stop can run before the record exists.
            let pid = child.processIdentifier
            if let line = await ProcessRecord.settledCommandLine(of: pid, wrapper: wrapped.guarded ? wrapped.executable.path : nil) {
                try? ProcessRecord.launched(pid: pid, command: line)?.write(to: process.pidFile)
            }
            process.launched(pid: child.processIdentifier)
            return child
        } catch {
            process.launchFailed("\(error)")
            return nil
        }
    }

    private func isHealthy() async -> Bool {
        var request = HTTPClientRequest(url: process.healthURL)
        request.method = .GET
        guard let response = try? await HTTPClient.shared.execute(request, timeout: .milliseconds(Int64(process.config.healthTimeoutMilliseconds)))
        else { return false }
        _ = try? await response.body.collect(upTo: 4 * 1024 * 1024)
        return (200..<300).contains(response.status.code)
    }

    /// SIGTERM, wait out the grace period, then SIGKILL.
    static func terminate(_ process: ManagedProcess) async {
        guard let pid = process.pid, process.isAlive else { return }
        _ = kill(pid, SIGTERM)
        let clock = ContinuousClock()
        let grace = clock.now + .seconds(process.config.stopGraceSeconds)
        while process.isAlive, clock.now < grace { try? await Task.sleep(for: tick) }
        guard process.isAlive else { return }
        _ = kill(pid, SIGKILL)
        let reaped = clock.now + .seconds(5)
        while process.isAlive, clock.now < reaped { try? await Task.sleep(for: tick) }
    }

    /// A command with a slash is a path (relative to the working directory); else it is looked up in PATH.
    static func executable(_ command: String, in directory: URL?) throws -> URL {
        let manager = FileManager.default
        if command.contains("/") {
            let url = command.hasPrefix("/") ? URL(fileURLWithPath: command)
                : URL(fileURLWithPath: command, relativeTo: directory ?? URL(fileURLWithPath: manager.currentDirectoryPath, isDirectory: true))
            guard manager.isExecutableFile(atPath: url.path) else { throw LaunchError("\(url.path) is not an executable file") }
            return url.absoluteURL
        }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(directory), isDirectory: true).appendingPathComponent(command)
            if manager.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        throw LaunchError("'\(command)' was not found in PATH")
    }

    /// The log file, appended to (its directory created if need be).
    static func openLog(_ path: String) throws -> FileHandle {
        let url = URL(fileURLWithPath: path)
        // Private like the rest of the data directory: a server's output can quote its arguments and keys.
        try PrivateFiles.makeDirectory(url.deletingLastPathComponent().path)
        try PrivateFiles.createFile(path)
        let handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
        return handle
    }

    struct LaunchError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}
