"""A Kafka message codec driven only by the schema tables in ./schemas.

generate.py uses this module in two ways:

  * for APIs that kafka-python has protocol classes for, `encode` is a cross-check: its bytes
    must equal kafka-python's;
  * for APIs that kafka-python lacks (ConsumerGroupHeartbeat, ConsumerGroupDescribe and the
    share-group APIs in kafka-python 3.0.12), `encode` produces the vector bytes, and `decode`
    reads them back.

Nothing here looks at Tidemark's Swift code.  The rules come from Kafka's protocol guide and
the conventions stated at the top of every table file:

  * int8/int16/uint16/int32/int64/float64 are big-endian fixed width; bool is one byte 0/1;
    uuid is 16 bytes.
  * Classic (non-flexible) versions: string = int16 length + UTF-8 (-1 for null); bytes and
    records = int32 length (-1 for null); array = int32 count (-1 for null).
  * Flexible versions: the same, but every length or count is an unsigned varint holding
    length + 1, and 0 means null.  Each struct (the message body, every array element and every
    nested struct) ends with a tagged-field section: an unsigned varint count, then for each
    field in ascending tag order the tag, the payload size and the payload (all varints except
    the payload), which is the field encoded in the flexible form.
  * Fields with a tag are never written inline in the versions where they are tagged.  They are
    written in the section only when their value differs from the field's default.
  * A nullable struct written inline (`Assignment Assignment ... nullable=0-1`) is preceded by an
    int8 marker in the versions where it is nullable: -1 for null (and nothing follows), 1 when a
    struct follows.  In versions where it is not nullable there is no marker.  A tagged
    nullable struct instead starts its payload with an unsigned varint 0 (null) or 1 (present).

The field objects are the ones generate.py parses from the tables (duck-typed: name, type,
tag, default, children, present(v), is_nullable(v), is_tagged(v), is_array, is_struct,
element_type).  Values are plain Python: dicts keyed by the table's field names, lists, str,
int, bool, float, bytes, uuid.UUID, and None for null.
"""

import struct
import uuid

FIXED = {'int8': '>b', 'int16': '>h', 'uint16': '>H', 'int32': '>i', 'int64': '>q',
         'float64': '>d', 'bool': '>?'}
BYTES_TYPES = ('bytes', 'records')
MAX_UVARINT = (1 << 32) - 1


class CodecError(ValueError):
    """The values do not fit the table, or the bytes do not decode against it."""


def uvarint(n):
    """Unsigned varint (7 bits per byte, least significant group first)."""
    if not 0 <= n <= MAX_UVARINT:
        raise CodecError('unsigned varint out of range: %d' % n)
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7f | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def inline_fields(fields, version):
    """Fields written in place in `version` (present and not tagged), in wire order."""
    return [f for f in fields if f.present(version) and not f.is_tagged(version)]


def tagged_fields(fields, version):
    """Fields that live in the tagged-field section in `version`, by ascending tag."""
    return sorted((f for f in fields if f.present(version) and f.is_tagged(version)),
                  key=lambda f: f.tag)


# ---------------------------------------------------------------------------
# Defaults (used to decide whether a tagged field is written at all)
# ---------------------------------------------------------------------------

def default_value(f, version):
    """The value a field has when nothing sets it, per the table's `default=` (or the type's)."""
    raw = getattr(f, 'default', None)
    if f.is_array:
        return None if raw == 'null' else []
    if f.is_struct:
        if raw == 'null':
            return None
        return default_struct(f.children, version)
    kind = f.type
    if raw == 'null':
        return None
    if kind in ('int8', 'int16', 'uint16', 'int32', 'int64'):
        return int(raw, 0) if raw else 0
    if kind == 'bool':
        return raw == 'true'
    if kind == 'float64':
        return float(raw) if raw else 0.0
    if kind == 'string':
        if raw and len(raw) >= 2 and raw[0] == raw[-1] == '"':
            raw = raw[1:-1]                       # default="" in the tables
        return raw or ''
    if kind in BYTES_TYPES:
        return b''
    if kind == 'uuid':
        return uuid.UUID(int=0)
    raise CodecError('%s: unknown type %s' % (f.name, kind))


def default_struct(fields, version):
    return {f.name: default_value(f, version) for f in fields if f.present(version)}


def without_defaulted_tags(values, fields, version):
    """A copy of `values` with tagged fields at their default removed, recursively.

    After a round trip, a tagged field is present only if it was on the wire; this puts the
    original values in the same shape for comparison.
    """
    if values is None:
        return None
    out = {}
    for f in fields:
        if not f.present(version) or f.name not in values:
            continue
        value = values[f.name]
        if f.is_tagged(version) and value == default_value(f, version):
            continue
        if value is not None and f.is_struct:
            if f.is_array:
                value = [without_defaulted_tags(item, f.children, version) for item in value]
            else:
                value = without_defaulted_tags(value, f.children, version)
        out[f.name] = value
    return out


# ---------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------

def encode(values, fields, version, flexible):
    """Encode a message body (or any struct) from a value dict."""
    return bytes(_encode_struct(values, fields, version, flexible, path=''))


def _encode_struct(values, fields, version, flexible, path):
    if not isinstance(values, dict):
        raise CodecError('%s: expected a dict of field values, got %r' % (path or 'body', values))
    known = {f.name for f in fields if f.present(version)}
    unknown = set(values) - known
    if unknown:
        raise CodecError('%s: fields not in v%d of the table: %s' % (path or 'body', version, sorted(unknown)))
    out = bytearray()
    for f in inline_fields(fields, version):
        if f.name not in values:
            raise CodecError('%s: no value for inline field %s' % (path or 'body', f.name))
        out += _encode_field(f, values[f.name], version, flexible, _join(path, f.name))
    entries = []
    for f in tagged_fields(fields, version):
        value = values.get(f.name, default_value(f, version))
        if value == default_value(f, version):
            continue
        if not flexible:
            raise CodecError('%s: tagged field set in non-flexible v%d' % (_join(path, f.name), version))
        entries.append(uvarint(f.tag) + _sized(_encode_tagged_payload(f, value, version, _join(path, f.name))))
    if flexible:
        out += uvarint(len(entries)) + b''.join(entries)
    return out


def _sized(payload):
    return uvarint(len(payload)) + payload


def _encode_tagged_payload(f, value, version, path):
    if f.is_struct and not f.is_array:
        # A tagged struct carries a varint presence marker only if it may be null.
        if f.is_nullable(version):
            if value is None:
                return b'\x00'
            return b'\x01' + _encode_struct(value, f.children, version, True, path)
        if value is None:
            raise CodecError('%s: null for a non-nullable struct' % path)
        return bytes(_encode_struct(value, f.children, version, True, path))
    return bytes(_encode_field(f, value, version, True, path))


def _encode_field(f, value, version, flexible, path):
    if value is None and not f.is_nullable(version):
        raise CodecError('%s: null in v%d, where the field is not nullable' % (path, version))
    if f.is_array:
        if value is None:
            return b'\x00' if flexible else struct.pack('>i', -1)
        if not isinstance(value, list):
            raise CodecError('%s: expected a list, got %r' % (path, value))
        out = bytearray(uvarint(len(value) + 1) if flexible else struct.pack('>i', len(value)))
        for i, item in enumerate(value):
            where = '%s[%d]' % (path, i)
            if f.is_struct:
                out += _encode_struct(item, f.children, version, flexible, where)
            else:
                if item is None:
                    raise CodecError('%s: null array element' % where)
                out += _encode_scalar(f.element_type, item, flexible, where)
        return out
    if f.is_struct:
        out = bytearray()
        if f.is_nullable(version):
            out += struct.pack('>b', -1 if value is None else 1)
        if value is not None:
            out += _encode_struct(value, f.children, version, flexible, path)
        return out
    return _encode_scalar(f.type, value, flexible, path)


def _encode_scalar(kind, value, flexible, path):
    try:
        if kind == 'bool':
            if not isinstance(value, bool):
                raise CodecError('%s: expected a bool, got %r' % (path, value))
            return b'\x01' if value else b'\x00'
        if kind in FIXED:
            if kind != 'float64' and (isinstance(value, bool) or not isinstance(value, int)):
                raise CodecError('%s: expected an integer, got %r' % (path, value))
            return struct.pack(FIXED[kind], value)
    except struct.error as why:
        raise CodecError('%s: %r does not fit %s (%s)' % (path, value, kind, why))
    if kind == 'uuid':
        if not isinstance(value, uuid.UUID):
            raise CodecError('%s: expected a uuid.UUID, got %r' % (path, value))
        return value.bytes
    if kind == 'string':
        if value is None:
            return b'\x00' if flexible else struct.pack('>h', -1)
        data = value.encode('utf-8')
        if len(data) > 0x7fff:
            raise CodecError('%s: string longer than 32767 bytes' % path)
        return (uvarint(len(data) + 1) if flexible else struct.pack('>h', len(data))) + data
    if kind in BYTES_TYPES:
        if value is None:
            return b'\x00' if flexible else struct.pack('>i', -1)
        data = bytes(value)
        return (uvarint(len(data) + 1) if flexible else struct.pack('>i', len(data))) + data
    raise CodecError('%s: unknown type %s' % (path, kind))


def _join(path, name):
    return path + '.' + name if path else name


# ---------------------------------------------------------------------------
# Decoding (strict: every byte must be accounted for)
# ---------------------------------------------------------------------------

def decode(data, fields, version, flexible):
    """Decode a message body; raises CodecError unless it consumes exactly all of `data`.

    Tagged fields appear in the result only if they were on the wire.
    """
    reader = _Reader(bytes(data))
    values = reader.struct(fields, version, flexible, '')
    if reader.pos != len(reader.data):
        raise CodecError('%d trailing bytes after the body' % (len(reader.data) - reader.pos))
    return values


class _Reader:
    def __init__(self, data, pos=0, end=None):
        self.data, self.pos = data, pos
        self.end = len(data) if end is None else end

    def take(self, n, path):
        if n < 0 or self.pos + n > self.end:
            raise CodecError('%s: needs %d bytes at offset %d, only %d left' % (path, n, self.pos, self.end - self.pos))
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def fixed(self, fmt, path):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), path))[0]

    def uvarint(self, path):
        result, shift = 0, 0
        while True:
            byte = self.take(1, path)[0]
            result |= (byte & 0x7f) << shift
            if not byte & 0x80:
                break
            shift += 7
            if shift > 28:
                raise CodecError('%s: unsigned varint longer than 5 bytes' % path)
        if result > MAX_UVARINT:
            raise CodecError('%s: unsigned varint out of range' % path)
        return result

    def length(self, flexible, classic_fmt, path):
        """A length or count: None for null, else a non-negative int."""
        if flexible:
            n = self.uvarint(path)
            return None if n == 0 else n - 1
        n = self.fixed(classic_fmt, path)
        if n < -1:
            raise CodecError('%s: negative length %d' % (path, n))
        return None if n == -1 else n

    def struct(self, fields, version, flexible, path):
        values = {}
        for f in inline_fields(fields, version):
            values[f.name] = self.field(f, version, flexible, _join(path, f.name))
        if flexible:
            by_tag = {f.tag: f for f in tagged_fields(fields, version)}
            count = self.uvarint(path + '<tagged count>')
            last = -1
            for _ in range(count):
                tag = self.uvarint(path + '<tag>')
                if tag <= last:
                    raise CodecError('%s: tag %d after tag %d (tags must ascend)' % (path or 'body', tag, last))
                last = tag
                size = self.uvarint(path + '<tag size>')
                if tag not in by_tag:
                    raise CodecError('%s: unknown tag %d' % (path or 'body', tag))
                f = by_tag[tag]
                where = _join(path, f.name)
                sub = _Reader(self.data, self.pos, self.pos + size)
                self.take(size, where)
                values[f.name] = sub.tagged_payload(f, version, where)
                if sub.pos != sub.end:
                    raise CodecError('%s: tagged payload has %d unread bytes' % (where, sub.end - sub.pos))
        return values

    def tagged_payload(self, f, version, path):
        if f.is_struct and not f.is_array:
            if f.is_nullable(version):
                marker = self.uvarint(path)
                if marker == 0:
                    return None
                if marker != 1:
                    raise CodecError('%s: tagged struct marker %d' % (path, marker))
            return self.struct(f.children, version, True, path)
        return self.field(f, version, True, path)

    def field(self, f, version, flexible, path):
        if f.is_array:
            n = self.length(flexible, '>i', path)
            if n is None:
                return self.null(f, version, path)
            items = []
            for i in range(n):
                where = '%s[%d]' % (path, i)
                if f.is_struct:
                    items.append(self.struct(f.children, version, flexible, where))
                else:
                    items.append(self.scalar(f.element_type, flexible, where, nullable=False))
            return items
        if f.is_struct:
            if f.is_nullable(version):
                marker = self.fixed('>b', path)
                if marker < 0:
                    return None
                if marker != 1:
                    raise CodecError('%s: nullable-struct marker %d' % (path, marker))
            return self.struct(f.children, version, flexible, path)
        return self.scalar(f.type, flexible, path, nullable=f.is_nullable(version))

    @staticmethod
    def null(f, version, path):
        if not f.is_nullable(version):
            raise CodecError('%s: null in v%d, where the field is not nullable' % (path, version))
        return None

    def scalar(self, kind, flexible, path, nullable):
        if kind == 'bool':
            byte = self.take(1, path)[0]
            if byte > 1:
                raise CodecError('%s: bool byte %d' % (path, byte))
            return byte == 1
        if kind in FIXED:
            return self.fixed(FIXED[kind], path)
        if kind == 'uuid':
            return uuid.UUID(bytes=self.take(16, path))
        if kind in ('string',) + BYTES_TYPES:
            n = self.length(flexible, '>h' if kind == 'string' else '>i', path)
            if n is None:
                if not nullable:
                    raise CodecError('%s: null where the field is not nullable' % path)
                return None
            raw = self.take(n, path)
            return raw.decode('utf-8') if kind == 'string' else raw
        raise CodecError('%s: unknown type %s' % (path, kind))


# ---------------------------------------------------------------------------
# A Kafka-style JSON description of a table, for kafka-python's generic field codec
# ---------------------------------------------------------------------------

def version_text(rng):
    lo, hi = rng
    if hi >= 32767:
        return '%d+' % lo
    return str(lo) if lo == hi else '%d-%d' % (lo, hi)


def field_json(f):
    """One table row as a JSON field object (the keys Kafka's message JSON uses)."""
    out = {'name': f.name, 'type': f.type, 'versions': version_text(f.versions)}
    if f.nullable is not None:
        out['nullableVersions'] = version_text(f.nullable)
    if f.tag is not None:
        out['tag'] = f.tag
        out['taggedVersions'] = version_text(f.tagged_versions)
    if getattr(f, 'default', None) is not None:
        out['default'] = '' if f.default == '""' else f.default
    if f.children:
        out['fields'] = [field_json(c) for c in f.children]
    return out
