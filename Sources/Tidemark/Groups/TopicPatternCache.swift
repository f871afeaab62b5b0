/// A consumer group's subscription patterns matched against the topics, kept between metadata
/// refreshes (`ConsumerGroup` owns one; the group coordinator's mutex owns the group).
///
/// A refresh matches only the names added since the last one, and a pattern only once when it
/// is new. Matching runs under the coordinator's lock, and a 4 KiB pattern (`.*` 2,000 times)
/// took 3 s against 1,200 topics there, each time, for every group (about once a second per
/// member heartbeating). So all matching has a bound in steps (`TopicPattern.matches(_:steps:)`):
/// a new pattern past it is refused before anything changes (the coordinator matches it before
/// its lock), and one that new topics make too costly is refused from then on.
struct TopicPatternCache: Sendable {
    /// The topic names as of the last update, sorted.
    private var names: [String] = []
    /// Each kept pattern's matches among `names`.
    private var matches: [String: Set<String>] = [:]
    /// Patterns whose matching of new topics ran out of steps under the lock: their members'
    /// heartbeats are refused (INVALID_REGULAR_EXPRESSION) until they subscribe otherwise.
    private(set) var refused: Set<String> = []

    /// A pattern new to a group matched against the topics (`names`, as listed then).
    struct MatchedPattern: Sendable {
        var pattern: String
        var names: [String]
        var matched: Set<String>
    }

    struct Refusal: Error {
        var message: String
    }

    /// The steps a new pattern may take against all topics, about 40 ms: past them it is
    /// refused (INVALID_REGULAR_EXPRESSION). An ordinary pattern takes about 150 per
    /// 30-character name, 1.5 million for 10,000 topics.
    static let newPatternSteps = 4_000_000

    /// The steps matching may take over names of `chars` characters in all: `newPatternSteps`,
    /// or 64 a character on a broker whose names take more (an ordinary pattern takes about 5 a
    /// character; `.*` 2,000 times, 4,000).
    static func stepBudget(chars: Int) -> Int { max(newPatternSteps, 64 * chars) }

    static func chars(_ names: [String]) -> Int { names.reduce(0) { $0 + $1.utf8.count } }

    /// What the cache keeps, about: a name's place in the list, a matched name's in a set
    /// (counted in `ConsumerGroup.memberBytes`, which `group.members.max.bytes` bounds).
    var bytes: Int { names.count * 16 + matches.values.reduce(0) { $0 + $1.count * 32 } }

    var isEmpty: Bool { names.isEmpty && matches.isEmpty && refused.isEmpty }

    /// Whether `pattern` is known: kept, or refused (then its heartbeat is refused without
    /// matching it again).
    func knows(_ pattern: String) -> Bool { matches[pattern] != nil || refused.contains(pattern) }

    /// `pattern`'s matches as of the last update (nil when it is not kept).
    func matched(by pattern: String) -> Set<String>? { matches[pattern] }

    /// Every kept pattern's matches.
    var allMatched: Dictionary<String, Set<String>>.Values { matches.values }

    /// Adds to `matched` the names `pattern` matches, within `steps`: false when they ran out.
    private static func match(
        _ pattern: TopicPattern, _ names: some Sequence<String>, into matched: inout Set<String>, steps: inout Int
    ) -> Bool {
        for name in names {
            guard let matches = pattern.matches(name, steps: &steps) else { return false }
            if matches { matched.insert(name) }
        }
        return true
    }

    /// Compiles `pattern` and matches it against the catalog's topics within `stepBudget`.
    static func matchNew(_ pattern: String, catalog: TopicCatalog) -> Result<MatchedPattern, Refusal> {
        guard let compiled = TopicPattern(pattern) else { return .failure(.init(message: "'\(pattern)' is not a valid regular expression")) }
        let names = catalog.topicNames()
        var steps = stepBudget(chars: chars(names))
        var matched = Set<String>()
        guard match(compiled, names, into: &matched, steps: &steps) else {
            return .failure(.init(message: "the pattern takes too long to match against the \(names.count) topics"))
        }
        return .success(MatchedPattern(pattern: pattern, names: names, matched: matched))
    }

    /// Brings the cache to `names` for `patterns`: kept patterns match only the names added
    /// since the last update, others all of them; `adding` is one matched already. Patterns no
    /// member uses are forgotten.
    mutating func update(names unsorted: [String], patterns: Set<String>, adding: (String, Set<String>)? = nil) {
        let names = unsorted.sorted()  // (the broker's list is sorted already: a linear pass)
        var added: [String] = []
        var removed: [String] = []
        if names != self.names {
            // Both sorted: one walk finds what came and went.
            var i = 0
            var j = 0
            while i < names.count || j < self.names.count {
                if j == self.names.count || (i < names.count && names[i] < self.names[j]) {
                    added.append(names[i])
                    i += 1
                } else if i == names.count || self.names[j] < names[i] {
                    removed.append(self.names[j])
                    j += 1
                } else {
                    i += 1
                    j += 1
                }
            }
        }
        // This runs under the coordinator's lock: the work has a bound, shared by the patterns
        // (new names cost each kept pattern its steps); a pattern that runs out of it is
        // refused from then on, not matched for ever at every refresh. The smallest patterns
        // (the cheapest a character) go first, so that a costly one spends what is left, not
        // the steps of the group's ordinary ones; and it is refused alone: the next gets half
        // of what was left before it (the lock's work stays under twice the bound).
        var steps = Self.stepBudget(chars: Self.chars(added))
        var all = patterns
        if let adding { all.insert(adding.0) }
        let compiled = all.compactMap { pattern in TopicPattern(pattern).map { (pattern: pattern, compiled: $0) } }
            .sorted { a, b in a.compiled.size != b.compiled.size ? a.compiled.size < b.compiled.size : a.pattern < b.pattern }
        var updated: [String: Set<String>] = [:]
        for (pattern, regex) in compiled where !refused.contains(pattern) {
            if let adding, adding.0 == pattern {
                updated[pattern] = adding.1
                continue
            }
            let before = steps
            var kept = true
            if var matched = matches[pattern] {
                if !removed.isEmpty { matched.subtract(removed) }
                kept = Self.match(regex, added, into: &matched, steps: &steps)
                if kept { updated[pattern] = matched }
            } else {
                // A member's pattern not kept yet (`keep` ran out of steps bringing it to
                // names that came meanwhile): all of them, within steps of its own.
                var own = Self.stepBudget(chars: Self.chars(names))
                var matched = Set<String>()
                kept = Self.match(regex, names, into: &matched, steps: &own)
                if kept { updated[pattern] = matched }
            }
            if !kept {
                refused.insert(pattern)
                steps = before / 2
            }
        }
        matches = updated
        self.names = names
        refused.formIntersection(patterns)
    }

    /// Keeps a pattern new to the group, matched (before the lock, or at the top of the
    /// heartbeat) against `matched.names`. When the cache moved on meanwhile (another member's
    /// refresh), the pattern is brought to the cache's names rather than the cache back to the
    /// older list.
    mutating func keep(_ matched: MatchedPattern, used patterns: Set<String>) {
        let names = matched.names.sorted()
        if matches.isEmpty || names == self.names {
            update(names: names, patterns: patterns, adding: (matched.pattern, matched.matched))
            return
        }
        guard let compiled = TopicPattern(matched.pattern) else { return }
        let current = Set(self.names)
        let seen = Set(names)
        var set = matched.matched.filter { current.contains($0) }
        var steps = Self.newPatternSteps
        // Out of steps: matched at the next refresh.
        guard Self.match(compiled, self.names.lazy.filter { !seen.contains($0) }, into: &set, steps: &steps) else { return }
        matches[matched.pattern] = set
    }
}
