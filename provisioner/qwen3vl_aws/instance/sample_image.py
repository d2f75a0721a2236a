"""A small PNG for the image chat that health sends, made without an imaging library."""

from __future__ import annotations

import struct
import zlib


def tiny_png(size: int = 64) -> bytes:
    """A small RGB gradient PNG, written by hand so the CLI needs no imaging library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(
        b"\x00" + bytes(v for x in range(size) for v in (x * 4 % 256, y * 4 % 256, 128))
        for y in range(size)
    )
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
