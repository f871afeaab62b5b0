import Dispatch
import TidemarkStorage

/// Milliseconds since the epoch that never step: the wall clock read once, at first use,
/// advanced by the monotonic clock. It follows the wall clock's rate (NTP slews both) but not
/// its steps, so a deadline set now (a session timeout, a record lock) expires after its
/// duration whatever happens to the wall clock meanwhile. Its reading may differ from the wall
/// clock by the sum of the steps since the process started; only timeouts use it.
///
/// Concurrency: immutable after init.
public final class SteadyClock: Sendable {
    public static let shared = SteadyClock()

    private let wallAtStart: Int64
    private let monotonicAtStart: UInt64

    init() {
        wallAtStart = currentTimeMilliseconds()
        monotonicAtStart = DispatchTime.now().uptimeNanoseconds
    }

    /// `now` as a closure, for the coordinators' `clock` parameters.
    public var now: @Sendable () -> Int64 { { [self] in read() } }

    public func read() -> Int64 {
        wallAtStart + Int64((DispatchTime.now().uptimeNanoseconds &- monotonicAtStart) / 1_000_000)
    }
}
