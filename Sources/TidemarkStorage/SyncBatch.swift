#if canImport(Glibc)
import Glibc
#endif
import CSystemShims
import Dispatch
import Synchronization
import SystemPackage

/// Durability for thousands of logs at once: two `syncfs(2)` calls instead of several fsyncs
/// per log (opening or closing 10,000 partitions would otherwise cost some 50,000 fsyncs).
///
/// Writers taking part (`PartitionLog.open/close(deferredSync:)`, producer snapshots) do their
/// writes without syncing, name the directories they wrote in (`add(directory:)`), and leave
/// what must only happen once those writes are durable as after-sync actions: recovery
/// checkpoints and clean-shutdown markers (written in place, see `LogMarkers`). (Producer
/// snapshots are written before the first sync: one durable ahead of its log is detected.)
/// `commit()` then
/// 1. `syncfs` on each filesystem named (data, indexes, temporary files, directory entries);
/// 2. runs the after-sync actions (only if step 1 succeeded: a marker or checkpoint must never
///    be durable ahead of the data it vouches for);
/// 3. `syncfs` again, so the renames and markers are durable when `commit()` returns.
/// A crash anywhere in between leaves either the old files or the new ones, never a marker
/// without its data: the next open then recovers as after any crash.
///
/// Concurrency: thread-safe; `state` is a `Mutex` held only to record or take the work.
public final class SyncBatch: Sendable {
    public typealias Action = @Sendable () throws(StorageError) -> Void

    private struct State {
        /// One directory per filesystem (by `st_dev`), to open for `syncfs`.
        var filesystems: [UInt64: String] = [:]
        var knownDirectories: Set<String> = []
        var actions: [Action] = []
        var committed = false
    }
    private let state = Mutex(State())

    public init() {}

    /// Names a directory written in without syncing: its filesystem is synced by `commit()`.
    public func add(directory: String) throws(StorageError) {
        let known = state.withLock { !$0.knownDirectories.insert(directory).inserted }
        if known { return }
        var info = stat()
        guard stat(directory, &info) == 0 else { throw .syscall("stat", path: directory, Errno(rawValue: Glibc.errno)) }
        let device = UInt64(info.st_dev)
        state.withLock { s in
            if s.filesystems[device] == nil { s.filesystems[device] = directory }
        }
    }

    /// Runs `action` after the first sync of `commit()`, if that sync succeeded.
    public func afterSync(_ action: @escaping Action) {
        state.withLock { $0.actions.append(action) }
    }

    /// Syncs, runs the after-sync actions, syncs again (see the type's comment). Throws the
    /// first failure; after a failed first sync no action runs. Once only.
    public func commit() throws(StorageError) {
        let (filesystems, actions) = state.withLock { s -> ([String], [Action]) in
            if s.committed { return ([], []) }
            s.committed = true
            let taken = (Array(s.filesystems.values), s.actions)
            s.actions = []
            return taken
        }
        for directory in filesystems { try Self.syncFilesystem(directory) }
        // Small writes to thousands of files: a few threads overlap their syscalls.
        let failures = Mutex<[StorageError]>([])
        let lanes = min(8, actions.count)
        DispatchQueue.concurrentPerform(iterations: lanes) { lane in
            for index in stride(from: lane, to: actions.count, by: lanes) {
                do throws(StorageError) { try actions[index]() } catch { failures.withLock { $0.append(error) } }
            }
        }
        let firstFailure = failures.withLock { $0.first }
        if !actions.isEmpty {
            for directory in filesystems { try Self.syncFilesystem(directory) }
        }
        if let firstFailure { throw firstFailure }
    }

    /// `syncfs` on the filesystem holding `directory` (reports writeback errors since Linux 5.8).
    static func syncFilesystem(_ directory: String) throws(StorageError) {
        let fd = Glibc.open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw .syscall("open", path: directory, Errno(rawValue: Glibc.errno)) }
        defer { close(fd) }
        while injectedFailure(.sync, directory) || tidemark_syncfs(fd) != 0 {
            if Glibc.errno == EINTR { continue }
            throw .syscall("syncfs", path: directory, Errno(rawValue: Glibc.errno))
        }
    }
}
