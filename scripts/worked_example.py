#!/usr/bin/env python3
"""The facts docs/format.md §8 (the worked example) states, from a demo run; and the same facts
read back from the page.

    python scripts/worked_example.py WORKDIR    # after `writroot demo --workdir WORKDIR`

prints the facts of that run as JSON and the two `verify` listings of §8.5, ready to paste.
tests/test_worked_example.py runs a fresh demo and fails when the page and the demo disagree:
the number of ceremonies, their order and day, the ceremony table, the published counts and
file names, the verify summaries, the genesis transcript's entry count.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
         "eleven", "twelve", "thirteen", "fourteen", "fifteen"]
AFTER_EXPIRY_DAYS = 110  # §8.5: after the v1 regional roots (104 days) and the list expired
CHECK_DAYS = 59  # §8.5: the day the whole set is checked (after the revocation, day 58)


def _statement(path: Path) -> dict[str, Any]:
    env = json.loads(path.read_bytes())
    doc: dict[str, Any] = json.loads(base64.b64decode(env["payload"]))
    return doc


def _time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")


def _format(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def genesis_time(workdir: Path) -> datetime:
    return _time(_statement(workdir / "out" / "demo-genesis" /
                            "ceremony-record.dsse.json")["issued_at"])


def facts(workdir: Path) -> dict[str, Any]:
    """What §8 states about a demo run in `workdir`."""
    out = workdir / "out"
    ceremonies = sorted((d.name for d in out.iterdir() if d.is_dir()),
                        key=lambda c: (_statement(out / c / "ceremony-record.dsse.json")
                                       ["issued_at"], c))
    day0 = genesis_time(workdir)
    published = workdir / "published"
    transcript = (out / "demo-genesis" / "transcript.jsonl").read_bytes().splitlines()
    return {
        "ceremonies": ceremonies,
        "days": {c: (_time(_statement(out / c / "ceremony-record.dsse.json")["issued_at"])
                     - day0).days for c in ceremonies},
        "envelopes": sorted(p.name for p in (published / "artifacts").glob("*.dsse.json")),
        "records": sorted(p.name for p in (published / "records").glob("*.dsse.json")),
        "genesis_entries": len(transcript),
        # the logs' checkpoints and proofs: results of their own in the listing
        "log_files": len([*published.glob("logs/**/checkpoint"),
                          *published.glob("cosignatures/*.checkpoint"),
                          *published.glob("proofs/*.tlog-proof")]),
    }


#: What `verify` is given in published/: the envelopes and the logs that show them (the
#: policy requires logging, so envelopes alone fail `log-included`).
SET = ("artifacts", "logs", "proofs", "cosignatures")


def verify_listing(workdir: Path, days: int, *extra: str) -> list[str]:
    """`writroot verify artifacts logs proofs cosignatures --anchor fleet-root.pem --at <day>`
    in published/."""
    at = _format((genesis_time(workdir) + timedelta(days=days)).replace(hour=0, minute=0,
                                                                         second=0))
    proc = subprocess.run([sys.executable, "-m", "writroot", "verify", *SET, "--anchor",
                           "fleet-root.pem", "--at", at, *extra], capture_output=True,
                          text=True, cwd=workdir / "published", check=False)
    return [f"$ writroot verify {' '.join(SET)} --anchor fleet-root.pem --at {at}"
            + (" " + " ".join(extra) if extra else ""), *proc.stdout.splitlines()]


def section(text: str) -> str:
    start = text.index("## 8. Worked example")
    return text[start:text.index("## 9. ", start)]


def doc_facts(page: str) -> dict[str, Any]:
    """The same facts, as §8 of docs/format.md states them."""
    s = section(page)
    rows = re.findall(r"^\| (\d+) \| ((?:`demo-[a-z-]+`(?:, )?)+) \|", s, re.M)
    days = {c: int(day) for day, names in rows for c in re.findall(r"`(demo-[a-z-]+)`", names)}
    count = re.search(r"runs (\w+) ceremonies", s)
    published = re.search(r"artifacts/ \((\d+) envelopes\), records/ \((\d+) ceremony records\)",
                          s)
    ok = re.findall(r"^OK   artifacts/(\S+)", s, re.M)
    summaries = re.findall(r"^(\d+) of (\d+) artifacts verified(?:; (\d+) failed)?$", s, re.M)
    entries = re.search(r"^- entries: (\d+)$", s, re.M)
    return {
        "ceremonies": list(days),
        "days": days,
        "count": WORDS.index(count.group(1)) if count and count.group(1) in WORDS else None,
        "published": (int(published.group(1)), int(published.group(2))) if published else None,
        "ok": sorted(ok),
        "summaries": [(int(a), int(b), int(c or 0)) for a, b, c in summaries],
        "genesis_entries": int(entries.group(1)) if entries else None,
    }


def main() -> int:
    workdir = Path(sys.argv[1])
    print(json.dumps(facts(workdir), indent=1))
    print("\n".join(verify_listing(workdir, CHECK_DAYS, "--independent")))
    print("\n".join(verify_listing(workdir, AFTER_EXPIRY_DAYS)[-1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
