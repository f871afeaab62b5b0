import CoreMetrics
import Tracing
import Logging
import TidemarkStorage

/// Settings of a broker (not of a topic).
public struct BrokerOptions: Sendable {
    /// Producer state of an idle producer id is forgotten after this.
    public var producerIdExpirationMs: Int64 = 24 * 3600 * 1000
    /// Producers remembered across all partitions (about 150 bytes each). A partition keeps
    /// at most 10,000; past this bound, at the next maintenance pass, the partitions that
    /// remember the most are cut to the largest cap that brings the total within it (never
    /// below 100 a partition: with more than bound/100 busy partitions the total is at most
    /// 100 a partition), the least recently active forgotten first: clients minting producer
    /// ids on thousands of partitions cannot grow memory without bound.
    public var maxProducerStates = 1_000_000
    /// How often retention, interval flushes, idle closing and group timeouts run.
    public var maintenanceIntervalMs: Int64 = 1000
    /// Restored share windows read their records' keys and delays as the broker opens (else
    /// at the first maintenance pass or fetch). Off only in tests of those later reads.
    var readsRestoredShareWindowsAtOpen = true
    /// Inactive segments unused this long have their files closed.
    public var segmentIdleCloseMs: Int64 = 5 * 60 * 1000
    /// Producer-state snapshots are rewritten this often (they are also written at close).
    public var producerSnapshotIntervalMs: Int64 = 60_000
    /// Consumer group settings.
    public var groups = GroupOptions()
    /// The configuration of topics created without one (the broker's log.* settings).
    public var defaultTopicConfig = TopicConfig()
    /// Whether, at open, each topic's settings that it does not set itself are taken from
    /// `defaultTopicConfig` (a broker node or an embedded broker: the broker's settings of the
    /// day), and topics.json is rewritten when that changes them. false keeps every topic's
    /// config as topics.json holds it, the last broker's: the tools, which open a data
    /// directory without the server's settings, must not apply Kafka's defaults to topics that
    /// follow the server's (a `--data` consume would have enforced 7 days of retention on
    /// topics that keep everything). With false, changing a topic's settings is refused for
    /// a topic from an earlier version's file (its own settings are not known), and
    /// `defaultTopicConfig` should be the server's for topics created then.
    public var topicsFollowDefaults = true
    /// The most partitions one topic may have.
    public var maxPartitionsPerTopic = 10_000
    /// Milliseconds since the epoch: record and commit timestamps, retention; replaceable in tests.
    public var clock: @Sendable () -> Int64 = { currentTimeMilliseconds() } {
        didSet { clockReplaced = true }
    }
    /// The clock of timeouts (group sessions, share record locks, retry backoffs, delays), in
    /// milliseconds since the epoch. nil: `clock` when that was replaced (tests move one clock
    /// for both), else `SteadyClock`, which keeps the wall clock's rate but not its steps: a
    /// clock stepped an hour forward (NTP at boot, a VM resumed) used to expire every session
    /// and every lock at once. Kafka times them on a monotonic clock too.
    public var timerClock: (@Sendable () -> Int64)? = nil
    private var clockReplaced = false
    /// What the coordinators time with (see `timerClock`).
    public var timers: @Sendable () -> Int64 { timerClock ?? (clockReplaced ? clock : SteadyClock.shared.now) }
    /// Where the engine reports what happens to data: recovery cuts, damage found by reads,
    /// partitions that went offline, maintenance failures. Never one line per message.
    public var logger = Logger(label: "tidemark.engine")
    /// Where the engine's metrics go (nil: swift-metrics' bootstrapped system).
    public var metricsFactory: (any MetricsFactory)? = nil
    /// The tracer of the embedded clients' and the broker's spans (nil: the process's
    /// bootstrapped one, swift-distributed-tracing's `InstrumentationSystem.tracer`).
    public var tracer: (any Tracer)? = nil
    /// An fdatasync slower than this is logged as a warning (at most one line per 10 s).
    public var slowFsyncWarningMs: Int64 = 1000
    /// Bounds the segment files all partitions keep open (see `OpenFileBudget`); by default the
    /// process-wide budget, half the soft `RLIMIT_NOFILE`.
    public var openFileBudget: OpenFileBudget = .shared

    public init() {}
}
