"""The rotation calendar: from verified statements, every key's age, expiry and next rotation.

Pure: a verification report and a reference time in, rows out. Only artifacts that verified
count, and those whose one failure is that they are revoked: a revoked key keeps its row,
`revoked`; a row is otherwise `ok`, `due` (rotation within the warning window), `overdue`,
`expired` or `superseded` (a newer version is in force). `with_revocations` then gives every
revocation a trusted list holds a row, even when the revoked artifact is not in the set; a
revoked item already past its own expiry is `revoked-expired` (listed, not loud).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from writroot.jsonio import format_time
from writroot.statements import Statement
from writroot.verify.report import Report

if TYPE_CHECKING:
    from writroot.verify.trust import Revocation

DEFAULT_WARN_DAYS = 14
LOUD = ("overdue", "expired", "revoked")


@dataclass(frozen=True)
class Row:
    kind: str  # fleet-root, regional-root, enclave-bundle, federation-key, revocation-list
    name: str  # what it is: region, trust domain, pairing, "fleet"
    version: str
    keyid: str | None
    since: datetime
    expires: datetime | None  # None: a revoked item whose artifact is not in the set
    due: datetime | None
    state: str
    at: datetime
    serial: str = ""
    revocation: Revocation | None = None

    @property
    def age_days(self) -> int:
        return max(0, (self.at - self.since).days)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind, "name": self.name, "version": self.version,
            "keyid": self.keyid, "serial": self.serial, "since": format_time(self.since),
            "expires": format_time(self.expires) if self.expires else None,
            "rotation_due": format_time(self.due) if self.due else None,
            "age_days": self.age_days,
            "days_to_due": (self.due - self.at).days if self.due else None,
            "state": self.state}
        if self.revocation is not None:
            r = self.revocation
            out["revocation"] = {"target": r.target, "revoked_at": format_time(r.revoked_at),
                                 "reason": r.reason, "list_sequence": r.sequence}
        return out


def _state(at: datetime, due: datetime, expires: datetime, warn: timedelta) -> str:
    if at > expires:
        return "expired"
    if at > due:
        return "overdue"
    if at > due - warn:
        return "due"
    return "ok"


def authentic_at(report: Report) -> datetime | None:
    """When the newest statement was issued: verifying there separates forgery from age
    (at that moment everything genuine was in force), so an expired key stays on the
    calendar, loudly, instead of vanishing."""
    times = [r.statement.issued_at for r in report.results if r.statement is not None]
    return max(times) if times else None


def revoked_at(report: Report) -> set[str]:
    """Serials of statements the report found revoked (at its reference time)."""
    return {r.serial for r in report.results if r.serial is not None
            and any(f.check == "not-revoked" for f in r.findings)}


def calendar(report: Report, warn_days: int = DEFAULT_WARN_DAYS,
             at: datetime | None = None, revoked: set[str] | None = None) -> list[Row]:
    """Rows for the artifacts that verified in `report`, with states at `at` (default: the
    report's own reference time); serials in `revoked`, and artifacts whose only failure is
    a revocation, are shown `revoked`, loudly."""
    at, warn = at or report.at, timedelta(days=warn_days)
    gone = set(revoked or set())
    verified = []
    for r in report.results:
        if r.statement is None:
            continue
        only_revoked = bool(r.findings) and all(f.check == "not-revoked" for f in r.findings)
        if only_revoked and r.serial is not None:
            gone.add(r.serial)
        if r.ok or only_revoked:
            verified.append(r.statement)
    rows = _rows(verified, at, warn)
    return [replace(r, state="revoked") if r.serial in gone else r for r in rows]


def _rows(verified: list[Statement], at: datetime, warn: timedelta) -> list[Row]:
    rows: list[Row] = []
    policy: dict[str, Any] = {}
    roots = sorted((s for s in verified if s.type in ("fleet-root", "fleet-rotation")),
                   key=lambda s: s.subject["version"])
    for i, st in enumerate(roots):
        policy = st.subject["policy"]
        due = st.not_before + timedelta(days=policy["fleet_root_rotation_days"])
        state = "superseded" if i < len(roots) - 1 else _state(at, due, st.not_after, warn)
        rows.append(Row("fleet-root", st.fleet, f"v{st.subject['version']}",
                        st.subject["key"].keyid, st.not_before, st.not_after, due, state, at,
                        st.serial))
    period = policy.get("regional_root_rotation_days", 90)
    by_region: dict[str, list[Statement]] = {}
    for st in verified:
        if st.type == "regional-root":
            by_region.setdefault(st.subject["region"], []).append(st)
    for region in sorted(by_region):
        versions = sorted(by_region[region], key=lambda s: s.subject["version"])
        for i, st in enumerate(versions):
            due = st.not_before + timedelta(days=period)
            newest = i == len(versions) - 1
            state = _state(at, due, st.not_after, warn) if newest else "superseded"
            rows.append(Row("regional-root", region, f"v{st.subject['version']}",
                            st.subject["key"].keyid, st.not_before, st.not_after, due, state, at,
                        st.serial))
    rows += _leaves(verified, at, warn)
    return rows


def _leaves(verified: list[Statement], at: datetime, warn: timedelta) -> list[Row]:
    """Enclave bundles, federation keys and the revocation list: re-issue before expiry."""
    rows: list[Row] = []
    latest: dict[tuple[str, str], Statement] = {}
    for st in verified:
        if st.type == "enclave-bundle":
            key = (st.type, st.subject["trust_domain"])
        elif st.type == "federation-key":
            key = (st.type, " <-> ".join(p["trust_domain"] for p in st.subject["pairing"]))
        elif st.type == "revocation-list":
            key = (st.type, "revocations")
        else:
            continue
        if key not in latest or st.issued_at > latest[key].issued_at:
            latest[key] = st
    for (kind, name), st in sorted(latest.items()):
        seq = st.subject.get("spiffe_sequence", st.subject.get("sequence"))
        version = "" if seq is None else f"seq {seq}"
        keyid = st.subject["key"].keyid if "key" in st.subject else None
        rows.append(Row(kind, name, version, keyid, st.not_before, st.not_after, st.not_after,
                        _state(at, st.not_after, st.not_after, warn), at, st.serial))
    return rows


def _what(st: Statement) -> tuple[str, str]:
    """A statement's row kind and name (as the calendar names them)."""
    sub = st.subject
    if st.type in ("fleet-root", "fleet-rotation"):
        return "fleet-root", st.fleet
    if "region" in sub and st.type == "regional-root":
        return st.type, str(sub["region"])
    if "trust_domain" in sub:
        return st.type, str(sub["trust_domain"])
    if "pairing" in sub:
        return st.type, " <-> ".join(p["trust_domain"] for p in sub["pairing"])
    return st.type, str(sub.get("region", st.serial))


def with_revocations(rows: list[Row], revocations: Mapping[str, Revocation],
                     statements: Iterable[Statement], at: datetime) -> list[Row]:
    """Every revocation in force at `at`, on the calendar: the rows of what it revokes are
    `revoked`, with the revocation; a revoked item that has no row (its artifact is withheld
    or absent, or failed for another reason) gets one, from its statement when given, else
    with its expiry unknown. A revoked item past its own expiry is `revoked-expired`."""
    in_force = [r for r in revocations.values() if r.revoked_at <= at]
    known = list(statements)
    out: list[Row] = []
    matched: set[str] = set()
    for row in rows:
        targets = {f"serial:{row.serial}"} | ({f"keyid:{row.keyid}"} if row.keyid else set())
        hit = next((r for r in sorted(in_force, key=lambda r: r.target)
                    if r.target in targets), None)
        if hit is not None:
            matched.add(hit.target)
            row = replace(row, state="revoked", revocation=hit)
        out.append(row)
    for rev in sorted(in_force, key=lambda r: r.target):
        if rev.target in matched:
            continue
        st = next((s for s in known if f"serial:{s.serial}" == rev.target
                   or ("key" in s.subject and f"keyid:{s.subject['key'].keyid}" == rev.target)),
                  None)
        kind, value = rev.target.split(":", 1)
        if st is None:
            out.append(Row("revoked", "(not in this set)", "", value if kind == "keyid" else
                           None, rev.revoked_at, None, None, "revoked", at,
                           value if kind == "serial" else "", rev))
            continue
        row_kind, name = _what(st)
        keyid = st.subject["key"].keyid if "key" in st.subject else None
        out.append(Row(row_kind, name, f"v{st.subject['version']}" if "version" in st.subject
                       else "", keyid, st.not_before, st.not_after, st.not_after, "revoked",
                       at, st.serial, rev))
    return [replace(r, state="revoked-expired") if r.state == "revoked" and r.expires
            is not None and at > r.expires else r for r in out]
