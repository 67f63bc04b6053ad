"""A revocation list's targets, checked when the plan is locked: every keyid or serial it
revokes must exist. A target is given as the signed statement file itself (`artifact:`), or
as a keyid or serial found in one of the statement files the operation lists under `known:`,
or kept from the previous list. A misspelled serial that would revoke nothing is refused."""

from __future__ import annotations

from typing import Any

from writroot.ceremony.inputs import LockContext, read_statement
from writroot.errors import BadInput, PolicyRefused
from writroot.statements import Statement, revocation_target

#: Statement types a revocation can name.
TARGET_TYPES = ("regional-root", "enclave-bundle", "federation-key", "roster", "fleet-root",
                "fleet-rotation", "revocation-list", "oscal-baseline", "oscal-overlay",
                "release-provenance", "enrolment")


def _keys(st: Statement) -> set[str]:
    """Keyids a statement certifies (its subject's key)."""
    key = st.subject.get("key") if isinstance(st.subject, dict) else None
    return {key.keyid} if key is not None and hasattr(key, "keyid") else set()


def _known_keys(st: Statement) -> set[str]:
    """Keyids a `known:` statement names: its subject's key, the custodian keys of a roster
    it carries, an enrolment's custodian key (a custodian key can be compromised too)."""
    sub = st.subject if isinstance(st.subject, dict) else {}
    keys = [sub.get("key")]
    roster = sub.get("roster")
    if isinstance(roster, dict):
        keys += [c.get("key") for c in roster.get("custodians", []) if isinstance(c, dict)]
    member = sub.get("custodian")
    if isinstance(member, dict):
        keys.append(member.get("key"))
    return {k.keyid for k in keys if k is not None and hasattr(k, "keyid")}


def describe(st: Statement) -> dict[str, Any]:
    """What a revocation target is, pinned in the lock for the review: the statement's type,
    what it names (a region, a trust domain, a pairing), its version and serial, its key."""
    sub = st.subject if isinstance(st.subject, dict) else {}
    out: dict[str, Any] = {"type": st.type, "serial": st.serial}
    if st.type == "federation-key":
        out["name"] = f"{sub['region']}: " + " <-> ".join(
            f"{p['trust_domain']} ({p['impact_level']})" for p in sub["pairing"])
    elif isinstance(sub.get("region"), str) or isinstance(sub.get("trust_domain"), str):
        out["name"] = str(sub.get("trust_domain") or sub["region"])
    elif isinstance(sub.get("name"), str):
        out["name"] = sub["name"]
    for field in ("version", "spiffe_sequence", "sequence"):
        if isinstance(sub.get(field), int) and not isinstance(sub.get(field), bool):
            out["version"] = sub[field]
            break
    keys = sorted(_keys(st))
    if keys:
        out["keyid"] = keys[0]
    return out


def lock_list(entry: dict[str, Any], ctx: LockContext, at: str) -> None:
    """Lock a `sign-revocation-list` operation: the previous list (read once), the targets,
    then the policy: the list follows the newest established one and keeps every earlier
    entry (a new list's sequence is higher: no un-revoking)."""
    where = ctx.where(f"{at}.previous")
    previous = None
    if "previous" in entry:
        _env, st, pin = read_statement(ctx.base, entry["previous"], where, ("revocation-list",))
        previous = st, pin
    kept = set() if previous is None else {revocation_target(e)
                                          for e in previous[0].subject["entries"]}
    lock_targets(entry, ctx, at, kept)
    newest = ctx.trust.revocation_sequence if ctx.trust is not None else None
    if previous is None:
        if newest is not None:
            raise PolicyRefused(f"revocation list sequence {newest} is in force: name it as "
                                "previous: (a new list keeps every earlier entry) "
                                "[revocation-sequence]", ctx.where(at))
        return
    st, pin = previous
    ctx.chained(pin, where, tolerate=("validity-window",))
    if newest is not None and st.subject["sequence"] != newest:
        raise PolicyRefused(f"the previous list is sequence {st.subject['sequence']}; the "
                            f"newest list established is sequence {newest}: a new list "
                            "follows the newest [revocation-sequence]", where)
    lost = sorted(kept - {revocation_target(e) for e in entry["entries"]})
    if lost:
        raise PolicyRefused(f"{lost[0]} was revoked by list {st.subject['sequence']}; a "
                            "later list cannot un-revoke it", ctx.where(f"{at}.entries"))
    entry["previous"] = {**pin, "sequence": st.subject["sequence"]}


def lock_targets(entry: dict[str, Any], ctx: LockContext, at: str, kept: set[str]) -> None:
    """Resolve `artifact:` entries to the keyid or serial they name, pin every file read
    (`targets`, `known`), and refuse a keyid or serial found nowhere (`kept`: the previous
    list's targets)."""
    known_serials: set[str] = set()
    known_keys: set[str] = set()
    known_pins = []
    for i, rel in enumerate(entry.get("known", [])):
        _env, st, pin = read_statement(ctx.base, rel, ctx.where(f"{at}.known[{i}]"),
                                       TARGET_TYPES)
        known_serials.add(st.serial)
        known_keys |= _known_keys(st)
        known_pins.append({**pin, **describe(st)})
    if known_pins:
        entry["known"] = known_pins
    entries: list[dict[str, Any]] = []
    targets = []
    for i, given in enumerate(entry["entries"]):
        where = ctx.where(f"{at}.entries[{i}]")
        e = {k: v for k, v in given.items() if k not in ("artifact", "revoke")}
        if "artifact" in given:
            _env, st, pin = read_statement(ctx.base, given["artifact"], where, TARGET_TYPES)
            keys = _keys(st)
            revoke = given.get("revoke", "key" if keys else "serial")
            if revoke == "key" and not keys:
                raise BadInput(f"{st.type} {st.serial} certifies no key; use revoke: serial",
                               where)
            e["keyid" if revoke == "key" else "serial"] = (next(iter(keys)) if revoke == "key"
                                                          else st.serial)
            targets.append({**pin, "target": revocation_target(e), **describe(st)})
        elif revocation_target(e) not in kept:
            found = (e["serial"] in known_serials) if "serial" in e else (e["keyid"] in known_keys)
            if not found:
                what = f"serial {e['serial']!r}" if "serial" in e else f"keyid {e['keyid']}"
                raise BadInput(f"unknown revocation target: {what} is in none of the statement "
                               "files under known: nor in the previous list (give the signed "
                               "statement as artifact: PATH, or list it under known:)", where)
        entries.append(e)
    seen = [revocation_target(e) for e in entries]
    if len(set(seen)) != len(seen):
        raise BadInput("a keyid or serial is listed twice", ctx.where(f"{at}.entries"))
    entry["entries"] = entries
    if targets:
        entry["targets"] = targets
