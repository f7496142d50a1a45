import Foundation

/// Lifeline's data directory holds credentials (key hashes, the admin token's hash, subscribers'
/// webhook URLs): it is created readable by its owner only (0700) and every file in it 0600,
/// whatever the process's umask.
public enum PrivateFiles {
    public static let directoryMode = 0o700
    public static let fileMode = 0o600

    /// Creates `path` (and missing parents) as 0700; a directory that exists is left as it is.
    public static func makeDirectory(_ path: String) throws {
        guard !path.isEmpty, !FileManager.default.fileExists(atPath: path) else { return }
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: directoryMode])
        _ = chmod(path, mode_t(directoryMode))
    }

    /// Creates an empty file as 0600 unless one is there; true when it was created.
    @discardableResult
    public static func createFile(_ path: String) throws -> Bool {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode_t(fileMode))
        if descriptor < 0 {
            if errno == EEXIST { return false }
            throw PrivateFileError(path: path, detail: String(cString: strerror(errno)))
        }
        // The umask can only narrow the mode, but say it exactly anyway.
        _ = fchmod(descriptor, mode_t(fileMode))
        close(descriptor)
        return true
    }

    /// Sets a file Lifeline wrote to 0600.
    public static func restrict(_ path: String) {
        _ = chmod(path, mode_t(fileMode))
    }

    /// The directory itself and what it holds (two levels, at most 1,000 entries) that group or
    /// others may read, write or enter, with their modes.
    public static func tooOpen(in directory: String) -> [(path: String, mode: Int)] {
        var found: [(String, Int)] = []
        var visited = 0
        func check(_ path: String, depth: Int) {
            guard visited < 1_000 else { return }
            visited += 1
            var info = stat()
            guard lstat(path, &info) == 0 else { return }
            let mode = Int(info.st_mode) & 0o777
            let isDirectory = (info.st_mode & S_IFMT) == S_IFDIR
            if (info.st_mode & S_IFMT) != S_IFLNK, mode & 0o077 != 0 { found.append((path, mode)) }
            guard isDirectory, depth < 2, let children = try? FileManager.default.contentsOfDirectory(atPath: path) else { return }
            for child in children.sorted() { check(path + "/" + child, depth: depth + 1) }
        }
        check(directory, depth: 0)
        return found
    }
}

public struct PrivateFileError: Error, CustomStringConvertible {
    public var path: String
    public var detail: String
    public var description: String { "\(path): \(detail)" }
}
