/// Where a share group starts reading a partition it has no state for (Kafka's
/// `share.auto.offset.reset`): `earliest`, `latest`, or `by_duration:<ISO-8601 duration>`
/// (KIP-1106): the first record whose timestamp is at or after now minus the duration, or the
/// log's end when no record is that recent.
public enum ShareStartPolicy: Sendable, Equatable {
    case earliest
    case latest
    case byDuration(milliseconds: Int64)

    public init?(_ value: String) {
        switch value {
        case "earliest": self = .earliest
        case "latest": self = .latest
        default:
            let prefix = "by_duration:"
            guard value.hasPrefix(prefix), let ms = Self.durationMilliseconds(String(value.dropFirst(prefix.count))) else {
                return nil
            }
            self = .byDuration(milliseconds: ms)
        }
    }

    /// An ISO-8601 duration as Java's `Duration.parse` reads it (`PnDTnHnMn.nS`: days of 24
    /// hours, then hours, minutes and seconds with up to 9 decimals, each optional, at least
    /// one present, case-insensitive, a sign on the whole or on each part), in milliseconds
    /// (fractions below one cut); nil when it is not one, is negative (Kafka refuses those),
    /// or does not fit.
    static func durationMilliseconds(_ text: String) -> Int64? {
        // ASCII letters only are folded (Java's pattern is ASCII: "ſ" is not an "S").
        var chars = text.map { c -> Character in c.isASCII ? Character(c.uppercased()) : c }
        var negative = false
        if let first = chars.first, first == "-" || first == "+" {
            negative = first == "-"
            chars.removeFirst()
        }
        guard chars.first == "P" else { return nil }
        chars.removeFirst()
        var total: Int64 = 0
        // Below a millisecond, with its sign: "PT-0.0001S" is negative (Java refuses it).
        var belowMs: Int64 = 0
        var inTime = false
        var parts = 0
        var seenUnits: Set<Character> = []
        var index = 0
        func add(_ amount: Int64, _ unitMs: Int64) -> Bool {
            let (scaled, over) = amount.multipliedReportingOverflow(by: unitMs)
            guard !over else { return false }
            let (sum, overSum) = total.addingReportingOverflow(scaled)
            guard !overSum else { return false }
            total = sum
            return true
        }
        while index < chars.count {
            if chars[index] == "T" {
                guard !inTime else { return nil }
                inTime = true
                index += 1
                guard index < chars.count else { return nil }  // "PT" with nothing after
                continue
            }
            var sign: Int64 = 1
            if chars[index] == "-" || chars[index] == "+" {
                sign = chars[index] == "-" ? -1 : 1
                index += 1
            }
            let digitsStart = index
            while index < chars.count, chars[index].isASCII, chars[index].isNumber { index += 1 }
            guard index > digitsStart, let whole = Int64(String(chars[digitsStart..<index])) else { return nil }
            var fractionMs: Int64 = 0
            if index < chars.count, chars[index] == "." || chars[index] == "," {
                index += 1
                let fractionStart = index
                while index < chars.count, chars[index].isASCII, chars[index].isNumber { index += 1 }
                let digits = chars[fractionStart..<index]
                guard digits.count <= 9, index < chars.count, chars[index] == "S", inTime else { return nil }
                let padded = String(digits) + String(repeating: "0", count: 9 - digits.count)
                let nanos = Int64(padded) ?? 0
                fractionMs = nanos / 1_000_000
                belowMs += sign * (nanos % 1_000_000)
            }
            guard index < chars.count else { return nil }
            let unit = chars[index]
            index += 1
            let unitMs: Int64
            switch (unit, inTime) {
            case ("D", false): unitMs = 86_400_000
            case ("H", true): unitMs = 3_600_000
            case ("M", true): unitMs = 60_000
            case ("S", true): unitMs = 1_000
            default: return nil
            }
            // Each unit once, in order (Java's pattern).
            guard seenUnits.insert(unit).inserted else { return nil }
            let order: [Character] = ["D", "H", "M", "S"]
            guard seenUnits.allSatisfy({ order.firstIndex(of: $0)! <= order.firstIndex(of: unit)! }) else { return nil }
            guard add(sign * whole, unitMs), add(sign * fractionMs, 1) else { return nil }
            parts += 1
        }
        guard parts > 0 else { return nil }
        if negative { (total, belowMs) = (-total, -belowMs) }
        return total > 0 || (total == 0 && belowMs >= 0) ? total : nil
    }
}
