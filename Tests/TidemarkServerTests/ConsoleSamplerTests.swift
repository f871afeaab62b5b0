import Synchronization
import TestSupport
import Testing
@testable import TidemarkHTTP

/// The console's sampler renders and parses the whole exposition and walks every partition:
/// once a second only while somebody looks at the console, else every 5 s.
@Suite(.serialized) struct ConsoleSamplerTests {
    @Test func theSamplerSlowsDownWhileNobodyLooks() async throws {
        let (node, console) = try await ConsoleAPITests.startWithConsole()
        let taken = { console.data.samplesTaken.load(ordering: .relaxed) }
        try await HTTPMetricsTests.until(30) { taken() >= 1 }
        // Nobody looks: samples at least 4.5 s apart, however late this task runs (under a
        // loaded machine's scheduling); once a second, as before, would give about one a second.
        func paced(for window: Duration) async throws -> (samples: Int, idleMost: Int) {
            let (start, first) = (ContinuousClock.now, taken())
            try await Task.sleep(for: window)
            let elapsed = ContinuousClock.now - start
            return (taken() - first, Int(elapsed / .milliseconds(4_500)) + 1)
        }
        let idle = try await paced(for: .seconds(6))
        #expect(idle.samples <= idle.idleMost, "\(idle.samples) samples while nobody looked")
        // A look at the overview: sampled again each second, more often than the idle pace
        // allows in the time taken.
        #expect(try await httpGet(port: node.http.boundPort, "/api/overview").status == 200)
        let (looked, before) = (ContinuousClock.now, taken())
        func faster() -> Bool { taken() - before >= Int((ContinuousClock.now - looked) / .milliseconds(4_500)) + 2 }
        try await HTTPMetricsTests.until(20) { faster() }
        #expect(faster(), "\(taken() - before) samples in \(ContinuousClock.now - looked) after a look")
        // The decision itself: due at the first tick; a minute after the last look, only once
        // the idle interval (less half a tick) has passed since the last sample.
        let now = ContinuousClock.now
        #expect(console.data.dueToSample(sinceSample: nil, now: now))
        #expect(console.data.dueToSample(sinceSample: .seconds(1), now: now))  // just looked
        let later = now + ConsoleData.viewedWindow + .seconds(1)
        #expect(!console.data.dueToSample(sinceSample: .seconds(1), now: later))
        #expect(!console.data.dueToSample(sinceSample: .seconds(4), now: later))
        #expect(console.data.dueToSample(sinceSample: .milliseconds(4_600), now: later))
        console.stop()
        try await node.stop()
    }
}
