import ArgumentParser
import Foundation
import LifelineStore

/// `lifeline backup FILE`: a consistent copy of the embedded store, taken while the server runs.
struct Backup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy the embedded SQLite store to FILE, consistently, while the server keeps serving.",
        discussion: "For a PostgreSQL store use pg_dump; see docs/several-instances.md, \"Backup and restore\".")
    @Argument(help: "Where to write the backup (must not exist).") var file: String
    @Option(help: "The server's data directory.") var dataDir = ".lifeline"

    func run() async throws {
        let path = dataDir + "/lifeline.sqlite"
        guard FileManager.default.fileExists(atPath: path) else {
            printError("no store at \(path) (is --data-dir right?)")
            throw ExitCode(1)
        }
        do {
            let store = try await SQLiteStore.open(path: path)
            do {
                try await store.backup(to: file)
            } catch {
                try? await store.close()
                throw error
            }
            try await store.close()
            let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
            print("backed up \(path) to \(file) (\(size) bytes)")
        } catch {
            printError("backup failed: \(error)")
            throw ExitCode(1)
        }
    }
}

/// `lifeline restore FILE`: puts a backup in place; run it with the server stopped.
struct Restore: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Restore the embedded store from a backup (stop the server first); the current store is kept beside it.")
    @Argument(help: "A file written by 'lifeline backup'.") var file: String
    @Option(help: "The data directory to restore into.") var dataDir = ".lifeline"

    func run() async throws {
        let path = dataDir + "/lifeline.sqlite"
        do {
            let kept = try await SQLiteStore.restore(from: file, to: path)
            print("restored \(file) to \(path)" + (kept.map { "; the previous store is kept at \($0)" } ?? ""))
        } catch {
            printError("restore failed: \(error)")
            throw ExitCode(1)
        }
    }
}
