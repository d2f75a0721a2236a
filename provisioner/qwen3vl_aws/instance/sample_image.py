"""Sample PNGs (health's image chat, the warm-up, bench), made without an imaging library."""

from __future__ import annotations

import struct
import zlib


def gradient_png(width: int, height: int) -> bytes:
    """An RGB colour-gradient PNG of ``width`` x ``height`` pixels, written by hand so the CLI
    needs no imaging library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(
        b"\x00" + bytes(v for x in range(width) for v in (x * 4 % 256, y * 4 % 256, 128))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def tiny_png(size: int = 64) -> bytes:
    """A small square gradient PNG (health's image chat)."""
    return gradient_png(size, size)
