"""Human units on the command line: chunk sizes and durations."""

from __future__ import annotations

import pytest

from vidpipe.errors import UsageError
from vidpipe.units import AUTO_CHUNK, parse_chunk_size, parse_duration

KiB = 1024
MiB = 1024 * 1024


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("256KiB", 256 * KiB),
        ("8MiB", 8 * MiB),
        ("8mib", 8 * MiB),
        ("8M", 8 * MiB),
        ("1GiB", 1024 * MiB),
        ("262144", 262144),
        (" 32 MiB ", 32 * MiB),
        ("512K", 512 * KiB),
        ("262144KB", 262144 * 1000),  # decimal, and by luck a multiple of 256 KiB
    ],
)
def test_parse_chunk_size(text: str, expected: int) -> None:
    assert parse_chunk_size(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "expected a number"),
        ("abc", "expected a number"),
        ("1.5MiB", "expected a number"),
        ("-1MiB", "expected a number"),
        ("8XB", "expected a number"),
        ("0", "must be positive"),
        ("0MiB", "must be positive"),
        ("100KiB", "multiple of 256 KiB"),
        ("262145", "multiple of 256 KiB"),
        ("32MB", "use MiB"),
    ],
)
def test_parse_chunk_size_rejects(text: str, fragment: str) -> None:
    with pytest.raises(UsageError, match=fragment):
        parse_chunk_size(text)


def test_auto_chunk_size_means_adaptive() -> None:
    assert parse_chunk_size("auto") == parse_chunk_size(" AUTO ") == AUTO_CHUNK == 0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("30m", 1800), ("24h", 86400), ("2d", 172800), ("1h30m", 5400), ("15", 15)],
)
def test_durations_read_as_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "10x", "1h 30", "-5"])
def test_bad_durations_name_the_option(text: str) -> None:
    with pytest.raises(UsageError, match="--timeout"):
        parse_duration(text, label="--timeout")
