// Access control. DescribeAcls (29), CreateAcls (30), DeleteAcls (31): v1-3, the versions Kafka 4.1 serves,
// and v0 (no pattern types), which KIP-896 removed but sarama configured for Kafka 1.x-2.x
// still sends; flexible from v2. A node without an authorizer answers each with
// SECURITY_DISABLED, as Kafka does; the codecs read every field so that a request of any
// size is read whole and answered. DescribeClientQuotas (48) and DescribeUserScramCredentials
// (50), which operators' tools (kafka-configs) call to list what is set: none is, here.

/// One ACL binding filter, as DescribeAcls' request and DeleteAcls' filters carry it:
/// resource_type_filter i8, resource_name_filter nullable string, pattern_type_filter i8
/// (v1+), principal_filter nullable string, host_filter nullable string, operation i8,
/// permission_type i8.
public struct AclFilter: Sendable, Equatable {
    public var resourceType: Int8 = 1
    public var resourceName: String? = nil
    public var patternType: Int8 = 3
    public var principal: String? = nil
    public var host: String? = nil
    public var operation: Int8 = 1
    public var permissionType: Int8 = 1
    public init() {}

    mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.int8(&resourceType, "resource_type_filter")
        try c.nullableString(&resourceName, "resource_name_filter")
        if version >= 1 { try c.int8(&patternType, "pattern_type_filter") }
        try c.nullableString(&principal, "principal_filter")
        try c.nullableString(&host, "host_filter")
        try c.int8(&operation, "operation")
        try c.int8(&permissionType, "permission_type")
    }
}

/// DescribeAcls (29) request v0-3: one `AclFilter` (its fields at the top level).
public struct DescribeAclsRequest: KafkaMessage {
    public var filter = AclFilter()
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try filter.code(&c, version: version)
        try c.taggedFields()
    }
}

/// DescribeAcls response v0-3: throttle_time_ms, error_code, error_message, resources
/// [resource_type i8, resource_name, pattern_type i8 (v1+), acls [principal, host, operation
/// i8, permission_type i8]].
public struct DescribeAclsResponse: KafkaMessage {
    public struct Acl: Sendable, Equatable {
        public var principal = ""
        public var host = ""
        public var operation: Int8 = 0
        public var permissionType: Int8 = 0
        public init() {}
    }
    public struct Resource: Sendable, Equatable {
        public var resourceType: Int8 = 0
        public var resourceName = ""
        public var patternType: Int8 = 3
        public var acls: [Acl] = []
        public init() {}
    }
    public var throttleTimeMs: Int32 = 0
    public var errorCode: Int16 = 0
    public var errorMessage: String? = nil
    public var resources: [Resource] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.int32(&throttleTimeMs, "throttle_time_ms")
        try c.int16(&errorCode, "error_code")
        try c.nullableString(&errorMessage, "error_message")
        try c.array(&resources, "resources", make: { Resource() }) { (c: inout WireCoder, r: inout Resource) throws(WireError) in
            try c.int8(&r.resourceType, "resource_type")
            try c.string(&r.resourceName, "resource_name")
            if version >= 1 { try c.int8(&r.patternType, "pattern_type") }
            try c.array(&r.acls, "acls", make: { Acl() }) { (c: inout WireCoder, a: inout Acl) throws(WireError) in
                try c.string(&a.principal, "principal")
                try c.string(&a.host, "host")
                try c.int8(&a.operation, "operation")
                try c.int8(&a.permissionType, "permission_type")
                try c.taggedFields()
            }
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// One ACL binding, as CreateAcls' creations and DeleteAcls' matches carry it:
/// resource_type i8, resource_name, pattern_type i8 (v1+), principal, host, operation i8,
/// permission_type i8.
public struct AclBinding: Sendable, Equatable {
    public var resourceType: Int8 = 0
    public var resourceName = ""
    public var patternType: Int8 = 3
    public var principal = ""
    public var host = ""
    public var operation: Int8 = 0
    public var permissionType: Int8 = 0
    public init() {}

    mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.int8(&resourceType, "resource_type")
        try c.string(&resourceName, "resource_name")
        if version >= 1 { try c.int8(&patternType, "pattern_type") }
        try c.string(&principal, "principal")
        try c.string(&host, "host")
        try c.int8(&operation, "operation")
        try c.int8(&permissionType, "permission_type")
    }
}

/// CreateAcls (30) request v0-3: creations [`AclBinding`].
public struct CreateAclsRequest: KafkaMessage {
    public var creations: [AclBinding] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.array(&creations, "creations", make: { AclBinding() }) { (c: inout WireCoder, k: inout AclBinding) throws(WireError) in
            try k.code(&c, version: version)
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// CreateAcls response v0-3: throttle_time_ms, results [error_code, error_message], one per
/// creation in order.
public struct CreateAclsResponse: KafkaMessage {
    public struct Result: Sendable, Equatable {
        public var errorCode: Int16 = 0
        public var errorMessage: String? = nil
        public init(errorCode: Int16 = 0, errorMessage: String? = nil) {
            self.errorCode = errorCode
            self.errorMessage = errorMessage
        }
    }
    public var throttleTimeMs: Int32 = 0
    public var results: [Result] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.int32(&throttleTimeMs, "throttle_time_ms")
        try c.array(&results, "results", make: { Result() }) { (c: inout WireCoder, r: inout Result) throws(WireError) in
            try c.int16(&r.errorCode, "error_code")
            try c.nullableString(&r.errorMessage, "error_message")
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// DeleteAcls (31) request v0-3: filters [`AclFilter`].
public struct DeleteAclsRequest: KafkaMessage {
    public var filters: [AclFilter] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.array(&filters, "filters", make: { AclFilter() }) { (c: inout WireCoder, f: inout AclFilter) throws(WireError) in
            try f.code(&c, version: version)
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// DeleteAcls response v0-3: throttle_time_ms, filter_results [error_code, error_message,
/// matching_acls [error_code, error_message, `AclBinding`]], one per filter in order.
public struct DeleteAclsResponse: KafkaMessage {
    public struct Match: Sendable, Equatable {
        public var errorCode: Int16 = 0
        public var errorMessage: String? = nil
        public var binding = AclBinding()
        public init() {}
    }
    public struct FilterResult: Sendable, Equatable {
        public var errorCode: Int16 = 0
        public var errorMessage: String? = nil
        public var matchingAcls: [Match] = []
        public init(errorCode: Int16 = 0, errorMessage: String? = nil) {
            self.errorCode = errorCode
            self.errorMessage = errorMessage
        }
    }
    public var throttleTimeMs: Int32 = 0
    public var filterResults: [FilterResult] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.int32(&throttleTimeMs, "throttle_time_ms")
        try c.array(&filterResults, "filter_results", make: { FilterResult() }) {
            (c: inout WireCoder, r: inout FilterResult) throws(WireError) in
            try c.int16(&r.errorCode, "error_code")
            try c.nullableString(&r.errorMessage, "error_message")
            try c.array(&r.matchingAcls, "matching_acls", make: { Match() }) { (c: inout WireCoder, m: inout Match) throws(WireError) in
                try c.int16(&m.errorCode, "error_code")
                try c.nullableString(&m.errorMessage, "error_message")
                try m.binding.code(&c, version: version)
                try c.taggedFields()
            }
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// DescribeClientQuotas (48) request v0-1 (flexible from v1): components [entity_type,
/// match_type i8 (0 exact name, 1 default, 2 any name), match nullable string], strict bool.
public struct DescribeClientQuotasRequest: KafkaMessage {
    public struct Component: Sendable, Equatable {
        public var entityType = ""
        public var matchType: Int8 = 0
        public var match: String? = nil
        public init() {}
    }
    public var components: [Component] = []
    public var strict = false
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.array(&components, "components", make: { Component() }) { (c: inout WireCoder, m: inout Component) throws(WireError) in
            try c.string(&m.entityType, "entity_type")
            try c.int8(&m.matchType, "match_type")
            try c.nullableString(&m.match, "match")
            try c.taggedFields()
        }
        try c.bool(&strict, "strict")
        try c.taggedFields()
    }
}

/// DescribeClientQuotas response v0-1: throttle_time_ms, error_code, error_message, entries
/// nullable [entity [entity_type, entity_name nullable], values [key, value f64]].
public struct DescribeClientQuotasResponse: KafkaMessage {
    public struct Entity: Sendable, Equatable {
        public var entityType = ""
        public var entityName: String? = nil
        public init() {}
    }
    public struct Value: Sendable, Equatable {
        public var key = ""
        public var value: Double = 0
        public init() {}
    }
    public struct Entry: Sendable, Equatable {
        public var entity: [Entity] = []
        public var values: [Value] = []
        public init() {}
    }
    public var throttleTimeMs: Int32 = 0
    public var errorCode: Int16 = 0
    public var errorMessage: String? = nil
    public var entries: [Entry]? = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.int32(&throttleTimeMs, "throttle_time_ms")
        try c.int16(&errorCode, "error_code")
        try c.nullableString(&errorMessage, "error_message")
        try c.nullableArray(&entries, "entries", make: { Entry() }) { (c: inout WireCoder, e: inout Entry) throws(WireError) in
            try c.array(&e.entity, "entity", make: { Entity() }) { (c: inout WireCoder, n: inout Entity) throws(WireError) in
                try c.string(&n.entityType, "entity_type")
                try c.nullableString(&n.entityName, "entity_name")
                try c.taggedFields()
            }
            try c.array(&e.values, "values", make: { Value() }) { (c: inout WireCoder, v: inout Value) throws(WireError) in
                try c.string(&v.key, "key")
                try c.float64(&v.value, "value")
                try c.taggedFields()
            }
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// DescribeUserScramCredentials (50) request v0 (flexible): users nullable [name] (null or
/// empty: every user).
public struct DescribeUserScramCredentialsRequest: KafkaMessage {
    public var users: [String]? = nil
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.nullableArray(&users, "users", make: { "" }) { (c: inout WireCoder, name: inout String) throws(WireError) in
            try c.string(&name, "name")
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}

/// DescribeUserScramCredentials response v0: throttle_time_ms, error_code, error_message,
/// results [user, error_code, error_message, credential_infos [mechanism i8, iterations i32]].
public struct DescribeUserScramCredentialsResponse: KafkaMessage {
    public struct Credential: Sendable, Equatable {
        public var mechanism: Int8 = 0
        public var iterations: Int32 = 0
        public init() {}
    }
    public struct Result: Sendable, Equatable {
        public var user = ""
        public var errorCode: Int16 = 0
        public var errorMessage: String? = nil
        public var credentialInfos: [Credential] = []
        public init() {}
    }
    public var throttleTimeMs: Int32 = 0
    public var errorCode: Int16 = 0
    public var errorMessage: String? = nil
    public var results: [Result] = []
    public init() {}
    public mutating func code(_ c: inout WireCoder, version: Int16) throws(WireError) {
        try c.int32(&throttleTimeMs, "throttle_time_ms")
        try c.int16(&errorCode, "error_code")
        try c.nullableString(&errorMessage, "error_message")
        try c.array(&results, "results", make: { Result() }) { (c: inout WireCoder, r: inout Result) throws(WireError) in
            try c.string(&r.user, "user")
            try c.int16(&r.errorCode, "error_code")
            try c.nullableString(&r.errorMessage, "error_message")
            try c.array(&r.credentialInfos, "credential_infos", make: { Credential() }) {
                (c: inout WireCoder, i: inout Credential) throws(WireError) in
                try c.int8(&i.mechanism, "mechanism")
                try c.int32(&i.iterations, "iterations")
                try c.taggedFields()
            }
            try c.taggedFields()
        }
        try c.taggedFields()
    }
}
