import Testing
import TidemarkServer

/// server.properties is read as Java's `Properties.load` reads it (Kafka reads it so): a file
/// written for Kafka, with Java's escapes and continuations, means here what it means there.
@Suite struct PropertiesFileTests {
    func parsed(_ text: String) throws -> [String] {
        try BrokerConfig.properties(text).map { "\($0.0)=\($0.1)" }
    }

    @Test func separatorsCommentsAndContinuations() throws {
        #expect(try parsed("a=1\nb: 2\nc 3\n  d\t=\t4  \n\n# e=5\n  ! f=6\ng\n") == ["a=1", "b=2", "c=3", "d=4", "g="])
        // Windows and old-Mac line ends.
        #expect(try parsed("a=1\r\nb=2\rc=3") == ["a=1", "b=2", "c=3"])
        // A continued value; the next line's leading blanks are dropped.
        #expect(try parsed("listeners=PLAINTEXT://a:1,\\\n    PLAINTEXT://b:2\nx=y") == ["listeners=PLAINTEXT://a:1,PLAINTEXT://b:2", "x=y"])
        // An even number of trailing backslashes is a literal backslash, not a continuation.
        #expect(try parsed("log.dirs=C:\\\\data\\\\\nnext=1") == ["log.dirs=C:\\data\\", "next=1"])
        // A comment ending in a backslash does not swallow the next line.
        #expect(try parsed("# note \\\nnum.partitions=3") == ["num.partitions=3"])
        // A continuation at the end of the file ends the value.
        #expect(try parsed("a=1\\") == ["a=1"])
        // A line that is only a continuation leaves the next to be read as a line of its own.
        #expect(try parsed("\\\n\nnext=1") == ["next=1"])
        #expect(try parsed("  \\\n# a comment\nnext=2") == ["next=2"])
        // A blank line after a continuation ends the value.
        #expect(try parsed("a=1\\\n\nb=2") == ["a=1", "b=2"])
        // Trimmed as Java's trim(): controls too, not U+00A0.
        #expect(try parsed("a=\u{1}v\u{A0}") == ["a=v\u{A0}"])
        // Separators are found by scalar: a combining mark after one does not hide it.
        #expect(try parsed("a=\u{301}b") == ["a=\u{301}b"])
    }

    @Test func escapesAreDecoded() throws {
        #expect(try parsed("a=\\u0041\\u00e9\nb=x\\ty\nc=\\d\\:\\=") == ["a=Aé", "b=x\ty", "c=d:="])
        // A key's escaped separator is part of the key.
        #expect(try parsed("we\\=ird\\ key=v") == ["we=ird key=v"])
        // A surrogate pair in two escapes is one character.
        #expect(try parsed("emoji=\\uD83D\\uDE00") == ["emoji=😀"])
        // A lone surrogate half (Java keeps it; a Swift string cannot) is U+FFFD.
        #expect(try parsed("a=\\uD83Dx") == ["a=\u{FFFD}x"])
        for malformed in ["a=\\u12", "a=\\u12G4", "a=\\u+1A2"] {
            #expect(throws: BrokerConfig.Failure.self, "\(malformed)") { try BrokerConfig.properties(malformed) }
        }
    }

    /// Kafka 4.1's `group.consumer.migration.policy` (bidirectional by default) asks for online
    /// conversion between group protocols, which Tidemark does not do: said as such at start,
    /// not listed among the settings that only have no use on one node.
    @Test func aMigrationPolicyIsSaidToBehaveAsDisabled() throws {
        var config = BrokerConfig()
        try config.set("group.consumer.migration.policy", "bidirectional")
        #expect(config.behavesOtherwise.count == 1 && config.behavesOtherwise[0].contains("'disabled'"))
        #expect(!config.withoutEffect.contains("group.consumer.migration.policy"))
        var disabled = BrokerConfig()
        try disabled.set("group.consumer.migration.policy", "disabled")
        #expect(disabled.behavesOtherwise.isEmpty)
    }
}
