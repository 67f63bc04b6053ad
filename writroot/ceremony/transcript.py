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
from writroot.display import md, md_code
from writroot.jsonio import canonical, format_time
from writroot.verify.transcript import GENESIS


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


def render_markdown(events: list[dict[str, Any]], head: str, record_ok: bool) -> str:
    out = ["# Ceremony transcript", "",
           f"- entries: {len(events)}", f"- chain head: `{head}`",
           f"- ceremony-record signature: {'verified' if record_ok else 'NOT VERIFIED'}", "",
           "| # | time | event | facts |", "|---|---|---|---|"]
    for e in events:  # every field from the transcript is data: shown inert, escaped
        facts = md_code(json.dumps(e["facts"], sort_keys=True))
        out.append(f"| {md(e['seq'])} | {md(e['time'])} | {md(e['event'])} | {facts} |")
    return "\n".join(out) + "\n"
