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
        #expect(taken() == 1)  // the first tick samples
        // Nobody looks: the ticks of the next 3.5 s take no sample (every second, they took 3).
        try await Task.sleep(for: .milliseconds(3_500))
        #expect(taken() == 1)
        // A look at the overview: sampled again each second (3 samples in about 3 s; at the
        // idle pace they would take 13.5 s).
        #expect(try await httpGet(port: node.http.boundPort, "/api/overview").status == 200)
        let before = taken()
        try await HTTPMetricsTests.until(9) { taken() >= before + 3 }
        #expect(taken() >= before + 3)
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
