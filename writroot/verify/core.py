"""The pure verification core: artifacts, a pinned anchor, revocation lists and a reference
time in, findings out.

No I/O and no clock: the caller passes the bytes and `at`. Every finding is reported, not
only the first; each check is named after the rule it enforces (DESIGN §6). The rules come
from `writroot.rules`, the module the ceremony machine uses too. Phases run in a fixed order
(the fleet-root chain and rosters, revocation lists, regional roots, what regional roots
sign), and within a phase artifacts are taken in an order computed from their contents, so
the answer never depends on the order of the inputs. Statements that claim the same slot
are conflicts, reported on every one of them, and none of them is trusted.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from writroot.crypto import engines
from writroot.crypto.keys import PublicKey
from writroot.envelope import INTOTO_TYPES, Envelope, Signature, payload_type_for
from writroot.errors import BadInput, EngineFault, EngineUnavailable, WritrootError
from writroot.jsonio import canonical, format_time
from writroot.quorum.count import Roster, Tally, count
from writroot.rules import Violation, merkle
from writroot.rules.covers import covers, covers_included
from writroot.rules.enclaves import bundle_assigned, pairing_allowed
from writroot.rules.plan import Authority, PlanFacts, check_included, check_locked
from writroot.rules.rights import region_may_sign, role_may_sign
from writroot.rules.validity import (
    NESTED,
    approval_lifetime,
    approval_window,
    nested,
    regional_validity,
)
from writroot.statements import (
    Statement,
    parse_any,
    revocation_target,
    roster_check,
)
from writroot.verify.report import ArtifactResult, Finding, Report

__all__ = ["Anchor", "ArtifactResult", "Finding", "Parsed", "Report", "Source", "parse_artifact",
           "verify", "verify_parsed"]

_T = TypeVar("_T")

#: A hard bound on the rotation chain, whatever a policy says.
MAX_CHAIN = 64


@dataclass(frozen=True)
class Anchor:
    """The pinned fleet root: its keyid, and its key when a PEM was given."""

    keyid: str
    key: PublicKey | None = None


@dataclass
class _Trusted:
    key: PublicKey
    role: str
    region: str | None
    statement: Statement | None
    #: For fleet roots: the time span in which the key held authority.
    since: datetime | None = None
    until: datetime | None = None


@dataclass
class _Item:
    result: ArtifactResult
    envelope: Envelope
    statement: Statement
    digest: str = ""  # SHA-256 of the file: a total order and identity independent of names
    derived: Derived | None = None

    @property
    def order(self) -> tuple[datetime, str, str]:
        return (self.statement.issued_at, self.statement.serial, self.digest)


@dataclass
class _Revoked:
    entry: dict[str, Any]
    sequence: int


@dataclass
class _Verifier:
    anchor: Anchor
    at: datetime
    independent: bool
    trusted: dict[str, _Trusted] = field(default_factory=dict)
    fleet: str | None = None
    current: _Trusted | None = None  # the fleet root at the end of the chain
    current_item: _Item | None = None
    anchor_item: _Item | None = None  # the statement that introduced the pinned root
    version: int = 0
    chain: int = 0
    anchor_statement_failed: bool = False
    root_expired: bool = False
    # (effective from, version, value) for rosters and policies in force over time.
    rosters: list[tuple[datetime, int, dict[str, Any]]] = field(default_factory=list)
    policies: list[tuple[datetime, dict[str, Any]]] = field(default_factory=list)
    revoked: dict[str, _Revoked] = field(default_factory=dict)
    revocation_sequence: int | None = None
    plans: dict[str, tuple[str, str, Roster]] = field(default_factory=dict)
    roster_leaves: dict[str, str] = field(default_factory=dict)
    tallies: dict[tuple[str, datetime, int | None], list[tuple[Any, Roster, Tally]]] = field(
        default_factory=dict)
    rotations: list[_Item] = field(default_factory=list)
    forked: set[int] = field(default_factory=set)
    fork_at: int | None = None
    contested: set[str] = field(default_factory=set)  # trust domains in conflict
    #: id(regional root) -> (it, trust domain -> its `enclaves` entries); id(roster in
    #: force) -> (it, checked). The object is kept so that its id stays its own.
    enclave_index: dict[int, tuple[_Trusted, dict[str, list[dict[str, Any]]]]] = field(
        default_factory=dict)
    roster_objects: dict[int, tuple[dict[str, Any], Roster, str]] = field(
        default_factory=dict)  # (+ its leaf hash, once computed)

    #: (envelope id, keyid) -> verified? (a conflict check and the main check share work)
    verified: dict[tuple[int, str], bool] = field(default_factory=dict)
    #: (file SHA-256, keyid) -> does a signature under that key verify with the primary
    #: engine? Computed in bulk beforehand (writroot.verify.bulk); keyed by content.
    signatures: Mapping[tuple[str, str], bool] = field(default_factory=dict)

    def fail(self, item: _Item, check: str, message: str) -> None:
        item.result.findings.append(Finding(item.result.name, check, message))

    def violations(self, item: _Item, found: list[Violation]) -> bool:
        for v in found:
            self.fail(item, v.rule, f"{v.where}: {v.message}" if v.where else v.message)
        return not found

    def conflict(self, items: list[_Item], check: str, slot: str) -> None:
        """Statements that claim one slot: each is reported, naming the others."""
        for item in items:
            others = ", ".join(sorted(o.result.name for o in items if o is not item))
            self.fail(item, check, f"{slot} is claimed by another statement too ({others}); "
                      "neither is trusted")

    def signed_by(self, item: _Item, key: PublicKey) -> bool:
        """Silently: does a signature under this key verify? (No findings; engine faults
        count as not verified here and are reported by `signature_valid`.)"""
        cached = self.verified.get((id(item.envelope), key.keyid))
        if cached is None:
            cached = self.signatures.get((item.digest, key.keyid))
        if cached is not None:
            return cached
        try:
            primary = engines.verifier_for(key.algorithm)
            ok = any(primary.verify(key.algorithm, key.raw, item.envelope.pae(), s.sig)
                     for s in item.envelope.signatures if s.keyid == key.keyid)
        except (EngineFault, EngineUnavailable):
            return False
        self.verified[(id(item.envelope), key.keyid)] = ok
        return ok

    # -- signatures and windows -----------------------------------------------------------

    def signature_valid(self, item: _Item, key: PublicKey) -> bool:
        """At least one signature under the key's computed keyid verifies (and independently)."""
        sigs = [s for s in item.envelope.signatures if s.keyid == key.keyid]
        if not sigs:
            self.fail(item, "signature-present", f"no signature by {key.keyid}")
            return False
        alg = key.algorithm
        known = self.signatures.get((item.digest, key.keyid))
        if known is not None and not self.independent:
            if known:
                item.result.checked_by.add(engines.verifier_for(alg).name)
                return True
            self.fail(item, "signature-valid", f"signature by {key.keyid} does not verify")
            return False
        message = item.envelope.pae()
        try:
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
        except (EngineFault, EngineUnavailable) as exc:
            self.fail(item, "engine-error", f"could not check the signature by {key.keyid}: "
                      f"{exc}")
            return False
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

    def fleet_matches(self, item: _Item) -> bool:
        st = item.statement
        if self.fleet is not None and st.fleet != self.fleet:
            self.fail(item, "fleet-matches", f"statement is for fleet {st.fleet!r}, the "
                      f"anchor's fleet is {self.fleet!r}")
            return False
        return True

    # -- the anchor and the fleet-root rotation chain -------------------------------------

    def establish_anchor(self, items: list[_Item]) -> None:
        """The pinned root's own statement: genesis, or the rotation that made it current."""
        if self.anchor.key is not None:
            self.current = self.trusted[self.anchor.keyid] = _Trusted(
                self.anchor.key, "fleet-root", None, None)
        good: list[_Item] = []
        for item in sorted(items, key=lambda i: i.order):
            st = item.statement
            if st.type not in ("fleet-root", "fleet-rotation"):
                continue
            key: PublicKey = st.subject["key"]
            if key.keyid != self.anchor.keyid:
                if st.type == "fleet-root":
                    self.fail(item, "anchor-pinned", f"fleet-root key {key.keyid} is not the "
                              f"pinned anchor {self.anchor.keyid}")
                continue
            if self.anchor.key is not None and key != self.anchor.key:
                self.fail(item, "anchor-pinned", "fleet-root key differs from the pinned PEM")
                continue
            roster = Roster.from_checked(st.subject["roster"]).to_json()
            ok = True
            if st.type == "fleet-root":
                ok = self.issuer_is(item, key)
            else:
                ok = self.signature_valid(item, st.subject["previous"])
            ok = self.signature_valid(item, key) and ok
            ok = self.quorum_proven(item, roster) and ok
            ok = self.policy_algorithm(item) and ok
            if not (ok and item.result.ok):
                self.anchor_statement_failed = True
            else:
                good.append(item)
        if len(good) > 1:  # the anchor signed two statements of itself: trust neither
            self.conflict(good, "conflict-anchor", f"the pinned fleet root's own statement "
                          f"({self.anchor.keyid})")
            self.anchor_statement_failed = True
            return
        if good:
            item = good[0]
            st = item.statement
            key = st.subject["key"]
            self.current = self.trusted[key.keyid] = _Trusted(
                key, "fleet-root", None, st, since=st.issued_at)
            self.current_item = item
            self.version = st.subject["version"]
            self.fleet = st.fleet
            self.policies = [(st.issued_at, st.subject["policy"])]
            self.rosters = [(st.issued_at, st.subject["roster"]["version"],
                             Roster.from_checked(st.subject["roster"]).to_json())]
            self.anchor_item = item

    def issuer_is(self, item: _Item, key: PublicKey) -> bool:
        st = item.statement
        if st.issuer_keyid != key.keyid or st.issuer_role != "fleet-root":
            self.fail(item, "issuer-self-signed", f"issuer must be fleet-root {key.keyid}, not "
                      f"{st.issuer_role} {st.issuer_keyid}")
            return False
        return True

    def policy_algorithm(self, item: _Item) -> bool:
        st = item.statement
        key: PublicKey = st.subject["key"]
        required = st.subject["policy"]["fleet_root_algorithm"]
        if key.algorithm.name != required:
            self.fail(item, "policy-algorithm", f"fleet root is {key.algorithm.name}, policy "
                      f"requires {required}")
            return False
        return True

    def check_rotation(self, item: _Item) -> None:
        """One step of the chain: signed by the current root and the new one, version +1,
        approved under the roster in force, the chain no longer than policy allows."""
        st = item.statement
        if item is self.anchor_item:
            return
        previous: PublicKey = st.subject["previous"]
        new: PublicKey = st.subject["key"]
        if self.current is None:
            self.fail(item, "rotation-chain", "no trusted fleet root to rotate from (see the "
                      "anchor's findings)")
            return
        if id(item) in self.forked:
            return  # reported as a conflict already
        if previous.keyid == self.current.key.keyid:
            rivals = [r for r in self.rotations if r.statement.subject["previous"] == previous
                      and self.signed_by(r, previous)]
            if len({r.digest for r in rivals}) > 1:
                self.conflict(rivals, "conflict-rotation", f"the rotation from fleet root "
                              f"version {self.version} ({previous.keyid})")
                self.forked |= {id(r) for r in rivals}
                self.fork_at = self.version
                return
        if self.fork_at is not None:
            self.fail(item, "rotation-chain", f"the chain forks at version {self.fork_at}; "
                      "no rotation after a fork is trusted")
            return
        if previous.keyid != self.current.key.keyid:
            known = previous.keyid in self.trusted
            self.fail(item, "rotation-chain", f"rotates {previous.keyid}, which is "
                      f"{'a superseded root' if known else 'not in the chain'}; the current "
                      f"root is {self.current.key.keyid}")
            return
        ok = self.fleet_matches(item)
        if st.issuer_keyid != previous.keyid or st.issuer_role != "fleet-root":
            self.fail(item, "rotation-issuer", "a rotation is issued by the root it replaces")
            ok = False
        ok = self.signature_valid(item, previous) and ok
        ok = self.signature_valid(item, new) and ok
        if st.subject["version"] != self.version + 1:
            self.fail(item, "rotation-version", f"version {st.subject['version']} does not "
                      f"follow version {self.version}")
            ok = False
        limit = min(MAX_CHAIN, self.policy_at(st.issued_at).get("max_rotation_chain",
                                                                MAX_CHAIN))
        if self.chain + 1 > limit:
            self.fail(item, "rotation-chain-length", f"the chain from the pinned root would be "
                      f"{self.chain + 1} rotations long; at most {limit} are allowed")
            ok = False
        if self.current.since is not None and st.issued_at < self.current.since:
            self.fail(item, "rotation-chain", "issued before the root it replaces took office")
            ok = False
        in_force = self.roster_at(st.issued_at)
        if in_force is not None and canonical(Roster.from_checked(
                st.subject["roster"]).to_json()) != canonical(in_force):
            self.fail(item, "roster-matches", "a rotation carries the roster in force; change "
                      "rosters with a roster statement")
            ok = False
        ok = self.quorum_proven(item, in_force) and ok
        ok = self.policy_algorithm(item) and ok
        if ok and item.result.ok:
            self.current.until = st.issued_at
            self.current = self.trusted[new.keyid] = _Trusted(new, "fleet-root", None, st,
                                                              since=st.issued_at)
            self.current_item = item
            self.version = st.subject["version"]
            self.chain += 1
            self.policies.append((st.issued_at, st.subject["policy"]))

    def policy_at(self, when: datetime) -> dict[str, Any]:
        current = self.policies[0][1] if self.policies else {}
        for since, policy in self.policies:
            if since <= when:
                current = policy
        return current

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

    # -- everything else: who signed it, and may they? ------------------------------------

    def check_issued(self, item: _Item, window: bool = True) -> bool:
        st = item.statement
        ok = self.fleet_matches(item)
        if not role_may_sign(st.issuer_role, st.type):
            self.fail(item, "issuer-authorised",
                      f"a {st.issuer_role} may not sign {st.type} statements")
            ok = False
        trusted = self.trusted.get(st.issuer_keyid)
        if trusted is None:
            if ok:  # an issuer that may not sign this type says so already
                self.unknown_issuer(item)
            return False
        if trusted.role == "fleet-root" and self.root_expired:
            self.fail(item, "issuer-known", "the fleet root in force did not verify (see its "
                      "findings)")
            return False
        if trusted.role != st.issuer_role:
            self.fail(item, "issuer-role", f"key {st.issuer_keyid} is a {trusted.role}, "
                      f"not a {st.issuer_role}")
            ok = False
        ok = self.issuer_in_office(item, trusted) and ok
        if trusted.role == "regional-root":
            ok = self.regional_rights(item, trusted) and ok
        if trusted.statement is not None and st.type in NESTED:
            ok = self.violations(item, nested(st.not_after, trusted.statement.not_after,
                                              "its issuer")) and ok
        ok = self.signature_valid(item, trusted.key) and ok
        if st.type != "ceremony-record":  # the record seals a transcript; artifacts carry proof
            ok = self.quorum_proven(item, self.roster_at(st.issued_at)) and ok
        ok = self.not_revoked(item) and ok
        return (self.window(item) if window else True) and ok

    def unknown_issuer(self, item: _Item) -> None:
        st = item.statement
        if st.issuer_keyid == self.anchor.keyid and self.anchor_statement_failed:
            self.fail(item, "issuer-known", "the anchor's fleet-root statement did not "
                      "verify (see its findings)")
        elif st.issuer_keyid == self.anchor.keyid:
            self.fail(item, "issuer-known", "the anchor's fleet-root statement is not among "
                      "the artifacts; pass it, or pin the anchor by PEM")
        else:
            self.fail(item, "issuer-known",
                      f"issuer {st.issuer_keyid} was never certified under the anchor")

    def issuer_in_office(self, item: _Item, trusted: _Trusted) -> bool:
        """A fleet root signs only between taking office and its successor doing so; a
        regional root only inside its own validity."""
        st = item.statement
        if trusted.until is not None and st.issued_at > trusted.until:
            self.fail(item, "issuer-superseded", f"issued {format_time(st.issued_at)}, after "
                      f"its fleet root was rotated out ({format_time(trusted.until)})")
            return False
        if trusted.since is not None and st.issued_at < trusted.since:
            self.fail(item, "issuer-superseded", f"issued {format_time(st.issued_at)}, before "
                      f"its issuer took office ({format_time(trusted.since)})")
            return False
        if trusted.role == "regional-root" and trusted.statement is not None \
                and not trusted.statement.valid_at(st.issued_at):
            self.fail(item, "issuer-valid-when-signed", "issued outside its regional root's "
                      "validity")
            return False
        return True

    def regional_rights(self, item: _Item, trusted: _Trusted) -> bool:
        st = item.statement
        ok = True
        assert trusted.statement is not None
        region = trusted.region or ""
        if not region_may_sign(trusted.statement.subject["may_sign"], st.type):
            self.fail(item, "issuer-authorised", f"regional root {region} may not "
                      f"sign {st.type}")
            ok = False
        if "region" in st.subject and st.subject["region"] != region:
            self.fail(item, "region-matches", f"signed by the {region} regional root "
                      f"for region {st.subject['region']}: a region signs only for itself")
            ok = False
        # An enclave in conflict (two regions, or two levels) is trusted to no region.
        domains = [st.subject["trust_domain"]] if st.type == "enclave-bundle" else [
            p["trust_domain"] for p in st.subject.get("pairing") or []]
        enclaves = [e for e in self.enclaves_of(trusted, domains)
                    if e["trust_domain"] not in self.contested]
        if st.type == "enclave-bundle":  # the region's right to the enclave, from its root
            ok = self.violations(item, bundle_assigned(
                enclaves, region, st.subject["trust_domain"], st.subject["impact_level"],
                "subject.")) and ok
        if st.type == "federation-key":
            ok = self.violations(item, pairing_allowed(
                enclaves, region, st.subject["pairing"], st.subject.get("cds_route"),
                self.policy_at(st.issued_at) or None, "subject.")) and ok
        return ok

    # -- the ceremony binder: approvals, enrolments, key requests -------------------------
    # Records of past acts, not artifacts relying parties use: each is checked as what it
    # is (no reference-time window; a key revoked before the act makes it fail).

    def binder_signer(self, item: _Item, role: str) -> bool:
        st = item.statement
        ok = self.fleet_matches(item)
        if st.issuer_role != role:
            self.fail(item, "issuer-authorised", f"a {st.issuer_role} may not sign {st.type} "
                      "statements")
            ok = False
        hit = self.revoked.get(f"keyid:{st.issuer_keyid}")
        if hit is not None and hit.entry["revoked_at"] <= st.issued_at:
            self.fail(item, "not-revoked", f"signed {format_time(st.issued_at)} by a key "
                      f"revoked at {format_time(hit.entry['revoked_at'])} by revocation list "
                      f"{hit.sequence}")
            ok = False
        return ok

    def check_approval(self, item: _Item) -> None:
        """An approval verifies against the roster in force when it was signed (for genesis
        approvals, signed before the anchor took office: the anchor's own roster)."""
        st = item.statement
        self.binder_signer(item, "custodian")
        in_force = self.roster_at(st.issued_at)
        if in_force is None and self.rosters:
            in_force = min(self.rosters, key=lambda r: (r[0], r[1]))[2]
        if in_force is None:
            self.fail(item, "approver-rostered", "the roster in force is unknown: pass the "
                      "anchor's fleet-root statement")
            return
        roster = Roster.from_checked(roster_check(in_force, "roster"))
        custodian = roster.by_keyid(st.issuer_keyid)
        if custodian is None:
            self.fail(item, "approver-rostered", f"signed by {st.issuer_keyid}, not a custodian "
                      f"of roster v{roster.version}, in force at {format_time(st.issued_at)}")
            return
        sub = st.subject
        if custodian.id != sub["custodian"]:
            self.fail(item, "approver-rostered", f"claims custodian {sub['custodian']!r} but "
                      f"the key is {custodian.id!r}'s")
        if sub["ceremony"] != st.ceremony["id"] or sub["plan_sha256"] != \
                st.ceremony["plan_sha256"]:
            self.fail(item, "approval-plan", "subject.ceremony and subject.plan_sha256 differ "
                      "from the header's ceremony")
        policy = self.policy_at(st.issued_at)
        if policy:
            too_long = approval_lifetime(policy, st.not_before, st.not_after)
            if too_long:
                self.fail(item, "approval-lifetime", too_long)
        self.signature_valid(item, custodian.key)

    def check_enrolment(self, item: _Item) -> None:
        """Self-signed by the enrolled key, and that custodian (id and key) on a roster
        certified under the anchor."""
        st = item.statement
        ok = self.binder_signer(item, "custodian")
        member = st.subject["custodian"]
        key: PublicKey = member["key"]
        if st.issuer_keyid != key.keyid:
            self.fail(item, "proof-of-possession", "an enrolment is signed by the enrolled "
                      f"key {key.keyid}, not {st.issuer_keyid}")
            return
        ok = self.signature_valid(item, key) and ok
        rostered = any(c["id"] == member["id"] and c["key"]["keyid"] == key.keyid
                       for _since, _v, roster in self.rosters for c in roster["custodians"])
        if ok and not rostered:
            self.fail(item, "enrolment-rostered", f"custodian {member['id']!r} with key "
                      f"{key.keyid} is on no roster certified under the anchor")

    def check_key_request(self, item: _Item, regional: list[_Item]) -> None:
        """A key request proves possession: signed by the requested key itself. A regional
        root certifying that key must be for the requested region."""
        st = item.statement
        ok = self.binder_signer(item, "regional-root")
        key: PublicKey = st.subject["key"]
        if st.issuer_keyid != key.keyid:
            self.fail(item, "proof-of-possession", "a key request is signed by the requested "
                      f"key {key.keyid}, not {st.issuer_keyid}")
            return
        ok = self.signature_valid(item, key) and ok
        if "log_key" in st.subject:  # the log key's possession: a second signature
            ok = self.signature_valid(item, st.subject["log_key"]) and ok
        for root in regional:
            sub = root.statement.subject
            if ok and sub["key"].keyid == key.keyid and sub["region"] != st.subject["region"]:
                self.fail(item, "request-region", f"requested for {st.subject['region']}, "
                          f"certified for {sub['region']} ({root.result.name})")

    # -- proof of quorum ------------------------------------------------------------------

    def quorum_proven(self, item: _Item, roster_in_force: dict[str, Any] | None,
                      label: str = "") -> bool:
        """The artifact carries a locked plan covering it, approved by M custodians of the
        roster in force, unexpired when it was signed."""
        st = item.statement
        cer = st.ceremony
        if "inclusion" in cer:
            return self.quorum_included(item, roster_in_force, label)
        plan = cer.get("plan")
        if not isinstance(plan, dict):
            self.fail(item, "quorum-proof", "carries no locked plan")
            return False
        try:
            digest, roster = self.plan_facts(cer["plan_sha256"], plan)
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
        elif roster.to_json() != roster_in_force:
            self.fail(item, "quorum-proof", "the plan's roster is not the roster in force")
            return False
        if not covers(plan, st):
            self.fail(item, "quorum-proof", f"the approved plan has no operation that "
                      f"yields this {st.type} statement")
            return False
        if not self.plan_rules(item, plan):
            return False
        return self.quorum_met(item, roster, self.policy_at(st.issued_at)
                               or _genesis_policy(plan["operations"]), label)

    def quorum_included(self, item: _Item, roster_in_force: dict[str, Any] | None,
                        label: str) -> bool:
        """The artifact carries its operation and an inclusion proof into the approved plan
        (docs/format.md §5.10a): the proof must lead to ceremony.plan_sha256, and the rules
        judged on the header and that one operation."""
        st = item.statement
        cer = st.ceremony
        if "plan" in cer:
            self.fail(item, "quorum-proof", "carries both a plan and an inclusion proof")
            return False
        proof = cer["inclusion"]
        derived = item.derived
        root = derived.inclusion_root if derived and derived.inclusion_root else \
            merkle.inclusion_root(proof)
        if root != cer["plan_sha256"]:
            self.fail(item, "quorum-proof", "the inclusion proof does not lead to the plan "
                      "named by ceremony.plan_sha256 (operation, header or path altered, or "
                      "taken from another plan)")
            return False
        header, op, index = proof["header"], proof["operation"], proof["index"]
        if header.get("ceremony") != cer["id"] or header.get("fleet") != st.fleet:
            self.fail(item, "quorum-proof", "the proven plan is not the plan named by "
                      "ceremony.id and fleet")
            return False
        if roster_in_force is None:
            self.fail(item, "quorum-proof", "the roster in force is unknown: pass the "
                      "anchor's fleet-root statement")
            return False
        try:
            roster = self.roster_of(roster_in_force)
        except WritrootError as exc:
            self.fail(item, "quorum-proof", f"malformed roster: {exc}")
            return False
        if not label and self.roster_leaf(roster_in_force) != proof["roster"]:
            self.fail(item, "quorum-proof", "the plan's roster is not the roster in force")
            return False
        if not covers_included(header, op, index, st):
            self.fail(item, "quorum-proof", f"the approved plan's operation {index} does not "
                      f"yield this {st.type} statement")
            return False
        domains = [op["trust_domain"]] if isinstance(op.get("trust_domain"), str) else [
            p["trust_domain"] for p in op.get("pairing") or []
            if isinstance(p, dict) and isinstance(p.get("trust_domain"), str)]
        found = check_included(header, op, index, self.plan_facts_for(item, domains or None))
        if not self.report_plan_rules(item, found):
            return False
        genesis = _genesis_policy([op]) if header.get("signer") == "generate" else {}
        return self.quorum_met(item, roster, self.policy_at(st.issued_at) or genesis, label)

    def roster_leaf(self, roster: dict[str, Any]) -> str:
        same = self.roster_objects.get(id(roster))
        if same is not None and same[2]:
            return same[2]
        key = _exact(roster)
        found = self.roster_leaves.get(key)
        if found is None:
            found = self.roster_leaves[key] = merkle.leaf("roster", roster).hex()
        if same is not None:
            self.roster_objects[id(roster)] = (*same[:2], found)
        return found

    def quorum_met(self, item: _Item, roster: Roster, policy: dict[str, Any],
                   label: str) -> bool:
        st = item.statement
        cer = st.ceremony
        tally = self.tally(cer, roster, st.issued_at, policy.get("approval_expiry_hours"),
                           item.derived.approvals if item.derived else "")
        if not tally.met:
            why = "; ".join(f"{a}: {r}" for a, r in tally.rejected) or "none given"
            self.fail(item, "quorum-proof", f"{len(tally.counted)} of {tally.threshold} "
                      f"approvals hold{' under the ' + label if label else ''} ({why})")
            return False
        return self.violations(item, approval_window(st.issued_at, tally.windows))

    def plan_rules(self, item: _Item, plan: dict[str, Any]) -> bool:
        """The carried plan keeps every rule the ceremony machine applies (writroot.rules),
        judged from the facts verified here: the policy in force and the signer's root."""
        return self.report_plan_rules(item, check_locked(plan, self.plan_facts_for(item)))

    def plan_facts_for(self, item: _Item, domains: list[str] | None = None) -> PlanFacts:
        """The facts a carried plan is judged by: the policy in force, the signer's root
        (its enclaves: all, or those of `domains`, the only ones one operation looks up)."""
        st = item.statement
        trusted = self.trusted.get(st.issuer_keyid)
        authority = None
        if trusted is not None and trusted.role == "regional-root" and trusted.statement:
            sub = trusted.statement.subject
            enclaves = sub["enclaves"] if domains is None else self.enclaves_of(trusted,
                                                                                domains)
            authority = Authority(sub["region"], st.issuer_keyid, sub["may_sign"],
                                  enclaves, trusted.statement.not_after)
        return PlanFacts(policy=self.policy_at(st.issued_at) or None, authority=authority)

    def enclaves_of(self, trusted: _Trusted, domains: list[str]) -> list[dict[str, Any]]:
        """The entries of a regional root's `enclaves` for these trust domains, in their
        order (lookups by trust domain see the same entries as in the whole list)."""
        assert trusted.statement is not None
        index = self.enclave_index.get(id(trusted))
        if index is None:
            by_domain: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for entry in trusted.statement.subject["enclaves"]:
                by_domain[entry["trust_domain"]].append(entry)
            index = self.enclave_index[id(trusted)] = (trusted, dict(by_domain))
        return [e for d in dict.fromkeys(domains) for e in index[1].get(d, [])]

    def roster_of(self, roster: dict[str, Any]) -> Roster:
        """The roster in force, checked once per roster object."""
        cached = self.roster_objects.get(id(roster))
        if cached is None:
            cached = self.roster_objects[id(roster)] = (
                roster, Roster.from_checked(roster_check(roster, "roster in force")), "")
        return cached[1]

    def report_plan_rules(self, item: _Item, violations: list[Violation]) -> bool:
        seen = {f.check for f in item.result.findings}  # the statement's own finding says it
        found = [v for v in violations if v.rule not in seen]
        for v in found:
            self.fail(item, v.rule, f"the approved plan breaks a rule at {v.where or 'top'}: "
                      f"{v.message}")
        return not found

    def plan_facts(self, claimed: str, plan: dict[str, Any]) -> tuple[str, Roster]:
        """A plan's digest and roster. Every statement of a ceremony carries the same plan:
        an equal plan seen before is not canonicalised again (equality is exact)."""
        exact = _exact(plan)  # json.dumps tells true from 1, unlike ==
        seen = self.plans.get(claimed)
        if seen is not None and seen[0] == exact:
            return seen[1], seen[2]
        digest = merkle.plan_digest(plan)
        roster = Roster.from_checked(roster_check(plan.get("roster", {}).get("roster"),
                                                  "plan.roster.roster"))
        self.plans[claimed] = (exact, digest, roster)
        return digest, roster

    def tally(self, cer: dict[str, Any], roster: Roster, when: datetime,
              max_hours: int | None, exact: str = "") -> Tally:
        """Count the approvals; the same approvals, roster and time give the same count
        (`exact`: the approvals' `approvals_key`, when computed beforehand)."""
        key = (cer["plan_sha256"], when, max_hours)
        exact = exact or approvals_key(cer["approvals"])
        for approvals, counted_roster, tally in self.tallies.get(key, []):
            if approvals == exact and counted_roster == roster:
                return tally
        named = [(f"approvals[{i}]", a) for i, a in enumerate(cer["approvals"])]
        tally = count(named, roster, cer["id"], cer["plan_sha256"], when, max_hours)
        self.tallies.setdefault(key, []).append((exact, roster, tally))
        return tally

    # -- revocation -----------------------------------------------------------------------

    def apply_revocations(self, lists: list[_Item]) -> None:
        """Every verified list's entries apply: no list, older or newer, un-revokes. The
        highest sequence must be current; a later list that drops an entry is reported."""
        good: list[_Item] = []
        by_sequence: dict[int, list[_Item]] = defaultdict(list)
        ordered = sorted(lists, key=lambda i: (i.statement.subject["sequence"], i.order))
        for item in ordered:
            by_sequence[item.statement.subject["sequence"]].append(item)
        for seq, claims in by_sequence.items():
            if len({c.digest for c in claims}) > 1:
                self.conflict(claims, "revocation-sequence", f"revocation list sequence {seq}")
        for item in ordered:
            if self.check_issued(item, window=False):
                good.append(item)
        for item in good:  # a list issued after another carries a higher sequence
            st = item.statement
            earlier = [o for o in good if o.statement.issued_at < st.issued_at
                       and o.statement.subject["sequence"] > st.subject["sequence"]]
            if earlier:
                first = min(earlier, key=lambda o: o.order)
                self.fail(item, "revocation-sequence", f"issued {format_time(st.issued_at)} "
                          f"with sequence {st.subject['sequence']}, after list "
                          f"{first.statement.subject['sequence']} ({first.result.name}) "
                          "was issued: sequences only increase")
        for item in good:
            for entry in item.statement.subject["entries"]:
                target = revocation_target(entry)
                seen = self.revoked.get(target)
                if seen is None or entry["revoked_at"] < seen.entry["revoked_at"]:
                    self.revoked[target] = _Revoked(entry, item.statement.subject["sequence"])
        if not good:
            return
        highest = good[-1]
        self.revocation_sequence = highest.statement.subject["sequence"]
        self.window(highest)
        kept = {revocation_target(e) for e in highest.statement.subject["entries"]}
        for target in sorted(set(self.revoked) - kept):
            self.fail(highest, "revocation-cumulative", f"drops {target}, revoked by list "
                      f"{self.revoked[target].sequence}; revocations are never withdrawn")

    def not_revoked(self, item: _Item) -> bool:
        st = item.statement
        if st.type == "revocation-list":
            return True
        targets = [f"serial:{st.serial}", f"keyid:{st.issuer_keyid}"]
        if "key" in st.subject:
            targets.append(f"keyid:{st.subject['key'].keyid}")
        ok = True
        for target in targets:
            hit = self.revoked.get(target)
            if hit is not None and hit.entry["revoked_at"] <= self.at:
                self.fail(item, "not-revoked", f"{target} revoked at "
                          f"{format_time(hit.entry['revoked_at'])} ({hit.entry['reason']}) by "
                          f"revocation list {hit.sequence}")
                ok = False
        return ok

    # -- regional roots and what they sign ------------------------------------------------

    def check_regional_root(self, item: _Item) -> bool:
        st = item.statement
        ok = self.check_issued(item)
        key: PublicKey = st.subject["key"]
        policy = self.policy_at(st.issued_at)
        if policy and key.algorithm.name not in policy["regional_root_algorithms"]:
            self.fail(item, "policy-algorithm", f"{key.algorithm.name} is not a regional-root "
                      "algorithm the fleet policy allows")
            ok = False
        if policy:
            days = (st.not_after - st.not_before).total_seconds() / 86400
            ok = self.violations(item, regional_validity(policy, round(days, 1), "")) and ok
        return ok and item.result.ok

    def trust_regional_roots(self, items: list[_Item]) -> None:
        """Regional roots that verified are trusted, unless two claim one region and version
        (a conflict: neither is trusted). Enclaves assigned to two regions, or at two impact
        levels, are conflicts of the fleet's own statements, reported on each."""
        slots: dict[tuple[str, int], list[_Item]] = defaultdict(list)
        for item in items:
            slots[(item.statement.subject["region"], item.statement.subject["version"])] \
                .append(item)
        trusted: list[_Item] = []
        for (region, version), claims in sorted(slots.items()):
            if len({c.digest for c in claims}) > 1:
                self.conflict(claims, "conflict-regional-root", f"{region} regional root "
                              f"version {version}")
                continue
            trusted.append(claims[0])
        for item in sorted(trusted, key=lambda i: i.order):
            key: PublicKey = item.statement.subject["key"]
            if key.keyid not in self.trusted:
                self.trusted[key.keyid] = _Trusted(key, "regional-root",
                                                   item.statement.subject["region"],
                                                   item.statement)
        owners: dict[str, list[tuple[_Item, dict[str, Any]]]] = defaultdict(list)
        for item in trusted:
            for enclave in item.statement.subject["enclaves"]:
                owners[enclave["trust_domain"]].append((item, enclave))
        for domain, given in sorted(owners.items()):
            regions = {i.statement.subject["region"] for i, e in given
                       if "enclave-bundle" in e["may_sign"]}
            if len(regions) > 1:
                self.contested.add(domain)
                for item, _e in given:
                    self.fail(item, "conflict-enclave-assigned", f"{domain} is assigned to "
                              f"{', '.join(sorted(regions))}: an enclave belongs to one region")
            levels = {e["impact_level"] for _i, e in given}
            if len(levels) > 1:
                self.contested.add(domain)
                for item, _e in given:
                    self.fail(item, "conflict-impact-level", f"{domain} is given as "
                              f"{' and '.join(sorted(levels))} by the regional roots")

    def check_bundles(self, items: list[_Item]) -> None:
        """Two verified bundles for one trust domain and spiffe_sequence are a conflict."""
        slots: dict[tuple[str, int], list[_Item]] = defaultdict(list)
        for item in sorted(items, key=lambda i: i.order):
            if self.check_issued(item):
                st = item.statement
                slots[(st.subject["trust_domain"], st.subject["spiffe_sequence"])].append(item)
        for (domain, sequence), claims in sorted(slots.items()):
            if len({c.digest for c in claims}) > 1:
                self.conflict(claims, "conflict-enclave-bundle", f"{domain} spiffe_sequence "
                              f"{sequence}")

    def check_federation_key(self, item: _Item) -> None:
        """The no-cross-impact-level rule (checked in `regional_rights` against the enclaves
        and levels the signing region's own root was given)."""
        self.check_issued(item)

    def overlays_pin_signed_baselines(self, baselines: list[_Item],
                                      overlays: list[_Item]) -> None:
        signed = {(b.statement.subject["name"], b.statement.subject["sha256"])
                  for b in baselines if b.result.ok}
        for item in overlays:
            pinned = item.statement.subject["baseline"]
            if (pinned["name"], pinned["sha256"]) not in signed:
                self.fail(item, "overlay-baseline", f"tailors {pinned['name']} (sha256 "
                          f"{pinned['sha256'][:16]}...), which is not a verified signed baseline "
                          "among the artifacts")

    def subject_files(self, by_type: dict[str, list[_Item]],
                      files: list[tuple[str, bytes]]) -> list[ArtifactResult]:
        """Files given to check against in-toto subjects: a release file by its name and
        SHA-256; an OSCAL document by `<model>/<uuid>@<version>` and its canonical SHA-256."""
        from pathlib import PurePath

        from writroot.jsonio import loads_strict

        named = [(item, n) for kind in INTOTO_TYPES for item in by_type[kind]
                 for n in (item.statement.subject.get("artifacts") or [item.statement.subject])]
        extra: list[ArtifactResult] = []
        for fname, data in files:
            oscal = _oscal_name(data)
            matched = False
            for item, n in named:
                if n["name"] == PurePath(fname).name:
                    digest = hashlib.sha256(data).hexdigest()
                elif oscal is not None and n["name"] == oscal:
                    digest = hashlib.sha256(canonical(loads_strict(data, fname))).hexdigest()
                else:
                    continue
                matched = True
                if digest != n["sha256"]:
                    self.fail(item, "subject-digest", f"{fname} has sha256 {digest}, the "
                              f"signed subject {n['name']} has {n['sha256']}")
            if not matched:
                result = ArtifactResult(fname, type="subject-file")
                result.findings.append(Finding(fname, "subject-unmatched",
                                               "no signed statement names this file"))
                extra.append(result)
        return extra

    def sequences(self, items: list[_Item]) -> None:
        """Per region, regional-root versions increase with issue time; per trust domain,
        so does spiffe_sequence. (Equal claims are conflicts, reported elsewhere.)"""
        domains: dict[str, list[_Item]] = defaultdict(list)
        regions: dict[str, list[_Item]] = defaultdict(list)
        for item in sorted(items, key=lambda i: i.order):
            st = item.statement
            if not item.result.ok:  # already failing: a sequence finding would be noise
                continue
            if st.type == "enclave-bundle":
                domains[st.subject["trust_domain"]].append(item)
            if st.type == "regional-root":
                regions[st.subject["region"]].append(item)
        for versions in regions.values():
            for before, after in itertools.pairwise(versions):
                if after.statement.subject["version"] < before.statement.subject["version"]:
                    self.fail(after, "regional-version", f"version "
                              f"{after.statement.subject['version']} was certified after "
                              f"version {before.statement.subject['version']}: versions "
                              "only increase")
        for bundles in domains.values():
            for before, after in itertools.pairwise(bundles):
                a = before.statement.subject["spiffe_sequence"]
                b = after.statement.subject["spiffe_sequence"]
                if b < a:
                    self.fail(after, "spiffe-sequence", f"spiffe_sequence {b} does not increase "
                              f"on {a} ({before.result.name}, signed earlier)")


def _genesis_policy(operations: Any) -> dict[str, Any]:
    """Before any policy is in force, a genesis plan's own (for the approvals' lifetime)."""
    for op in operations if isinstance(operations, list) else []:
        if isinstance(op, dict) and op.get("op") == "sign-fleet-root" \
                and isinstance(op.get("policy"), dict):
            return dict(op["policy"])
    return {}


def _exact(obj: Any) -> str:
    """An exact, fast serialisation for cache keys (C json; types are kept apart)."""
    import json

    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _oscal_name(data: bytes) -> str | None:
    """`<model>/<uuid>@<version>` of an OSCAL JSON document, or None."""
    from writroot.jsonio import loads_strict

    try:
        doc = loads_strict(data, "subject")
        (kind, body), = doc.items()
        return f"{kind}/{body['uuid']}@{body['metadata']['version']}"
    except (BadInput, ValueError, AttributeError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class Source:
    """An artifact read only when it is parsed (so a large set is never all in memory):
    its name, the SHA-256 of its bytes, and how to get the bytes."""

    name: str
    digest: str
    load: Callable[[], bytes]


def _sources(given: Iterable[tuple[str, bytes] | Source]) -> list[Source]:
    out = []
    for entry in given:
        if isinstance(entry, Source):
            out.append(entry)
        else:
            name, data = entry
            out.append(Source(name, hashlib.sha256(data).hexdigest(),
                              lambda data=data: data))  # type: ignore[misc]
    return out


def _light(envelope: Envelope) -> Envelope:
    """The envelope without payload and signature bytes: what the core needs once every
    signature result is known (payload type and keyids)."""
    return Envelope(envelope.payload_type, b"",
                    tuple(Signature(s.keyid, b"") for s in envelope.signatures))


@dataclass(frozen=True)
class Parsed:
    """One artifact parsed strictly, as the core parses it (picklable, so a process pool can
    do it): its name, the SHA-256 of its bytes, and the envelope and statement, or the
    one-line reason it is not well formed."""

    name: str
    digest: str
    envelope: Envelope | None = None
    statement: Statement | None = None
    error: str = ""
    derived: Derived | None = None


@dataclass(frozen=True)
class Derived:
    """Per-artifact work done once, where the artifact is parsed: the root its inclusion
    proof leads to ("" when it has none or it cannot be computed: the core computes it and
    reports), and the key that tells equal approvals apart."""

    inclusion_root: str
    approvals: str


def approvals_key(approvals: Any) -> str:
    """Equal exactly (true is not 1) <=> equal keys: SHA-256 of an exact serialisation."""
    return hashlib.sha256(_exact(approvals).encode()).hexdigest()


def _derive(statement: Statement) -> Derived:
    cer = statement.ceremony
    root = ""
    if "inclusion" in cer and "plan" not in cer:
        try:
            root = merkle.inclusion_root(cer["inclusion"]) or ""
        except (WritrootError, KeyError, TypeError, ValueError, AttributeError):
            root = ""
    return Derived(root, approvals_key(cer.get("approvals")))


def parse_artifact(name: str, data: bytes, digest: str = "") -> Parsed:
    """The strict parse of one artifact (envelope, then statement); pure."""
    digest = digest or hashlib.sha256(data).hexdigest()
    try:
        envelope = Envelope.parse(data, name)
        statement = parse_any(envelope.payload_type, envelope.payload, f"{name}: payload")
    except (BadInput, WritrootError) as exc:
        return Parsed(name, digest, error=str(exc))
    return Parsed(name, digest, envelope, statement, derived=_derive(statement))


def _parse(parsed: Parsed, verifier: _Verifier) -> tuple[ArtifactResult, _Item | None]:
    name, envelope, statement = parsed.name, parsed.envelope, parsed.statement
    result = ArtifactResult(name)
    if envelope is None or statement is None:
        result.findings.append(Finding(name, "well-formed", parsed.error, malformed=True))
        return result, None
    result.type, result.serial = statement.type, statement.serial
    result.issuer_keyid = statement.issuer_keyid
    result.statement = statement
    item = _Item(result, envelope, statement, parsed.digest, parsed.derived)
    if envelope.payload and verifier.signatures and not verifier.independent and all(
            (item.digest, s.keyid) in verifier.signatures for s in envelope.signatures):
        item.envelope = _light(envelope)
    if envelope.payload_type != payload_type_for(statement.type):
        verifier.fail(item, "payload-type", f"payloadType {envelope.payload_type!r} does not "
                      f"match the statement type {statement.type!r}")
    return result, item


def _serials_unique(verifier: _Verifier, items: list[_Item]) -> None:
    by_serial: dict[str, list[_Item]] = defaultdict(list)
    for item in items:
        by_serial[item.statement.serial].append(item)
    for serial, claims in by_serial.items():
        for item in claims if len(claims) > 1 else []:
            others = ", ".join(sorted(o.result.name for o in claims if o is not item))
            verifier.fail(item, "serial-unique", f"serial {serial} is also used by {others}")


def verify(artifacts: Iterable[tuple[str, bytes] | Source], anchor: Anchor, at: datetime,
           independent: bool = False,
           revocations: list[tuple[str, bytes]] | None = None,
           subject_files: list[tuple[str, bytes]] | None = None,
           signatures: Mapping[tuple[str, str], bool] | None = None) -> Report:
    """Verify artifacts against the anchor at reference time `at`, applying every revocation
    list given (as `revocations`, or among the artifacts); `subject_files` (release files,
    OSCAL documents) must match the subjects of the in-toto statements that name them.

    The inputs are first put in an order of their own (by name, then content), so the
    answer and the report are the same whatever order they were given in.

    `signatures` are results computed beforehand (`writroot.verify.bulk`, keyed by file
    SHA-256 and keyid); artifacts given as `Source` are read one at a time."""
    given = sorted(_sources([*artifacts, *(revocations or [])]),
                   key=lambda src: (src.name, src.digest))
    parsed = (parse_artifact(src.name, src.load(), src.digest)
              for src in _once(given, lambda src: src.digest))
    return _verify(parsed, anchor, at, independent, revocations, subject_files, signatures)


def verify_parsed(parsed: Iterable[Parsed], anchor: Anchor, at: datetime,
                  revocations: list[tuple[str, bytes]] | None = None,
                  subject_files: list[tuple[str, bytes]] | None = None,
                  signatures: Mapping[tuple[str, str], bool] | None = None) -> Report:
    """`verify` for artifacts already parsed by `parse_artifact` (in a process pool:
    `writroot.verify.bulk`); the same report as `verify` on the same bytes."""
    extra = [parse_artifact(name, data) for name, data in revocations or []]
    given = sorted([*parsed, *extra], key=lambda p: (p.name, p.digest))
    return _verify(_once(given, lambda p: p.digest), anchor, at, False, revocations,
                   subject_files, signatures)


def _once(given: Iterable[_T], digest: Callable[[_T], str]) -> Iterator[_T]:
    """Each file once: the same file given twice (in a directory and by name) is one."""
    seen: set[str] = set()
    for one in given:
        if digest(one) not in seen:
            seen.add(digest(one))
            yield one


def _verify(parsed: Iterable[Parsed], anchor: Anchor, at: datetime, independent: bool,
            revocations: list[tuple[str, bytes]] | None,
            subject_files: list[tuple[str, bytes]] | None,
            signatures: Mapping[tuple[str, str], bool] | None) -> Report:
    return _phases(parsed, anchor, at, independent, revocations, subject_files, signatures)[0]


def _phases(parsed: Iterable[Parsed], anchor: Anchor, at: datetime, independent: bool,
            revocations: list[tuple[str, bytes]] | None,
            subject_files: list[tuple[str, bytes]] | None,
            signatures: Mapping[tuple[str, str], bool] | None) -> tuple[Report, _Verifier]:
    """The phases, over artifacts in their own order, each file once."""
    verifier = _Verifier(anchor, at, independent, signatures=signatures or {})
    results: list[ArtifactResult] = []
    items: list[_Item] = []
    for one in parsed:
        result, item = _parse(one, verifier)
        results.append(result)
        if item is not None:
            items.append(item)
    _serials_unique(verifier, items)
    revocation_names = {name for name, _data in revocations or []}
    for item in items:
        if item.result.name in revocation_names and item.statement.type != "revocation-list":
            verifier.fail(item, "revocation-list", "--revocations takes revocation lists only")
    by_type: dict[str, list[_Item]] = defaultdict(list)
    for item in sorted(items, key=lambda i: i.order):
        by_type[item.statement.type].append(item)
    verifier.establish_anchor(by_type["fleet-root"] + by_type["fleet-rotation"])
    verifier.rotations = by_type["fleet-rotation"]
    fleet_level = by_type["fleet-rotation"] + by_type["roster"]
    for item in sorted(fleet_level, key=lambda i: (i.statement.issued_at, i.statement.type,
                                                   i.order)):
        if item.statement.type == "fleet-rotation":
            verifier.check_rotation(item)
        else:
            verifier.check_roster(item)
    if verifier.current_item is not None and not verifier.window(verifier.current_item):
        verifier.root_expired = True  # only the root in force must be unexpired
    verifier.apply_revocations(by_type["revocation-list"])
    for item in fleet_level + by_type["fleet-root"]:
        verifier.not_revoked(item)
    regional = [i for i in by_type["regional-root"] if verifier.check_regional_root(i)]
    verifier.trust_regional_roots(regional)
    verifier.check_bundles(by_type["enclave-bundle"])
    for item in by_type["federation-key"]:
        verifier.check_federation_key(item)
    for kind in ("oscal-baseline", "release-provenance", "oscal-overlay", "ceremony-record",
                 "witness-policy"):
        for item in by_type[kind]:
            verifier.check_issued(item)
    for item in by_type["approval"]:
        verifier.check_approval(item)
    for item in by_type["enrolment"]:
        verifier.check_enrolment(item)
    for item in by_type["key-request"]:
        verifier.check_key_request(item, by_type["regional-root"])
    verifier.overlays_pin_signed_baselines(by_type["oscal-baseline"], by_type["oscal-overlay"])
    results += verifier.subject_files(by_type, sorted(subject_files or []))
    verifier.sequences(items)
    current = verifier.current.key.keyid if verifier.current else None
    return Report(at, anchor.keyid, independent, results, fleet_root=current,
                  fleet_version=verifier.version or None,
                  revocation_sequence=verifier.revocation_sequence), verifier
