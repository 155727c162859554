"""A minimal protocol-buffer wire-format codec for TensorFlow's bundle messages.

Only what ``BundleHeaderProto`` / ``BundleEntryProto`` / ``TensorShapeProto`` use: varints,
fixed32/fixed64 and length-delimited fields. Every read is bounds-checked; malformed input
raises :class:`kerasbert.errors.CheckpointError`.
"""

import struct

from kerasbert.errors import CheckpointError

VARINT, FIXED64, BYTES, FIXED32 = 0, 1, 2, 5


def read_varint(data, pos):
    """Decode a base-128 varint at ``pos``; returns ``(value, next_pos)``.

    Example:

    >>> read_varint(b"\\xac\\x02", 0)
    (300, 2)
    """
    result = shift = 0
    while True:
        if pos >= len(data):
            raise CheckpointError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise CheckpointError("varint longer than 64 bits")


def encode_varint(value):
    """Encode a non-negative integer as a varint.

    Example:

    >>> encode_varint(300)
    b'\\xac\\x02'
    """
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def parse_message(data):
    """Decode a message into ``{field number: [values]}`` (bytes for length-delimited).

    Example:

    >>> parse_message(b"\\x08\\x03\\x12\\x02ab")
    {1: [3], 2: [b'ab']}
    """
    fields = {}
    pos = 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == VARINT:
            value, pos = read_varint(data, pos)
        elif wire_type == BYTES:
            length, pos = read_varint(data, pos)
            if pos + length > len(data):
                raise CheckpointError("length-delimited field runs past the message")
            value, pos = bytes(data[pos : pos + length]), pos + length
        elif wire_type == FIXED32:
            if pos + 4 > len(data):
                raise CheckpointError("truncated fixed32 field")
            value, pos = struct.unpack_from("<I", data, pos)[0], pos + 4
        elif wire_type == FIXED64:
            if pos + 8 > len(data):
                raise CheckpointError("truncated fixed64 field")
            value, pos = struct.unpack_from("<Q", data, pos)[0], pos + 8
        else:
            raise CheckpointError(f"unsupported protobuf wire type {wire_type}")
        fields.setdefault(number, []).append(value)
    return fields


def field(number, wire_type, value):
    """Encode one field (``value``: int for varint/fixed, bytes for length-delimited).

    Example:

    >>> field(1, VARINT, 3) + field(2, BYTES, b"ab")
    b'\\x08\\x03\\x12\\x02ab'
    """
    key = encode_varint(number << 3 | wire_type)
    if wire_type == VARINT:
        return key + encode_varint(value)
    if wire_type == BYTES:
        return key + encode_varint(len(value)) + value
    if wire_type == FIXED32:
        return key + struct.pack("<I", value)
    return key + struct.pack("<Q", value)


def to_signed64(value):
    """Interpret a decoded varint as an int64 (protobuf stores negatives as 2**64 + v)."""
    return value - (1 << 64) if value >= 1 << 63 else value
