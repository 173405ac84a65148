"""The one rule for text vidpipe did not write: `vidpipe.text`, value by value."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from vidpipe.text import rich_text, shown, shown_lines

LINK = "[link=https://evil.example]click[/link]"
OSC_TITLE = "\x1b]0;pwned\x07"
OSC_CLIPBOARD = "\x1b]52;c;ZWNobyBoaQ==\x07"
C1_CSI = "\x9b6n"
MARKUP = "[bold red]"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(OSC_TITLE, "\\x1b]0;pwned\\x07", id="OSC 0 (window title)"),
        pytest.param(OSC_CLIPBOARD, "\\x1b]52;c;ZWNobyBoaQ==\\x07", id="OSC 52 (clipboard)"),
        pytest.param(C1_CSI, "\\x9b6n", id="8-bit CSI"),
        pytest.param("\x1b[2J\x1b[6n", "\\x1b[2J\\x1b[6n", id="CSI: clear screen, report"),
        pytest.param("a\nb\tc\rd", "a\\nb\\tc\\rd", id="line breaks and tabs"),
        pytest.param("x\x00y\x7fz", "x\\x00y\\x7fz", id="NUL and DEL"),
        pytest.param("abc\u202edcba", "abc\\u202edcba", id="bidirectional override"),
        pytest.param("one\u2028two", "one\\u2028two", id="line separator"),
        pytest.param("no\u00a0break", "no break", id="no-break space"),
        pytest.param(LINK, LINK, id="markup stays literal text"),
        pytest.param(MARKUP, MARKUP, id="a style tag stays literal text"),
        pytest.param("Œuvres — 日本語 ✓ émile", "Œuvres — 日本語 ✓ émile", id="letters kept"),
        pytest.param("می\u200cخواهم", "می\u200cخواهم", id="zero-width non-joiner kept"),
        pytest.param(None, "", id="None"),
        pytest.param(42, "42", id="a number"),
    ],
)
def test_shown_writes_control_characters_as_escapes_and_keeps_text(
    raw: object, expected: str
) -> None:
    assert shown(raw) == expected
    assert shown(shown(raw)) == shown(raw)


def test_shown_leaves_no_control_or_format_character_at_all() -> None:
    planes = [*range(0x30000), *range(0xE0000, 0xE1000), *range(0x10FF00, 0x110000)]
    every = "".join(chr(c) for c in planes if not 0xD800 <= c <= 0xDFFF)
    out = shown(every)
    assert {c for c in out if not c.isprintable()} <= {"\u200c", "\u200d"}
    assert not any(0x80 <= ord(c) <= 0x9F or ord(c) < 0x20 or ord(c) == 0x7F for c in out)


def test_shown_lines_keeps_vidpipes_line_breaks_and_escapes_the_rest() -> None:
    message = f"bad lines:\nline 2: {OSC_TITLE}: no such file\nline 3: {C1_CSI}"
    assert shown_lines(message) == (
        "bad lines:\nline 2: \\x1b]0;pwned\\x07: no such file\nline 3: \\x9b6n"
    )
    assert shown_lines(None) == ""


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "not a terminal"])
def test_rich_text_prints_markup_and_escapes_as_visible_text(terminal: bool) -> None:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=terminal, width=200, color_system="truecolor")
    hostile = f"{LINK} {OSC_TITLE} {OSC_CLIPBOARD} {C1_CSI} {MARKUP}"
    console.print(rich_text(hostile, style="bold"))
    printed = buf.getvalue()
    assert "\x1b]" not in printed and "\x07" not in printed and "\x9b" not in printed
    assert LINK in printed and MARKUP in printed
    assert "\\x1b]52;c;ZWNobyBoaQ==\\x07" in printed


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "not a terminal"])
def test_a_note_from_the_core_is_one_line_whatever_it_quotes(terminal: bool) -> None:
    from vidpipe.ui import UI

    out, err = io.StringIO(), io.StringIO()
    ui = UI(
        out=Console(file=out, force_terminal=terminal, width=200),
        err=Console(file=err, force_terminal=terminal, width=200),
    )
    ui.notice(f"resuming the unfinished upload of a.mp4\nvidpipe: error: forged{OSC_TITLE}")
    ui.message(f"two lines\nof vidpipe's own{C1_CSI}")
    lines = err.getvalue().splitlines()
    assert "resuming the unfinished upload of a.mp4\\nvidpipe: error: forged\\x1b]0;" in lines[0]
    assert len(lines) == 3 and lines[2].endswith("of vidpipe's own\\x9b6n")
    assert "\x1b]" not in err.getvalue() and "\x9b" not in err.getvalue()
