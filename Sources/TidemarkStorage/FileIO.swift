import CSystemShims
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemPackage

/// True (with `errno` set) when `StorageFaults` says this call fails: the wrappers below then
/// behave exactly as if the syscall had returned -1.
@inline(__always)
func injectedFailure(_ operation: StorageFaults.Operation, _ path: String) -> Bool {
    guard let injected = StorageFaults.fault(for: operation, path: path) else { return false }
    Glibc.errno = injected.rawValue
    return true
}

/// An open file descriptor shared by reference: the descriptor closes when the last
/// holder lets go.
///
/// This is how a reader or the flusher keeps a segment's file usable after the log has
/// closed it as idle or deleted it by retention, without holding the log's lock.
/// Sendable: its only stored state is an immutable descriptor number.
public final class SharedFile: Sendable {
    public let descriptor: FileDescriptor
    public let path: String

    init(descriptor: FileDescriptor, path: String) {
        self.descriptor = descriptor
        self.path = path
    }

    deinit { try? descriptor.close() }

    /// Opens `path` with `flags`, creating it with mode 0644 when `.create` is among them.
    static func open(_ path: String, _ mode: FileDescriptor.AccessMode, options: FileDescriptor.OpenOptions = [])
        throws(StorageError) -> SharedFile
    {
        do {
            if let injected = StorageFaults.fault(for: .open, path: path) { throw injected }
            let fd = try FileDescriptor.open(
                FilePath(path), mode, options: options.union(.closeOnExec),
                permissions: options.contains(.create) ? [.ownerReadWrite, .groupRead, .otherRead] : nil,
                retryOnInterrupt: true)
            return SharedFile(descriptor: fd, path: path)
        } catch {
            throw StorageError.syscall("open", path: path, error as? Errno ?? .ioError)
        }
    }

    /// Writes all of `buffer` at `offset`.
    func write(_ buffer: UnsafeRawBufferPointer, at offset: Int64) throws(StorageError) {
        var done = 0
        while done < buffer.count {
            let n =
                injectedFailure(.write, path)
                ? -1 : pwrite(descriptor.rawValue, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if Glibc.errno == EINTR { continue }
                throw .syscall("pwrite", path: path, Errno(rawValue: Glibc.errno))
            }
            done += n
        }
    }

    /// Writes the buffers of `vectors` back to back at `offset` (one pwritev where it can).
    /// The vectors are consumed: after a short write they describe what was left.
    func write(vectors: UnsafeMutableBufferPointer<iovec>, at offset: Int64) throws(StorageError) {
        var position = off_t(offset)
        var first = 0
        while first < vectors.count {
            let count = Int32(min(vectors.count - first, 1024 /* IOV_MAX on Linux */))
            let n = injectedFailure(.write, path) ? -1 : pwritev(descriptor.rawValue, vectors.baseAddress! + first, count, position)
            if n < 0 {
                if Glibc.errno == EINTR { continue }
                throw .syscall("pwritev", path: path, Errno(rawValue: Glibc.errno))
            }
            position += off_t(n)
            var remaining = n
            while first < vectors.count && remaining >= vectors[first].iov_len {
                remaining -= vectors[first].iov_len
                first += 1
            }
            if remaining > 0 {
                vectors[first].iov_base += remaining
                vectors[first].iov_len -= remaining
            }
        }
    }

    /// Reads up to `buffer.count` bytes at `offset`; returns fewer only at end of file.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(StorageError) -> Int {
        var done = 0
        while done < buffer.count {
            let n =
                injectedFailure(.read, path)
                ? -1 : pread(descriptor.rawValue, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if Glibc.errno == EINTR { continue }
                throw .syscall("pread", path: path, Errno(rawValue: Glibc.errno))
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// Reads `count` bytes at `offset` into a new array (shorter at end of file).
    public func read(count: Int, at offset: Int64) throws(StorageError) -> [UInt8] {
        var failure: StorageError?
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            do throws(StorageError) {
                initialized = try read(into: UnsafeMutableRawBufferPointer(buffer), at: offset)
            } catch {
                failure = error
                initialized = 0
            }
        }
        if let failure { throw failure }
        return bytes
    }

    /// `read(count:at:)` that never waits for the disk: nil when some of the bytes are not in
    /// the page cache (preadv2 with RWF_NOWAIT; where the filesystem cannot tell, an ordinary read).
    func readIfCached(count: Int, at offset: Int64) throws(StorageError) -> [UInt8]? {
        var cold = false
        var failure: StorageError?
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            initialized = 0
            while initialized < count {
                let n =
                    injectedFailure(.readNoWait, path)
                    ? -1 : tidemark_pread_nowait(descriptor.rawValue, buffer.baseAddress! + initialized, UInt(count - initialized), Int(offset) + initialized)
                if n > 0 {
                    initialized += n
                    continue
                }
                let code = n < 0 ? Glibc.errno : 0
                if n < 0 && code == EINTR { continue }
                if n == 0 { return }  // end of file
                if code == EAGAIN {
                    cold = true
                } else if code == EOPNOTSUPP || code == EINVAL {
                    do throws(StorageError) {
                        initialized += try read(
                            into: UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(buffer)[initialized...]),
                            at: offset + Int64(initialized))
                    } catch {
                        failure = error
                    }
                } else {
                    failure = .syscall("preadv2", path: path, Errno(rawValue: code))
                }
                return
            }
        }
        if let failure { throw failure }
        return cold ? nil : bytes
    }

    /// fdatasync: the file's data (and the metadata needed to read it) reach the disk.
    func sync() throws(StorageError) {
        while injectedFailure(.sync, path) || fdatasync(descriptor.rawValue) != 0 {
            if Glibc.errno == EINTR { continue }
            throw .syscall("fdatasync", path: path, Errno(rawValue: Glibc.errno))
        }
    }

    /// fsync: the data and all of the file's metadata, e.g. a size that shrank (which
    /// fdatasync need not write: the data left can be read without it).
    func syncIncludingMetadata() throws(StorageError) {
        while injectedFailure(.sync, path) || fsync(descriptor.rawValue) != 0 {
            if Glibc.errno == EINTR { continue }
            throw .syscall("fsync", path: path, Errno(rawValue: Glibc.errno))
        }
    }

    func size() throws(StorageError) -> Int64 {
        var info = stat()
        guard fstat(descriptor.rawValue, &info) == 0 else {
            throw .syscall("fstat", path: path, Errno(rawValue: Glibc.errno))
        }
        return Int64(info.st_size)
    }

    func truncate(to size: Int64) throws(StorageError) {
        while injectedFailure(.truncate, path) || ftruncate(descriptor.rawValue, off_t(size)) != 0 {
            if Glibc.errno == EINTR { continue }
            throw .syscall("ftruncate", path: path, Errno(rawValue: Glibc.errno))
        }
    }

    /// Reserves disk blocks for `[0, size)` so later writes (and stores into a mapping,
    /// which would raise SIGBUS instead of an error) cannot fail for lack of space.
    func allocate(size: Int64) throws(StorageError) {
        var result: Int32
        repeat {
            result = StorageFaults.fault(for: .allocate, path: path)?.rawValue ?? posix_fallocate(descriptor.rawValue, 0, off_t(size))
        } while result == EINTR
        if result != 0 { throw .syscall("posix_fallocate", path: path, Errno(rawValue: result)) }
    }
}

/// The names in a directory, read with readdir(3).
///
/// A `struct dirent` is only as long as its record (`d_reclen`): its name ends at the NUL
/// inside it, not at the 256 bytes `d_name` is declared with. So the name is read through a
/// pointer into the record, never by copying the struct or the field (`entry.pointee.d_name`
/// copies all 280 bytes: a short last record of glibc's 32 KiB getdents buffer, at the top of
/// a thread's heap arena, read past it into an unmapped page, and a start on partitions of
/// 700 or more segment files crashed one time in five).
public enum DirectoryNames {
    /// Offset of `d_name` in a record.
    static let nameOffset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!

    /// Names in `path`, without "." and "..".
    public static func read(_ path: String) throws(StorageError) -> [String] {
        guard let dir = opendir(path) else { throw .syscall("opendir", path: path, Errno(rawValue: Glibc.errno)) }
        defer { closedir(dir) }
        var names: [String] = []
        Glibc.errno = 0
        while let entry = readdir(dir) {
            let name = String(cString: (UnsafeRawPointer(entry) + nameOffset).assumingMemoryBound(to: CChar.self))
            if name != "." && name != ".." { names.append(name) }
        }
        // readdir answers nil at the end and on an error; only the error sets errno.
        if Glibc.errno != 0 { throw .syscall("readdir", path: path, Errno(rawValue: Glibc.errno)) }
        return names
    }
}

/// Directory and path helpers over raw syscalls.
enum FileSystem {
    /// Creates `path` and any missing parents; each directory made is fsynced into its
    /// parent, so a crash cannot lose a directory whose files were already made durable.
    static func createDirectory(_ path: String) throws(StorageError) {
        var prefix = path.hasPrefix("/") ? "/" : ""
        var parent = path.hasPrefix("/") ? "/" : "."
        for component in path.split(separator: "/") {
            prefix += component
            if injectedFailure(.createDirectory, prefix) || mkdir(prefix, 0o755) != 0 {
                guard Glibc.errno == EEXIST else { throw .syscall("mkdir", path: prefix, Errno(rawValue: Glibc.errno)) }
            } else {
                try syncDirectory(parent)
            }
            parent = prefix
            prefix += "/"
        }
    }

    /// Names in `path`, without "." and "..".
    static func listDirectory(_ path: String) throws(StorageError) -> [String] {
        try DirectoryNames.read(path)
    }

    static func exists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0
    }

    static func fileSize(_ path: String) throws(StorageError) -> Int64 {
        var info = stat()
        guard stat(path, &info) == 0 else { throw .syscall("stat", path: path, Errno(rawValue: Glibc.errno)) }
        return Int64(info.st_size)
    }

    /// When a file was last written, in ms since the epoch.
    static func modificationTime(_ path: String) throws(StorageError) -> Int64 {
        var info = stat()
        guard stat(path, &info) == 0 else { throw .syscall("stat", path: path, Errno(rawValue: Glibc.errno)) }
        return Int64(info.st_mtim.tv_sec) * 1000 + Int64(info.st_mtim.tv_nsec) / 1_000_000
    }

    /// Removes a file; a file already gone is not an error.
    static func remove(_ path: String) throws(StorageError) {
        if (injectedFailure(.remove, path) || unlink(path) != 0) && Glibc.errno != ENOENT {
            throw .syscall("unlink", path: path, Errno(rawValue: Glibc.errno))
        }
    }

    static func rename(_ from: String, to: String) throws(StorageError) {
        if injectedFailure(.rename, from) || Glibc.rename(from, to) != 0 {
            throw .syscall("rename", path: from, Errno(rawValue: Glibc.errno))
        }
    }

    /// fsync on a directory, so that files created, renamed or removed in it stay so.
    static func syncDirectory(_ path: String) throws(StorageError) {
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw .syscall("open", path: path, Errno(rawValue: Glibc.errno)) }
        defer { close(fd) }
        while injectedFailure(.syncDirectory, path) || fsync(fd) != 0 {
            if Glibc.errno == EINTR { continue }
            throw .syscall("fsync", path: path, Errno(rawValue: Glibc.errno))
        }
    }

    /// Replaces `path` with `contents` atomically and durably: write a temporary file,
    /// fsync it, rename it over `path`, fsync the directory.
    static func writeAtomically(_ contents: [UInt8], to path: String, directory: String) throws(StorageError) {
        try contents.withUnsafeBytes { raw in
            Result { () throws(StorageError) in try writeAtomically(raw, to: path, directory: directory) }
        }.get()
    }

    /// `writeAtomically` of bytes in memory the caller owns (an index's mapping).
    static func writeAtomically(_ contents: UnsafeRawBufferPointer, to path: String, directory: String) throws(StorageError) {
        let temporary = path + ".tmp"
        let file = try openRegularFile(temporary, .writeOnly, options: [.create, .truncate])
        try file.write(contents, at: 0)
        try file.sync()
        try rename(temporary, to: path)
        try syncDirectory(directory)
    }

    /// The directory holding `path` ("." for a bare name).
    static func parentDirectory(of path: String) -> String {
        let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        return directory.isEmpty ? (path.hasPrefix("/") ? "/" : ".") : directory
    }

    /// The whole file (up to `limit` bytes), or nil when it does not exist. Opened without
    /// blocking and read only if it is a regular file: a FIFO or device put where a marker or
    /// a JSON file belongs is an error, not a start that waits forever for a writer.
    static func readWholeFile(_ path: String, limit: Int = 1 << 20) throws(StorageError) -> [UInt8]? {
        guard exists(path) else { return nil }
        let file = try openRegularFile(path, .readOnly)
        return try file.read(count: limit, at: 0)
    }

    /// Opens `path` only if it is a regular file (or does not exist, with `.create`): a FIFO or
    /// a device where a small file of ours belongs is an error naming it, not an open or a
    /// read that blocks forever (the open does not block either way: O_NONBLOCK, which
    /// regular files ignore).
    static func openRegularFile(_ path: String, _ mode: FileDescriptor.AccessMode, options: FileDescriptor.OpenOptions = [])
        throws(StorageError) -> SharedFile
    {
        let file: SharedFile
        do {
            file = try SharedFile.open(path, mode, options: options.union(.nonBlocking))
        } catch {
            // A FIFO without a reader refuses a non-blocking write open (ENXIO): say why.
            try requireRegularIfPresent(path)
            throw error
        }
        var info = stat()
        guard fstat(file.descriptor.rawValue, &info) == 0 else {
            throw .syscall("fstat", path: path, Errno(rawValue: Glibc.errno))
        }
        try requireRegular(info, path)
        return file
    }

    /// Throws unless `path` is a regular file or does not exist.
    static func requireRegularIfPresent(_ path: String) throws(StorageError) {
        var info = stat()
        if stat(path, &info) == 0 { try requireRegular(info, path) }
    }

    private static func requireRegular(_ info: stat, _ path: String) throws(StorageError) {
        guard info.st_mode & S_IFMT == S_IFREG else { throw StorageError(.io, "not a regular file: move it away", path: path) }
    }
}

/// Milliseconds since the Unix epoch from the system's real-time clock.
public func currentTimeMilliseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

/// Nanoseconds of a monotonic clock, for idle and interval bookkeeping.
func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Small whole-file helpers for the layers above (metadata, snapshots, checkpoints).
public enum DurableFile {
    /// Replaces `path` atomically and durably (temp file, fsync, rename, fsync directory).
    public static func write(_ contents: [UInt8], to path: String) throws(StorageError) {
        try FileSystem.writeAtomically(contents, to: path, directory: FileSystem.parentDirectory(of: path))
    }

    /// Replaces `path`'s bytes in place (no temporary file, no new inode), with fdatasync when
    /// `sync`. Only for contents whose damage is detected on read (a CRC): a crash can tear it.
    public static func overwrite(_ contents: [UInt8], to path: String, sync: Bool) throws(StorageError) {
        let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        try LogMarkers.overwrite(contents, path: path, directory: directory.isEmpty ? "." : directory, sync: sync)
    }

    /// The file's bytes (up to `limit`), or nil when it does not exist.
    public static func read(_ path: String, limit: Int = 64 << 20) throws(StorageError) -> [UInt8]? {
        try FileSystem.readWholeFile(path, limit: limit)
    }

    public static func createDirectory(_ path: String) throws(StorageError) { try FileSystem.createDirectory(path) }

    /// Renames a file or directory (durable once its directory is synced).
    public static func rename(_ from: String, to: String) throws(StorageError) { try FileSystem.rename(from, to: to) }

    /// fsync on a directory: entries created, renamed or removed in it stay so.
    public static func syncDirectory(_ path: String) throws(StorageError) { try FileSystem.syncDirectory(path) }

    public static func exists(_ path: String) -> Bool { FileSystem.exists(path) }

    public static func listDirectory(_ path: String) throws(StorageError) -> [String] {
        try FileSystem.listDirectory(path)
    }

    /// Removes a directory and everything below it.
    public static func removeTree(_ path: String) throws(StorageError) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            for name in try FileSystem.listDirectory(path) { try removeTree(path + "/" + name) }
            if rmdir(path) != 0 { throw .syscall("rmdir", path: path, Errno(rawValue: Glibc.errno)) }
        } else {
            try FileSystem.remove(path)
        }
    }

    /// Takes an exclusive advisory lock on `path` (created if needed) for the life of the
    /// returned file: a second process opening the same data directory fails at once.
    public static func lockExclusively(_ path: String) throws(StorageError) -> SharedFile {
        let file = try SharedFile.open(path, .readWrite, options: [.create])
        if flock(file.descriptor.rawValue, LOCK_EX | LOCK_NB) != 0 {
            throw StorageError(.io, "data directory is in use by another process", path: path, errno: Errno(rawValue: Glibc.errno))
        }
        return file
    }

    /// Releases a lock taken with `lockExclusively` before its file is dropped.
    public static func unlock(_ file: SharedFile) {
        _ = flock(file.descriptor.rawValue, LOCK_UN)
    }
}
