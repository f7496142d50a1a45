import Foundation
import Synchronization

/// The one thread every managed process is started from, and how it is started so that it dies
/// with Lifeline.
///
/// Linux's parent-death signal (`PR_SET_PDEATHSIG`) is sent when the *thread* that forked the
/// child ends, not when the process does. Swift's concurrency threads are not promised to live
/// as long as the process, so a child forked from one could be killed while Lifeline runs on.
/// Foundation's `Process.run()` forks on the calling thread, so every launch runs here, on a
/// thread that is never stopped: the signal then fires exactly when Lifeline itself dies.
final class LaunchThread: Sendable {
    static let shared = LaunchThread()

    private let jobs = Mutex<[@Sendable () -> Void]>([])
    private let pending = DispatchSemaphore(value: 0)

    private init() {
        let thread = Thread { [self] in serve() }
        thread.name = "lifeline-launch"
        thread.start()
    }

    /// Runs for the life of the process: waits for launches and runs them one at a time.
    private func serve() -> Never {
        while true {
            pending.wait()
            let job = jobs.withLock { $0.isEmpty ? nil : $0.removeFirst() }
            job?()
        }
    }

    /// Runs `body` on the launch thread and returns what it returns.
    func run<Value: Sendable>(_ body: @escaping @Sendable () throws -> Value) async throws -> Value {
        try await withCheckedThrowingContinuation { continuation in
            jobs.withLock { $0.append { continuation.resume(with: Result(catching: body)) } }
            pending.signal()
        }
    }
}

/// Starting a command so that the kernel kills it when Lifeline dies, even by SIGKILL: util-linux's
/// `setpriv --pdeathsig KILL` sets the parent-death signal and then executes the command in its
/// place (same pid, same command line once it has started). Swift cannot set the signal between
/// fork and exec itself (Foundation's `Process` has no hook there, and a hand-written fork in a
/// multi-threaded process may only call async-signal-safe functions), so the small, standard
/// `setpriv` does it. Without it the command starts as it is, and the pid file lets the next
/// start clean up after a hard kill.
enum ParentDeathSignal {
    /// `setpriv`, when it is installed and sets the signal here; probed once, on the launch thread.
    static let setpriv: URL? = {
        #if os(Linux)
        guard let url = try? ManagedProcessService.executable("setpriv", in: nil) else { return nil }
        let probe = Process()
        probe.executableURL = url
        probe.arguments = ["--pdeathsig", "KILL", "--", "true"]
        probe.standardInput = FileHandle.nullDevice
        probe.standardOutput = FileHandle.nullDevice
        probe.standardError = FileHandle.nullDevice
        guard (try? probe.run()) != nil else { return nil }
        // Bounded: `true` exits at once; a setpriv that hangs for 5 s is not used.
        for _ in 0..<500 where probe.isRunning { usleep(10_000) }
        guard !probe.isRunning else {
            probe.terminate()
            return nil
        }
        return probe.terminationReason == .exit && probe.terminationStatus == 0 ? url : nil
        #else
        return nil
        #endif
    }()

    /// The executable and arguments that run `executable arguments…` with the parent-death signal
    /// set, or the command unchanged when that is not possible here.
    static func wrap(_ executable: URL, _ arguments: [String]) -> (executable: URL, arguments: [String], guarded: Bool) {
        guard let setpriv else { return (executable, arguments, false) }
        return (setpriv, ["--pdeathsig", "KILL", "--", executable.path] + arguments, true)
    }
}
