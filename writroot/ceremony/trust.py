"""What the ceremony machine trusts (DESIGN §4): the statements a plan reads, established by
the trust engine `verify` runs (writroot.verify.trust), from the pinned anchor, at the time
of the check. Nothing here decides trust; it gathers the statements and asks the engine.

The statements come from the plan's own inputs and from a trust directory (the fleet's
published set), so that the chain from the anchor to the root in force can be walked.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from writroot.errors import BadInput, PolicyRefused, VerificationFailed
from writroot.verify.core import Anchor, Parsed, parse_artifact
from writroot.verify.trust import Established, establish

#: Plan fields (at any depth of the source) that may name a signed statement.
STATEMENT_FIELDS = ("roster", "fleet_root", "authority", "previous", "baseline", "known",
                    "artifact")
MAX_TRUST_FILES = 10_000
MAX_STATEMENT_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Pinned:
    """The anchor a person pinned (fingerprint or PEM), and where the fleet's published
    statements are."""

    anchor: Anchor
    trust_dir: Path | None = None


def pinned_from(anchor: str | None, trust_dir: Path | None, where: str) -> Pinned | None:
    """`--anchor`/`--trust` (or a host profile's `anchor:`/`trust:`) as a Pinned."""
    if anchor is None:
        if trust_dir is not None:
            raise BadInput("a trust directory is read only against a pinned anchor: give the "
                           "anchor too", where)
        return None
    from writroot.verify.files import resolve_anchor

    try:
        pinned = resolve_anchor(anchor)
    except BadInput as exc:
        raise BadInput(exc.message, where) from None
    if trust_dir is not None and not trust_dir.is_dir():
        raise BadInput(f"trust directory {str(trust_dir)!r} is not a directory", where)
    return Pinned(pinned, trust_dir)


def _named(source: Any) -> Iterator[str]:
    """Every string a plan's source gives under a field that may name a statement (walked
    without recursion: a hostile source may nest deeply)."""
    stack = [source]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if key in STATEMENT_FIELDS and isinstance(item, str):
                    yield item
                elif key in STATEMENT_FIELDS and isinstance(item, list):
                    yield from (v for v in item if isinstance(v, str))
                else:
                    stack.append(item)
        elif isinstance(value, list):
            stack.extend(value)


def _statement_files(source: Any, base: Path) -> list[Path]:
    """The plan's inputs that look like envelopes (read again, pinned and checked by the
    operations that use them; here they only join the set the engine judges)."""
    out = []
    for rel in dict.fromkeys(_named(source)):
        path = Path(rel)
        if path.is_absolute() or ".." in path.parts or len(rel) > 1024 \
                or not rel.endswith(".json"):
            continue  # refused with the plan's line by the operation that reads it, if used
        full = base / path
        try:
            if full.is_file() and not full.is_symlink():
                out.append(full)
        except (OSError, ValueError):  # a name too long, a NUL: the operation names it
            continue
    return out


def _trust_files(trust_dir: Path) -> list[Path]:
    files = sorted(p for p in trust_dir.rglob("*.dsse.json")
                   if p.is_file() and not p.is_symlink())
    if len(files) > MAX_TRUST_FILES:
        raise BadInput(f"more than {MAX_TRUST_FILES} statements", str(trust_dir))
    return files


def _parsed(path: Path) -> Parsed:
    from writroot.jsonio import read_capped

    return parse_artifact(str(path), read_capped(path, MAX_STATEMENT_BYTES))


def establish_inputs(pinned: Pinned, source: Any, base: Path, now: datetime) -> Established:
    """The engine's answer on the plan's statement inputs and the trust directory, at `now`;
    refused (exit 1) unless it establishes the fleet root in force from the anchor."""
    files = _statement_files(source, base)
    if pinned.trust_dir is not None:
        files += _trust_files(pinned.trust_dir)
    trust = establish(pinned.anchor, [_parsed(f) for f in files], now)
    if trust.fleet_root is None:
        raise VerificationFailed(
            f"the plan's inputs{' and the trust directory' if pinned.trust_dir else ''} do "
            f"not establish the fleet root in force from the pinned anchor "
            f"{pinned.anchor.keyid}: {_why(trust)}", "--anchor")
    return trust


def _why(trust: Established) -> str:
    fleet = [f for r in trust.report.results if r.type in ("fleet-root", "fleet-rotation")
             for f in r.findings]
    if fleet:
        return f"{fleet[0].artifact}: {fleet[0].message} [{fleet[0].check}]"
    if not any(r.type == "fleet-root" for r in trust.report.results):
        return ("no fleet-root statement among them (give the fleet's published set with "
                "--trust DIR, or trust: in the host profile)")
    return "the fleet root in force is expired or its chain does not verify"


def chained(trust: Established, digest: str, where: str,
            tolerate: tuple[str, ...] = ()) -> None:
    """The statement with this file digest verifies under the anchor (findings named in
    `tolerate`, such as a previous bundle's expiry, aside)."""
    result = trust.results.get(digest)
    if result is None:
        raise VerificationFailed("not among the statements the trust engine judged", where)
    found = [f for f in result.findings if f.check not in tolerate]
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise VerificationFailed(f"does not chain to the pinned anchor "
                                 f"{trust.anchor.keyid[:16]}...: {found[0].message} "
                                 f"[{found[0].check}]{more}", where)


def record(trust: Established, authority_keyid: str | None) -> dict[str, Any]:
    """What the lock records of what was established (approved with the plan; `run` refuses
    when it establishes something else)."""
    assert trust.fleet_root is not None and trust.fleet_version is not None
    out: dict[str, Any] = {"anchor": trust.anchor.keyid,
                           "fleet_root": {"keyid": trust.fleet_root.keyid,
                                          "version": trust.fleet_version},
                           "roster_version": trust.roster_version or 0}
    if trust.revocation_sequence is not None:
        out["revocation_sequence"] = trust.revocation_sequence
    if authority_keyid is not None:
        found = trust.authority(authority_keyid)
        if found is None:
            raise PolicyRefused("the plan's signer is not a regional root trusted now "
                                "(unknown, superseded, revoked, expired or in conflict)",
                                "signer")
        out["authority"] = {"region": found.region, "version": found.version,
                            "keyid": found.key.keyid}
    return out
