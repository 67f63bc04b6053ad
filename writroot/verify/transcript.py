"""Checking a ceremony transcript's hash chain: pure, bytes in (the writer is
`writroot.ceremony.transcript`; the verifier and the auditor read with this)."""

from __future__ import annotations

import hashlib
from typing import Any

from writroot.errors import BadInput, VerificationFailed
from writroot.jsonio import canonical, loads_strict

GENESIS = "0" * 64


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
