/// server.properties syntax: how a Kafka broker's configuration file is read (Java's
/// `java.util.Properties`), apart from what its settings mean (`BrokerConfig.setAll`).
extension BrokerConfig {
    /// Parses server.properties as Java's `Properties.load` reads it, which is how Kafka reads
    /// it, but for the file's encoding (UTF-8 here; Kafka's loader reads ISO-8859-1, so
    /// anything past ASCII was best written as `\uXXXX` for it, which reads the same here):
    /// lines end with LF, CRLF or CR; a line whose first non-blank character is `#` or `!` is a
    /// comment (never continued); a line ending in an odd number of backslashes goes on in the
    /// next, whose leading blanks are dropped (a line that is only such a backslash leaves the
    /// next to be read as a line of its own: blank, a comment, or a setting); the key ends at
    /// its first unescaped `=`, `:`, space, tab or form feed, then come blanks, at most one
    /// `=` or `:`, blanks, and the value. In keys and values `\t`, `\n`, `\r`, `\f` and
    /// `\uXXXX` (UTF-16, surrogate pairs joined; a lone half is U+FFFD, which Java would keep
    /// as it is) are decoded, and a backslash before any other character is dropped
    /// (`C:\\data` is `C:\data`). Values are then trimmed as Java's `trim()` trims (U+0000 to
    /// U+0020), as Kafka's ConfigDef trims them. A malformed `\u` escape is refused, as Java
    /// refuses it. Read by Unicode scalars, as Java reads UTF-16 units: a combining mark after
    /// a separator does not hide it.
    public static func properties(_ text: String) throws(Failure) -> [(String, String)] {
        typealias Scalars = [Unicode.Scalar]
        func isBlank(_ c: Unicode.Scalar) -> Bool { c == " " || c == "\t" || c == "\u{0C}" }
        func isComment(_ line: ArraySlice<Unicode.Scalar>) -> Bool { line.first == "#" || line.first == "!" }
        func trailingBackslashes(_ line: Scalars) -> Int { line.reversed().prefix(while: { $0 == "\\" }).count }
        // Physical lines, by scalars.
        var lines: [Scalars] = [[]]
        var previousWasCR = false
        for c in text.unicodeScalars {
            if c == "\n" && previousWasCR {
                previousWasCR = false
                continue
            }
            previousWasCR = c == "\r"
            if c == "\n" || c == "\r" { lines.append([]) } else { lines[lines.count - 1].append(c) }
        }
        var result: [(String, String)] = []
        var next = 0
        while next < lines.count {
            let first = lines[next].drop(while: isBlank)
            next += 1
            if first.isEmpty || isComment(first) { continue }
            var logical = Scalars(first)
            while trailingBackslashes(logical) % 2 == 1 {
                logical.removeLast()
                guard next < lines.count else { break }
                let continued = lines[next].drop(while: isBlank)
                if logical.isEmpty && (continued.isEmpty || isComment(continued)) { break }  // read as a line of its own
                next += 1
                logical += continued
            }
            if logical.isEmpty { continue }
            // The key: up to the first separator no backslash escapes.
            var index = 0
            while index < logical.count {
                let c = logical[index]
                if c == "\\" {
                    index += 2
                    continue
                }
                if c == "=" || c == ":" || isBlank(c) { break }
                index += 1
            }
            index = min(index, logical.count)
            let key = try unescapeProperty(logical[..<index])
            var rest = logical[index...].drop(while: isBlank)
            if rest.first == "=" || rest.first == ":" { rest = rest.dropFirst().drop(while: isBlank) }
            var value = try unescapeProperty(rest).unicodeScalars[...]
            while let c = value.first, c.value <= 0x20 { value = value.dropFirst() }
            while let c = value.last, c.value <= 0x20 { value = value.dropLast() }
            result.append((key, String(String.UnicodeScalarView(value))))
        }
        return result
    }

    /// Java Properties' escapes, decoded (see `properties`).
    static func unescapeProperty(_ raw: ArraySlice<Unicode.Scalar>) throws(Failure) -> String {
        var out = String.UnicodeScalarView()
        var units: [UInt16] = []  // \u escapes in a row, joined as UTF-16
        func flushUnits() {
            guard !units.isEmpty else { return }
            // (A lone surrogate half is no scalar: U+FFFD in its place.)
            out.append(contentsOf: String(decoding: units, as: UTF16.self).unicodeScalars)
            units.removeAll()
        }
        var index = raw.startIndex
        while index < raw.endIndex {
            let c = raw[index]
            index += 1
            guard c == "\\" else {
                flushUnits()
                out.append(c)
                continue
            }
            guard index < raw.endIndex else { break }
            let escaped = raw[index]
            index += 1
            if escaped == "u" {
                let hex = raw[index..<min(index + 4, raw.endIndex)]
                index = min(index + 4, raw.endIndex)
                guard hex.count == 4, hex.allSatisfy(\.properties.isASCIIHexDigit), let unit = UInt16(String(String.UnicodeScalarView(hex)), radix: 16) else {
                    throw Failure(description: "'\(String(String.UnicodeScalarView(raw)))': malformed \\uxxxx encoding")
                }
                units.append(unit)
                continue
            }
            flushUnits()
            switch escaped {
            case "t": out.append("\t")
            case "n": out.append("\n")
            case "r": out.append("\r")
            case "f": out.append("\u{0C}")
            default: out.append(escaped)
            }
        }
        flushUnits()
        return String(out)
    }
}
