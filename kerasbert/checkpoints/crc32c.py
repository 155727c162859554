"""CRC-32C (Castagnoli), as TensorFlow checksums its checkpoint files, without TensorFlow.

``crc32c(data)`` uses a C implementation when one is installed (``google-crc32c`` or
``crc32c``, e.g. through ``pip install kerasbert[fast]``); otherwise numpy computes the CRC
of many equal chunks of the data at once and stitches the chunk CRCs together with a
precomputed "append L zero bytes" operator (the linearity zlib's ``crc32_combine`` uses).
"""

import functools

import numpy as np

_POLY = 0x82F63B78  # reflected Castagnoli polynomial
_MASK_DELTA = 0xA282EAD8


def _byte_table():
    table = np.zeros(256, np.uint32)
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (_POLY if crc & 1 else 0)
        table[byte] = crc
    return table


_TABLE = _byte_table()
_TABLE_LIST = [int(v) for v in _TABLE]


def _halfword_tables():
    """Two 65536-entry tables advancing the register over 4 bytes, 2 bytes per lookup."""
    tables = [_TABLE]
    for _ in range(3):
        previous = tables[-1]
        tables.append((previous >> np.uint32(8)) ^ _TABLE[previous & np.uint32(0xFF)])
    t0, t1, t2, t3 = tables
    v = np.arange(65536, dtype=np.uint32)
    low, high = v & np.uint32(0xFF), v >> np.uint32(8)
    return t3[low] ^ t2[high], t1[low] ^ t0[high]


_LOW_HALF, _HIGH_HALF = _halfword_tables()


def _update_python(state, data):
    table = _TABLE_LIST
    for byte in bytes(data):
        state = table[(state ^ byte) & 0xFF] ^ (state >> 8)
    return state


def _apply_operator(columns, value):
    """Apply a GF(2) 32x32 operator (images of the 32 unit vectors) to a value."""
    result, bit = 0, 0
    while value:
        if value & 1:
            result ^= columns[bit]
        value >>= 1
        bit += 1
    return result


@functools.lru_cache(maxsize=64)
def _zeros_operator(length):
    """Byte tables of the linear map "advance the CRC register over `length` zero bytes"."""
    # One zero byte as an operator, then square-and-multiply up to `length` bytes.
    one = [_update_python(1 << bit, b"\x00") for bit in range(32)]
    result = [1 << bit for bit in range(32)]  # identity
    power = one
    n = length
    while n:
        if n & 1:
            result = [_apply_operator(power, c) for c in result]
        power = [_apply_operator(power, c) for c in power]
        n >>= 1
    tables = np.zeros((4, 256), np.uint32)
    for k in range(4):
        for byte in range(256):
            tables[k, byte] = _apply_operator(result, byte << (8 * k))
    return [[int(v) for v in row] for row in tables]


def _chunk_crcs(words):
    """Register values (start 0) of each row of a (rows, cols) uint32 array, vectorized."""
    state = np.zeros(words.shape[0], np.uint32)
    step = 64  # transpose column blocks so each step reads contiguous memory
    for start in range(0, words.shape[1], step):
        block = np.ascontiguousarray(words[:, start : start + step].T)
        for column in block:
            x = state ^ column
            state = _LOW_HALF[x & 0xFFFF] ^ _HIGH_HALF[x >> np.uint32(16)]
    return state


def _crc32c_numpy(data):
    buffer = np.frombuffer(memoryview(data).cast("B"), np.uint8)
    n = buffer.size
    rows = min(32768, n // 4096)
    state = 0xFFFFFFFF
    done = 0
    if rows >= 2:
        row_bytes = (n // rows) // 4 * 4
        words = buffer[: rows * row_bytes].view("<u4").reshape(rows, row_bytes // 4)
        chunk_states = _chunk_crcs(words)
        t0, t1, t2, t3 = _zeros_operator(row_bytes)
        for chunk_state in chunk_states.tolist():
            state = (
                t0[state & 0xFF]
                ^ t1[(state >> 8) & 0xFF]
                ^ t2[(state >> 16) & 0xFF]
                ^ t3[state >> 24]
                ^ chunk_state
            )
        done = rows * row_bytes
    state = _update_python(state, buffer[done:].tobytes())
    return state ^ 0xFFFFFFFF


def _c_implementation():
    try:
        import google_crc32c

        if google_crc32c.implementation == "c":
            return lambda data: google_crc32c.value(bytes(data) if len(data) < 4096 else data)
    except ImportError:
        pass
    try:
        import crc32c as crc32c_package

        return crc32c_package.crc32c
    except (ImportError, AttributeError):
        return None


_C_CRC32C = _c_implementation()


def crc32c(data, use_c=True):
    """CRC-32C of a bytes-like object.

    Args:
        data: bytes, bytearray, memoryview or a C-contiguous numpy array.
        use_c: use an installed C implementation when there is one.

    Example:

    >>> hex(crc32c(b"123456789"))
    '0xe3069283'
    """
    if isinstance(data, np.ndarray):
        data = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    if use_c and _C_CRC32C is not None:
        return int(_C_CRC32C(data))
    return _crc32c_numpy(data)


def mask(crc):
    """TensorFlow's (LevelDB's) masked CRC, stored in files.

    Example:

    >>> unmask(mask(0x12345678)) == 0x12345678
    True
    """
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def unmask(masked):
    """Inverse of :func:`mask`."""
    rot = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF
