import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// SIGINT and SIGTERM for `tidemark serve`, with none lost however early it comes.
///
/// `serve` used to set both signals to SIG_IGN and listen with dispatch signal sources. On Linux
/// a source is registered (its signalfd made, the signal blocked) on libdispatch's own thread
/// some time after `resume()` returns, and a signal that came in between met SIG_IGN and was
/// dropped: a SIGTERM sent right after "ready" left the broker running (1 start in 40 here).
///
/// Here a handler is installed with `signal(2)`, which holds from the moment it returns. The
/// handler only writes the signal number into a pipe (`write(2)` is async-signal-safe; the
/// write end is non-blocking, so the handler never waits), and a thread of its own reads it.
/// The handlers are installed first thing: a signal that comes while the broker starts (its
/// recovery can take seconds) stops it cleanly once started, without "ready". A second signal
/// ends the process at once (exit status 1), for an operator who will not wait for a start or
/// a stop; recovery on the next start handles it as a crash.
enum StopSignals {
    /// The pipe's write end, for the handler: set before any handler is installed, then only read.
    private static let writeEnd = Atomic<Int32>(-1)
    /// The first signal received (0: none yet), for a broker still starting.
    private static let received = Atomic<Int32>(0)

    /// The first stop signal, if one came.
    static var first: Int32? {
        let number = received.load(ordering: .acquiring)
        return number == 0 ? nil : number
    }

    /// Installs the handlers and returns the first signal as a stream element. Call once.
    static func install() throws -> AsyncStream<Int32> {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: "cannot make the signal pipe: \(String(cString: strerror(errno)))"])
        }
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        _ = fcntl(ends[1], F_SETFL, fcntl(ends[1], F_GETFL) | O_NONBLOCK)
        writeEnd.store(ends[1], ordering: .sequentiallyConsistent)
        let (stream, continuation) = AsyncStream<Int32>.makeStream()
        let readEnd = ends[0]
        let reader = Thread {
            var signals = 0
            while true {
                var byte: UInt8 = 0
                let count = read(readEnd, &byte, 1)
                if count < 0 && errno == EINTR { continue }
                guard count == 1 else { return }
                signals += 1
                if signals == 1 {
                    StopSignals.received.store(Int32(byte), ordering: .releasing)
                    continuation.yield(Int32(byte))
                } else {
                    let note = "tidemark: a second stop signal (\(byte)): exiting at once (the next start recovers as after a crash)\n"
                    Output.unchecked(note, to: STDERR_FILENO)
                    _exit(1)
                }
            }
        }
        reader.name = "tidemark signals"
        reader.start()
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber) { received in
                let saved = errno
                var byte = UInt8(truncatingIfNeeded: received)
                _ = write(StopSignals.writeEnd.load(ordering: .relaxed), &byte, 1)
                errno = saved
            }
        }
        return stream
    }
}
