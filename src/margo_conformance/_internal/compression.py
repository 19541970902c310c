"""Bounded decompression of untrusted bytes (archives, HTTP bodies): a bomb cannot exhaust memory."""

from __future__ import annotations

import zlib

GZIP_WBITS = 16 + zlib.MAX_WBITS  # gzip header and trailer
ZLIB_WBITS = zlib.MAX_WBITS  # zlib-wrapped deflate
RAW_WBITS = -zlib.MAX_WBITS  # bare deflate


def inflate(data: bytes, *, wbits: int, limit: int, several: bool = False) -> bytes:
    """The decompressed bytes, at most ``limit`` of them; ``several`` reads every member of a multi-member
    gzip (as gzip, tar and Docker do). Raises ValueError naming the problem."""
    out = bytearray()
    rest = data
    while True:
        decompressor = zlib.decompressobj(wbits)
        try:
            out += decompressor.decompress(rest, limit + 1 - len(out))
        except zlib.error as exc:
            raise ValueError(f"corrupt compressed data: {exc}") from None
        if len(out) > limit or decompressor.unconsumed_tail:
            raise ValueError(f"inflates beyond {_size(limit)}")
        if not decompressor.eof:
            raise ValueError("truncated compressed data (the stream ends early)")
        rest = decompressor.unused_data
        if not several or not rest:
            return bytes(out)


def _size(count: int) -> str:
    return f"{count // (1024 * 1024)} MiB" if count >= 1024 * 1024 else f"{count} bytes"
