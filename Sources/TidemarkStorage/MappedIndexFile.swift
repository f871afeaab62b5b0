#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import SystemPackage

/// A file of fixed-size entries, memory-mapped, that grows in preallocated steps while
/// it is written and is trimmed to its entries when it is done.
///
/// A writable index maps its whole `maxBytes` of address space once, when it opens; growing
/// it (from its first entry on) only reserves more of the file's blocks (posix_fallocate). So a growth that fails (a
/// full disk) throws and leaves the mapping and every entry as they were, and no store ever
/// lands past the file's allocated end (which would raise SIGBUS). Sealing maps the trimmed
/// file read-only before it lets the old mapping go.
///
/// An index keeps no file descriptor: the mapping is all it needs. Growth and sealing open the
/// file for the moment they need it, so thousands of partitions cost mappings, not descriptors.
///
/// **A full disk.** An index is disposable (rebuilt from its log whenever missing or
/// implausible), so a growth the disk has no blocks for does not fail: the entries move to
/// anonymous memory (`isInMemory`) and the index goes on there. Sealing (a roll, a rebuild) or
/// closing (a clean close of the log) writes them to the file when the disk has room again
/// (`FileSystem.writeAtomically`: never a file a power loss leaves half written), or removes
/// the file (the next open rebuilds it from the log; an empty or stale file could be trusted).
/// So a partition recovered on a full disk (every index of an unclean shutdown is rebuilt)
/// opens and serves reads, instead of going offline for want of an index, and an append fails
/// only when its log bytes find no room. Indexes in memory share a budget
/// (`IndexMemoryBudget.shared`, 256 MiB of reserved entries, unless the log's config names
/// another): past it, a growth fails with noSpace as the disk did.
///
/// Ownership: one `LogSegment`, itself guarded by its `PartitionLog`'s lock; not Sendable,
/// and the mapping never leaves this class. Invariants: `entryCount * entrySize <=
/// allocatedBytes <= mappedBytes` while mapped; when writable and not in memory, the file's
/// blocks `[0, allocatedBytes)` are allocated; a mapping exists whenever `entryCount > 0` (but
/// for the single final entry of a closing index, written with pwrite); in memory, the mapping
/// is anonymous and `maxBytes` long.
final class MappedIndexFile {
    let path: String
    let entrySize: Int
    /// Largest size the file may reach, a multiple of `entrySize`.
    let maxBytes: Int
    private var mapping: UnsafeMutableRawPointer?
    private var mappedBytes = 0
    /// Bytes of the file reserved for entries (writable), or its size (read-only).
    private var allocatedBytes = 0
    private(set) var entryCount = 0
    private(set) var isWritable: Bool
    /// The entries are in anonymous memory, not the file (its blocks could not be reserved).
    private(set) var isInMemory = false
    /// The size of the file when its entries were discarded at open (a rebuild): the close
    /// trims the file to its entries even when the rebuild wrote none (a segment of one large
    /// batch kept its old entries, stale past a cut tail: `verify --repair` said "indexes
    /// rebuilt" and the next open found them implausible and rebuilt again).
    private var staleBytes = 0
    /// Bytes of `memory` this index holds (its reserved entries, while in memory).
    private var memoryCharged = 0
    private let memory: IndexMemoryBudget

    /// The first growth step; later steps double.
    static let initialBytes = 64 * 1024

    /// Opens (creating if absent) `path`. Entries are the file's size divided by
    /// `entrySize` (a partial trailing entry is dropped); `writable` prepares it for appends.
    /// `discardingEntries`: the caller rebuilds the index, so the file starts empty (its old
    /// entries are not even read, so a crash's preallocated tail costs no memory).
    init(
        path: String, entrySize: Int, maxBytes: Int, writable: Bool, discardingEntries: Bool = false,
        memory: IndexMemoryBudget = .shared
    ) throws(StorageError) {
        precondition(entrySize > 0 && maxBytes >= entrySize)
        self.memory = memory
        self.path = path
        self.entrySize = entrySize
        self.maxBytes = maxBytes - maxBytes % entrySize
        self.isWritable = writable
        let file = try FileSystem.openRegularFile(path, writable ? .readWrite : .readOnly, options: writable ? [.create] : [])
        let size = discardingEntries ? 0 : Int(try file.size())
        entryCount = min(size, self.maxBytes) / entrySize
        if writable {
            // Blocks are reserved by the append that needs them, not here: creating, opening and
            // closing thousands of idle partitions allocates and frees nothing (on a filesystem
            // mounted with `discard`, every freed block is a synchronous discard). Discarded
            // entries stay in the file until the rebuild's entries overwrite them, and the
            // close trims what is left (`staleBytes`).
            if discardingEntries { staleBytes = Int(try file.size()) }
            if size != entryCount * entrySize { try file.truncate(to: Int64(entryCount * entrySize)) }
            allocatedBytes = entryCount * entrySize
            // Mapped when it has entries; an empty one maps with its first entry (an idle
            // partition's open and close then cost no mmap or munmap).
            if entryCount > 0 { (mapping, mappedBytes) = try Self.map(file, bytes: self.maxBytes, writable: true) }
        } else if entryCount > 0 {
            allocatedBytes = entryCount * entrySize
            (mapping, mappedBytes) = try Self.map(file, bytes: allocatedBytes, writable: false)
        }
    }

    deinit {
        Self.unmap(mapping, mappedBytes)
        releaseMemory()
    }

    var sizeInBytes: Int { entryCount * entrySize }
    var isFull: Bool { (entryCount + 1) * entrySize > maxBytes }

    /// The bytes of entry `index`.
    @inline(__always)
    func entry(_ index: Int) -> UnsafeRawBufferPointer {
        precondition(index >= 0 && index < entryCount, "index entry out of range")
        return UnsafeRawBufferPointer(start: mapping! + index * entrySize, count: entrySize)
    }

    /// Appends one entry, written by `fill` into `entrySize` bytes. The caller checks `isFull`.
    /// When the file must grow and cannot (a full disk), throws and changes nothing. `last`: no
    /// entry follows (the segment is closing), so growth reserves this entry only, not a step
    /// that the close would trim away again.
    func append(last: Bool = false, _ fill: (UnsafeMutableRawBufferPointer) -> Void) throws(StorageError) {
        // A sealed index refuses with an error, not a trap: a segment whose seal failed halfway
        // and could not be reopened stays active with it (see `LogSegment.sealIndexes`).
        guard isWritable else { throw StorageError(.io, "index is sealed", path: path) }
        precondition(!isFull, "append to a full index")
        let needed = (entryCount + 1) * entrySize
        var file: SharedFile?
        if needed > allocatedBytes {
            if isInMemory {
                allocatedBytes = memoryCapacity(for: needed)
                try chargeMemory(allocatedBytes - memoryCharged)
            } else {
                let capacity = last ? needed : min(maxBytes, max(Self.initialBytes, allocatedBytes * 2))
                file = try SharedFile.open(path, .readWrite)
                do throws(StorageError) {
                    try file!.allocate(size: Int64(capacity))
                    allocatedBytes = capacity
                } catch {
                    guard error.code == .noSpace else { throw error }
                    try moveToMemory(capacity: memoryCapacity(for: needed), diskError: error)
                    allocatedBytes = memoryCharged
                }
            }
        }
        if mapping == nil {
            if file == nil { file = try SharedFile.open(path, .readWrite) }
            let file = file!
            if last {
                // The only entry of an index about to close: written, not mapped.
                let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: entrySize, alignment: 8)
                defer { bytes.deallocate() }
                fill(bytes)
                try file.write(UnsafeRawBufferPointer(bytes), at: Int64(entryCount * entrySize))
                entryCount += 1
                return
            }
            (mapping, mappedBytes) = try Self.map(file, bytes: maxBytes, writable: true)
        }
        fill(UnsafeMutableRawBufferPointer(start: mapping! + entryCount * entrySize, count: entrySize))
        entryCount += 1
    }

    /// Moves the entries to an anonymous mapping of `maxBytes` (pages cost memory once touched)
    /// with `capacity` bytes of them charged to the budget; the file is left alone until `seal`
    /// or `close` writes or removes it. Past the budget, throws `diskError` (nothing changes).
    private func moveToMemory(capacity: Int, diskError: StorageError) throws(StorageError) {
        do throws(StorageError) { try chargeMemory(capacity) } catch { throw diskError }
        let address = mmap(nil, maxBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let address, address != MAP_FAILED else {
            releaseMemory()
            throw .syscall("mmap", path: path, Errno(rawValue: Glibc.errno))
        }
        if let mapping, entryCount > 0 { address.copyMemory(from: mapping, byteCount: sizeInBytes) }
        replaceMapping(address, maxBytes)
        isInMemory = true
    }

    /// In memory an index grows by pages (what it touches), not by the file's doubling steps:
    /// thousands of small partitions recovered on a full disk then cost a page or two each.
    private func memoryCapacity(for bytes: Int) -> Int {
        min(maxBytes, (max(bytes, 1) + 4095) / 4096 * 4096)
    }

    private func chargeMemory(_ bytes: Int) throws(StorageError) {
        guard bytes > 0 else { return }
        guard memory.charge(bytes) else {
            throw StorageError(
                .noSpace, "no room on the disk for the index, and indexes kept in memory have used their \(memory.limit) bytes",
                path: path)
        }
        memoryCharged += bytes
    }

    private func releaseMemory() {
        guard memoryCharged > 0 else { return }
        memory.release(memoryCharged)
        memoryCharged = 0
    }

    /// For an index in memory: writes its entries to the file, which is then the index again
    /// (true), or, when that fails (the disk is still full), removes the file so that no open
    /// trusts what it holds (false). The entries go to a temporary file, fdatasync'd and renamed
    /// over the old one, the directory synced after: a power loss leaves the old file (stale,
    /// but the log was closed uncleanly then, and every open after that rebuilds) or the new one
    /// whole, never a new size over blocks that were never written (zeros an open would trust).
    private func writeBack() -> Bool {
        let directory = FileSystem.parentDirectory(of: path)
        do throws(StorageError) {
            // (A crash's leftover `.tmp` is removed by the log's open.)
            try FileSystem.writeAtomically(UnsafeRawBufferPointer(start: mapping, count: sizeInBytes), to: path, directory: directory)
            isInMemory = false
            releaseMemory()
            return true
        } catch {
            try? FileSystem.remove(path + ".tmp")
            try? FileSystem.remove(path)
            // The removal durable too: an empty file a power loss brought back would be trusted.
            try? FileSystem.syncDirectory(directory)
            return false
        }
    }

    /// Drops the entries from `count` on.
    func truncate(toEntries count: Int) {
        precondition(count >= 0)
        guard count < entryCount else { return }
        if isWritable {
            memset(mapping! + count * entrySize, 0, (entryCount - count) * entrySize)
        }
        entryCount = count
    }

    /// The file `seal(with:)` needs (nil when there is nothing to seal). A segment opens both
    /// of its indexes' files before it seals either, so a failed open (EMFILE) changes nothing.
    func fileForSeal() throws(StorageError) -> SharedFile? {
        isWritable && !isInMemory ? try SharedFile.open(path, .readWrite) : nil
    }

    /// Shrinks the file to its entries and maps it read-only: the segment is done.
    func seal() throws(StorageError) { try seal(with: try fileForSeal()) }

    /// `seal()` with the file opened beforehand. `file`
    /// comes from `fileForSeal()`.
    func seal(with file: SharedFile?) throws(StorageError) {
        if isWritable && isInMemory {
            isWritable = false
            allocatedBytes = sizeInBytes
            // Written back: the file is the index again, mapped as any sealed one (should that
            // fail, the same entries in memory go on serving). Otherwise they stay in memory,
            // read-only in use, for as long as the segment is open.
            guard writeBack() else { return }
            if sizeInBytes == 0 {
                replaceMapping(nil, 0)
            } else if let file = try? SharedFile.open(path, .readOnly),
                let (newMapping, newBytes) = try? Self.map(file, bytes: sizeInBytes, writable: false)
            {
                replaceMapping(newMapping, newBytes)
            }
            return
        }
        guard isWritable, let file else { return }
        // (No msync: on Linux the mapping's dirty pages are the file's page cache, which the
        // fdatasync of the flush that follows a roll writes out.)
        try file.truncate(to: Int64(sizeInBytes))
        isWritable = false
        allocatedBytes = sizeInBytes
        // The old (larger, writable) mapping stays until the new one exists; if mapping the
        // trimmed file fails, the old one keeps serving reads of the same entries.
        guard sizeInBytes > 0, let (newMapping, newBytes) = try? Self.map(file, bytes: sizeInBytes, writable: false) else {
            if sizeInBytes == 0 { replaceMapping(nil, 0) }
            return
        }
        replaceMapping(newMapping, newBytes)
    }

    /// Lets the mapping go, then trims the file to its entries: the log is closing. Unmapping
    /// first leaves the trim no mapped pages to zap, which with thousands of partitions closing
    /// at once is most of the cost. The index holds no entries afterwards (its owner drops it).
    func close() throws(StorageError) {
        let inMemory = isInMemory
        if inMemory { _ = writeBack() }  // written at its size, or removed
        isInMemory = false  // (no second write-back of an index emptied below)
        releaseMemory()
        replaceMapping(nil, 0)
        let trim = !inMemory && isWritable && (allocatedBytes != sizeInBytes || staleBytes > sizeInBytes)
        let size = sizeInBytes
        isWritable = false
        // Emptied before the trim, which can fail (EMFILE, EIO): entries without a mapping
        // would be read through a nil pointer.
        allocatedBytes = 0
        entryCount = 0
        if trim { try SharedFile.open(path, .readWrite).truncate(to: Int64(size)) }
    }

    /// Reopens a sealed index for appends (a segment that becomes active again after truncation).
    func unseal() throws(StorageError) {
        guard !isWritable else { return }
        let capacity = min(maxBytes, max(Self.initialBytes, sizeInBytes))
        if isInMemory {
            // Sealed in memory (the write-back failed): the anonymous mapping is writable already.
            allocatedBytes = memoryCapacity(for: sizeInBytes)
            try chargeMemory(allocatedBytes - memoryCharged)
            isWritable = true
            return
        }
        let writableFile = try SharedFile.open(path, .readWrite)
        do throws(StorageError) {
            try writableFile.allocate(size: Int64(capacity))
        } catch {
            guard error.code == .noSpace else { throw error }
            try moveToMemory(capacity: memoryCapacity(for: sizeInBytes), diskError: error)
            allocatedBytes = memoryCharged
            isWritable = true
            return
        }
        let (newMapping, newBytes) = try Self.map(writableFile, bytes: maxBytes, writable: true)
        replaceMapping(newMapping, newBytes)
        allocatedBytes = capacity
        isWritable = true
    }

    /// A descriptor for making the file durable (fdatasync also writes the mapping's dirty
    /// pages: they are the file's page cache).
    /// Nil for an index in memory: its file holds nothing to keep.
    func fileForSync() throws(StorageError) -> SharedFile? { isInMemory ? nil : try SharedFile.open(path, .readOnly) }

    private func replaceMapping(_ newMapping: UnsafeMutableRawPointer?, _ newBytes: Int) {
        Self.unmap(mapping, mappedBytes)
        mapping = newMapping
        mappedBytes = newBytes
    }

    private static func map(_ file: SharedFile, bytes: Int, writable: Bool) throws(StorageError)
        -> (UnsafeMutableRawPointer?, Int)
    {
        guard bytes > 0 else { return (nil, 0) }
        if let injected = StorageFaults.fault(for: .map, path: file.path) { throw .syscall("mmap", path: file.path, injected) }
        let protection = writable ? (PROT_READ | PROT_WRITE) : PROT_READ
        let address = mmap(nil, bytes, protection, MAP_SHARED, file.descriptor.rawValue, 0)
        guard let address, address != MAP_FAILED else {
            throw .syscall("mmap", path: file.path, Errno(rawValue: Glibc.errno))
        }
        return (address, bytes)
    }

    private static func unmap(_ mapping: UnsafeMutableRawPointer?, _ bytes: Int) {
        if let mapping, bytes > 0 { munmap(mapping, bytes) }
    }
}

/// The bytes indexes may keep in memory when the disk has no room for them (see
/// `MappedIndexFile`), shared by every log whose config names it: the engine's logs share
/// `shared`. Thread-safe (an atomic).
public final class IndexMemoryBudget: Sendable, Equatable {
    public static let shared = IndexMemoryBudget(limit: 256 << 20)

    public let limit: Int
    private let used = Atomic<Int>(0)

    public init(limit: Int) { self.limit = limit }

    /// Bytes reserved now.
    public var bytesInUse: Int { used.load(ordering: .relaxed) }

    /// Reserves `bytes` if they fit under the limit.
    func charge(_ bytes: Int) -> Bool {
        let total = used.add(bytes, ordering: .relaxed).newValue
        guard total <= limit else {
            used.subtract(bytes, ordering: .relaxed)
            return false
        }
        return true
    }

    func release(_ bytes: Int) { used.subtract(bytes, ordering: .relaxed) }

    public static func == (a: IndexMemoryBudget, b: IndexMemoryBudget) -> Bool { a === b }
}
