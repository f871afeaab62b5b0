import Foundation
import Testing

@testable import Tidemark

/// Subscription regexes matched in linear time (`TopicPattern`).
@Suite struct TopicPatternTests {
    /// Whole-name matches agree with a backtracking engine (ICU, anchored) on patterns of the
    /// syntax both read.
    @Test func agreesWithABacktrackingEngine() throws {
        let patterns = [
            "orders", "orders\\..*", "payments|payments-retry", "[a-c]+-\\d{2}", "(?:eu|us)-orders", "[^.]+", "a{2,3}",
            "a{2,}", "a{0}b", "^orders$", "\\w+_\\W", "t[0-9]*", ".*", "", "(a|ab)(c|bcd)(d*)", "[\\d.]+", "[-a]+",
            "[a-]+", "[]a]+", "a+?b", "(ab)*", "(a*)*", "\\.", "a.c", "[A-Z][a-z]*", "(x|y|z){1,4}", "dlq\\.(orders|billing)",
        ]
        let names = [
            "orders", "orders2", "orders.eu", "ordersXeu", "payments", "payments-retry", "payments-retry-2", "abc-12", "abd-12",
            "abc-123", "eu-orders", "us-orders", "abc", "a.b", "a", "aa", "aaa", "aaaa", "b", "x{", "ab_-", "t", "t42", "",
            "abcd", "abcbcdd", "1.2.3", "-a-", "]a", "aab", "abab", ".", "abc", "Orders", "xyzx", "xyzxy", "dlq.orders", "dlq.other",
        ]
        for pattern in patterns {
            let ours = try #require(TopicPattern(pattern), "\(pattern)")
            let icu = try NSRegularExpression(pattern: "^(?:" + pattern + ")$")
            for name in names {
                let expected = icu.firstMatch(in: name, range: NSRange(name.startIndex..<name.endIndex, in: name)) != nil
                #expect(ours.matches(name) == expected, "\(pattern) on \(name)")
            }
        }
    }

    /// A `{` that starts no repetition is a literal, as in RE2 (ICU refuses it).
    @Test func aBraceThatStartsNoRepetitionIsALiteral() throws {
        let pattern = try #require(TopicPattern("x{"))
        #expect(pattern.matches("x{") && !pattern.matches("x"))
        #expect(try #require(TopicPattern("a{,2}")).matches("a{,2}"))
    }

    @Test func patternsItDoesNotReadAreInvalid() {
        for pattern in ["([unclosed", "a)", "*a", "a**", "\\1", "\\b", "(?i)abc", "(?=a)", "[[:alpha:]]", "a{2000}", "[z-a]",
                        "(a{1000}){1000}", "[abc", "\\", "(?:(?:(?:(?:){1000}){1000}){1000}){1000}",
                        "(?:[" + String(repeating: "a", count: 30_000) + "]*){1000}"] {
            #expect(TopicPattern(pattern) == nil, "\(pattern)")
        }
    }

    /// A pattern a backtracking engine needs exponential time for is answered at once.
    @Test func catastrophicPatternsAreLinear() throws {
        let name = String(repeating: "a", count: 249)
        let started = ContinuousClock.now
        for pattern in ["([a-z.]+)+X", "(a*)*b", "(a|aa)+c", "(.*a){20}X"] {
            #expect(try #require(TopicPattern(pattern)).matches(name) == false)
        }
        #expect(ContinuousClock.now - started < .seconds(2))
    }

    /// A pattern past `maxPatternBytes` is refused before it is parsed (a 100 MB one took
    /// gigabytes to parse, under the group coordinator's lock), even one whose compiled cost
    /// is small (a body repeated `{0}` times is never emitted); shorter ones still compile.
    @Test func overlongPatternsAreRefusedUnparsed() throws {
        let long = String(repeating: "a", count: 2_000)
        #expect(TopicPattern(long)?.matches(long) == true)
        let body = String(repeating: "a", count: 1_000)
        #expect(TopicPattern("(?:\(body)){0}b")?.matches("b") == true)
        #expect(TopicPattern("(?:" + String(repeating: "a", count: TopicPattern.maxPatternBytes) + "){0}b") == nil)
    }
}
