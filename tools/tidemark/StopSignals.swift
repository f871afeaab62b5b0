import CStopSignals
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// SIGTERM, SIGINT and SIGHUP for `tidemark serve` (and `consume --data --follow`, which also
/// holds a data directory open until it stops), with none lost however early it comes.
///
/// `serve` used to set both signals to SIG_IGN and listen with dispatch signal sources. On Linux
/// a source is registered (its signalfd made, the signal blocked) on libdispatch's own thread
/// some time after `resume()` returns, and a signal that came in between met SIG_IGN and was
/// dropped: a SIGTERM sent right after "ready" left the broker running (1 start in 40 here).
///
/// Here a handler written in C (`CStopSignals`: only async-signal-safe calls) is installed with
/// sigaction, in force from the moment it returns, first thing in `serve`. It records the first
/// signal and writes the signal number into a non-blocking pipe; a thread of its own reads the
/// pipe. A signal that comes while the broker starts (its recovery can take seconds) stops it
/// cleanly once started, without "ready".
///
/// - A repeated SIGTERM is harmless (systemd sends its KillSignal after an `ExecStop=kill`).
/// - A SIGINT after the first signal (Ctrl-C again) ends the process at once, exit status 1,
///   for an operator who will not wait for a start or a stop; the next start recovers as after
///   a crash.
/// - SIGHUP (the terminal it was started from closed) stops it cleanly too, as it stops a
///   Kafka broker (the JVM runs its shutdown hooks); it used to end it as a crash would.
/// - An inherited SIG_IGN for SIGINT or SIGHUP is kept: a broker started with `&` from a
///   script does not stop on the Ctrl-C meant for that terminal, nor one started under `nohup`
///   when the terminal closes. SIGTERM is always handled.
enum StopSignals {
    /// The first stop signal, if one came.
    static var first: Int32? {
        let number = tidemark_stop_signal_first()
        return number == 0 ? nil : number
    }

    /// "SIGTERM", "SIGINT", "SIGHUP" (for the log), else the number.
    static func name(_ signalNumber: Int32) -> String {
        switch signalNumber {
        case SIGTERM: "SIGTERM"
        case SIGINT: "SIGINT"
        case SIGHUP: "SIGHUP"
        default: "\(signalNumber)"
        }
    }

    /// Installs the handlers and returns the first signal as a stream element. Call once.
    static func install() throws -> AsyncStream<Int32> {
        var ends: [Int32] = [-1, -1]
        guard tidemark_pipe_cloexec(&ends) == 0 else {
            throw CLIError("cannot make the signal pipe: \(String(cString: strerror(errno)))")
        }
        _ = fcntl(ends[1], F_SETFL, fcntl(ends[1], F_GETFL) | O_NONBLOCK)
        let handled = [SIGTERM] + [SIGINT, SIGHUP].filter { tidemark_signal_is_ignored($0) == 0 }
        let (stream, continuation) = AsyncStream<Int32>.makeStream()
        let readEnd = ends[0]
        let reader = Thread {
            var stopping = false
            while true {
                var byte: UInt8 = 0
                let count = read(readEnd, &byte, 1)
                if count < 0 && errno == EINTR { continue }
                guard count == 1 else {
                    // Cannot happen (the write end is never closed); if it did, a signal must
                    // still end the process rather than be swallowed.
                    for signalNumber in handled { _ = tidemark_signal_restore_default(signalNumber) }
                    return
                }
                let signalNumber = Int32(byte)
                if !stopping {
                    stopping = true
                    continuation.yield(signalNumber)
                } else if signalNumber == SIGINT {
                    let note = "tidemark: interrupted again: exiting at once (the next start recovers as after a crash)\n"
                    Output.unchecked(note, to: STDERR_FILENO)
                    _exit(1)
                }
            }
        }
        reader.name = "tidemark signals"
        reader.start()
        for signalNumber in handled {
            guard tidemark_stop_signal_install(signalNumber, ends[1]) == 0 else {
                throw CLIError("cannot handle signal \(signalNumber): \(String(cString: strerror(errno)))")
            }
        }
        return stream
    }

    /// Points descriptors 0, 1 and 2 at /dev/null where they are closed (a broker started
    /// with `>&-`): otherwise the next file opened (a signal pipe, a segment) would take the
    /// number, and the logs and the ready line would be written into it.
    static func fillClosedStandardDescriptors() {
        for descriptor in Int32(0)...2 where fcntl(descriptor, F_GETFD) < 0 && errno == EBADF {
            let opened = open("/dev/null", O_RDWR)
            if opened >= 0 && opened != descriptor {
                _ = dup2(opened, descriptor)
                close(opened)
            }
        }
    }
}
