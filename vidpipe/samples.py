"""Sample videos: the one writer used by the demo, the tests and the benchmarks.

A sample is a structurally valid MP4 (ISO BMFF): `ftyp`, a `moov` with a version-0 `mvhd`
(1 s at timescale 1000), then one `mdat` filling the rest with deterministic pseudo-random
bytes. Nothing in vidpipe or the emulator decodes video, so encoded frames are not worth a
dependency; what matters is that vidpipe's container check accepts it and that no two
stretches of the file are equal, so a byte landing at the wrong offset changes the checksum.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator
from pathlib import Path

_PIECE = 1 << 20
_BASE = 4 << 20


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _head() -> bytes:
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 0x200) + b"isomiso2avc1mp41")
    matrix = struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)
    mvhd = _box(
        b"mvhd",
        struct.pack(">B3xIIII", 0, 0, 0, 1000, 1000)  # version/flags, times, timescale, duration
        + struct.pack(">IH10x", 0x00010000, 0x0100)  # rate 1.0, volume 1.0, reserved
        + matrix
        + bytes(24)  # pre_defined
        + struct.pack(">I", 1),  # next_track_ID
    )
    return ftyp + _box(b"moov", mvhd)


HEAD = _head()
MIN_SIZE = len(HEAD) + 8
"""The smallest sample: the boxes with an empty `mdat`."""


def sample_video_chunks(size: int, seed: int = 0) -> Iterator[bytes]:
    """The bytes of a `size`-byte sample, in pieces of at most 1 MiB."""
    if size < MIN_SIZE:
        raise ValueError(f"a sample video needs at least {MIN_SIZE} bytes")
    payload = size - MIN_SIZE
    yield HEAD + struct.pack(">I", min(8 + payload, 0xFFFFFFFF)) + b"mdat"
    base = random.Random(seed).randbytes(_BASE)
    turn, left = 0, payload
    while left > 0:
        # Rotate the base block by an odd step so no two pieces of the file are equal.
        n = min(left, _PIECE)
        piece = base[turn : turn + n]
        if len(piece) < n:
            piece += base[: n - len(piece)]
        yield piece
        left -= len(piece)
        turn = (turn + 4099 * 257) % _BASE


def sample_video_bytes(size: int, seed: int = 0) -> bytes:
    """A whole sample in memory (for small test bodies)."""
    return b"".join(sample_video_chunks(size, seed))


def write_sample_video(path: Path, size: int, seed: int = 0) -> Path:
    """Write a sample of exactly `size` bytes to `path` and return `path`."""
    with open(path, "wb") as fh:
        for piece in sample_video_chunks(size, seed):
            fh.write(piece)
    return path
