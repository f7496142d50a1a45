import Foundation
import LifelineStore
import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The pid file of a managed process (`<data_dir>/processes/<deployment>.pid`): which process
/// Lifeline started for a deployment, so that the next start can stop it if this run died
/// without doing so (killed before the parent-death signal was set, or on a system without
/// `setpriv`). A process is named by its pid, the kernel's record of when it started and its
/// command line, so a pid the system has since given to another process is never taken for it.
struct ProcessRecord: Codable, Equatable, Sendable {
    var pid: Int32
    /// Field 22 of `/proc/PID/stat`: when the process started, in clock ticks after boot.
    var startTime: String
    /// The command line the process runs (after `setpriv` has executed it), argument by argument, as `/proc` shows it.
    var command: [String]

    enum CodingKeys: String, CodingKey {
        case pid
        case startTime = "start_time"
        case command
    }

    /// The record of a process just launched, or nil where `/proc` cannot say when it started.
    static func launched(pid: Int32, command: [String]) -> ProcessRecord? {
        guard let started = Self.startTime(of: pid) else { return nil }
        return ProcessRecord(pid: pid, startTime: started, command: command)
    }

    func write(to path: String) throws {
        try PrivateFiles.makeDirectory(URL(fileURLWithPath: path).deletingLastPathComponent().path)
        try JSONEncoder().encode(self).write(to: URL(fileURLWithPath: path), options: .atomic)
        PrivateFiles.restrict(path)
    }

    static func load(from path: String) -> ProcessRecord? {
        guard let data = FileManager.default.contents(atPath: path), data.count <= 1 << 20 else { return nil }
        return try? JSONDecoder().decode(ProcessRecord.self, from: data)
    }

    /// Whether the recorded process still runs as it was recorded: same pid, same start time, same
    /// command line, and not a zombie.
    var isRunningAsRecorded: Bool {
        Self.startTime(of: pid) == startTime && Self.commandLine(of: pid) == command
    }

    /// Stops the process a pid file names if an earlier run left it running; returns what happened
    /// in words for the log, or nil when there was nothing to do. Never kills a process that is not
    /// the recorded one. Bounded: waits at most `grace` seconds after SIGTERM and 5 s after SIGKILL.
    static func stopStale(at path: String, grace: Double) async -> String? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        defer { try? FileManager.default.removeItem(atPath: path) }
        guard let record = load(from: path) else { return "unreadable pid file removed" }
        guard record.pid > 1, record.isRunningAsRecorded else { return nil }
        _ = kill(record.pid, SIGTERM)
        let clock = ContinuousClock()
        let termDeadline = clock.now + .seconds(grace)
        while record.isRunningAsRecorded, clock.now < termDeadline { try? await Task.sleep(for: .milliseconds(20)) }
        guard record.isRunningAsRecorded else { return "stopped stale process \(record.pid) with SIGTERM" }
        _ = kill(record.pid, SIGKILL)
        let killDeadline = clock.now + .seconds(5)
        while record.isRunningAsRecorded, clock.now < killDeadline { try? await Task.sleep(for: .milliseconds(20)) }
        return record.isRunningAsRecorded ? "stale process \(record.pid) did not die after SIGKILL"
            : "killed stale process \(record.pid) with SIGKILL"
    }

    /// Field 22 of `/proc/PID/stat`, or nil when there is no such process or it is a zombie.
    static func startTime(of pid: Int32) -> String? {
        guard let stat = readProcFile("/proc/\(pid)/stat").flatMap({ String(data: $0, encoding: .utf8) }),
              let endOfName = stat.lastIndex(of: ")")
        else { return nil }
        // After the command name, in parentheses: field 3 (state) onwards.
        let fields = stat[stat.index(after: endOfName)...].split(separator: " ")
        guard fields.count > 19, fields[0] != "Z", fields[0] != "X" else { return nil }
        return String(fields[19])
    }

    /// The command line `/proc` shows once the process runs its own program: `setpriv` (the
    /// `wrapper`) replaces itself with the command a moment after the launch, and an interpreted
    /// script shows its interpreter. While the kernel swaps programs, the command line reads empty
    /// for a moment; that is waited out too. Nil when the process is gone, or has not settled
    /// within `attempts` × 20 ms (5 s).
    static func settledCommandLine(of pid: Int32, wrapper: String?, attempts: Int = 250,
                                   read: (Int32) -> CommandLineReading = commandLineReading(of:)) async -> [String]? {
        for _ in 0..<attempts {
            switch read(pid) {
            case .gone: return nil
            case .line(let line) where line.first != wrapper: return line
            case .line, .empty: try? await Task.sleep(for: .milliseconds(20))
            }
        }
        return nil
    }

    /// What `/proc/PID/cmdline` shows of a process.
    enum CommandLineReading: Equatable {
        /// No such process, or a zombie.
        case gone
        /// The process exists but shows no command line (between two programs).
        case empty
        case line([String])
    }

    static func commandLineReading(of pid: Int32) -> CommandLineReading {
        if let line = commandLine(of: pid) { return .line(line) }
        return startTime(of: pid) == nil ? .gone : .empty
    }

    static func commandLine(of pid: Int32) -> [String]? {
        guard var data = readProcFile("/proc/\(pid)/cmdline"), !data.isEmpty else { return nil }
        if data.last == 0 { data.removeLast() }
        return data.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    }

    /// A small file of `/proc`, whose size `stat` reports as 0, read to its end (at most 1 MiB).
    private static func readProcFile(_ path: String) -> Data? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while data.count < 1 << 20 {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            data.append(contentsOf: buffer[0..<count])
        }
        return data
    }
}
