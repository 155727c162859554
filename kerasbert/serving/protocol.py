"""The bert-as-service 1.10 wire format: requests, replies, config (no sockets here).

A request is four ZeroMQ frames ``[identity, payload, request id, count]``; the payload
is a command (``SHOW_CONFIG``, ``SHOW_STATUS``) or the JSON list of texts (strings, or
lists of tokens). Replies go out on the server's PUB side with the client's identity as
the topic: ``[identity, json, request id]`` for a config or status, ``[identity, header
json, array bytes, request id]`` for vectors. The original server sends no error replies
(it drops or crashes); kerasbert answers a bad request with a vectors reply whose header
carries the message where the dtype goes, which makes the real client raise
``TypeError: data type 'kerasbert error: ...' not understood`` and stay usable.
Details: docs/bert_as_service_protocol.md.
"""

import json
from dataclasses import dataclass

import numpy as np

from kerasbert.errors import ServingError

PROTOCOL_VERSION = "1.10.0"  # what bert-serving-client 1.10 checks for, byte for byte
COMMANDS = (b"SHOW_CONFIG", b"SHOW_STATUS")
# bert-as-service's pooling strategies and the integer codes its config reports.
POOLING_CODES = {
    "NONE": 0,
    "REDUCE_MAX": 1,
    "REDUCE_MEAN": 2,
    "REDUCE_MEAN_MAX": 3,
    "FIRST_TOKEN": 4,
    "CLS_TOKEN": 4,
    "LAST_TOKEN": 5,
    "SEP_TOKEN": 5,
}


@dataclass
class Request:
    """A parsed request: ``command`` (bytes) or ``texts`` (a list), and the ids."""

    identity: bytes
    request_id: bytes
    command: bytes = None
    texts: list = None


class BadRequest(ServingError):
    """A request that gets an error reply (``request_id`` known) or is dropped (None)."""

    def __init__(self, message, identity=None, request_id=None):
        super().__init__(message)
        self.identity = identity
        self.request_id = request_id


def _ascii_int(frame):
    text = bytes(frame).decode("ascii", "replace")
    return int(text) if text.isdigit() else None


def parse_request(frames, max_texts):
    """A :class:`Request` from the frames of one message, or :class:`BadRequest`.

    Args:
        frames: the message's frames (bytes).
        max_texts: the most texts one request may carry.
    """
    frames = [bytes(f) for f in frames]
    if len(frames) != 4:
        identity = frames[0] if frames else None
        request_id = frames[-1] if len(frames) >= 2 and _ascii_int(frames[-1]) is not None else None
        raise BadRequest(f"a request has 4 frames, this one {len(frames)}", identity, request_id)
    identity, payload, request_id, count = frames
    if _ascii_int(request_id) is None:
        raise BadRequest("the request id is not a decimal number", identity)
    if payload in COMMANDS:
        return Request(identity, request_id, command=payload)
    try:
        texts = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadRequest("the texts are not UTF-8 JSON", identity, request_id) from None
    try:
        check_texts(texts, max_texts)
    except BadRequest as e:
        raise BadRequest(str(e), identity, request_id) from None
    if _ascii_int(count) != len(texts):
        raise BadRequest(f"the request says {count.decode('ascii', 'replace')!r} texts but "
                         f"holds {len(texts)}", identity, request_id)  # fmt: skip
    return Request(identity, request_id, texts=texts)


def check_texts(texts, max_texts):
    """Raise :class:`BadRequest` unless ``texts`` is a non-empty list of non-blank strings,
    or of non-empty lists of non-blank strings (pre-tokenized), at most ``max_texts``."""
    if not isinstance(texts, list):
        raise BadRequest(f"texts must be a list, got {type(texts).__name__}")
    if not texts:
        raise BadRequest("texts is an empty list")
    if len(texts) > max_texts:
        raise BadRequest(f"{len(texts)} texts in one request; this server takes at most "
                         f"{max_texts} (-max_request_texts)")  # fmt: skip
    tokenized = all(isinstance(t, list) for t in texts)
    for index, text in enumerate(texts):
        items = text if tokenized else [text]
        if tokenized and not items:
            raise BadRequest(f"text {index} is an empty token list")
        for item in items:
            if not isinstance(item, str):
                where = f"a token of text {index}" if tokenized else f"text {index}"
                raise BadRequest(f"{where} is {type(item).__name__}, not a string")
            if not item.strip():
                raise BadRequest(f"text {index} is blank")


def config_reply(identity, request_id, config):
    """``[identity, json, request id]``: a SHOW_CONFIG / SHOW_STATUS answer."""
    return [identity, json.dumps(config).encode("utf-8"), request_id]


def vectors_reply(identity, request_id, array, tokens=None):
    """``[identity, header, bytes, request id]``: vectors (and tokens) of one request."""
    array = np.ascontiguousarray(array)
    header = {"dtype": str(array.dtype), "shape": list(array.shape), "tokens": tokens or ""}
    return [identity, json.dumps(header).encode("utf-8"), array.tobytes(), request_id]


def error_reply(identity, request_id, message):
    """A vectors reply the client cannot decode, carrying ``message``: the real client
    raises ``TypeError: data type 'kerasbert error: <message>' not understood``."""
    # numpy reads commas in a dtype string as a record format (a ValueError, not the
    # TypeError that says "not understood"), so the dtype's copy of the message has none.
    text = f"kerasbert error: {message}".replace(",", ";")
    header = {"dtype": text, "shape": [0], "tokens": "", "error": {"message": message}}
    return [identity, json.dumps(header).encode("utf-8"), b"", request_id]
