#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// A fresh directory under the system temp dir, removed when the object is released, and
/// again when the test process exits.
///
/// The second removal is for a test whose last use of the object is reading its `path`:
/// Swift may release it right there, before the broker or log given that path creates the
/// directory anew (they make their data directory when it is missing), and nothing would
/// remove that one. (A suite run left some 200 such directories behind.)
public final class TemporaryDirectory: Sendable {
    public let path: String

    public init(_ label: String = "tidemark") {
        let base = FileManager.default.temporaryDirectory.path
        path = "\(base)/\(label)-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        TemporaryDirectory.removeAtExit(path)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Every directory made by this process, for the exit hook (a few hundred short paths).
    private static let made = Mutex<[String]>([])
    private static let exitHook: Void = {
        atexit {
            for path in TemporaryDirectory.made.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: path) }
        }
    }()

    private static func removeAtExit(_ path: String) {
        _ = exitHook
        made.withLock { $0.append(path) }
    }

    public func file(_ name: String) -> String { path + "/" + name }
}

/// SplitMix64: a small seeded generator so random tests repeat exactly.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension RandomNumberGenerator {
    public mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &self) }
    }
}


/// Writes a file back and drops it from the page cache, so what reads it next reads the disk.
/// Not a deterministic miss for reads that must not wait (the kernel starts reading the file
/// back on a miss and a fast disk can be done before the read looks again): tests of those
/// also inject `StorageFaults` `.readNoWait`.
public func dropFromPageCache(_ path: String) throws {
    struct Failed: Error { var call: String, errno: Int32 }
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { throw Failed(call: "open \(path)", errno: errno) }
    defer { close(fd) }
    guard fdatasync(fd) == 0 else { throw Failed(call: "fdatasync", errno: errno) }
    let advised = posix_fadvise(fd, 0, 0, Int32(POSIX_FADV_DONTNEED))
    guard advised == 0 else { throw Failed(call: "posix_fadvise", errno: advised) }
}
