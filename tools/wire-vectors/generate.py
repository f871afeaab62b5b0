#!/usr/bin/env python3
"""Generate byte-exact Kafka wire vectors for Tidemark's codec tests.

Each vector is the BODY of one Kafka request or response (no size prefix, no
request/response header), encoded by kafka-python's own protocol classes
(kafka.protocol.*, kafka-python 3.0.12) and written as one JSON line to
Tests/TidemarkWireTests/Vectors/vectors.jsonl.

Field values are chosen from the Apache Kafka schema tables in ./schemas
(one text file per API, derived from Kafka's message JSONs; see README.md).
For every (api, version, kind) the script:

  1. checks that kafka-python's schema for that version has the same wire
     layout as the table (same fields in the same order, same types, same
     nullability, same flexible/non-flexible mode); otherwise it skips;
  2. builds realistic values from the table (two-element arrays, nulls where
     the version allows them, negative sentinels, non-zero topic ids, empty
     tagged-field sections);
  3. encodes them with kafka-python (compiled encoder) and checks that
     kafka-python's second, non-compiled encoder gives the same bytes, and
     that a small independent encoder driven only by the table gives the same
     bytes too;
  4. decodes the bytes back with kafka-python (both decoders) for the same
     class and version, and checks that every byte was consumed and that the
     decoded values equal the encoded ones.

Only vectors that pass all checks are written.  Everything skipped is printed
with its reason (and listed in README.md).

APIs that kafka-python has no classes for (ConsumerGroupHeartbeat,
ConsumerGroupDescribe and the share-group APIs) are encoded by the table-driven
codec in tablecodec.py instead; see table_encode_and_verify for their checks.
Vectors for APIs Tidemark has no codec for yet (STAGED_APIS) go to a separate
file, so that VectorTests only sees APIs it can decode.

Run with the interop virtualenv (it has kafka-python installed):

    .build/interop-venv/bin/python tools/wire-vectors/generate.py
"""

import argparse
import io
import json
import re
import struct
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import kafka
from kafka.protocol.api_message import ApiMessage
import kafka.protocol.admin
import kafka.protocol.consumer
import kafka.protocol.metadata
import kafka.protocol.producer
from kafka.protocol.consumer.metadata import (
    ConsumerProtocolAssignment, ConsumerProtocolSubscription)
from kafka.record.default_records import DefaultRecordBatchBuilder
from kafka.protocol.schemas import StructField
from kafka.protocol.schemas.fields.codecs import BitField

sys.dont_write_bytecode = True     # no __pycache__ next to tablecodec.py in the source tree
import tablecodec                  # noqa: E402  (the sibling module in this directory)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DEFAULT_SCHEMAS = HERE / 'schemas'
DEFAULT_OUTPUT = REPO / 'Tests' / 'TidemarkWireTests' / 'Vectors' / 'vectors.jsonl'
DEFAULT_STAGED_OUTPUT = REPO / 'Tests' / 'TidemarkWireTests' / 'Vectors' / 'staged-vectors.jsonl'

# (api key, name, lowest version wanted, highest version wanted).
# The wanted ranges are the ones asked for; versions outside the schema
# tables' validVersions (removed in Kafka 4.0) are skipped with a reason.
APIS = [
    (0, 'Produce', 3, 13),
    (1, 'Fetch', 4, 18),
    (2, 'ListOffsets', 0, 10),
    (3, 'Metadata', 0, 13),
    (8, 'OffsetCommit', 0, 9),
    (9, 'OffsetFetch', 0, 9),
    (10, 'FindCoordinator', 0, 6),
    (11, 'JoinGroup', 0, 9),
    (12, 'Heartbeat', 0, 4),
    (13, 'LeaveGroup', 0, 5),
    (14, 'SyncGroup', 0, 5),
    (15, 'DescribeGroups', 0, 6),
    (16, 'ListGroups', 0, 5),
    (18, 'ApiVersions', 0, 4),
    (19, 'CreateTopics', 0, 7),
    (20, 'DeleteTopics', 0, 6),
    (21, 'DeleteRecords', 0, 2),
    (22, 'InitProducerId', 0, 5),
    (23, 'OffsetForLeaderEpoch', 2, 4),
    (29, 'DescribeAcls', 1, 3),
    (30, 'CreateAcls', 1, 3),
    (31, 'DeleteAcls', 1, 3),
    (32, 'DescribeConfigs', 0, 4),
    (33, 'AlterConfigs', 0, 2),
    (35, 'DescribeLogDirs', 1, 4),
    (37, 'CreatePartitions', 0, 3),
    (42, 'DeleteGroups', 0, 2),
    (43, 'ElectLeaders', 0, 2),
    (44, 'IncrementalAlterConfigs', 0, 1),
    (45, 'AlterPartitionReassignments', 0, 1),
    (46, 'ListPartitionReassignments', 0, 0),
    (47, 'OffsetDelete', 0, 0),
    (48, 'DescribeClientQuotas', 0, 1),
    (50, 'DescribeUserScramCredentials', 0, 0),
    (60, 'DescribeCluster', 0, 2),
    (61, 'DescribeProducers', 0, 0),
    (66, 'ListTransactions', 0, 2),
    (68, 'ConsumerGroupHeartbeat', 0, 1),
    (69, 'ConsumerGroupDescribe', 0, 1),
    (76, 'ShareGroupHeartbeat', 1, 1),
    (77, 'ShareGroupDescribe', 1, 1),
    (78, 'ShareFetch', 1, 2),
    (79, 'ShareAcknowledge', 1, 2),
    (90, 'DescribeShareGroupOffsets', 0, 1),
    (91, 'AlterShareGroupOffsets', 0, 0),
    (92, 'DeleteShareGroupOffsets', 0, 0),
]

# APIs that Tidemark's ApiKey does not list yet.  VectorTests fails on a vector
# whose api key it does not know, so their vectors go to --staged-output
# (staged-vectors.jsonl) instead of vectors.jsonl.  Remove a key from here once
# the Swift codec and its VectorTests case exist, and run the script again.
STAGED_APIS: set = set()

KINDS = ('request', 'response')


# ---------------------------------------------------------------------------
# Schema tables
# ---------------------------------------------------------------------------

def parse_range(text):
    """'3-13' -> (3, 13); '9+' -> (9, 32767); '5' -> (5, 5); 'none' -> None."""
    if text is None or text in ('none', 'None'):
        return None
    if text.endswith('+'):
        return (int(text[:-1]), 32767)
    if '-' in text:
        lo, hi = text.split('-')
        return (int(lo), int(hi))
    return (int(text), int(text))


def in_range(rng, version):
    return rng is not None and rng[0] <= version <= rng[1]


@dataclass
class Field:
    """One row of a schema table."""
    name: str
    type: str                  # 'int32', 'string', '[]int32', '[]Topic', 'LeaderIdAndEpoch', ...
    versions: tuple
    nullable: tuple = None
    tag: int = None
    tagged_versions: tuple = None
    default: str = None        # the table's default=... text, if any
    children: list = field(default_factory=list)

    def present(self, v):
        return in_range(self.versions, v)

    def is_nullable(self, v):
        return in_range(self.nullable, v)

    def is_tagged(self, v):
        return self.tag is not None and in_range(self.tagged_versions, v)

    @property
    def is_array(self):
        return self.type.startswith('[]')

    @property
    def is_struct(self):
        return bool(self.children)

    @property
    def element_type(self):
        return self.type[2:] if self.is_array else self.type


@dataclass
class MessageSchema:
    name: str                  # e.g. 'FetchRequest'
    kind: str                  # 'request' or 'response'
    valid: tuple
    flexible: tuple            # None when never flexible
    fields: list

    def flexible_at(self, v):
        return in_range(self.flexible, v)

    def wire_fields(self, v):
        return inline_fields(self.fields, v)


def inline_fields(fields, v):
    """Fields written inline (present and not tagged) in version v, in wire order."""
    return [f for f in fields if f.present(v) and not f.is_tagged(v)]


FIELD_LINE = re.compile(r'^(?P<indent> +)(?P<name>[A-Za-z][A-Za-z0-9]*) (?P<type>\S+) (?P<attrs>versions=.*)$')
HEADER_LINE = re.compile(r'^==== (?P<name>\w+) \((?P<kind>request|response), \w+\) ====$')


def load_schema_file(path):
    """Parse one '<key>-<Name>.txt' table into {'request': MessageSchema, 'response': MessageSchema}."""
    result = {}
    current = None
    stack = []                 # (indent, Field) of the enclosing fields
    in_fields = False
    for line in path.read_text().splitlines():
        header = HEADER_LINE.match(line)
        if header:
            current = MessageSchema(header['name'], header['kind'], None, None, [])
            result[header['kind']] = current
            stack, in_fields = [], False
            continue
        if line.startswith('===='):
            current, in_fields = None, False
            continue
        if current is None:
            continue
        if line.startswith('validVersions='):
            attrs = dict(tok.split('=', 1) for tok in line.split() if '=' in tok)
            current.valid = parse_range(attrs['validVersions'])
            current.flexible = parse_range(attrs['flexibleVersions'])
            continue
        if line == 'Fields:':
            in_fields = True
            continue
        m = FIELD_LINE.match(line) if in_fields else None
        if not m:
            continue
        attrs = {}
        for tok in m['attrs'].split():
            key, _, value = tok.partition('=')
            attrs[key] = value
        f = Field(
            name=m['name'], type=m['type'],
            versions=parse_range(attrs['versions']),
            nullable=parse_range(attrs.get('nullable')),
            tag=int(attrs['tag']) if 'tag' in attrs else None,
            tagged_versions=parse_range(attrs.get('taggedVersions')),
            default=attrs.get('default'),
        )
        indent = len(m['indent'])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        (stack[-1][1].children if stack else current.fields).append(f)
        stack.append((indent, f))
    return result


def load_schemas(schema_dir, key, name):
    path = schema_dir / ('%d-%s.txt' % (key, name))
    return load_schema_file(path)


# ---------------------------------------------------------------------------
# kafka-python classes and layout comparison
# ---------------------------------------------------------------------------

def kafka_python_classes():
    """All top-level ApiMessage classes kafka-python defines, by name."""
    found = {}
    pending = list(ApiMessage.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if getattr(cls, '_class_version', None) is None and getattr(cls, '_json', None):
            found[cls.__name__] = cls
    return found


def kp_inline_fields(kstruct, v):
    return kstruct.untagged_fields(v)


def kp_children(kfield):
    """The StructField holding a struct or struct-array field's members."""
    return kfield.array_of if kfield.is_struct_array() else kfield


def kp_wire_type(kfield):
    """Wire type of a kafka-python field, in the tables' vocabulary."""
    if kfield.is_struct_array():
        return '[]struct'
    if kfield.is_struct():
        return 'struct'
    type_str = kfield.type_str
    if type_str == 'bitfield':
        return 'int32'         # kafka-python patches some int32 bitmasks to a set-of-bits type
    if type_str == 'records':
        return 'bytes'
    return type_str


def table_wire_type(tfield):
    if tfield.is_array and tfield.is_struct:
        return '[]struct'
    if tfield.is_struct:
        return 'struct'
    if tfield.type == 'records':
        return 'bytes'
    return tfield.type


def layout_differences(tfields, kstruct, v, path=''):
    """Describe how kafka-python's layout of version v differs from the table (empty list: same).

    Only the inline (non-tagged) fields matter for the bytes we emit, since all
    tagged-field sections are left empty; tagged-field differences are
    reported separately as notes.
    """
    diffs = []
    tlist = inline_fields(tfields, v)
    klist = kp_inline_fields(kstruct, v)
    tnames = [t.name for t in tlist]
    knames = [normalise_kp_name(k, t) for k, t in zip(klist, tlist)] + [k._name for k in klist[len(tlist):]]
    if tnames != knames:
        diffs.append('%s has fields %s in the table but %s in kafka-python' % (
            path or 'body', tnames, [k._name for k in klist]))
        return diffs
    for t, k in zip(tlist, klist):
        where = (path + '.' if path else '') + t.name
        if table_wire_type(t) != kp_wire_type(k):
            diffs.append('%s type %s (table) vs %s (kafka-python)' % (where, t.type, k.type_str))
            continue
        if t.is_nullable(v) != bool(k.nullable_for_version_q(v)):
            diffs.append('%s nullable=%s (table) vs %s (kafka-python)' % (
                where, t.is_nullable(v), bool(k.nullable_for_version_q(v))))
        if t.is_struct:
            diffs.extend(layout_differences(t.children, kp_children(k), v, where))
    return diffs


def tagged_differences(tfields, kstruct, v, path=''):
    """Tagged fields that differ (by tag number, name or type) between table and kafka-python."""
    notes = []
    ttags = {f.tag: f for f in tfields if f.present(v) and f.is_tagged(v)}
    ktags = {f.tag: f for f in kstruct._fields if f.for_version_q(v) and f.tagged_field_q(v)}
    for tag in sorted(set(ttags) | set(ktags)):
        t, k = ttags.get(tag), ktags.get(tag)
        if t is None or k is None or t.name != k._name:
            notes.append('%s tag %d: %s (table) vs %s (kafka-python)' % (
                path or '<body>', tag, t and t.name, k and k._name))
    for t, k in zip(inline_fields(tfields, v), kp_inline_fields(kstruct, v)):
        if t.is_struct and (k.is_struct() or k.is_struct_array()):
            notes.extend(tagged_differences(t.children, kp_children(k), v,
                                            (path + '.' if path else '') + t.name))
    return notes


def normalise_kp_name(kfield, tfield):
    """kafka-python's JSON field name, allowing the documented json_patch renames."""
    name = kfield._name
    if name == 'authorized_operations' and tfield.name.endswith('AuthorizedOperations'):
        return tfield.name     # MetadataResponse / DescribeClusterResponse rename
    return name


# ---------------------------------------------------------------------------
# Realistic values
# ---------------------------------------------------------------------------

TOPICS = ['orders', 'payments']
TOPIC_IDS = [uuid.UUID('6f1c2a4e-3b7d-4e52-9a0c-8d21f5b7c3e9'),
             uuid.UUID('b24d9e07-51a8-4c6f-8e3d-0a7f92c4d158')]
GROUPS = ['billing-service', 'audit-service']
MEMBERS = ['consumer-billing-1-4c8e2f1a-7d3b-4b9e-a6c0-5e2d8f1b9a37',
           'consumer-billing-2-9a1d6c3e-2b7f-4e8a-b5d0-3c6e9f2a1b84']
HOSTS = ['broker-1.tidemark.internal', 'broker-2.tidemark.internal']
# KIP-848/KIP-932 member ids: a Kafka Uuid in its 22-character base64 form.
UUID_MEMBERS = ['pX3vQ0cWTN6mH9bKz1Lr4A', 'Y7eJt2sRQkO8uGfD5nVc0w']
CLUSTER_ID = 'MkU3OEVBNTcwNTJENDM2Qk'
INT32_MIN = -2147483648

# Authorized-operations bitmasks (bit n = AclOperation code n).
TOPIC_OPS = sum(1 << op for op in (3, 4, 5, 6, 7, 8, 10, 11))        # READ..ALTER_CONFIGS
CLUSTER_OPS = sum(1 << op for op in (5, 7, 8, 9, 10, 11, 12))        # CREATE..IDEMPOTENT_WRITE
GROUP_OPS = sum(1 << op for op in (3, 6, 8))                         # READ, DELETE, DESCRIBE


def make_record_batch(base_offset, key, value):
    """A one-record, uncompressed RecordBatch (magic 2) built by kafka-python."""
    builder = DefaultRecordBatchBuilder(
        magic=2, compression_type=0, is_transactional=False,
        producer_id=-1, producer_epoch=-1, base_sequence=-1, batch_size=1 << 16)
    builder.append(0, timestamp=1700000000000, key=key, value=value, headers=[])
    batch = bytearray(builder.build())
    struct.pack_into('>q', batch, 0, base_offset)  # base offset 0 on produce; the broker's offset on fetch
    return bytes(batch)


# The base offset sits outside the CRC-covered part of the batch, so patching
# it keeps the batch valid.
PRODUCE_RECORDS = [make_record_batch(0, b'order-1001', b'{"sku":"A-17","qty":3}'),
                   make_record_batch(0, b'pay-2001', b'{"amount":1250,"ccy":"EUR"}')]
FETCH_RECORDS = [make_record_batch(1200, b'order-1001', b'{"sku":"A-17","qty":3}'),
                 make_record_batch(56, b'pay-2001', b'{"amount":1250,"ccy":"EUR"}')]

SUBSCRIPTION = bytes(ConsumerProtocolSubscription(version=0, topics=TOPICS, user_data=None).encode())
ASSIGNMENTS = [
    bytes(ConsumerProtocolAssignment(version=0, assigned_partitions=[('orders', [0, 1])], user_data=None).encode()),
    bytes(ConsumerProtocolAssignment(version=0, assigned_partitions=[('payments', [0, 1])], user_data=None).encode()),
]

# Generic values by field name ('Parent.Field' entries win over 'Field').
# A list is indexed by the position of the innermost enclosing array element
# (element 0 or 1); outside arrays the first entry is used.
GENERIC = {
    'ThrottleTimeMs': [25],
    'ErrorCode': [0, 3],                       # NONE, UNKNOWN_TOPIC_OR_PARTITION
    'ErrorMessage': [None, 'This server does not host this topic-partition.'],
    'Name': TOPICS, 'Topic': TOPICS, 'TopicName': TOPICS, 'TopicNames': TOPICS,
    'TopicId': TOPIC_IDS,
    'PartitionIndex': [0, 1], 'Partition': [0, 1], 'Index': [0, 1],
    'Partitions': [0, 1], 'PartitionIndexes': [0, 1],
    'GroupId': GROUPS, 'Groups': GROUPS,
    'MemberId': MEMBERS,
    'GroupInstanceId': ['billing-host-a', None],
    'ClientId': ['consumer-billing-1', 'consumer-billing-2'],
    'ClientHost': ['/10.20.0.11', '/10.20.0.12'],
    'Host': HOSTS,
    'Port': [9092, 9093],
    'Rack': ['us-east-1a', None],
    'RackId': ['us-east-1a'],
    'NodeId': [1, 2], 'BrokerId': [1, 2], 'LeaderId': [1, 2], 'ControllerId': [1],
    'BrokerIds': [[1, 2], [2, 3]],
    'ReplicaNodes': [[1, 2], [2, 3]], 'IsrNodes': [[1, 2], [3, 2]], 'OfflineReplicas': [[3, 4], [1, 4]],
    'ClusterId': [CLUSTER_ID],
    'LeaderEpoch': [7, -1], 'CurrentLeaderEpoch': [7, -1], 'CommittedLeaderEpoch': [7, -1],
    'LastFetchedEpoch': [6, -1],
    'GenerationId': [5], 'GenerationIdOrMemberEpoch': [5], 'MemberEpoch': [12],
    'SessionTimeoutMs': [45000], 'RebalanceTimeoutMs': [300000],
    'TimeoutMs': [30000], 'TransactionTimeoutMs': [60000],
    'MaxWaitMs': [500], 'MinBytes': [1], 'MaxBytes': [52428800], 'PartitionMaxBytes': [1048576],
    'IsolationLevel': [1],                      # READ_COMMITTED
    'SessionId': [1337], 'SessionEpoch': [4],
    'ProtocolType': ['consumer'], 'ProtocolName': ['cooperative-sticky'],
    'Protocols.Name': ['cooperative-sticky', 'range'],
    'Leader': [MEMBERS[0]],
    'Reason': ['the consumer is being closed', None],
    'CommittedOffset': [1200, 56], 'CommittedMetadata': ['checkpoint:1200', None],
    'Metadata': ['checkpoint:1200', None],     # OffsetFetch partitions (JoinGroup overrides to bytes)
    'RetentionTimeMs': [-1],                   # use the broker's retention
    'RequireStable': [True],
    'AllowAutoTopicCreation': [False],
    'IncludeClusterAuthorizedOperations': [True], 'IncludeTopicAuthorizedOperations': [True],
    'IncludeAuthorizedOperations': [True],
    'IsInternal': [False, True],
    'TopicAuthorizedOperations': [TOPIC_OPS, INT32_MIN],
    'ClusterAuthorizedOperations': [CLUSTER_OPS],
    'AuthorizedOperations': [GROUP_OPS, INT32_MIN],
    'KeyType': [0],                            # GROUP
    'Key': [GROUPS[0]],
    'CoordinatorKeys': GROUPS,
    'GroupState': ['Stable', 'Empty'],
    'ProtocolData': ['cooperative-sticky', ''],
    'StatesFilter': ['Stable', 'Empty'],
    'TypesFilter': ['consumer', 'classic'],
    'GroupType': ['Consumer', 'Classic'],
    'NumPartitions': [6, -1], 'ReplicationFactor': [3, -1],
    'Configs.Name': ['retention.ms', 'cleanup.policy'],
    'Configs.Value': ['604800000', None],
    'Synonyms.Name': ['log.retention.ms', 'log.retention.hours'],
    'Synonyms.Value': ['604800000', None],
    'Synonyms.Source': [5, 4],                 # DEFAULT_CONFIG, STATIC_BROKER_CONFIG
    'ConfigurationKeys': ['retention.ms', 'cleanup.policy'],
    'ReadOnly': [False, True], 'IsSensitive': [False, True],
    'ConfigSource': [1, 5],                    # DYNAMIC_TOPIC_CONFIG, DEFAULT_CONFIG
    'ConfigType': [5, 2],                      # LONG, STRING
    'Documentation': ['The number of milliseconds to keep a log file before deleting it.', None],
    'IncludeSynonyms': [True], 'IncludeDocumentation': [True],
    'ValidateOnly': [False],
    'ResourceType': [2, 4],                    # TOPIC, BROKER
    'ResourceName': ['orders', '1'],
    'ConfigOperation': [0, 1],                 # SET, DELETE
    'Count': [12, 8],
    'Offset': [1000, -1],
    'LowWatermark': [1000, -1],
    'EndOffset': [1250, -1],
    'TransactionalId': [None],
    'ProducerId': [4001, 4002], 'ProducerEpoch': [0, 3],
    'LastSequence': [41, -1], 'LastTimestamp': [1700000000000, -1],
    'CoordinatorEpoch': [3, -1], 'CurrentTxnStartOffset': [1180, -1],
    'LogDir': ['/var/lib/tidemark/data-0', '/var/lib/tidemark/data-1'],
    'PartitionSize': [1048576, 0], 'OffsetLag': [0, 42], 'IsFutureKey': [False, True],
    'TotalBytes': [107374182400, -1], 'UsableBytes': [53687091200, -1],
    'EndpointType': [1],                       # brokers
    'IncludeFencedBrokers': [True], 'IsFenced': [False, True],
    'ClientSoftwareName': ['tidemark-swift-client'], 'ClientSoftwareVersion': ['0.9.1'],
    'SkipAssignment': [False],
    'BatchIndex': [0, 3],
    'BatchIndexErrorMessage': [None, 'Record is larger than the maximum allowed size.'],
}

# Per-API values by dotted path from the message root; these win over GENERIC.
OVERRIDES = {
    ('Produce', 'request'): {
        'Acks': [-1],                          # all in-sync replicas
        'TimeoutMs': [30000],
        'TopicData.PartitionData.Records': PRODUCE_RECORDS,
    },
    ('Produce', 'response'): {
        'Responses.PartitionResponses.ErrorCode': [0, 6],          # NOT_LEADER_OR_FOLLOWER
        'Responses.PartitionResponses.BaseOffset': [1200, -1],
        'Responses.PartitionResponses.LogAppendTimeMs': [-1, -1],
        'Responses.PartitionResponses.LogStartOffset': [0, -1],
        'Responses.PartitionResponses.ErrorMessage': [None, 'This is not the correct leader for this partition.'],
    },
    ('Fetch', 'request'): {
        'ReplicaId': [-1],                     # a consumer, not a follower
        'Topics.Partitions.FetchOffset': [1200, 56],
        'Topics.Partitions.LogStartOffset': [-1],
        'ForgottenTopicsData.Partitions': [2, 3],
        'RackId': ['us-east-1a'],
    },
    ('Fetch', 'response'): {
        'ErrorCode': [0],
        'Responses.Partitions.HighWatermark': [1250, 60],
        'Responses.Partitions.LastStableOffset': [1248, 60],
        'Responses.Partitions.LogStartOffset': [0, 10],
        'Responses.Partitions.ErrorCode': [0, 0],
        'Responses.Partitions.AbortedTransactions.ProducerId': [4001, 4002],
        'Responses.Partitions.AbortedTransactions.FirstOffset': [1210, 1230],
        'Responses.Partitions.PreferredReadReplica': [-1, 2],
        'Responses.Partitions.Records': FETCH_RECORDS,
    },
    ('ListOffsets', 'request'): {
        'ReplicaId': [-1],
        'Topics.Partitions.Timestamp': [-1, -2],                    # LATEST, EARLIEST
    },
    ('ListOffsets', 'response'): {
        'Topics.Partitions.Timestamp': [1700000000000, -1],
        'Topics.Partitions.Offset': [1250, -1],
    },
    ('Metadata', 'response'): {
        'Topics.ErrorCode': [0, 3],
        'Topics.Partitions.ErrorCode': [0, 9],                     # REPLICA_NOT_AVAILABLE
        'Topics.Partitions.LeaderId': [1, -1],
        'ErrorCode': [0],
    },
    ('OffsetCommit', 'request'): {
        'GroupInstanceId': [None],
    },
    ('OffsetCommit', 'response'): {
        'Topics.Partitions.ErrorCode': [0, 22],                    # ILLEGAL_GENERATION
    },
    ('OffsetFetch', 'request'): {
        'Groups.MemberId': [MEMBERS[0], None],
        'Groups.MemberEpoch': [12, -1],
    },
    ('OffsetFetch', 'response'): {
        'Topics.Partitions.CommittedOffset': [1200, -1],
        'Topics.Partitions.ErrorCode': [0, 0],
        'Groups.Topics.Partitions.CommittedOffset': [1200, -1],
        'Groups.Topics.Partitions.ErrorCode': [0, 0],
        'Groups.ErrorCode': [0, 16],                               # NOT_COORDINATOR
        'ErrorCode': [0],
    },
    ('FindCoordinator', 'response'): {
        'ErrorCode': [0],
        'ErrorMessage': [None],
        'NodeId': [2],
        'Host': [HOSTS[1]],
        'Coordinators.Key': GROUPS,
        'Coordinators.ErrorCode': [0, 15],                         # COORDINATOR_NOT_AVAILABLE
        'Coordinators.NodeId': [2, -1],
        'Coordinators.Host': [HOSTS[1], ''],
        'Coordinators.Port': [9092, -1],
        'Coordinators.ErrorMessage': [None, 'The coordinator is not available.'],
    },
    ('JoinGroup', 'request'): {
        'MemberId': [MEMBERS[0]],
        'GroupInstanceId': [None],
        'Protocols.Metadata': [SUBSCRIPTION],
        'Reason': ['rebalance failed due to MemberIdRequiredException'],
    },
    ('JoinGroup', 'response'): {
        'ProtocolType': ['consumer'],
        'Members.Metadata': [SUBSCRIPTION],
    },
    ('Heartbeat', 'request'): {
        'GroupInstanceId': [None],
    },
    ('Heartbeat', 'response'): {
        'ErrorCode': [27],                     # REBALANCE_IN_PROGRESS
    },
    ('LeaveGroup', 'response'): {
        'ErrorCode': [0],
        'Members.ErrorCode': [0, 25],          # UNKNOWN_MEMBER_ID
    },
    ('SyncGroup', 'request'): {
        'GroupInstanceId': [None],
        'Assignments.Assignment': ASSIGNMENTS,
    },
    ('SyncGroup', 'response'): {
        'ErrorCode': [0],
        'Assignment': [ASSIGNMENTS[0]],
    },
    ('DescribeGroups', 'response'): {
        'Groups.ErrorCode': [0, 69],           # GROUP_ID_NOT_FOUND
        'Groups.ErrorMessage': [None, 'Group audit-service not found.'],
        'Groups.GroupState': ['Stable', 'Dead'],
        'Groups.ProtocolType': ['consumer', ''],
        'Groups.Members.MemberMetadata': [SUBSCRIPTION],
        'Groups.Members.MemberAssignment': ASSIGNMENTS,
    },
    ('ListGroups', 'response'): {
        'ErrorCode': [0],
    },
    ('ApiVersions', 'response'): {
        # kafka-python decodes any ApiVersions body with a non-zero ErrorCode as
        # version 0 (the broker's UNSUPPORTED_VERSION fallback), so 0 here.
        'ErrorCode': [0],
        'ApiKeys.ApiKey': [0, 1],
        'ApiKeys.MinVersion': [3, 4],
        'ApiKeys.MaxVersion': [13, 18],
    },
    ('CreateTopics', 'request'): {
        'Topics.NumPartitions': [-1, 6],       # -1: the broker default (with explicit assignments)
        'Topics.ReplicationFactor': [-1, 3],
        'Topics.Assignments.PartitionIndex': [0, 1],
        'Topics.Configs.Name': ['retention.ms', 'cleanup.policy'],
        'Topics.Configs.Value': ['604800000', None],
        'timeoutMs': [60000],                # lower-case in Kafka's CreateTopicsRequest.json
        'validateOnly': [False],
    },
    ('CreateTopics', 'response'): {
        'Topics.ErrorCode': [0, 36],           # TOPIC_ALREADY_EXISTS
        'Topics.ErrorMessage': [None, "Topic 'payments' already exists."],
        'Topics.NumPartitions': [6, -1],
        'Topics.ReplicationFactor': [3, -1],
    },
    ('DeleteTopics', 'request'): {
        'Topics.Name': ['orders', None],       # v6: the second topic is named by id only
    },
    ('DeleteTopics', 'response'): {
        'Responses.ErrorCode': [0, 3],
        'Responses.ErrorMessage': [None, 'This server does not host this topic-partition.'],
    },
    ('DeleteRecords', 'request'): {
        'Topics.Partitions.Offset': [1000, -1],                    # -1: up to the high watermark
    },
    ('DeleteRecords', 'response'): {
        'Topics.Partitions.ErrorCode': [0, 1],                     # OFFSET_OUT_OF_RANGE
    },
    ('InitProducerId', 'request'): {
        'TransactionalId': ['txn-orders-1'],
        'ProducerId': [4001],
        'ProducerEpoch': [3],
    },
    ('InitProducerId', 'response'): {
        'ErrorCode': [0],
        'ProducerId': [4001],
        'ProducerEpoch': [4],
    },
    ('OffsetForLeaderEpoch', 'request'): {
        'ReplicaId': [-1],                     # consumer
        'Topics.Partitions.CurrentLeaderEpoch': [7, -1],
        'Topics.Partitions.LeaderEpoch': [6, 5],
    },
    ('OffsetForLeaderEpoch', 'response'): {
        'Topics.Partitions.ErrorCode': [0, 74],                    # FENCED_LEADER_EPOCH
        'Topics.Partitions.LeaderEpoch': [6, -1],
        'Topics.Partitions.EndOffset': [1180, -1],
    },
    ('DescribeConfigs', 'response'): {
        'Results.ErrorCode': [0, 0],
        'Results.ErrorMessage': [None, None],
        'Results.Configs.Value': ['604800000', None],
    },
    ('AlterConfigs', 'request'): {
        'Resources.Configs.Name': ['retention.ms', 'cleanup.policy'],
        'Resources.Configs.Value': ['86400000', None],
    },
    ('AlterConfigs', 'response'): {
        'Responses.ErrorCode': [0, 40],        # INVALID_CONFIG
        'Responses.ErrorMessage': [None, 'Invalid value for cleanup.policy'],
    },
    ('IncrementalAlterConfigs', 'response'): {
        'Responses.ErrorCode': [0, 40],
        'Responses.ErrorMessage': [None, 'Invalid value for cleanup.policy'],
    },
    ('DescribeLogDirs', 'request'): {
        'Topics.Partitions': [0, 1],
    },
    ('DescribeLogDirs', 'response'): {
        'ErrorCode': [0],
        'Results.ErrorCode': [0, 57],          # LOG_DIR_NOT_FOUND
        'Results.Topics.Name': TOPICS,
    },
    ('CreatePartitions', 'request'): {
        'TimeoutMs': [30000],
        'ValidateOnly': [False],
    },
    ('CreatePartitions', 'response'): {
        'Results.ErrorCode': [0, 37],          # INVALID_PARTITIONS
        'Results.ErrorMessage': [None, 'Topic currently has 8 partitions, which is higher than the requested 8.'],
    },
    ('OffsetDelete', 'response'): {
        'ErrorCode': [0],
        'Topics.Partitions.ErrorCode': [0, 86],  # GROUP_SUBSCRIBED_TO_TOPIC
    },
    ('DescribeCluster', 'response'): {
        'ErrorCode': [0],
        'ErrorMessage': [None],
        'Brokers.BrokerId': [1, 2],
    },
    ('DescribeProducers', 'response'): {
        'Topics.Partitions.ErrorCode': [0, 6],
        'Topics.Partitions.ErrorMessage': [None, 'This is not the correct leader for this partition.'],
    },
    ('ListTransactions', 'request'): {
        'StateFilters': ['Ongoing', 'PrepareCommit'],
        'TransactionalIdPattern': ['orders-.*'],
        'ProducerIdFilters': [4001, 4002],
        'DurationFilter': [60000],
    },
    ('ListTransactions', 'response'): {
        'ErrorCode': [0],
        'UnknownStateFilters': ['Frozen'],
        'TransactionStates.TransactionalId': ['orders-tx-1', 'billing-tx-7'],
        'TransactionStates.TransactionState': ['Ongoing', 'PrepareCommit'],
    },
    ('DescribeClientQuotas', 'request'): {
        'Components.EntityType': ['user', 'client-id'],
        'Components.MatchType': [0, 2],
        'Components.Match': ['alice', None],
        'Strict': [True],
    },
    ('DescribeClientQuotas', 'response'): {
        'ErrorCode': [0],
        'Entries.Entity.EntityType': ['user', 'client-id'],
        'Entries.Entity.EntityName': ['alice', None],
        'Entries.Values.Key': ['producer_byte_rate', 'consumer_byte_rate'],
        'Entries.Values.Value': [1048576.0, 2.5],
    },
    ('DescribeUserScramCredentials', 'response'): {
        'ErrorCode': [0],
        'Results.User': ['alice', 'bob'],
        'Results.ErrorCode': [0, 91],            # RESOURCE_NOT_FOUND
        'Results.ErrorMessage': [None, 'Attempt to describe a user credential that does not exist: bob'],
        'Results.CredentialInfos.Mechanism': [1, 2],
        'Results.CredentialInfos.Iterations': [4096, 8192],
    },
    ('AlterPartitionReassignments', 'request'): {
        'AllowReplicationFactorChange': [False],
        'Topics.Partitions.Replicas': [[0], [1, 2]],
    },
    ('AlterPartitionReassignments', 'response'): {
        'AllowReplicationFactorChange': [False],
        'ErrorCode': [0],
        'Responses.Partitions.ErrorCode': [0, 85],  # NO_REASSIGNMENT_IN_PROGRESS
        'Responses.Partitions.ErrorMessage': [None, 'No partition reassignment is in progress.'],
    },
    ('ListPartitionReassignments', 'response'): {
        'ErrorCode': [0],
        'Topics.Partitions.Replicas': [[1, 2, 3]],
        'Topics.Partitions.AddingReplicas': [[3]],
        'Topics.Partitions.RemovingReplicas': [[1]],
    },
    # The APIs below have no kafka-python classes; tablecodec.py encodes them.
    # ConsumerGroupHeartbeat and ShareGroupHeartbeat also have VARIANTS.
    ('ConsumerGroupHeartbeat', 'request'): {
        'MemberId': [UUID_MEMBERS[0]],
        'SubscribedTopicNames': TOPICS,
    },
    ('ConsumerGroupHeartbeat', 'response'): {
        'ThrottleTimeMs': [0],
        'ErrorCode': [0],
        'MemberId': [UUID_MEMBERS[0]],
        'HeartbeatIntervalMs': [5000],
    },
    ('ConsumerGroupDescribe', 'request'): {
        'GroupIds': GROUPS,
    },
    ('DeleteGroups', 'request'): {
        'GroupsNames': GROUPS,
    },
    ('ConsumerGroupDescribe', 'response'): {
        'Groups.ErrorCode': [0, 0],
        'Groups.ErrorMessage': [None, None],
        'Groups.GroupState': ['Stable', 'Reconciling'],
        'Groups.GroupEpoch': [14, 9],
        'Groups.AssignmentEpoch': [14, 8],
        'Groups.AssignorName': ['uniform', 'range'],
        'Groups.Members.MemberId': UUID_MEMBERS,
        'Groups.Members.InstanceId': ['billing-host-a', None],
        'Groups.Members.MemberEpoch': [14, 13],
        'Groups.Members.SubscribedTopicNames': TOPICS,
        'Groups.Members.SubscribedTopicRegex': [None, 'orders|payments'],
        'Groups.Members.TargetAssignment.TopicPartitions.Partitions': [[0, 1, 2], [0, 1]],
        'Groups.Members.MemberType': [1, 0],                       # consumer, classic
    },
    ('ShareGroupHeartbeat', 'request'): {
        'MemberId': [UUID_MEMBERS[0]],
        'SubscribedTopicNames': TOPICS,
    },
    ('ShareGroupHeartbeat', 'response'): {
        'ThrottleTimeMs': [0],
        'ErrorCode': [0],
        'MemberId': [UUID_MEMBERS[0]],
        'HeartbeatIntervalMs': [5000],
    },
    ('ShareGroupDescribe', 'request'): {
        'GroupIds': GROUPS,
    },
    ('ShareGroupDescribe', 'response'): {
        'Groups.ErrorCode': [0, 0],
        'Groups.ErrorMessage': [None, None],
        'Groups.GroupState': ['Stable', 'Stable'],
        'Groups.GroupEpoch': [6, 3],
        'Groups.AssignmentEpoch': [6, 3],
        'Groups.AssignorName': ['simple'],
        'Groups.Members.MemberId': UUID_MEMBERS,
        'Groups.Members.MemberEpoch': [6, 5],
        'Groups.Members.SubscribedTopicNames': TOPICS,
    },
    ('ShareFetch', 'request'): {
        'GroupId': [GROUPS[0]],
        'MemberId': [UUID_MEMBERS[0]],
        'ShareSessionEpoch': [3],
        'MaxRecords': [500],
        'BatchSize': [500],
        'ShareAcquireMode': [0],                                   # batch_optimized
        'IsRenewAck': [False],
        'Topics.Partitions.AcknowledgementBatches.FirstOffset': [1200, 1210],
        'Topics.Partitions.AcknowledgementBatches.LastOffset': [1209, 1211],
        # one type for the whole batch (ACCEPT), or one per offset (ACCEPT, REJECT)
        'Topics.Partitions.AcknowledgementBatches.AcknowledgeTypes': [[1], [1, 3]],
        'ForgottenTopicsData.Partitions': [2, 3],
    },
    ('ShareFetch', 'response'): {
        'ErrorCode': [0],
        'AcquisitionLockTimeoutMs': [30000],
        'Responses.Partitions.ErrorCode': [0, 0],
        'Responses.Partitions.ErrorMessage': [None, None],
        'Responses.Partitions.AcknowledgeErrorCode': [0, 121],    # INVALID_RECORD_STATE
        'Responses.Partitions.AcknowledgeErrorMessage': [
            None, 'The record state is invalid. The acknowledgement of delivery could not be completed.'],
        'Responses.Partitions.CurrentLeader.LeaderEpoch': [7, 7],
        'Responses.Partitions.Records': FETCH_RECORDS,
        'Responses.Partitions.AcquiredRecords.FirstOffset': [1200, 1205],
        'Responses.Partitions.AcquiredRecords.LastOffset': [1204, 1205],
        'Responses.Partitions.AcquiredRecords.DeliveryCount': [1, 3],
    },
    ('ShareAcknowledge', 'request'): {
        'GroupId': [GROUPS[0]],
        'MemberId': [UUID_MEMBERS[0]],
        'ShareSessionEpoch': [4],
        'IsRenewAck': [False],
        'Topics.Partitions.AcknowledgementBatches.FirstOffset': [1200, 1210],
        'Topics.Partitions.AcknowledgementBatches.LastOffset': [1209, 1211],
        # ACCEPT for the whole batch; RELEASE, ACCEPT per offset
        'Topics.Partitions.AcknowledgementBatches.AcknowledgeTypes': [[1], [2, 1]],
    },
    ('ShareAcknowledge', 'response'): {
        'ErrorCode': [0],
        'AcquisitionLockTimeoutMs': [30000],
        'Responses.Partitions.ErrorCode': [0, 121],                # INVALID_RECORD_STATE
        'Responses.Partitions.ErrorMessage': [
            None, 'The record state is invalid. The acknowledgement of delivery could not be completed.'],
        'Responses.Partitions.CurrentLeader.LeaderEpoch': [7, 7],
    },
}

# Nullable fields that carry a value at the top level of a message (outside
# arrays) unless an override says otherwise; every other top-level nullable
# string/bytes is null.  Inside arrays, element 0 carries a value and element 1
# is null (ErrorMessage-like fields the other way round: see GENERIC).
TOP_LEVEL_NON_NULL = {
    'ClusterId', 'ProtocolName', 'ProtocolType', 'Reason', 'Rack', 'RackId',
}

# Nullable fields whose GENERIC entry is [None, text]: null in element 0 (no
# error), text in element 1 (the element that carries an error code).
NULL_FIRST = {'ErrorMessage', 'BatchIndexErrorMessage'}

# Override markers for arrays and structs: NULL makes the field null, EMPTY an
# empty array (plain value lists cannot say either for a struct or an array).
NULL = object()
EMPTY = object()


@dataclass
class Variant:
    """One extra set of overrides: a second (third, ...) vector for the same version."""
    name: str
    overrides: dict
    versions: tuple = (0, 32767)


FENCED_MESSAGE = ('The consumer group member has a smaller member epoch (11) than the one known by the '
                  'group coordinator (12). The member must abandon all its partitions and rejoin.')

# Heartbeats of the new group protocols look very different depending on the
# member's state, and most of their fields are nullable ("null: unchanged since
# the previous heartbeat"), so these get one vector per variant.  Every variant
# name is written to the vector's "variant" key.
VARIANTS = {
    ('ConsumerGroupHeartbeat', 'request'): [
        # First heartbeat: epoch 0, everything set, no owned partitions yet.
        Variant('join', {
            'MemberEpoch': [0], 'InstanceId': ['billing-host-a'], 'RackId': ['us-east-1a'],
            'RebalanceTimeoutMs': [300000], 'SubscribedTopicRegex': [None],
            'ServerAssignor': ['uniform'], 'TopicPartitions': EMPTY,
        }),
        # v1: joining with a regular expression instead of topic names.
        Variant('join-regex', {
            'MemberEpoch': [0], 'InstanceId': [None], 'RackId': ['us-east-1a'],
            'RebalanceTimeoutMs': [300000], 'SubscribedTopicNames': NULL,
            'SubscribedTopicRegex': ['orders|payments'], 'ServerAssignor': [None], 'TopicPartitions': EMPTY,
        }, versions=(1, 32767)),
        # Steady state: nothing changed but the owned partitions, reported after reconciling.
        Variant('steady', {
            'MemberEpoch': [12], 'InstanceId': [None], 'RackId': [None], 'RebalanceTimeoutMs': [-1],
            'SubscribedTopicNames': NULL, 'SubscribedTopicRegex': [None], 'ServerAssignor': [None],
        }),
        # Leaving the group: epoch -1 and every nullable field null.
        Variant('leave', {
            'MemberEpoch': [-1], 'InstanceId': [None], 'RackId': [None], 'RebalanceTimeoutMs': [-1],
            'SubscribedTopicNames': NULL, 'SubscribedTopicRegex': [None], 'ServerAssignor': [None],
            'TopicPartitions': NULL,
        }),
    ],
    ('ConsumerGroupHeartbeat', 'response'): [
        Variant('assignment', {'ErrorMessage': [None], 'MemberEpoch': [12]}),
        Variant('unchanged', {'ErrorMessage': [None], 'MemberEpoch': [12], 'Assignment': NULL}),
        Variant('fenced', {
            'ErrorCode': [110],                                     # FENCED_MEMBER_EPOCH
            'ErrorMessage': [FENCED_MESSAGE], 'MemberId': [None], 'MemberEpoch': [0],
            'HeartbeatIntervalMs': [0], 'Assignment': NULL,
        }),
    ],
    ('ShareGroupHeartbeat', 'request'): [
        Variant('join', {'MemberEpoch': [0], 'RackId': ['us-east-1a']}),
        Variant('steady', {'MemberEpoch': [6], 'RackId': [None], 'SubscribedTopicNames': NULL}),
        Variant('leave', {'MemberEpoch': [-1], 'RackId': [None], 'SubscribedTopicNames': NULL}),
    ],
    ('ShareGroupHeartbeat', 'response'): [
        Variant('assignment', {'ErrorMessage': [None], 'MemberEpoch': [6]}),
        Variant('unchanged', {'ErrorMessage': [None], 'MemberEpoch': [6], 'Assignment': NULL}),
        Variant('unknown-member', {
            'ErrorCode': [25],                                      # UNKNOWN_MEMBER_ID
            'ErrorMessage': ['Member %s is not a member of group billing-service.' % UUID_MEMBERS[0]],
            'MemberId': [None], 'MemberEpoch': [0], 'HeartbeatIntervalMs': [0], 'Assignment': NULL,
        }),
    ],
}


def variants_for(api, kind, version):
    """The variants of (api, kind) at this version; [None] when there are none."""
    variants = VARIANTS.get((api, kind))
    if not variants:
        return [None]
    return [v for v in variants if in_range(v.versions, version)]


DEFAULT_BY_TYPE = {
    'int8': [1, 0], 'int16': [1, 2], 'int32': [100, 200], 'int64': [1000, 2000],
    'uint16': [1, 2], 'bool': [True, False], 'float64': [0.5, 1.5],
    'string': ['value-a', 'value-b'], 'bytes': [b'\x00\x01\x02\x03', b'\xff'],
    'records': [PRODUCE_RECORDS[0]], 'uuid': TOPIC_IDS,
}


class ValueMaker:
    """Builds the value dict for one message version from its schema table."""

    def __init__(self, api, kind, version, variant=None):
        self.api, self.kind, self.version = api, kind, version
        self.overrides = dict(OVERRIDES.get((api, kind), {}))
        if variant is not None:
            self.overrides.update(variant.overrides)
        self.fallbacks = set()     # fields that got a type default (reported)

    def message(self, schema):
        return self.struct(schema.fields, (), ())

    def struct(self, fields, path, idx):
        return {f.name: self.field(f, path + (f.name,), idx)
                for f in inline_fields(fields, self.version)}

    def lookup(self, path):
        dotted = '.'.join(path)
        if dotted in self.overrides:
            return self.overrides[dotted]
        if len(path) >= 2 and '.'.join(path[-2:]) in GENERIC:
            return GENERIC['.'.join(path[-2:])]
        return GENERIC.get(path[-1])

    @staticmethod
    def pick(values, idx):
        return values[(idx[-1] if idx else 0) % len(values)]

    def values_for(self, path, type_name):
        values = self.lookup(path)
        if values is None:
            self.fallbacks.add('.'.join(path))
            values = DEFAULT_BY_TYPE[type_name]
        return values

    def field(self, f, path, idx):
        v = self.version
        in_second_element = bool(idx) and idx[-1] == 1
        special = self.overrides.get('.'.join(path))
        if special is NULL:
            if not f.is_nullable(v):
                raise ValueError('%s %s v%d: NULL override for non-nullable %s'
                                 % (self.api, self.kind, v, '.'.join(path)))
            return None
        if special is EMPTY:
            return []
        if f.is_array or f.is_struct:
            # Nullable arrays and structs are null in the second element of an
            # enclosing array, and carry a value everywhere else.
            if f.is_nullable(v) and in_second_element:
                return None
            if f.is_array and f.is_struct:
                return [self.struct(f.children, path, idx + (i,)) for i in range(2)]
            if f.is_struct:
                return self.struct(f.children, path, idx)
            values = self.values_for(path, f.element_type)
            if isinstance(values[0], list):      # one list per enclosing element
                return list(self.pick(values, idx))
            return [values[i % len(values)] for i in range(2)]

        values = self.values_for(path, f.type)
        value = self.pick(values, idx)
        overridden = '.'.join(path) in self.overrides
        if f.is_nullable(v) and f.type in ('string', 'bytes') and not overridden:
            if not idx and f.name not in TOP_LEVEL_NON_NULL:
                value = None                      # top-level nullable: null
            elif in_second_element and f.name not in NULL_FIRST:
                value = None                      # second array element: null
        if value is None and not f.is_nullable(v):
            # a [None, text] entry in a version where the field is not nullable
            value = next(x for x in values if x is not None)
        return value


# ---------------------------------------------------------------------------
# Conversions between the value dicts and kafka-python objects
# ---------------------------------------------------------------------------

def int_to_bits(value):
    raw = value & 0xffffffff
    return {bit for bit in range(32) if raw >> bit & 1}


def bits_to_int(bits):
    if bits is None:
        return INT32_MIN       # kafka-python decodes the 'not requested' mask as None
    raw = BitField.to_32_bit_field(bits)
    return raw - (1 << 32) if raw >= 1 << 31 else raw


def to_kafka_python(values, tfields, kstruct, version, data_class):
    """Turn a value dict into kafka-python data objects (fields matched by position)."""
    kwargs = {}
    for t, k in zip(inline_fields(tfields, version), kp_inline_fields(kstruct, version)):
        value = values[t.name]
        if value is not None:
            if t.is_array and t.is_struct:
                value = [to_kafka_python(item, t.children, k.array_of, version, k.data_class)
                         for item in value]
            elif t.is_struct:
                value = to_kafka_python(value, t.children, k, version, k.data_class)
            elif k.type_str == 'bitfield':
                value = int_to_bits(value)
        kwargs[k.name] = value
    return data_class(version=version, **kwargs)


def from_kafka_python(obj, tfields, kstruct, version):
    """Turn a decoded kafka-python object back into a value dict."""
    values = {}
    for t, k in zip(inline_fields(tfields, version), kp_inline_fields(kstruct, version)):
        value = getattr(obj, k.name)
        if k.type_str == 'bitfield':
            value = bits_to_int(value)
        elif value is not None:
            if t.is_array and t.is_struct:
                value = [from_kafka_python(item, t.children, k.array_of, version) for item in value]
            elif t.is_struct:
                value = from_kafka_python(value, t.children, k, version)
            elif isinstance(value, memoryview):
                value = value.tobytes()
        values[t.name] = value
    return values


def tags_present(obj, tfields, kstruct, version):
    """True if a decoded object (or anything inside it) came with tagged fields."""
    if obj is None:
        return False
    if getattr(obj, 'tags', None) or getattr(obj, 'unknown_tags', None):
        return True
    for t, k in zip(inline_fields(tfields, version), kp_inline_fields(kstruct, version)):
        if t.is_array and t.is_struct:
            items = getattr(obj, k.name) or []
            if any(tags_present(i, t.children, k.array_of, version) for i in items):
                return True
        elif t.is_struct and tags_present(getattr(obj, k.name), t.children, k, version):
            return True
    return False


# ---------------------------------------------------------------------------
# kafka-python's generic field codec, fed with the table (for APIs it lacks)
# ---------------------------------------------------------------------------

def kp_generic_struct(schema):
    """kafka-python's StructField built from a JSON description of our table.

    kafka-python has no classes for these APIs, but its field classes (the ones
    every generated message class is made of) can be built from any Kafka-style
    message JSON.  Feeding them a JSON written from our table gives a second
    encoder and decoder that share no code with tablecodec.py.
    """
    json = {
        'name': schema.name, 'type': schema.kind,
        'validVersions': tablecodec.version_text(schema.valid),
        'flexibleVersions': tablecodec.version_text(schema.flexible) if schema.flexible else 'none',
        'fields': [tablecodec.field_json(f) for f in schema.fields],
    }
    return StructField(json)


def to_kp_dict(values, fields, version):
    """Value dict keyed by the table's names -> dict keyed by kafka-python's snake_case names."""
    out = {}
    for f in fields:
        if not f.present(version) or f.name not in values:
            continue
        value = values[f.name]
        if value is not None and f.is_struct:
            if f.is_array:
                value = [to_kp_dict(item, f.children, version) for item in value]
            else:
                value = to_kp_dict(value, f.children, version)
        out[StructField.underscore_name(f.name)] = value
    return out


def from_kp_dict(decoded, fields, version):
    """Inverse of to_kp_dict for a dict decoded by kafka-python (inline fields only)."""
    out = {}
    for f in tablecodec.inline_fields(fields, version):
        value = decoded[StructField.underscore_name(f.name)]
        if value is not None:
            if f.is_struct and f.is_array:
                value = [from_kp_dict(item, f.children, version) for item in value]
            elif f.is_struct:
                value = from_kp_dict(value, f.children, version)
            elif isinstance(value, memoryview):
                value = value.tobytes()
        out[f.name] = value
    return out


# ---------------------------------------------------------------------------
# Encode, verify, render
# ---------------------------------------------------------------------------

class Skip(Exception):
    pass


def encode_and_verify(cls, schema, version, values):
    """Encode with kafka-python and run every check; returns the body bytes."""
    kstruct = cls._struct
    flexible = schema.flexible_at(version)
    if bool(cls.flexible_version_q(version)) != flexible:
        raise Skip('kafka-python flexible=%s, table flexible=%s' % (cls.flexible_version_q(version), flexible))

    message = to_kafka_python(values, schema.fields, kstruct, version, cls)
    body = bytes(message.encode(version=version))

    # kafka-python's non-compiled encoder must agree with the compiled one.
    legacy = bytes(kstruct.encode(message, version=version, compact=flexible, tagged=flexible))
    if legacy != body:
        raise Skip('kafka-python compiled and legacy encoders disagree')

    # The table-driven encoder must agree byte for byte.
    try:
        expected = tablecodec.encode(values, schema.fields, version, flexible)
    except tablecodec.CodecError as why:
        raise Skip('the schema-table encoder refused the values: %s' % why)
    if expected != body:
        raise Skip('kafka-python bytes differ from the schema-table encoding (first difference at byte %d)'
                   % next(i for i in range(min(len(body), len(expected)) + 1)
                          if i == min(len(body), len(expected)) or body[i] != expected[i]))

    # Decode with kafka-python's public decoder and compare values.
    decoded = cls.decode(body, version=version)
    if from_kafka_python(decoded, schema.fields, kstruct, version) != values:
        raise Skip('decoded values differ from the encoded ones')
    if tags_present(decoded, schema.fields, kstruct, version):
        raise Skip('decoder reported tagged fields in an empty tagged section')

    # The compiled decoder (what cls.decode runs) must stop exactly at the end.
    decode_from = kstruct.compiled_decode_from(version, compact=flexible, tagged=flexible, data_class=cls[None])
    _, end = decode_from(memoryview(body), 0)
    if end != len(body):
        raise Skip('compiled decoder consumed %d of %d bytes' % (end, len(body)))

    # So must the stream decoder, and it must agree on the values too.
    stream = io.BytesIO(body)
    legacy_decoded = kstruct.decode(stream, version=version, compact=flexible, tagged=flexible, data_class=cls[None])
    if stream.tell() != len(body):
        raise Skip('stream decoder consumed %d of %d bytes' % (stream.tell(), len(body)))
    if from_kafka_python(legacy_decoded, schema.fields, kstruct, version) != values:
        raise Skip('stream decoder values differ from the encoded ones')
    return body


def table_encode_and_verify(schema, version, values):
    """Encode with the table-driven codec (APIs kafka-python lacks) and check the bytes.

    1. tablecodec.encode writes the body.
    2. kafka-python's generic StructField, built from the same table, must write
       the same bytes (its stream encoder; the compiled one needs generated classes).
    3. tablecodec.decode must read the body back to the same values, using every byte.
    4. kafka-python's stream decoder must do the same.
    """
    flexible = schema.flexible_at(version)
    try:
        body = tablecodec.encode(values, schema.fields, version, flexible)
    except tablecodec.CodecError as why:
        raise Skip('the schema-table encoder refused the values: %s' % why)

    kstruct = kp_generic_struct(schema)
    kp_values = to_kp_dict(values, schema.fields, version)
    other = bytes(kstruct.encode(kp_values, version=version, compact=flexible, tagged=flexible))
    if other != body:
        raise Skip('kafka-python generic encoder differs from the schema-table encoding (first difference at byte %d)'
                   % next(i for i in range(min(len(body), len(other)) + 1)
                          if i == min(len(body), len(other)) or body[i] != other[i]))

    try:
        decoded = tablecodec.decode(body, schema.fields, version, flexible)
    except tablecodec.CodecError as why:
        raise Skip('the schema-table decoder failed: %s' % why)
    if decoded != tablecodec.without_defaulted_tags(values, schema.fields, version):
        raise Skip('schema-table decoder values differ from the encoded ones')

    stream = io.BytesIO(body)
    kp_decoded = kstruct.decode(stream, version=version, compact=flexible, tagged=flexible)
    if stream.tell() != len(body):
        raise Skip('kafka-python stream decoder consumed %d of %d bytes' % (stream.tell(), len(body)))
    if from_kp_dict(kp_decoded, schema.fields, version) != values:
        raise Skip('kafka-python stream decoder values differ from the encoded ones')
    return body


def render(value):
    """JSON-friendly rendering of a value dict for humans."""
    if isinstance(value, dict):
        return {k: render(v) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return {'bytes_hex': bytes(value).hex()}
    return value


def generate(schema_dir):
    classes = kafka_python_classes()
    vectors, skipped, notes = [], [], []
    table_encoded = set()      # api names written by the table-driven codec
    for key, name, lo, hi in APIS:
        tables = load_schemas(schema_dir, key, name)
        for version in range(lo, hi + 1):
            for kind in KINDS:
                schema = tables[kind]
                cls_name = name + ('Request' if kind == 'request' else 'Response')
                where = (key, name, version, kind)
                if not in_range(schema.valid, version):
                    skipped.append(where + ('not a valid version in the Kafka 4.x schema (removed in 4.0); '
                                            'no reference layout to check against',))
                    continue
                cls = classes.get(cls_name)
                if cls is not None:
                    if version > cls.max_version:
                        skipped.append(where + ('kafka-python %s supports %s only up to v%d'
                                                % (kafka.__version__, cls_name, cls.max_version),))
                        continue
                    diffs = layout_differences(schema.fields, cls._struct, version)
                    if diffs:
                        skipped.append(where + ('layout differs from the schema table: ' + '; '.join(diffs),))
                        continue
                    for note in tagged_differences(schema.fields, cls._struct, version):
                        notes.append('%s v%d %s: tagged field differs (section left empty, bytes unaffected): %s'
                                     % (name, version, kind, note))
                for variant in variants_for(name, kind, version):
                    label = name if variant is None else '%s[%s]' % (name, variant.name)
                    maker = ValueMaker(name, kind, version, variant)
                    values = maker.message(schema)
                    for path in sorted(maker.fallbacks):
                        notes.append('%s v%d %s: %s uses a type default value' % (label, version, kind, path))
                    try:
                        if cls is not None:
                            body = encode_and_verify(cls, schema, version, values)
                        else:
                            body = table_encode_and_verify(schema, version, values)
                    except Skip as why:
                        skipped.append((key, label, version, kind, str(why)))
                        continue
                    vector = {'api': key, 'name': name, 'version': version, 'kind': kind}
                    if variant is not None:
                        vector['variant'] = variant.name
                    if cls is None:
                        # kafka-python has no class: the bytes come from tablecodec.py
                        vector['encoder'] = 'schema-table'
                        table_encoded.add(name)
                    vector.update({
                        'flexible': schema.flexible_at(version),
                        'hex': body.hex(),
                        'fields': render(values),
                    })
                    vectors.append(vector)
    for name in sorted(table_encoded):
        notes.append('%s: no kafka-python %s class; encoded by tablecodec.py and checked against '
                     "kafka-python's generic field codec built from the same table" % (name, kafka.__version__))
    return vectors, skipped, notes


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--schemas', type=Path, default=DEFAULT_SCHEMAS,
                        help='directory of <key>-<Name>.txt schema tables (default: %(default)s)')
    parser.add_argument('--output', type=Path, default=DEFAULT_OUTPUT,
                        help='vectors.jsonl to write (default: %(default)s)')
    parser.add_argument('--staged-output', type=Path, default=DEFAULT_STAGED_OUTPUT,
                        help='file for the vectors of STAGED_APIS, APIs Tidemark has no codec for yet '
                             '(default: %(default)s)')
    args = parser.parse_args()

    if kafka.__version__ != '3.0.12':
        print('warning: vectors were reviewed against kafka-python 3.0.12, this is %s' % kafka.__version__,
              file=sys.stderr)
    vectors, skipped, notes = generate(args.schemas)

    main_vectors = [v for v in vectors if v['api'] not in STAGED_APIS]
    staged_vectors = [v for v in vectors if v['api'] in STAGED_APIS]
    for path, chosen in ((args.output, main_vectors), (args.staged_output, staged_vectors)):
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open('w') as out:
            for vector in chosen:
                out.write(json.dumps(vector, separators=(',', ':')) + '\n')

    for path, chosen in ((args.output, main_vectors), (args.staged_output, staged_vectors)):
        counts = {}
        for v in chosen:
            counts.setdefault((v['api'], v['name']), set()).add(v['version'])
        print('wrote %d vectors to %s' % (len(chosen), path))
        for (key, name), versions in sorted(counts.items()):
            n = sum(1 for v in chosen if v['api'] == key)
            print('  %3d %-24s v%s  (%d vectors)' % (key, name, compact_versions(versions), n))
    print('skipped %d (api, version, kind) triples:' % len(skipped))
    for key, name, version, kind, reason in skipped:
        print('  %3d %-24s v%-2d %-8s %s' % (key, name, version, kind, reason))
    if notes:
        print('notes:')
        for note in notes:
            print('  ' + note)


def compact_versions(versions):
    """[0, 1, 2, 5] -> '0-2,5'"""
    runs = []
    for v in sorted(versions):
        if runs and runs[-1][1] == v - 1:
            runs[-1][1] = v
        else:
            runs.append([v, v])
    return ','.join(str(a) if a == b else '%d-%d' % (a, b) for a, b in runs)


if __name__ == '__main__':
    main()
