"""A hash-chained JSONL transcript: each line carries the SHA-256 of the line before it.

Never a PIN, share or key material: only digests, ids, engine and token facts, results.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from writroot import failpoint
from writroot.errors import BadInput, VerificationFailed
from writroot.jsonio import canonical, format_time, loads_strict

GENESIS = "0" * 64


@dataclass
class Transcript:
    lines: list[bytes] = field(default_factory=list)
    head: str = GENESIS

    def record(self, event: str, **facts: Any) -> None:
        failpoint.hit(f"transcript-{event}")
        entry = {"seq": len(self.lines), "time": format_time(datetime.now(UTC)),
                 "event": event, "prev": self.head, "facts": facts}
        line = canonical(entry)
        self.lines.append(line)
        self.head = hashlib.sha256(line).hexdigest()

    def dumps(self) -> bytes:
        return b"".join(line + b"\n" for line in self.lines)


def check_chain(data: bytes, where: str) -> tuple[list[dict[str, Any]], str]:
    """Verify every line's link; return the events and the head digest."""
    events = []
    head = GENESIS
    for n, line in enumerate(data.split(b"\n")[:-1] if data.endswith(b"\n") else
                             data.split(b"\n")):
        at = f"{where}:{n + 1}"
        entry = loads_strict(line, at)
        if not isinstance(entry, dict) or set(entry) != {"seq", "time", "event", "prev",
                                                          "facts"}:
            raise BadInput("not a transcript entry", at)
        if canonical(entry) != line:
            raise VerificationFailed("line is not canonical JSON (edited?)", at)
        if entry["seq"] != n:
            raise VerificationFailed(f"sequence {entry['seq']} where {n} was expected "
                                     "(line deleted or reordered)", at)
        if entry["prev"] != head:
            raise VerificationFailed("chain broken: prev does not match the previous line",
                                     at)
        head = hashlib.sha256(line).hexdigest()
        events.append(entry)
    if not events:
        raise BadInput("empty transcript", where)
    return events, head


def render_markdown(events: list[dict[str, Any]], head: str, record_ok: bool) -> str:
    out = ["# Ceremony transcript", "",
           f"- entries: {len(events)}", f"- chain head: `{head}`",
           f"- ceremony-record signature: {'verified' if record_ok else 'NOT VERIFIED'}", "",
           "| # | time | event | facts |", "|---|---|---|---|"]
    for e in events:
        facts = json.dumps(e["facts"], sort_keys=True).replace("|", "\\|")
        out.append(f"| {e['seq']} | {e['time']} | {e['event']} | `{facts}` |")
    return "\n".join(out) + "\n"


def render_html(markdown: str) -> str:
    import html

    return ("<!doctype html><meta charset=utf-8><title>writroot ceremony transcript</title>"
            "<pre style='font-family:monospace;white-space:pre-wrap'>"
            + html.escape(markdown) + "</pre>\n")
