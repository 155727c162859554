"""LevelDB-format sorted string tables, the container of TensorFlow's ``.index`` files.

A table is a run of blocks, each followed by a 5-byte trailer (compression type, masked
CRC-32C of block + type), then a 48-byte footer: the metaindex and index block handles
(varint offset and size each) padded to 40 bytes, and an 8-byte magic number. The index
block maps a separator key to the handle of each data block. Inside a block, keys are
prefix-compressed against the previous key, with restart points every few entries.
"""

import struct

from kerasbert.checkpoints.crc32c import crc32c, mask, unmask
from kerasbert.checkpoints.protobuf import encode_varint, read_varint
from kerasbert.errors import CheckpointError

MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
TRAILER_SIZE = 5
BLOCK_SIZE = 4096
RESTART_INTERVAL = 16


def _read_handle(data, pos):
    offset, pos = read_varint(data, pos)
    size, pos = read_varint(data, pos)
    return (offset, size), pos


def _encode_handle(offset, size):
    return encode_varint(offset) + encode_varint(size)


def _read_block(data, handle, path):
    offset, size = handle
    if offset + size + TRAILER_SIZE > len(data) - FOOTER_SIZE:
        raise CheckpointError(f"{path!r}: a block runs past the end of the file (truncated?)")
    block = bytes(data[offset : offset + size])
    compression = data[offset + size]
    stored = struct.unpack_from("<I", data, offset + size + 1)[0]
    if unmask(stored) != crc32c(block + bytes([compression])):
        raise CheckpointError(f"{path!r}: block checksum mismatch at offset {offset} (corrupt)")
    if compression != 0:
        raise CheckpointError(
            f"{path!r}: compressed table blocks (type {compression}) are not supported; "
            "TensorFlow writes checkpoint indexes uncompressed."
        )
    return block


def _block_entries(block, path):
    if len(block) < 4:
        raise CheckpointError(f"{path!r}: block too short")
    num_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    limit = len(block) - 4 - 4 * num_restarts
    if num_restarts < 1 or limit < 0:
        raise CheckpointError(f"{path!r}: bad restart array in block")
    pos, key = 0, b""
    while pos < limit:
        shared, pos = read_varint(block, pos)
        unshared, pos = read_varint(block, pos)
        value_length, pos = read_varint(block, pos)
        if shared > len(key) or pos + unshared + value_length > limit:
            raise CheckpointError(f"{path!r}: malformed block entry")
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        yield key, block[pos : pos + value_length]
        pos += value_length


def read_table(data, path="<table>"):
    """All ``(key, value)`` pairs of a table held in ``data`` (bytes), in key order.

    Example:

    >>> read_table(write_table([(b"a", b"1"), (b"b", b"2")]))
    [(b'a', b'1'), (b'b', b'2')]
    """
    if len(data) < FOOTER_SIZE:
        raise CheckpointError(f"{path!r} is too short to be a checkpoint index (truncated?)")
    if struct.unpack_from("<Q", data, len(data) - 8)[0] != MAGIC:
        raise CheckpointError(
            f"{path!r} is not a TensorFlow checkpoint index (bad magic number; truncated "
            "or not an .index file)."
        )
    footer = bytes(data[len(data) - FOOTER_SIZE :])
    _, pos = _read_handle(footer, 0)  # metaindex: unused by bundles
    index_handle, _ = _read_handle(footer, pos)
    entries, previous = [], None
    for _, handle_bytes in _block_entries(_read_block(data, index_handle, path), path):
        handle, _ = _read_handle(handle_bytes, 0)
        for key, value in _block_entries(_read_block(data, handle, path), path):
            if previous is not None and key <= previous:
                raise CheckpointError(f"{path!r}: keys out of order (corrupt index)")
            previous = key
            entries.append((key, value))
    return entries


def _build_block(entries):
    out, restarts, previous = bytearray(), [], b""
    for i, (key, value) in enumerate(entries):
        shared = 0
        if i % RESTART_INTERVAL == 0:
            restarts.append(len(out))
        else:
            while shared < min(len(key), len(previous)) and key[shared] == previous[shared]:
                shared += 1
        out += encode_varint(shared) + encode_varint(len(key) - shared)
        out += encode_varint(len(value)) + key[shared:] + value
        previous = key
    restarts = restarts or [0]
    out += struct.pack(f"<{len(restarts)}I", *restarts) + struct.pack("<I", len(restarts))
    return bytes(out)


def write_table(entries):
    """Serialize sorted ``(key, value)`` byte pairs into table bytes.

    Example:

    >>> len(write_table([])) > 48
    True
    """
    out = bytearray()

    def emit(block):
        offset = len(out)
        trailer = b"\x00" + struct.pack("<I", mask(crc32c(block + b"\x00")))
        out.extend(block + trailer)
        return _encode_handle(offset, len(block))

    index_entries, pending, size = [], [], 0
    for key, value in entries:
        pending.append((key, value))
        size += len(key) + len(value) + 8
        if size >= BLOCK_SIZE:
            index_entries.append((key, emit(_build_block(pending))))
            pending, size = [], 0
    if pending:
        index_entries.append((pending[-1][0], emit(_build_block(pending))))
    metaindex = emit(_build_block([]))
    index = emit(_build_block(index_entries))
    footer = (metaindex + index).ljust(FOOTER_SIZE - 8, b"\x00") + struct.pack("<Q", MAGIC)
    out.extend(footer)
    return bytes(out)
