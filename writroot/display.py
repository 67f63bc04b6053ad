"""Strings from inputs made safe to show a person (DESIGN §6: the auditor's inputs are hostile).

Everything read from an artifact, a file name, a transcript or a package goes through `inert`
before a terminal, a rich table or a log line shows it: C0 and C1 controls, ESC and DEL become
`\\xNN`, and the Unicode bidirectional controls (embeddings, overrides, isolates, marks) and
line/paragraph separators become `<U+XXXX>`, so no input can move the cursor, clear the
screen, recolour text or reorder what is read. `md` does the same for Markdown and also
escapes Markdown's syntax. HTML has its own escaping (writroot.verify.html).
"""

from __future__ import annotations

import re

#: Bidi embeddings/overrides (202A-202E), isolates (2066-2069), marks (200E, 200F, 061C), and
#: the line/paragraph separators some terminals treat as line breaks.
_UNICODE = frozenset({0x061C, 0x200E, 0x200F, 0x2028, 0x2029, *range(0x202A, 0x202F),
                      *range(0x2066, 0x206A)})
_HOSTILE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
_HOSTILE_KEEP_NL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e"
                              "\u2066-\u2069]")
#: Inline Markdown syntax (emphasis, code, links, images, autolinks and raw HTML, entities,
#: table cells, strikethrough), and block syntax where a line can start (headings, quotes,
#: lists, thematic breaks).
_MARKDOWN = re.compile(r"([\\`*_\[\]<>|!~&])")
_MARKDOWN_START = re.compile(r"^([#+\-=>]|[0-9]+(?=[.)]))")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"<U+{code:04X}>" if code in _UNICODE else f"\\x{code:02x}"


def inert(text: object, keep_newlines: bool = False) -> str:
    """`text` with every control and bidi character shown as an escape, never acted on."""
    s = str(text)
    return (_HOSTILE_KEEP_NL if keep_newlines else _HOSTILE).sub(_visible, s)


def md(text: object) -> str:
    """`text` for Markdown: inert, and every Markdown metacharacter backslash-escaped (a table
    cell, a heading or a link cannot be opened from an input)."""
    escaped = _MARKDOWN.sub(r"\\\1", inert(text))
    return _MARKDOWN_START.sub(lambda m: "\\" + m.group() if not m.group().isdigit()
                               else m.group() + "\\", escaped)


def md_code(text: object) -> str:
    """`text` as one Markdown code span (inert; fenced by more backticks than it holds; `|`
    escaped so that a GFM table cell cannot be split)."""
    s = inert(text).replace("|", "\\|")
    longest = max((len(run) for run in re.findall("`+", s)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}"
