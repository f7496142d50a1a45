import Foundation
@testable import LifelineGateway
import Synchronization
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The pid file of a managed process and the clean-up of one an earlier run left behind, with
/// real processes: a recorded process is stopped, anything that is not exactly it is left alone.
final class ProcessRecordTests: XCTestCase {
    var children: [Process] = []
    var directory: URL!

    override func setUpWithError() throws {
        #if !os(Linux)
        throw XCTSkip("pid files are checked against /proc")
        #endif
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("process-record-\(UUID().uuidString)")
    }

    override func tearDown() {
        for child in children where child.isRunning { kill(child.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: directory)
    }

    /// `/bin/sleep 30`, as a stale child stands in for a model server nobody stopped.
    func sleeper(_ seconds: String = "30") throws -> Process {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/sleep")
        child.arguments = [seconds]
        try child.run()
        children.append(child)
        return child
    }

    /// Polls (at most 5 s) until `/proc` shows the command line, as it does once the process has started.
    func waitForCommandLine(of pid: Int32) throws -> [String] {
        for _ in 0..<250 {
            if let line = ProcessRecord.commandLine(of: pid), line == ["/bin/sleep", "30"] { return line }
            usleep(20_000)
        }
        return try XCTUnwrap(ProcessRecord.commandLine(of: pid))
    }

    func testARecordedStaleProcessIsStoppedAndItsPidFileRemoved() async throws {
        let child = try sleeper()
        let command = try waitForCommandLine(of: child.processIdentifier)
        let path = directory.appendingPathComponent("processes/model.pid").path
        let record = try XCTUnwrap(ProcessRecord.launched(pid: child.processIdentifier, command: command))
        try record.write(to: path)
        XCTAssertEqual(ProcessRecord.load(from: path), record)
        XCTAssertTrue(record.isRunningAsRecorded)

        // SIGTERM first; SIGKILL when it is ignored (a child inherits an ignored SIGTERM from a server that handles it itself).
        let stopped = await ProcessRecord.stopStale(at: path, grace: 0.5)
        let outcome = try XCTUnwrap(stopped)
        XCTAssertTrue(["stopped stale process \(child.processIdentifier) with SIGTERM",
                       "killed stale process \(child.processIdentifier) with SIGKILL"].contains(outcome), outcome)
        XCTAssertFalse(record.isRunningAsRecorded)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
    }

    func testAProcessThatIsNotExactlyTheRecordedOneIsLeftAlone() async throws {
        let child = try sleeper()
        let command = try waitForCommandLine(of: child.processIdentifier)
        let path = directory.appendingPathComponent("processes/model.pid").path
        let real = try XCTUnwrap(ProcessRecord.launched(pid: child.processIdentifier, command: command))
        // The same pid started at another time (the pid was reused), or running another command.
        for impostor in [ProcessRecord(pid: real.pid, startTime: "1", command: command),
                         ProcessRecord(pid: real.pid, startTime: real.startTime, command: ["/usr/bin/python3", "-m", "http.server"])]
        {
            try impostor.write(to: path)
            let outcome = await ProcessRecord.stopStale(at: path, grace: 2)
            XCTAssertNil(outcome)
            XCTAssertTrue(child.isRunning, "\(impostor) is not the recorded process")
            XCTAssertFalse(FileManager.default.fileExists(atPath: path), "the pid file is removed either way")
        }
        let nothing = await ProcessRecord.stopStale(at: path, grace: 2)
        XCTAssertNil(nothing, "no pid file: nothing to do")
    }

    /// While the kernel swaps `setpriv` for the command, `/proc` shows an empty command line; that
    /// is a process between two programs, not a process that is gone, and it is waited out.
    func testTheCommandLineSettlesThroughTheWrapperAndTheEmptyMomentOfAnExec() async {
        let readings: [ProcessRecord.CommandLineReading] = [
            .line(["/usr/bin/setpriv", "--pdeathsig", "KILL", "--", "/bin/sleep", "30"]), .empty, .empty, .line(["/bin/sleep", "30"]),
        ]
        let reads = Mutex(0)
        let next: (Int32) -> ProcessRecord.CommandLineReading = { _ in
            reads.withLock { count in
                defer { count += 1 }
                return readings[min(count, readings.count - 1)]
            }
        }
        let settled = await ProcessRecord.settledCommandLine(of: 1234, wrapper: "/usr/bin/setpriv", read: next)
        XCTAssertEqual(settled, ["/bin/sleep", "30"])
        XCTAssertEqual(reads.withLock { $0 }, 4)

        let gone = await ProcessRecord.settledCommandLine(of: 1234, wrapper: nil) { _ in .gone }
        XCTAssertNil(gone, "a process that is gone has no command line")
        let never = await ProcessRecord.settledCommandLine(of: 1234, wrapper: nil, attempts: 3) { _ in .empty }
        XCTAssertNil(never, "bounded: a command line that never shows gives up")
    }

    /// The same through real launches: every `setpriv`-wrapped child is recorded by its own command.
    func testEveryWrappedLaunchSettlesOnItsOwnCommandLine() async throws {
        let sleep = URL(fileURLWithPath: "/bin/sleep")
        let wrapped = ParentDeathSignal.wrap(sleep, ["30"])
        guard wrapped.guarded else { throw XCTSkip("util-linux's setpriv is not installed") }
        for _ in 0..<20 {
            let child = Process()
            child.executableURL = wrapped.executable
            child.arguments = wrapped.arguments
            try child.run()
            children.append(child)
            let settled = await ProcessRecord.settledCommandLine(of: child.processIdentifier, wrapper: wrapped.executable.path)
            XCTAssertEqual(settled, ["/bin/sleep", "30"])
            // SIGKILL: a child launched from a thread that blocks SIGTERM inherits the block, and
            // SIGTERM would then leave each launch waiting out its 30 s.
            kill(child.processIdentifier, SIGKILL)
            child.waitUntilExit()
        }
    }
}
