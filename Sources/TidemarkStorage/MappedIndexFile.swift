#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

/// A file of fixed-size entries, memory-mapped, that grows in preallocated steps while
/// it is written and is trimmed to its entries when it is done.
///
/// Ownership: one `LogSegment`, itself guarded by its `PartitionLog`'s lock; not Sendable,
/// and the mapping never leaves this class. Invariants: `entryCount * entrySize <=
/// mappedBytes <= maxBytes`; when writable, the file's blocks `[0, mappedBytes)` are
/// allocated (posix_fallocate), so a store into the mapping cannot fault for lack of space.
final class MappedIndexFile {
    let path: String
    let entrySize: Int
    /// Largest size the file may reach, a multiple of `entrySize`.
    let maxBytes: Int
    private(set) var file: SharedFile
    private var mapping: UnsafeMutableRawPointer?
    private var mappedBytes = 0
    private(set) var entryCount = 0
    private(set) var isWritable: Bool

    /// The first growth step; later steps double.
    static let initialBytes = 64 * 1024

    /// Opens (creating if absent) `path`. Entries are the file's size divided by
    /// `entrySize` (a partial trailing entry is dropped); `writable` prepares it for appends.
    init(path: String, entrySize: Int, maxBytes: Int, writable: Bool) throws(StorageError) {
        precondition(entrySize > 0 && maxBytes >= entrySize)
        self.path = path
        self.entrySize = entrySize
        self.maxBytes = maxBytes - maxBytes % entrySize
        self.isWritable = writable
        file = try SharedFile.open(path, writable ? .readWrite : .readOnly, options: writable ? [.create] : [])
        let size = Int(try file.size())
        entryCount = min(size, self.maxBytes) / entrySize
        if writable {
            try file.truncate(to: Int64(entryCount * entrySize))
            try remap(capacity: max(Self.initialBytes, entryCount * entrySize))
        } else if size > 0 {
            try remap(capacity: entryCount * entrySize)
        }
    }

    deinit { unmap() }

    var sizeInBytes: Int { entryCount * entrySize }
    var isFull: Bool { (entryCount + 1) * entrySize > maxBytes }

    /// The bytes of entry `index`.
    @inline(__always)
    func entry(_ index: Int) -> UnsafeRawBufferPointer {
        precondition(index >= 0 && index < entryCount, "index entry out of range")
        return UnsafeRawBufferPointer(start: mapping! + index * entrySize, count: entrySize)
    }

    /// Appends one entry, written by `fill` into `entrySize` bytes. The caller checks `isFull`.
    func append(_ fill: (UnsafeMutableRawBufferPointer) -> Void) throws(StorageError) {
        precondition(isWritable, "append to a read-only index")
        precondition(!isFull, "append to a full index")
        let needed = (entryCount + 1) * entrySize
        if needed > mappedBytes {
            try remap(capacity: min(maxBytes, max(Self.initialBytes, mappedBytes * 2)))
        }
        fill(UnsafeMutableRawBufferPointer(start: mapping! + entryCount * entrySize, count: entrySize))
        entryCount += 1
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

    /// Shrinks the file to its entries and maps it read-only: the segment is done.
    func seal() throws(StorageError) {
        guard isWritable else { return }
        unmap()
        try file.truncate(to: Int64(sizeInBytes))
        isWritable = false
        if sizeInBytes > 0 { try remap(capacity: sizeInBytes) }
    }

    /// Reopens a sealed index for appends (a segment that becomes active again after truncation).
    func unseal() throws(StorageError) {
        guard !isWritable else { return }
        unmap()
        file = try SharedFile.open(path, .readWrite)
        isWritable = true
        try remap(capacity: max(Self.initialBytes, sizeInBytes))
    }

    /// Writes the mapping's dirty pages and the file to disk.
    func sync() throws(StorageError) {
        if isWritable, let mapping, mappedBytes > 0, msync(mapping, mappedBytes, MS_SYNC) != 0 {
            throw .syscall("msync", path: path, Errno(rawValue: Glibc.errno))
        }
        try file.sync()
    }

    private func remap(capacity: Int) throws(StorageError) {
        unmap()
        let capacity = min(capacity, maxBytes)
        guard capacity > 0 else { return }
        if isWritable { try file.allocate(size: Int64(capacity)) }
        let protection = isWritable ? (PROT_READ | PROT_WRITE) : PROT_READ
        let address = mmap(nil, capacity, protection, MAP_SHARED, file.descriptor.rawValue, 0)
        guard let address, address != MAP_FAILED else {
            throw .syscall("mmap", path: path, Errno(rawValue: Glibc.errno))
        }
        mapping = address
        mappedBytes = capacity
    }

    private func unmap() {
        if let mapping, mappedBytes > 0 { munmap(mapping, mappedBytes) }
        mapping = nil
        mappedBytes = 0
    }
}
