/// A consumer group's topic-subscription regular expression (KIP-848 `SubscribedTopicRegex`),
/// matched against whole topic names in time linear in the name and the pattern: the pattern
/// is compiled to a Thompson NFA and simulated one name position at a time (RE2's approach;
/// Kafka matches with RE2/J). A client's pattern cannot make the coordinator backtrack under
/// its lock: with ICU (behind NSRegularExpression) `([a-z.]+)+X` took 0.5 s per 40-character
/// name, where ICU gives up and answers "no match", at every metadata refresh.
///
/// Syntax (RE2's, as much as topic names need): literal characters; `.`; classes
/// `[a-z0-9._-]` and `[^...]`; escapes `\d \D \w \W \s \S`, `\t \n \r \f \v` and any
/// escaped punctuation; groups `(...)` and `(?:...)`; alternation `|`; repetition `*`, `+`,
/// `?`, `{n}`, `{n,}`, `{n,m}` (n, m at most 1,000; a `?` or `+` after one is accepted: for a
/// whole-name match lazy, greedy and possessive agree); anchors `^` and `$`. A `{` that does
/// not start a repetition is a literal. Anything else (backreferences, lookaround, flags,
/// POSIX classes, `\b`) makes the pattern invalid (INVALID_REGULAR_EXPRESSION), as does a
/// pattern whose compilation costs more than `maxInstructions` (instructions, the ranges of
/// their character classes and the compiler's steps, so that compiling and the work per name
/// character are both bounded: at most that many range checks per character).
struct TopicPattern: Sendable {
    static let maxInstructions = 10_000
    static let maxRepeat = 1_000
    static let maxPatternBytes = 4 * maxInstructions

    /// Characters as ranges of Unicode scalar values, or everything outside them.
    struct CharClass: Sendable {
        var ranges: [ClosedRange<UInt32>]
        var negated = false

        static let any = CharClass(ranges: [], negated: true)
        static let digit = CharClass(ranges: [0x30...0x39])
        static let word = CharClass(ranges: [0x30...0x39, 0x41...0x5A, 0x5F...0x5F, 0x61...0x7A])
        static let space = CharClass(ranges: [0x09...0x0D, 0x20...0x20])

        func contains(_ c: UInt32) -> Bool { ranges.contains { $0.contains(c) } != negated }

        /// The same characters as plain ranges (for a negated escape inside brackets).
        var asRanges: [ClosedRange<UInt32>] {
            guard negated else { return ranges }
            var out: [ClosedRange<UInt32>] = []
            var next: UInt32 = 0
            for range in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
                if range.lowerBound > next { out.append(next...(range.lowerBound - 1)) }
                next = max(next, range.upperBound + 1)
            }
            if next <= 0x10FFFF { out.append(next...0x10FFFF) }
            return out
        }
    }

    private enum Instruction: Sendable {
        case char(CharClass)
        case split(Int, Int)
        case jump(Int)
        /// `^`: holds at the start of the name only.
        case start
        /// `$`: holds at the end of the name only.
        case end
        case match
    }

    private indirect enum Node {
        case empty
        case char(CharClass)
        case start
        case end
        case concat([Node])
        case alternate([Node])
        case repetition(Node, min: Int, max: Int?)
    }

    private struct Invalid: Error {}

    private let program: [Instruction]

    /// Nil when the pattern is not valid (or too large).
    init?(_ pattern: String) {
        // A pattern is parsed whole before its cost is counted, at ~100 bytes of memory per
        // character (under the group coordinator's lock): past this length it is refused
        // unparsed. Subscription patterns are short; this is 4 times the instruction limit.
        guard pattern.utf8.count <= Self.maxPatternBytes else { return nil }
        var parser = Parser(scalars: Array(pattern.unicodeScalars))
        var program: [Instruction] = []
        var cost = 0
        do {
            let node = try parser.alternation()
            guard parser.index == parser.scalars.count else { return nil }  // a stray ')'
            try Self.emit(node, into: &program, cost: &cost)
        } catch {
            return nil
        }
        program.append(.match)
        self.program = program
    }

    /// Instructions: at most this many steps a character (what a pattern can cost).
    var size: Int { program.count }

    /// Whether the whole name matches (Java's `matches()`, as Kafka uses).
    func matches(_ name: String) -> Bool {
        var steps = Int.max
        return matches(name, steps: &steps)!
    }

    /// `matches`, within `steps` (instructions followed and characters tested, each one step;
    /// what it took is taken off): nil when they run out first. Linear time is not cheap time:
    /// `.*` repeated 2,000 times keeps 4,000 instructions alive at every character, about
    /// 240,000 steps for a 60-character name.
    func matches(_ name: String, steps: inout Int) -> Bool? {
        steps -= 1 + program.count / 8  // (`seen` is made per name)
        let scalars = Array(name.unicodeScalars)
        var current: [Int] = []
        var next: [Int] = []
        var seen = [Int](repeating: -1, count: program.count)
        var stack: [Int] = []
        // Follows jumps, splits and anchors from `pc` at `position`, collecting the threads
        // that wait on a character (or matched) in `list`; each instruction once per position.
        func follow(_ pc: Int, at position: Int, into list: inout [Int]) {
            stack.append(pc)
            while let p = stack.popLast() {
                steps -= 1
                guard seen[p] != position else { continue }
                seen[p] = position
                switch program[p] {
                case .jump(let target): stack.append(target)
                case .split(let first, let second):
                    stack.append(second)
                    stack.append(first)
                case .start: if position == 0 { stack.append(p + 1) }
                case .end: if position == scalars.count { stack.append(p + 1) }
                case .char, .match: list.append(p)
                }
            }
        }
        follow(0, at: 0, into: &current)
        for (index, scalar) in scalars.enumerated() {
            if steps < 0 { return nil }
            next.removeAll(keepingCapacity: true)
            steps -= current.count
            for pc in current {
                if case .char(let set) = program[pc], set.contains(scalar.value) { follow(pc + 1, at: index + 1, into: &next) }
            }
            swap(&current, &next)
            if current.isEmpty { return false }
        }
        if steps < 0 { return nil }
        return current.contains { if case .match = program[$0] { true } else { false } }
    }

    private static func emit(_ node: Node, into program: inout [Instruction], cost: inout Int) throws {
        // Every call costs (an empty group repeated a thousand times a thousand times emits
        // nothing and would otherwise never stop), and so does every range a class checks.
        cost += 1
        guard cost <= maxInstructions, program.count <= maxInstructions else { throw Invalid() }
        switch node {
        case .empty: break
        case .char(let set):
            cost += set.ranges.count
            program.append(.char(set))
        case .start: program.append(.start)
        case .end: program.append(.end)
        case .concat(let nodes): for node in nodes { try emit(node, into: &program, cost: &cost) }
        case .alternate(let branches):
            var jumps: [Int] = []
            for (index, branch) in branches.enumerated() {
                guard index < branches.count - 1 else {
                    try emit(branch, into: &program, cost: &cost)
                    break
                }
                let split = program.count
                program.append(.split(split + 1, -1))
                try emit(branch, into: &program, cost: &cost)
                jumps.append(program.count)
                program.append(.jump(-1))
                program[split] = .split(split + 1, program.count)
            }
            for jump in jumps { program[jump] = .jump(program.count) }
        case .repetition(let body, let min, let max):
            for _ in 0..<min { try emit(body, into: &program, cost: &cost) }
            if let max {
                var splits: [Int] = []
                for _ in min..<max {
                    splits.append(program.count)
                    program.append(.split(program.count + 1, -1))
                    try emit(body, into: &program, cost: &cost)
                }
                for split in splits { program[split] = .split(split + 1, program.count) }
            } else {
                let loop = program.count
                program.append(.split(loop + 1, -1))
                try emit(body, into: &program, cost: &cost)
                program.append(.jump(loop))
                program[loop] = .split(loop + 1, program.count)
            }
        }
        guard cost <= maxInstructions, program.count <= maxInstructions else { throw Invalid() }
    }

    /// Recursive descent over the pattern's scalars.
    private struct Parser {
        let scalars: [Unicode.Scalar]
        var index = 0
        var depth = 0

        var peek: Unicode.Scalar? { index < scalars.count ? scalars[index] : nil }

        mutating func alternation() throws -> Node {
            var branches = [try concatenation()]
            while peek == "|" {
                index += 1
                branches.append(try concatenation())
            }
            return branches.count == 1 ? branches[0] : .alternate(branches)
        }

        mutating func concatenation() throws -> Node {
            var items: [Node] = []
            while let c = peek, c != "|", c != ")" { items.append(try repetition()) }
            return items.isEmpty ? .empty : items.count == 1 ? items[0] : .concat(items)
        }

        mutating func repetition() throws -> Node {
            var node = try atom()
            var repeated = false
            while let c = peek {
                let bounds: (Int, Int?)
                switch c {
                case "*": bounds = (0, nil)
                case "+": bounds = (1, nil)
                case "?": bounds = (0, 1)
                case "{":
                    guard let braces = try self.braces() else { return node }
                    bounds = braces
                default: return node
                }
                if c != "{" { index += 1 }
                guard !repeated else { throw Invalid() }  // `a**`: a bad repetition, as in RE2
                repeated = true
                node = .repetition(node, min: bounds.0, max: bounds.1)
                if peek == "?" || peek == "+" { index += 1 }  // lazy or possessive: the same here
            }
            return node
        }

        /// `{n}`, `{n,}` or `{n,m}` at `index` (consumed), or nil (nothing consumed: a literal `{`).
        mutating func braces() throws -> (Int, Int?)? {
            var i = index + 1
            func number() -> Int? {
                var value = 0
                var digits = 0
                while i < scalars.count, let digit = Int(String(scalars[i])), scalars[i].isASCII {
                    value = min(value * 10 + digit, Int(Int32.max))
                    digits += 1
                    i += 1
                }
                return digits > 0 ? value : nil
            }
            guard let low = number() else { return nil }
            var high: Int? = low
            if i < scalars.count, scalars[i] == "," {
                i += 1
                high = number()
            }
            guard i < scalars.count, scalars[i] == "}" else { return nil }
            guard low <= maxRepeat, (high ?? 0) <= maxRepeat, high.map({ $0 >= low }) ?? true else { throw Invalid() }
            index = i + 1
            return (low, high)
        }

        mutating func atom() throws -> Node {
            guard let c = peek else { throw Invalid() }
            index += 1
            switch c {
            case "(":
                if peek == "?" {
                    index += 1
                    guard peek == ":" else { throw Invalid() }  // flags, lookaround, named groups
                    index += 1
                }
                depth += 1
                guard depth <= 100 else { throw Invalid() }
                let inner = try alternation()
                guard peek == ")" else { throw Invalid() }
                index += 1
                depth -= 1
                return inner
            case "[": return .char(try charClass())
            case ".": return .char(.any)
            case "^": return .start
            case "$": return .end
            case "\\": return .char(try escape())
            case "*", "+", "?": throw Invalid()  // nothing to repeat
            default: return .char(CharClass(ranges: [c.value...c.value]))
            }
        }

        /// After a backslash.
        mutating func escape() throws -> CharClass {
            guard let c = peek else { throw Invalid() }
            index += 1
            switch c {
            case "d": return .digit
            case "D": return CharClass(ranges: CharClass.digit.ranges, negated: true)
            case "w": return .word
            case "W": return CharClass(ranges: CharClass.word.ranges, negated: true)
            case "s": return .space
            case "S": return CharClass(ranges: CharClass.space.ranges, negated: true)
            case "t": return CharClass(ranges: [0x09...0x09])
            case "n": return CharClass(ranges: [0x0A...0x0A])
            case "v": return CharClass(ranges: [0x0B...0x0B])
            case "f": return CharClass(ranges: [0x0C...0x0C])
            case "r": return CharClass(ranges: [0x0D...0x0D])
            default:
                // Escaped punctuation is itself; an escaped letter or digit means something
                // this engine does not do (\b, \1, \p{...}).
                guard c.isASCII, !c.properties.isAlphabetic, !("0"..."9").contains(c) else { throw Invalid() }
                return CharClass(ranges: [c.value...c.value])
            }
        }

        /// After `[`, up to and including its `]`.
        mutating func charClass() throws -> CharClass {
            var set = CharClass(ranges: [])
            if peek == "^" {
                set.negated = true
                index += 1
            }
            var first = true
            while true {
                guard let c = peek else { throw Invalid() }
                if c == "]" && !first {
                    index += 1
                    return set
                }
                first = false
                if c == "[" && index + 1 < scalars.count && scalars[index + 1] == ":" { throw Invalid() }  // POSIX classes
                index += 1
                let low: UInt32
                if c == "\\" {
                    let escaped = try escape()
                    guard escaped.ranges.count == 1, !escaped.negated, escaped.ranges[0].count == 1 else {
                        set.ranges += escaped.asRanges  // \d, \W, ... inside brackets
                        continue
                    }
                    low = escaped.ranges[0].lowerBound
                } else {
                    low = c.value
                }
                if peek == "-", index + 1 < scalars.count, scalars[index + 1] != "]" {
                    index += 1
                    guard let end = peek else { throw Invalid() }
                    index += 1
                    var high = end.value
                    if end == "\\" {
                        let escaped = try escape()
                        guard escaped.ranges.count == 1, !escaped.negated, escaped.ranges[0].count == 1 else { throw Invalid() }
                        high = escaped.ranges[0].lowerBound
                    }
                    guard low <= high else { throw Invalid() }
                    set.ranges.append(low...high)
                } else {
                    set.ranges.append(low...low)
                }
            }
        }
    }
}
