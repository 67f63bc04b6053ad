#!/usr/bin/env python3
"""The facts docs/format.md §8 (the worked example) states, from a demo run; and the same facts
read back from the page.

    python scripts/worked_example.py WORKDIR    # after `writroot demo --workdir WORKDIR`
    python scripts/worked_example.py WORKDIR --sections

prints the facts of that run as JSON and the two `verify` listings of §8.5, ready to paste;
with --sections, the material of §8.1-§8.4 (the fleet root's PEM and keyid, the CONUS v1
regional-root statement shortened for reading, the sizes, the PAE header, the envelope).
tests/test_worked_example.py runs a fresh demo and fails when the page and the demo disagree:
the number of ceremonies, their order and day, the ceremony table, the published counts and
file names, the verify summaries, the genesis transcript's entry count, and the member paths,
sizes and keyids of §8.1-§8.4.

How §8.2 shortens a statement for reading (`shorten`, and `unshorten` for the test): a string
longer than LONG characters keeps its first HEAD and last TAIL characters around `…`; a line
whose text starts and ends with `…` stands for array items left out (they have the members of
the item before them); `{ … }` is an object left out (the test then finds its members
missing).
"""

from __future__ import annotations

import base64
import hashlib
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


# §8.1-§8.4: one statement, shortened for reading, and the sizes and keyids around it

SLH_PREFIX = bytes.fromhex("3050300b0609608648016503040318034100")  # SLH-DSA-SHA2-256s SPKI
SLH_SIG_BYTES = 29_792  # FIPS 205, SLH-DSA-SHA2-256s
LONG, HEAD, TAIL = 100, 16, 8  # §8.2's shortening of long strings
WIDTH = 96  # a shortened value stays on one line when it fits
ELISION = re.compile(r"^\s*….*…,?\s*$", re.M)
CONUS = "regional-root-CONUS-demo-genesis.3.dsse.json"
FLEET = "fleet-root-demo-genesis.1.dsse.json"


def _envelope(path: Path) -> tuple[dict[str, Any], bytes]:
    env: dict[str, Any] = json.loads(path.read_bytes())
    return env, base64.b64decode(env["payload"])


def _canonical_len(value: Any) -> int:
    return len(json.dumps(value, sort_keys=True, separators=(",", ":")).encode())


def _pem_der(path: Path) -> bytes:
    return base64.b64decode("".join(line for line in path.read_text().splitlines()
                                    if not line.startswith("-----")))


def _short(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _short(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_short(v) for v in value]
    if isinstance(value, str) and len(value) > LONG:
        return value[:HEAD] + "…" + value[-TAIL:]
    return value


def _pretty(value: Any, indent: int = 0, key: str = "") -> list[str]:
    """JSON with sorted keys, a value on one line when it fits in WIDTH."""
    pad = " " * indent
    head = f"{pad}{json.dumps(key, ensure_ascii=False)}: " if key else pad
    flat = json.dumps(value, sort_keys=True, ensure_ascii=False)
    if not isinstance(value, (dict, list)) or len(head) + len(flat) + 1 <= WIDTH:
        return [head + flat]
    items = sorted(value.items()) if isinstance(value, dict) else [("", v) for v in value]
    lines = [head + ("{" if isinstance(value, dict) else "[")]
    for n, (k, v) in enumerate(items):
        if isinstance(v, str) and v.startswith("… ") and v.endswith(" …"):
            inner = [" " * (indent + 2) + v]  # an elision line
        else:
            inner = _pretty(v, indent + 2, k)
        if n < len(items) - 1:
            inner[-1] += ","
        lines += inner
    lines.append(pad + ("}" if isinstance(value, dict) else "]"))
    return lines


def shorten(value: Any, keep: int | None = None, what: str = "") -> str:
    """`value` pretty-printed as §8.2 prints it; with `keep`, the array at `what` (a dotted
    path) keeps its first `keep` items and an elision line stands for the rest."""
    value = json.loads(json.dumps(value))
    if keep is not None:
        *parents, last = what.split(".")
        node = value
        for name in parents:
            node = node[name]
        rest = len(node[last]) - keep
        node[last] = [*node[last][:keep], f"… {rest} more, the same members …"]
    return "\n".join(_pretty(_short(value)))


def unshorten(text: str) -> Any:
    """§8.2's pretty-printed JSON back to a value: elision lines dropped (the shortened
    strings stay strings)."""
    text = re.sub(r"\{ …[^{}\n]*… \}", "{}", ELISION.sub("", text))  # an object left out
    text = re.sub(r",(\s*[\]}])", r"\1", text)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise AssertionError(f"§8: a shortened JSON block does not read back: {err}") from None


def member_paths(value: Any, prefix: str = "") -> set[str]:
    """Every member's path, `a.b[].c`; array items merged."""
    paths: set[str] = set()
    if isinstance(value, dict):
        for k, v in value.items():
            paths |= {f"{prefix}{k}"} | member_paths(v, f"{prefix}{k}.")
    elif isinstance(value, list):
        for v in value:
            paths |= member_paths(v, f"{prefix.rstrip('.')}[].")
    return paths


def hexdump(data: bytes, start: int = 0) -> list[str]:
    lines = []
    for at in range(0, len(data), 16):
        chunk = data[at:at + 16]
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{start + at:08x}  {' '.join(f'{b:02x}' for b in chunk):<47}  |{text}|")
    return lines


def pae_header(payload_type: str, payload_len: int) -> bytes:
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d " % (len(t), t, payload_len)


def sections(workdir: Path) -> dict[str, Any]:
    """The material of §8.1-§8.4 from a demo run in `workdir`."""
    from writroot.crypto.fingerprint import hex_groups, pgp_words

    genesis = workdir / "out" / "demo-genesis"
    der = _pem_der(genesis / "fleet-root.pem")
    keyid = hashlib.sha256(der).hexdigest()
    env, payload = _envelope(genesis / "artifacts" / CONUS)
    doc = json.loads(payload)
    approval = json.loads(base64.b64decode(doc["ceremony"]["approvals"][0]["payload"]))
    fleet_env, fleet_payload = _envelope(genesis / "artifacts" / FLEET)
    fleet = json.loads(fleet_payload)
    header = pae_header(env["payloadType"], len(payload))
    sig = env["signatures"][0]["sig"]
    line = json.dumps({**env, "payload": env["payload"][:100] + "…" + env["payload"][-100:],
                       "signatures": [{**env["signatures"][0],
                                       "sig": sig[:44] + "…" + sig[-44:]}]},
                      separators=(",", ":"), ensure_ascii=False)
    v2 = _pem_der(workdir / "out" / "demo-fleet-rotation" / "fleet-root-v2.pem")
    return {
        "pem": (genesis / "fleet-root.pem").read_text(),
        "der": [der[:18].hex(), der[18:50].hex(), der[50:].hex()],
        "keyid": keyid,
        "hex_groups": hex_groups(keyid),
        "pgp_words": pgp_words(bytes.fromhex(keyid)),
        "keyid_v2": hashlib.sha256(v2).hexdigest(),
        "statement": shorten(doc, 1, "ceremony.approvals"),
        "approval": json.dumps(approval, separators=(",", ":"), sort_keys=True),
        "sizes": {
            "payload": len(payload),
            "approval_envelope": _canonical_len(doc["ceremony"]["approvals"][0]),
            "approval_payload": len(base64.b64decode(doc["ceremony"]["approvals"][0]
                                                     ["payload"])),
            "approval_sig": len(base64.b64decode(doc["ceremony"]["approvals"][0]
                                                 ["signatures"][0]["sig"])),
            "inclusion": _canonical_len(doc["ceremony"]["inclusion"]),
            "fleet_payload": len(fleet_payload),
            "pae_header": len(header),
            "pae": len(header) + len(payload),
            "envelope": (genesis / "artifacts" / CONUS).stat().st_size,
            "payload_chars": len(env["payload"]),
            "sig_chars": len(sig),
            "sig": len(base64.b64decode(sig)),
        },
        "fleet_subject": shorten({"subject": fleet["subject"]}, 1,
                                 "subject.roster.custodians"),
        "fleet_header": pae_header(fleet_env["payloadType"], len(fleet_payload)).decode(),
        "fleet_times": {k: fleet[k] for k in ("issued_at", "not_before", "not_after")},
        "pae_dump": [*hexdump(header), f"{len(header):08x}  "
                     f"{' '.join(f'{b:02x}' for b in payload[:12]) + ' ...':<47}  "
                     f"|{payload[:12].decode()}...   (payload)"],
        "envelope": line,
    }


def _group(pattern: str, text: str) -> str | None:
    found = re.search(pattern, text)
    return found.group(1) if found else None


def doc_sections(page: str) -> dict[str, Any]:
    """§8.1-§8.4 as docs/format.md states them: the fenced blocks and the stated numbers."""
    s = section(page)
    parts = {n: s[s.index(f"### 8.{n} "):s.index(f"### 8.{n + 1} ")] for n in (1, 2, 3, 4)}

    def fenced(text: str, lang: str = "") -> list[str]:
        return re.findall(rf"^```{lang}\n(.*?)^```$", text, re.M | re.S)

    def number(pattern: str, text: str) -> int:
        found = re.search(pattern, text, re.S)
        assert found, f"§8: no match for {pattern!r}"
        return int(found.group(1).replace(",", ""))

    der = re.findall(r"^([0-9a-f]+)\s+(?:SPKI prefix|PK\.seed|PK\.root)", parts[1], re.M)
    statements = fenced(parts[2], "json")
    dump = fenced(parts[3])[0].splitlines()
    return {
        "pem": fenced(parts[1])[0].split("\n", 1)[1],
        "der": der,
        "keyid": _group(r"So the keyid, the fingerprint to pin, is\s+`([0-9a-f]{64})`", parts[1]),
        "fingerprint": fenced(parts[1])[-1].rstrip("\n").split("\n", 1),
        "statement": unshorten(statements[0]),
        "approval": json.loads(statements[1]),
        "fleet_subject": unshorten(statements[2]),
        "file": _group(r"`artifacts/(regional-root-[^`]+)`", parts[2]),
        "payload": number(r"the decoded payload is ([\d,]+)\s+bytes", parts[2]),
        "approval_envelope": number(r"approval envelopes[^(]*\(([\d,]+) bytes each", parts[2]),
        "pae_payload": number(r"the payload is\s+([\d,]+) bytes", parts[3]),
        "pae_header": number(r"the ([\d,]+)-byte header", parts[3]),
        "pae": number(r"\(([\d,]+) bytes in all\)", parts[3]),
        "pae_bytes": bytes.fromhex("".join(_group(r"^[0-9a-f]{8}  ((?:[0-9a-f]{2} ?)+)", line)
                                           or "" for line in dump if "(payload)" not in line)),
        "envelope_bytes": number(r"dsse\.json` \(([\d,]+) bytes\)", parts[4]),
        "payload_chars": number(r"the ([\d,]+)-character\s+`payload`", parts[4]),
        "sig_chars": number(r"the ([\d,]+)-character\s+`sig`", parts[4]),
        "sig": number(r"`sig` \(([\d,]+) bytes\)", parts[4]),
        "envelope": json.loads(fenced(parts[4], "json")[0]),
        "envelope_line": fenced(parts[4], "json")[0].rstrip("\n"),
        # the rest of §8 names the same keys (one run throughout)
        "keyid_v2": _group(r"the root in force is\s+`([0-9a-f]{64})`", parts[1]),
        "anchors": re.findall(r"^anchor +([0-9A-F ]+?)$|--anchor \"([0-9A-F ]+)\"", s, re.M),
        "now": re.findall(r"^fleet root now +([0-9A-F ]+?) \(", s, re.M),
        "signed_by": re.findall(r"signature by ([0-9a-f]{64})|--anchor ([0-9a-f]{64})", s),
        "opened": re.findall(r'open\("(artifacts/[^"]+)"\)', s),
    }


def print_sections(workdir: Path) -> None:
    got = sections(workdir)
    sizes = got.pop("sizes")
    print("sizes:", json.dumps(sizes, indent=1))
    for name, value in got.items():
        print(f"--- {name}")
        print("\n".join(value) if isinstance(value, list) else
              json.dumps(value) if isinstance(value, dict) else value)


def main() -> int:
    workdir = Path(sys.argv[1])
    if sys.argv[2:] == ["--sections"]:
        print_sections(workdir)
        return 0
    print(json.dumps(facts(workdir), indent=1))
    print("\n".join(verify_listing(workdir, CHECK_DAYS, "--independent")))
    print("\n".join(verify_listing(workdir, AFTER_EXPIRY_DAYS)[-1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
