import Foundation
import Synchronization
import TestSupport
import Testing
@testable import TidemarkStorage

/// `DirectoryNames` reads each name through a pointer into its readdir record, never by
/// copying the record: a copy of `d_name` read the declared 256 bytes past a short record's
/// end, and a start on partitions of 700 or more segment files crashed (SIGSEGV) one time in
/// five (hunt: 4 of 20 starts on such a data directory; none of 40 with this reader).
@Suite struct DirectoryNamesTests {
    /// Every name, of every length from 1 to 255 bytes (the longest a name may be), among more
    /// than a getdents buffer holds, listed exactly, from threads listing at once.
    @Test func everyNameOfEveryLengthIsListed() throws {
        let dir = TemporaryDirectory()
        var expected: Set<String> = []
        for length in 1...255 {
            for variant in 0..<4 {
                let name = String(repeating: Character(UnicodeScalar(UInt8(97 + variant))), count: length)
                expected.insert(name)
                #expect(FileManager.default.createFile(atPath: dir.path + "/" + name, contents: nil))
            }
        }
        #expect(Set(try DirectoryNames.read(dir.path)) == expected)
        let lists = Mutex<[Set<String>]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<20 {
                let names = Set((try? DirectoryNames.read(dir.path)) ?? [])
                lists.withLock { $0.append(names) }
            }
        }
        #expect(lists.withLock { $0.allSatisfy { $0 == expected } })
        #expect(throws: StorageError.self) { try DirectoryNames.read(dir.path + "/missing") }
    }
}
