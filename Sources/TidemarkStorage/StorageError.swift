import SystemPackage

/// A storage failure: what kind, a message, the file involved, and the cause
/// (the `Errno` of a failed syscall or the `RecordBatchError` of bad bytes).
public struct StorageError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// A syscall failed; see `errno`.
        case io
        /// The disk is full (ENOSPC/EDQUOT). Nothing partial was left in the log.
        case noSpace
        /// A batch offered for append is malformed; see `batchError`.
        case invalidBatch
        /// A batch is larger than the log's `maxBatchBytes`.
        case batchTooLarge
        /// The requested offset is outside `[logStartOffset, logEndOffset]`.
        case offsetOutOfRange
        /// Stored bytes are damaged where damage is not expected (outside recovery).
        case corruptLog
        /// The log was closed.
        case closed
        /// The log failed an fsync and refuses further writes (the kernel may have dropped
        /// the unwritten pages); reads of what it holds are still served.
        case failed
        /// An argument is out of its documented range.
        case invalidArgument
        /// The call was asked not to block (`mayBlock: false`) and would have: a segment to
        /// create or to open, or data to read from the disk. Nothing was done; call it again
        /// where blocking is fine.
        case wouldBlock
    }

    public var code: Code
    public var message: String
    public var path: String?
    public var errno: Errno?
    public var batchError: RecordBatchError?
    /// A flush that failed before it synced anything (a descriptor it needed could not be
    /// opened: EMFILE, ENFILE): the kernel dropped nothing, so the log is not failed and the
    /// next flush tries again. Only a failed fsync fails a log for good.
    public var beforeSync = false

    public init(
        _ code: Code, _ message: String, path: String? = nil, errno: Errno? = nil, batchError: RecordBatchError? = nil
    ) {
        self.code = code
        self.message = message
        self.path = path
        self.errno = errno
        self.batchError = batchError
    }

    /// Wraps a failed syscall, classifying a full disk as `.noSpace`.
    static func syscall(_ operation: String, path: String?, _ errno: Errno) -> StorageError {
        let code: Code = (errno == .noSpace || errno.rawValue == 122 /* EDQUOT */) ? .noSpace : .io
        return StorageError(code, "\(operation) failed: \(errno)", path: path, errno: errno)
    }

    public var description: String {
        var text = "\(code): \(message)"
        if let path { text += " [\(path)]" }
        if let batchError { text += " (\(batchError))" }
        return text
    }
}
