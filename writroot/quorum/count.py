"""Counting approvals: a pure function of the approvals, the roster, the plan and a time.

Each approval is either counted or rejected with a reason; bad approvals never abort the
count, they are reported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from writroot.crypto.keys import PublicKey
from writroot.envelope import Envelope, payload_type_for
from writroot.errors import WritrootError
from writroot.jsonio import format_time
from writroot.statements import parse_payload

#: keyid -> why that custodian key counts nothing (revoked), or None.
Revoked = Callable[[str], "str | None"]


@dataclass(frozen=True)
class Custodian:
    id: str
    name: str
    key: PublicKey


@dataclass(frozen=True)
class Roster:
    version: int
    threshold: int
    custodians: tuple[Custodian, ...]

    @classmethod
    def from_checked(cls, roster: dict[str, Any]) -> Roster:
        """From the output of `statements.roster_check`."""
        return cls(roster["version"], roster["threshold"],
                   tuple(Custodian(c["id"], c["name"], c["key"]) for c in roster["custodians"]))

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "threshold": self.threshold,
                "custodians": [{"id": c.id, "name": c.name, "key": c.key.to_json()}
                               for c in self.custodians]}

    def by_keyid(self, keyid: str) -> Custodian | None:
        return next((c for c in self.custodians if c.key.keyid == keyid), None)


@dataclass
class Tally:
    threshold: int
    counted: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    #: (created, expires) of each counted approval: a statement is issued inside all of them.
    windows: list[tuple[datetime, datetime]] = field(default_factory=list)

    @property
    def met(self) -> bool:
        return len(self.counted) >= self.threshold

    def to_json(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "counted": self.counted, "met": self.met,
                "rejected": [{"approval": a, "reason": r} for a, r in self.rejected]}


def count(approvals: list[tuple[str, Any]], roster: Roster, ceremony_id: str,
          plan_sha256: str, at: datetime, max_hours: int | None = None,
          revoked: Revoked | None = None) -> Tally:
    """Count distinct roster custodians with valid, unexpired approvals of this exact plan,
    each living no longer than `max_hours` (the policy's approval_expiry_hours).

    `approvals` are (name, envelope JSON object) pairs. `revoked(keyid)` says why a
    custodian's key counts nothing (revoked), or None.
    """
    tally = Tally(roster.threshold)
    for name, obj in approvals:
        reason = _check(obj, name, roster, ceremony_id, plan_sha256, at, tally.counted,
                        max_hours, revoked)
        if isinstance(reason, str):
            tally.rejected.append((name, reason))
        else:
            custodian, window = reason
            tally.counted.append(custodian.id)
            tally.windows.append(window)
    return tally


def roster_change(approvals: list[tuple[str, Any]], old: Roster, new: Roster, ceremony_id: str,
                  plan_sha256: str, at: datetime) -> tuple[Tally, Tally]:
    """A new roster needs the threshold of the old roster and of the new one (TUF's rule)."""
    return (count(approvals, old, ceremony_id, plan_sha256, at),
            count(approvals, new, ceremony_id, plan_sha256, at))


def _check(obj: Any, name: str, roster: Roster, ceremony_id: str, plan_sha256: str,
           at: datetime, counted: list[str], max_hours: int | None,
           revoked: Revoked | None = None) -> str | tuple[Custodian, tuple[datetime, datetime]]:
    try:
        envelope = Envelope.from_json(obj, name)
        statement = parse_payload(envelope.payload, f"{name}: payload")
    except WritrootError as exc:
        return f"malformed: {exc}"
    if statement.type != "approval" or envelope.payload_type != payload_type_for("approval"):
        return f"not an approval (a {statement.type} statement)"
    subject = statement.subject
    if subject["plan_sha256"] != plan_sha256 or statement.ceremony["plan_sha256"] != plan_sha256:
        return f"approves another plan ({subject['plan_sha256'][:16]}...)"
    if subject["ceremony"] != ceremony_id or statement.ceremony["id"] != ceremony_id:
        return f"approves another ceremony ({subject['ceremony']})"
    custodian = roster.by_keyid(statement.issuer_keyid)
    if custodian is None:
        return f"signed by a key not on roster v{roster.version} ({statement.issuer_keyid[:16]}...)"
    if custodian.id != subject["custodian"]:
        return f"claims custodian {subject['custodian']!r} but the key is {custodian.id!r}'s"
    why = revoked(custodian.key.keyid) if revoked is not None else None
    if why:
        return f"{custodian.id!r}'s key is revoked ({why}): it counts nothing"
    if at < statement.not_before:
        return f"not valid until {format_time(statement.not_before)}"
    if at > statement.not_after:
        return f"expired at {format_time(statement.not_after)}"
    if max_hours is not None:
        from writroot.rules.validity import approval_lifetime

        too_long = approval_lifetime({"approval_expiry_hours": max_hours},
                                     statement.not_before, statement.not_after)
        if too_long:
            return too_long
    if not envelope.signed_by(custodian.key):
        return "bad signature"
    if custodian.id in counted:
        return f"custodian {custodian.id!r} counted already"
    return custodian, (statement.not_before, statement.not_after)
