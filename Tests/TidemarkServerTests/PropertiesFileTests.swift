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
    }

    @Test func escapesAreDecoded() throws {
        #expect(try parsed("a=\\u0041\\u00e9\nb=x\\ty\nc=\\d\\:\\=") == ["a=Aé", "b=x\ty", "c=d:="])
        // A key's escaped separator is part of the key.
        #expect(try parsed("we\\=ird\\ key=v") == ["we=ird key=v"])
        // A surrogate pair in two escapes is one character.
        #expect(try parsed("emoji=\\uD83D\\uDE00") == ["emoji=😀"])
        for malformed in ["a=\\u12", "a=\\u12G4", "a=\\uD83D", "a=\\uDE00x"] {
            #expect(throws: BrokerConfig.Failure.self, "\(malformed)") { try BrokerConfig.properties(malformed) }
        }
    }
}
