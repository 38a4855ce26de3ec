"""gRPC length-prefixed message frames, written to files h2load posts as request bodies.

A gRPC request body is a sequence of frames: 1 byte "compressed" flag (0), a 4-byte big-endian length, the serialized
message. A unary call sends one frame; a client-streaming or bidi call whose client sends everything and then
half-closes (ExecuteTaskSync: header, inputs) is the same as one body holding several frames followed by
end-of-stream, which is what h2load sends.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

from google.protobuf.message import Message

__all__ = ["decode_frames", "encode_frame", "encode_frames", "write_body"]


def encode_frame(message: Message | bytes) -> bytes:
    """One uncompressed gRPC frame holding ``message``."""
    payload = message if isinstance(message, bytes) else message.SerializeToString()
    return struct.pack(">BI", 0, len(payload)) + payload


def encode_frames(messages: Iterable[Message | bytes]) -> bytes:
    """The frames of several messages, back to back."""
    return b"".join(encode_frame(m) for m in messages)


def decode_frames(body: bytes) -> list[bytes]:
    """Split a body into its message payloads (used to check the encoding); raises ValueError on a bad body."""
    out = []
    pos = 0
    while pos < len(body):
        if len(body) - pos < 5:
            raise ValueError(f"truncated frame header at byte {pos}")
        flag, length = struct.unpack_from(">BI", body, pos)
        if flag != 0:
            raise ValueError(f"compressed frame at byte {pos} is not supported")
        pos += 5
        if len(body) - pos < length:
            raise ValueError(f"frame at byte {pos - 5} announces {length} bytes, {len(body) - pos} left")
        out.append(body[pos : pos + length])
        pos += length
    return out


def write_body(path: Path, messages: Iterable[Message | bytes]) -> Path:
    """Write the frames of ``messages`` to ``path`` (an h2load ``-d`` body file) and return it."""
    path.write_bytes(encode_frames(messages))
    return path
