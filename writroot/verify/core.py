"""The pure verification core: artifacts, a pinned anchor and a reference time in, findings out.

No I/O and no clock: the caller passes the bytes and `at`. Every finding is reported, not
only the first; each check is named after the rule it enforces (DESIGN §6).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from writroot.crypto import engines
from writroot.crypto.keys import PublicKey
from writroot.envelope import Envelope, payload_type_for
from writroot.errors import BadInput, WritrootError
from writroot.jsonio import canonical, format_time
from writroot.quorum.count import Roster, count
from writroot.statements import (
    REGIONAL_MAY_SIGN,
    RIGHTS,
    Statement,
    parse_payload,
    roster_check,
)


@dataclass(frozen=True)
class Anchor:
    """The pinned fleet root: its keyid, and its key when a PEM was given."""

    keyid: str
    key: PublicKey | None = None


@dataclass(frozen=True)
class Finding:
    artifact: str
    check: str
    message: str
    malformed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"artifact": self.artifact, "check": self.check, "message": self.message}


@dataclass
class ArtifactResult:
    name: str
    type: str | None = None
    serial: str | None = None
    issuer_keyid: str | None = None
    findings: list[Finding] = field(default_factory=list)
    checked_by: set[str] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_json(self) -> dict[str, Any]:
        return {"artifact": self.name, "type": self.type, "serial": self.serial,
                "issuer_keyid": self.issuer_keyid, "ok": self.ok,
                "checked_by": sorted(self.checked_by),
                "findings": [f.to_json() for f in self.findings]}


@dataclass
class Report:
    at: datetime
    anchor: str
    independent: bool
    results: list[ArtifactResult]

    @property
    def findings(self) -> list[Finding]:
        return [f for r in self.results for f in r.findings]

    @property
    def ok(self) -> bool:
        return bool(self.results) and not self.findings

    @property
    def malformed(self) -> bool:
        return any(f.malformed for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "at": format_time(self.at), "anchor": self.anchor,
                "independent": self.independent, "artifacts": [r.to_json() for r in self.results],
                "findings": [f.to_json() for f in self.findings]}


@dataclass(frozen=True)
class _Trusted:
    key: PublicKey
    role: str
    region: str | None
    statement: Statement | None


@dataclass
class _Item:
    result: ArtifactResult
    envelope: Envelope
    statement: Statement


class _Verifier:
    def __init__(self, anchor: Anchor, at: datetime, independent: bool) -> None:
        self.anchor = anchor
        self.at = at
        self.independent = independent
        self.trusted: dict[str, _Trusted] = {}
        self.policy: dict[str, Any] | None = None
        self.fleet: str | None = None
        self.anchor_statement_failed = False
        # Rosters in force over time: (effective from, version, roster JSON).
        self.rosters: list[tuple[datetime, int, dict[str, Any]]] = []

    def fail(self, item: _Item, check: str, message: str) -> None:
        item.result.findings.append(Finding(item.result.name, check, message))

    # -- signatures -----------------------------------------------------------------------

    def signature_valid(self, item: _Item, key: PublicKey) -> bool:
        """At least one signature under the key's computed keyid verifies (and independently)."""
        sigs = [s for s in item.envelope.signatures if s.keyid == key.keyid]
        if not sigs:
            self.fail(item, "signature-present", f"no signature by {key.keyid}")
            return False
        message = item.envelope.pae()
        alg = key.algorithm
        primary = engines.verifier_for(alg)
        for sig in sigs:
            if not primary.verify(alg, key.raw, message, sig.sig):
                continue
            item.result.checked_by.add(primary.name)
            if self.independent:
                second = engines.independent_for(alg, primary)
                if not second.verify(alg, key.raw, message, sig.sig):
                    self.fail(item, "signature-independent",
                              f"{second.name} rejects the signature by {key.keyid} that "
                              f"{primary.name} accepts")
                    return False
                item.result.checked_by.add(second.name)
            return True
        self.fail(item, "signature-valid", f"signature by {key.keyid} does not verify")
        return False

    def window(self, item: _Item) -> bool:
        st = item.statement
        when = format_time(self.at)
        if self.at < st.not_before:
            self.fail(item, "validity-window",
                      f"not valid until {format_time(st.not_before)} (reference time {when})")
            return False
        if self.at > st.not_after:
            self.fail(item, "validity-window",
                      f"expired at {format_time(st.not_after)} (reference time {when})")
            return False
        return True

    # -- the anchor -----------------------------------------------------------------------

    def establish_anchor(self, items: list[_Item]) -> None:
        if self.anchor.key is not None:
            self.trusted[self.anchor.keyid] = _Trusted(self.anchor.key, "fleet-root", None, None)
        for item in items:
            st = item.statement
            if st.type != "fleet-root":
                continue
            key: PublicKey = st.subject["key"]
            if key.keyid != self.anchor.keyid:
                self.fail(item, "anchor-pinned", f"fleet-root key {key.keyid} is not the "
                          f"pinned anchor {self.anchor.keyid}")
                continue
            if self.anchor.key is not None and key != self.anchor.key:
                self.fail(item, "anchor-pinned", "fleet-root key differs from the pinned PEM")
                continue
            ok = self.issuer_is(item, key, "fleet-root")
            ok = self.signature_valid(item, key) and ok
            ok = self.quorum_proven(item, Roster.from_checked(st.subject["roster"]).to_json()) \
                and ok
            ok = self.window(item) and ok
            policy = st.subject["policy"]
            if key.algorithm.name != policy["fleet_root_algorithm"]:
                self.fail(item, "policy-algorithm", f"fleet root is {key.algorithm.name}, policy "
                          f"requires {policy['fleet_root_algorithm']}")
                ok = False
            if not (ok and item.result.ok):
                self.anchor_statement_failed = True
            elif key.keyid not in self.trusted or self.trusted[key.keyid].statement is None:
                self.trusted[key.keyid] = _Trusted(key, "fleet-root", None, st)
                self.policy = policy
                self.fleet = st.fleet
                roster = Roster.from_checked(st.subject["roster"])
                self.rosters = [(st.issued_at, roster.version, roster.to_json())]

    def issuer_is(self, item: _Item, key: PublicKey, role: str) -> bool:
        st = item.statement
        if st.issuer_keyid != key.keyid or st.issuer_role != role:
            self.fail(item, "issuer-self-signed",
                      f"issuer must be {role} {key.keyid}, not {st.issuer_role} {st.issuer_keyid}")
            return False
        return True

    # -- everything the anchor signs, and what regional roots sign ------------------------

    def check_issued(self, item: _Item) -> bool:
        st = item.statement
        ok = True
        if self.fleet is not None and st.fleet != self.fleet:
            self.fail(item, "fleet-matches", f"statement is for fleet {st.fleet!r}, the anchor's "
                      f"fleet is {self.fleet!r}")
            ok = False
        allowed = RIGHTS.get(st.type, ())
        if st.issuer_role not in allowed:
            self.fail(item, "issuer-authorised",
                      f"a {st.issuer_role} may not sign {st.type} statements")
            ok = False
        trusted = self.trusted.get(st.issuer_keyid)
        if trusted is None:
            if st.issuer_keyid == self.anchor.keyid and self.anchor_statement_failed:
                self.fail(item, "issuer-known", "the anchor's fleet-root statement did not "
                          "verify (see its findings)")
            elif st.issuer_keyid == self.anchor.keyid:
                self.fail(item, "issuer-known", "the anchor's fleet-root statement is not among "
                          "the artifacts; pass it, or pin the anchor by PEM")
            else:
                self.fail(item, "issuer-known",
                          f"issuer {st.issuer_keyid} was never certified under the anchor")
            return False
        if trusted.role != st.issuer_role:
            self.fail(item, "issuer-role", f"key {st.issuer_keyid} is a {trusted.role}, "
                      f"not a {st.issuer_role}")
            ok = False
        if trusted.statement is not None and trusted.role == "regional-root":
            if st.type not in trusted.statement.subject["may_sign"]:
                self.fail(item, "issuer-authorised", f"regional root {trusted.region} may not "
                          f"sign {st.type}")
                ok = False
        ok = self.signature_valid(item, trusted.key) and ok
        if st.type != "ceremony-record":  # the record seals a transcript; artifacts carry proof
            ok = self.quorum_proven(item, self.roster_at(st.issued_at)) and ok
        return self.window(item) and ok

    def roster_at(self, when: datetime) -> dict[str, Any] | None:
        """The roster in force when a statement was signed."""
        current = None
        for since, _version, roster in sorted(self.rosters, key=lambda r: (r[0], r[1])):
            if since <= when:
                current = roster
        return current

    def check_roster(self, item: _Item) -> None:
        """A roster change: version +1, approved under the old roster and the new one."""
        st = item.statement
        new = Roster.from_checked(st.subject["roster"])
        ok = self.check_issued(item)
        old = self.roster_at(st.issued_at)
        if old is not None and new.version != old["version"] + 1:
            self.fail(item, "roster-version", f"roster version {new.version} does not follow "
                      f"version {old['version']}")
            ok = False
        if ok:
            ok = self.quorum_proven(item, new.to_json(), label="new roster")
        if ok and item.result.ok:
            self.rosters.append((st.issued_at, new.version, new.to_json()))

    # -- proof of quorum ------------------------------------------------------------------

    def quorum_proven(self, item: _Item, roster_in_force: dict[str, Any] | None,
                      label: str = "") -> bool:
        """The artifact carries a locked plan covering it, approved by M custodians of the
        roster in force, unexpired when it was signed."""
        st = item.statement
        cer = st.ceremony
        plan = cer.get("plan")
        if not isinstance(plan, dict):
            self.fail(item, "quorum-proof", "carries no locked plan")
            return False
        try:
            digest = hashlib.sha256(canonical(plan)).hexdigest()
            roster = Roster.from_checked(roster_check(plan.get("roster", {}).get("roster"),
                                                      "plan.roster.roster"))
        except (WritrootError, AttributeError) as exc:
            self.fail(item, "quorum-proof", f"malformed locked plan: {exc}")
            return False
        if digest != cer["plan_sha256"] or plan.get("ceremony") != cer["id"] \
                or plan.get("fleet") != st.fleet:
            self.fail(item, "quorum-proof", "the carried plan is not the plan named by "
                      "ceremony.plan_sha256, ceremony.id and fleet")
            return False
        if roster_in_force is None:
            self.fail(item, "quorum-proof", "the roster in force is unknown: pass the "
                      "anchor's fleet-root statement")
            return False
        if label:  # a roster change: count the same approvals against the new roster too
            roster = Roster.from_checked(roster_check(roster_in_force, "new roster"))
        elif canonical(roster.to_json()) != canonical(roster_in_force):
            self.fail(item, "quorum-proof", "the plan's roster is not the roster in force")
            return False
        if not _plan_covers(plan, st):
            self.fail(item, "quorum-proof", f"the approved plan has no operation that "
                      f"yields this {st.type} statement")
            return False
        named = [(f"approvals[{i}]", a) for i, a in enumerate(cer["approvals"])]
        tally = count(named, roster, cer["id"], cer["plan_sha256"], st.issued_at)
        if not tally.met:
            why = "; ".join(f"{a}: {r}" for a, r in tally.rejected) or "none given"
            self.fail(item, "quorum-proof", f"{len(tally.counted)} of {tally.threshold} "
                      f"approvals hold{' under the ' + label if label else ''} ({why})")
            return False
        return True

    def check_regional_root(self, item: _Item) -> None:
        st = item.statement
        ok = self.check_issued(item)
        key: PublicKey = st.subject["key"]
        if self.policy is not None and key.algorithm.name not in \
                self.policy["regional_root_algorithms"]:
            self.fail(item, "policy-algorithm", f"{key.algorithm.name} is not a regional-root "
                      "algorithm the fleet policy allows")
            ok = False
        if self.policy is not None:
            limit = self.policy["regional_root_rotation_days"] + self.policy[
                "regional_overlap_days"]
            days = (st.not_after - st.not_before).total_seconds() / 86400
            if days > limit:
                self.fail(item, "policy-validity", f"valid for {days:.1f} days, policy allows "
                          f"{limit}")
                ok = False
        if ok and item.result.ok:
            self.trusted[key.keyid] = _Trusted(key, "regional-root", st.subject["region"], st)


def _plan_covers(plan: dict[str, Any], st: Statement) -> bool:
    ops = plan.get("operations")
    if not isinstance(ops, list):
        return False
    signer = plan.get("signer")
    if signer not in ("generate", st.issuer_keyid):
        return False
    for op in ops:
        if not isinstance(op, dict):
            continue
        if st.type == "fleet-root" and op.get("op") == "sign-fleet-root":
            return bool(op.get("policy") == st.document["subject"]["policy"])
        if st.type == "roster" and op.get("op") == "sign-roster":
            proposed = op.get("roster")
            new = Roster.from_checked(st.subject["roster"]).to_json()
            if isinstance(proposed, dict) and canonical(proposed.get("roster")) == canonical(new):
                return True
        if st.type == "regional-root" and op.get("op") == "sign-regional-root":
            key = op.get("key")
            days = (st.not_after - st.not_before).days
            may_sign = op.get("may_sign", list(REGIONAL_MAY_SIGN))
            if op.get("region") == st.subject["region"] and isinstance(key, dict) \
                    and key.get("keyid") == st.subject["key"].keyid \
                    and op.get("validity_days") == days and may_sign == st.subject["may_sign"]:
                return True
    return False


def verify(artifacts: list[tuple[str, bytes]], anchor: Anchor, at: datetime,
           independent: bool = False) -> Report:
    """Verify artifacts against the anchor at reference time `at`."""
    verifier = _Verifier(anchor, at, independent)
    results: list[ArtifactResult] = []
    items: list[_Item] = []
    serials: dict[str, str] = {}
    for name, data in artifacts:
        result = ArtifactResult(name)
        results.append(result)
        try:
            envelope = Envelope.parse(data, name)
            statement = parse_payload(envelope.payload, f"{name}: payload")
        except (BadInput, WritrootError) as exc:
            result.findings.append(Finding(name, "well-formed", str(exc), malformed=True))
            continue
        result.type, result.serial = statement.type, statement.serial
        result.issuer_keyid = statement.issuer_keyid
        item = _Item(result, envelope, statement)
        if envelope.payload_type != payload_type_for(statement.type):
            verifier.fail(item, "payload-type", f"payloadType {envelope.payload_type!r} does not "
                          f"match the statement type {statement.type!r}")
        if statement.serial in serials:
            verifier.fail(item, "serial-unique",
                          f"serial {statement.serial} is also used by {serials[statement.serial]}")
        serials.setdefault(statement.serial, name)
        items.append(item)
    verifier.establish_anchor(items)
    rosters = [i for i in items if i.statement.type == "roster"]
    for item in sorted(rosters, key=lambda i: i.statement.subject["roster"]["version"]):
        verifier.check_roster(item)
    for item in items:
        if item.statement.type == "regional-root":
            verifier.check_regional_root(item)
    for item in items:
        if item.statement.type not in ("fleet-root", "regional-root", "roster"):
            verifier.check_issued(item)
    return Report(at, anchor.keyid, independent, results)
