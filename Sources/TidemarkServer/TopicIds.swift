import Foundation
import Tidemark
import TidemarkWire

extension WireUUID {
    /// The wire form of a topic id.
    init(_ uuid: UUID) {
        let b = uuid.uuid
        let high = [b.0, b.1, b.2, b.3, b.4, b.5, b.6, b.7].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let low = [b.8, b.9, b.10, b.11, b.12, b.13, b.14, b.15].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        self.init(high: Int64(bitPattern: high), low: Int64(bitPattern: low))
    }

    /// The topic id as a UUID.
    var uuid: UUID {
        let h = UInt64(bitPattern: high)
        let l = UInt64(bitPattern: low)
        func byte(_ value: UInt64, _ index: Int) -> UInt8 { UInt8(truncatingIfNeeded: value >> (56 - 8 * index)) }
        return UUID(
            uuid: (
                byte(h, 0), byte(h, 1), byte(h, 2), byte(h, 3), byte(h, 4), byte(h, 5), byte(h, 6), byte(h, 7),
                byte(l, 0), byte(l, 1), byte(l, 2), byte(l, 3), byte(l, 4), byte(l, 5), byte(l, 6), byte(l, 7)
            ))
    }
}

extension RequestRouter {
    /// The wire id of a topic (zero when it is gone).
    func wireId(of topic: String) -> WireUUID {
        (try? broker.topicId(of: topic)).map(WireUUID.init) ?? .zero
    }

    /// The topic a wire id names, or nil (UNKNOWN_TOPIC_ID) when none has it.
    func topicName(for id: WireUUID) -> String? {
        id.isZero ? nil : broker.topicName(forId: id.uuid)
    }
}
