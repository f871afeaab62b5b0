import ArgumentParser
import Foundation
import Tidemark
import TidemarkStorage

/// `tidemark verify DIR [--repair]`: checks every batch, offset order and both indexes.
struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a data or partition directory: framing, CRCs, offset order, indexes.",
        discussion: """
            Exits 0 when everything is sound, 1 when a problem was found. What the broker fixes \
            by itself at its next start (after a crash: the unfinished last write, indexes to \
            rebuild) is printed as a note and is not a problem. With --repair, each damaged \
            partition gets a full crash recovery: its log is cut at the first torn or corrupt \
            batch (batches after it are lost, as they would be after a crash) and its indexes \
            are rebuilt; it refuses to run while a broker holds the data directory.
            """)

    @Argument(help: "A data directory or one partition directory.") var directory: String
    @Flag(help: "Truncate torn or corrupt tails and rebuild indexes.") var repair = false

    func validate() throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ValidationError("no such directory: \(directory)")
        }
    }

    /// Partition directories: the directory itself if it is one, else its subdirectories that
    /// are (one whose segment files are all gone included: it was skipped, and verify said ok),
    /// and those its `topics.json` lists (`listed`: one missing, emptied or unreadable was not
    /// mentioned, and verify said ok; the broker then starts it empty).
    /// `unlisted`: partition directories topics.json does not list (a topic it lacks, or a
    /// partition past its count: a topics.json restored from an older copy), which a broker
    /// does not serve: they were checked and said ok as if served.
    func partitions() throws -> (found: [String], listed: Set<String>, unlisted: Set<String>) {
        if LogVerifier.isPartitionDirectory(directory) { return ([directory], [], []) }
        let listed = Set(try Broker.listedPartitionDirectories(dataDirectory: directory) ?? [])
        let unlisted = Set(try Broker.unlistedPartitionDirectories(dataDirectory: directory))
        let found = try FileManager.default.contentsOfDirectory(atPath: directory)
            .map { directory + "/" + $0 }
            .filter { LogVerifier.isPartitionDirectory($0) }
        return (Array(Set(found).union(listed)).sorted(), listed, unlisted)
    }

    /// Why a partition directory `topics.json` lists cannot be checked (nil: it can).
    static func unusable(_ partition: String) -> String? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: partition, isDirectory: &isDirectory), isDirectory.boolValue else {
            return "missing: topics.json lists it, and the broker would start it empty (its records are gone)"
        }
        do {
            _ = try LogVerifier.segmentFiles(in: partition)
        } catch {
            return "cannot be read: \(error)"
        }
        if !LogVerifier.isPartitionDirectory(partition) {
            return "holds no segment: topics.json lists it, and the broker would start it empty (its records are gone)"
        }
        return nil
    }

    func run() throws {
        // Repair changes files: never under a running broker. A read-only check goes on.
        var lock: SharedFile? = nil
        if repair { lock = try DataDirectoryLock.acquire(for: directory) } else { DataDirectoryLock.warnIfLive(directory) }
        defer { lock.map(DurableFile.unlock) }
        let (partitions, listed, unlisted) = try partitions()
        guard !partitions.isEmpty else { throw CLIError("no segments under \(directory)") }
        var problems = 0
        for partition in partitions {
            let name = String(partition.split(separator: "/").last ?? "")
            if listed.contains(partition), let why = Self.unusable(partition) {
                problems += 1
                Output.line("PROBLEMS \(partition):")
                Output.line("  \(why)")
                continue
            }
            let report: LogVerifier.Report
            do {
                report = try LogVerifier.verify(partitionDirectory: partition) { Output.progress(name, $0, $1) }
            } catch {
                problems += 1
                Output.line("PROBLEMS \(partition):")
                Output.line("  cannot be read: \(error)")
                continue
            }
            if unlisted.contains(partition) && report.isHealthy && report.records == 0 {
                // Empty: what a topic creation a crash interrupted leaves (its directories made,
                // topics.json not yet written). Nothing is out of reach: a note, not a problem.
                Output.line("ok \(partition): no records")
                Output.line(
                    "  note: topics.json does not list this partition and it holds nothing (a topic creation or deletion a crash "
                        + "interrupted): remove it, or creating the topic removes it")
                continue
            }
            if unlisted.contains(partition) {
                // Checked as any other, but a problem whatever the check says: its records are
                // out of reach (said once, with the check's own findings; repair cannot fix it).
                problems += 1
                Output.line("PROBLEMS \(partition):")
                Output.line(
                    "  topics.json does not list this partition: a broker does not serve its \(report.records) records, and creating "
                        + "the topic or its partitions again removes them (give topics.json the partitions, or remove the directory)")
                if report.isHealthy {
                    for note in report.notes { Output.line("  note: \(note)") }
                    continue
                }
            }
            if report.isHealthy {
                Output.line("ok \(partition): \(report.segments) segments, \(report.batches) batches, \(report.records) records, \(report.bytes) bytes")
                for note in report.notes { Output.line("  note: \(note)") }
                continue
            }
            problems += report.problems.count
            if !unlisted.contains(partition) { Output.line("PROBLEMS \(partition):") }
            for problem in report.problems { Output.line("  \(problem)") }
            for note in report.notes { Output.line("  note: \(note)") }
            if repair {
                let recovery = try LogVerifier.repair(partitionDirectory: partition)
                let after = try LogVerifier.verify(partitionDirectory: partition)
                // What was cut, in offsets (where the log now ends, segments removed), not only bytes.
                for loss in recovery.losses { Output.line("  lost: \(loss)") }
                Output.line(
                    "  repaired: cut \(recovery.truncatedBytes) bytes, removed segments \(recovery.deletedSegments), "
                        + "indexes rebuilt; now \(after.isHealthy ? "ok" : "still \(after.problems.count) problems")")
                if after.isHealthy { problems -= report.problems.count }
            }
        }
        if problems > 0 { throw ExitCode(1) }
    }
}
