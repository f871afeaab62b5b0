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
    /// one present, ASCII letters of either case, a sign on the whole or on each part), in
    /// milliseconds (fractions below one cut; past Int64's milliseconds, Int64.max); nil when
    /// it is not one, is negative (Kafka refuses those), or its seconds do not fit an Int64
    /// (Java refuses those too).
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
        var seconds: Int64 = 0
        var nanos: Int64 = 0
        var inTime = false
        var lastUnit = -1
        var index = 0
        func add(_ amount: Int64, times unit: Int64) -> Bool {
            let (scaled, over) = amount.multipliedReportingOverflow(by: unit)
            let (sum, overSum) = seconds.addingReportingOverflow(scaled)
            guard !over, !overSum else { return false }
            seconds = sum
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
            var fraction: Int64 = 0
            if index < chars.count, chars[index] == "." || chars[index] == "," {
                index += 1
                let fractionStart = index
                while index < chars.count, chars[index].isASCII, chars[index].isNumber { index += 1 }
                let digits = chars[fractionStart..<index]
                guard digits.count <= 9, index < chars.count, chars[index] == "S", inTime else { return nil }
                fraction = Int64(String(digits) + String(repeating: "0", count: 9 - digits.count)) ?? 0
            }
            guard index < chars.count else { return nil }
            let unit: (order: Int, seconds: Int64)
            switch (chars[index], inTime) {
            case ("D", false): unit = (0, 86_400)
            case ("H", true): unit = (1, 3_600)
            case ("M", true): unit = (2, 60)
            case ("S", true): unit = (3, 1)
            default: return nil
            }
            index += 1
            // Each unit once, in order (Java's pattern).
            guard unit.order > lastUnit else { return nil }
            lastUnit = unit.order
            guard add(sign * whole, times: unit.seconds) else { return nil }
            nanos += sign * fraction
        }
        guard lastUnit >= 0 else { return nil }
        if negative {
            guard seconds != .min else { return nil }
            (seconds, nanos) = (-seconds, -nanos)
        }
        // Normalized as Java's Duration (nanoseconds in 0..<1e9): negative when seconds are.
        if nanos < 0 {
            guard seconds != .min else { return nil }
            seconds -= 1
            nanos += 1_000_000_000
        }
        guard seconds >= 0 else { return nil }
        let (ms, over) = seconds.multipliedReportingOverflow(by: 1_000)
        guard !over else { return .max }
        let (total, overTotal) = ms.addingReportingOverflow(nanos / 1_000_000)
        return overTotal ? .max : total
    }
}
