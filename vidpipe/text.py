"""Text vidpipe did not write, shown as text: the one rule for every human output.

Row titles, file names, manifest values, URLs, Mux's fields (IDs, passthrough, meta, error
messages, environment names): any of them may hold characters that drive a terminal
(`ESC ] 52` writes the clipboard, `ESC ] 0` renames the window, `ESC ] 8` makes a hyperlink,
the 8-bit CSI `\\x9b` starts a control sequence), or, printed through rich with markup on,
tags such as `[link=https://…]` that rich would turn into such sequences. Human output
shows them as text:

- `shown(value)`: one foreign value as one line of printable text. Every control character
  (C0 with newline and tab, DEL, C1, line and paragraph separators, bidirectional overrides
  and other format characters) is written as its Python escape (`\\x1b`, `\\n`, `\\u202e`).
  Markup needs nothing here: vidpipe's human output never interprets markup (`vidpipe.ui`
  prints with markup off and builds rich `Text` objects).
- `shown_lines(text)`: a message vidpipe put together (its own words around foreign values)
  that may hold its own line breaks: each line `shown`. The UI passes everything it prints
  through it, so a foreign value that skipped `shown` still cannot drive the terminal.
- `rich_text(value)`: a rich `Text` (never parsed as markup) of `shown_lines(value)`.

JSON output keeps the exact values: JSON escapes control characters itself. Log lines use
`shown` too, so a value cannot forge a log line either.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.text import Text

# Joiners shape letters in Arabic, Persian and Indic scripts (and emoji sequences); they
# are format characters but move no cursor and start no sequence.
_HARMLESS_FORMAT = frozenset("\u200c\u200d")


def shown(value: object) -> str:
    """`value` (None: empty) as one line of printable text: control and format characters
    written as Python escapes (`\\x1b`), other space separators as a plain space. Printable
    text, non-ASCII letters included, is unchanged; `shown(shown(x)) == shown(x)`."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():
        return text
    out: list[str] = []
    for char in text:
        if char.isprintable() or char in _HARMLESS_FORMAT:
            out.append(char)
        elif unicodedata.category(char) == "Zs":
            out.append(" ")
        else:
            out.append(repr(char)[1:-1])
    return "".join(out)


def shown_lines(text: object) -> str:
    """`text` (None: empty) with each of its lines `shown`: its line breaks (`\\n`) kept,
    every other control character written as an escape."""
    if text is None:
        return ""
    raw = text if isinstance(text, str) else str(text)
    if raw.isprintable():
        return raw
    return "\n".join(shown(line) for line in raw.split("\n"))


def rich_text(value: object, style: str = "") -> Text:
    """A rich `Text` of `shown_lines(value)` (markup is never parsed in it)."""
    from rich.text import Text

    return Text(shown_lines(value), style=style)
