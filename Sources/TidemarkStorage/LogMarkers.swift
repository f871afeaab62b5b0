#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

/// The two small files that let a log open without scanning it (see `PartitionLog`):
///
/// ```
/// .clean-shutdown             1 byte: "1" after a clean close; while the log is open, "0" and
///                             the boot it was opened in: the 32 hex digits of Linux's boot id
///                             (33 bytes; "0" alone where there is none, as before 0.4). After a
///                             crash in the same boot the page cache kept every write, so only the
///                             last one can be unfinished (`CrashRemnant`, `afterPowerLoss`).
///                             A missing or empty file means "not clean" (a new log's "0" is
///                             written unsynced: a power loss can keep the file and lose its
///                             byte; read as clean, its torn tail was refused as damage).
///                             Versions before 0.3 left an empty file after a clean close:
///                             such a log is scanned once, as after a crash.
/// recovery-point.checkpoint   "0\n" + the offset as 20 zero-padded digits + "\n" (23 bytes;
///                             readers before 0.3 parse it unchanged)
/// ```
///
/// Both are overwritten in place, never created and removed per open and close: making and
/// deleting 20,000 files at every restart of 10,000 partitions costs ext4 seconds (allocating
/// an inode scans the recently deleted ones). Each write is under 64 bytes at offset 0, inside
/// one sector: a crash leaves the old content or the new one. A checkpoint that does not parse
/// reads as absent (a full scan, nothing lost); a marker that is not "1", as not clean.
enum LogMarkers {
    static let markerName = ".clean-shutdown"
    static let checkpointName = "recovery-point.checkpoint"

    /// Whether the last close of the log in `directory` was clean.
    /// Throws only for something other than a file in the marker's place (a FIFO would make
    /// a later write of the marker fail, or block): the log is not opened over it.
    static func isClean(_ directory: String) throws(StorageError) -> Bool {
        let path = directory + "/" + markerName
        guard FileSystem.exists(path) else { return false }
        try FileSystem.requireRegularIfPresent(path)
        guard let bytes = try? FileSystem.readWholeFile(path, limit: 8) else { return false }
        return bytes == [UInt8(ascii: "1")]
    }

    /// Marks the log open ("0" and this boot), when a marker exists (a missing one already says
    /// "not clean"). `sync`: fdatasync now; otherwise the caller's `SyncBatch` makes it durable.
    static func markOpen(_ directory: String, sync: Bool) throws(StorageError) {
        let path = directory + "/" + markerName
        guard FileSystem.exists(path) else { return }
        try overwrite(openContents, path: path, directory: directory, sync: sync)
    }

    /// The open marker's bytes: "0" and this boot's id.
    static var openContents: [UInt8] { [UInt8(ascii: "0")] + (bootId ?? []) }

    /// This boot's id (`/proc/sys/kernel/random/boot_id`, a new random UUID at every boot) as
    /// 32 hex digits; nil where the kernel has none.
    static let bootId: [UInt8]? = {
        guard let bytes = try? FileSystem.readWholeFile("/proc/sys/kernel/random/boot_id", limit: 64) else { return nil }
        let digits = bytes.filter { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) }
        return digits.count == 32 ? digits : nil
    }()

    /// Whether the log in `directory` was marked open in this boot (no reboot since: a crash
    /// then lost nothing the OS had been given, and no power loss came in between).
    static func wasOpenedInThisBoot(_ directory: String) -> Bool {
        guard let bootId, let bytes = try? FileSystem.readWholeFile(directory + "/" + markerName, limit: 64) else { return false }
        return bytes == [UInt8(ascii: "0")] + bootId
    }

    /// Marks the log cleanly closed ("1"). Call only once everything it vouches for is durable.
    static func markClean(_ directory: String, sync: Bool) throws(StorageError) {
        try overwrite([UInt8(ascii: "1")], path: directory + "/" + markerName, directory: directory, sync: sync)
    }

    /// The checkpoint's bytes for `offset` (fixed width, so an overwrite never leaves a tail).
    static func checkpointContents(_ offset: Int64) -> [UInt8] {
        let digits = String(offset)
        return Array(("0\n" + String(repeating: "0", count: max(0, 20 - digits.count)) + digits + "\n").utf8)
    }

    /// Writes the recovery point. Call only once every segment before `offset`'s is durable.
    static func writeRecoveryPoint(_ offset: Int64, directory: String, sync: Bool) throws(StorageError) {
        try overwrite(checkpointContents(offset), path: directory + "/" + checkpointName, directory: directory, sync: sync)
    }

    /// Replaces the file's bytes in place: one pwrite at 0, an ftruncate when the length changes,
    /// fdatasync when `sync` (and a directory sync when the file is new). For contents whose
    /// damage is detected (a CRC, a fixed format), since a crash can interrupt the write.
    static func overwrite(_ contents: [UInt8], path: String, directory: String, sync: Bool) throws(StorageError) {
        let existed = !sync || FileSystem.exists(path)  // (only a synced write syncs its directory)
        let file = try FileSystem.openRegularFile(path, .writeOnly, options: [.create])
        try contents.withUnsafeBytes { raw in
            Result { () throws(StorageError) in try file.write(raw, at: 0) }
        }.get()
        if try file.size() != Int64(contents.count) { try file.truncate(to: Int64(contents.count)) }
        if sync {
            try file.sync()
            if !existed { try FileSystem.syncDirectory(directory) }
        }
    }
}
