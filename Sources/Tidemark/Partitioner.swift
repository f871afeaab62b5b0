/// Kafka's default partitioner for keyed records: murmur2 of the key bytes, made positive,
/// modulo the partition count. A keyed record lands in the partition a Kafka client picks.
public enum KafkaPartitioner {
    /// Kafka's 32-bit murmur2 (seed 0x9747b28c), as in its Java client's `Utils.murmur2`.
    public static func murmur2<Bytes: Collection>(_ data: Bytes) -> Int32 where Bytes.Element == UInt8 {
        let bytes = Array(data)
        let length = bytes.count
        let m: UInt32 = 0x5BD1_E995
        var h: UInt32 = 0x9747_B28C ^ UInt32(truncatingIfNeeded: length)
        var i = 0
        while i + 4 <= length {
            var k = UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24
            k = k &* m
            k ^= k >> 24
            k = k &* m
            h = h &* m
            h ^= k
            i += 4
        }
        let rest = length & 3
        if rest == 3 { h ^= UInt32(bytes[i + 2]) << 16 }
        if rest >= 2 { h ^= UInt32(bytes[i + 1]) << 8 }
        if rest >= 1 {
            h ^= UInt32(bytes[i])
            h = h &* m
        }
        h ^= h >> 13
        h = h &* m
        h ^= h >> 15
        return Int32(bitPattern: h)
    }

    /// The partition for `key` among `partitionCount`.
    public static func partition<Bytes: Collection>(forKey key: Bytes, partitionCount: Int) -> Int where Bytes.Element == UInt8 {
        precondition(partitionCount > 0)
        return Int(UInt32(bitPattern: murmur2(key)) & 0x7FFF_FFFF) % partitionCount
    }
}
