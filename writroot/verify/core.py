"""The pure verification core: artifacts, a pinned anchor, revocation lists and a reference
time in, findings out.

No I/O and no clock: the caller passes the bytes and `at`. Every finding is reported, not
only the first; each check is named after the rule it enforces (DESIGN §6). Order matters:
the fleet-root chain and rosters first (in time order), then revocation lists, then regional
roots, then what regional roots sign.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from writroot.ceremony.operations import covers, registered_route
from writroot.crypto import engines
from writroot.crypto.keys import PublicKey
from writroot.envelope import INTOTO_TYPES, Envelope, payload_type_for
from writroot.errors import BadInput, WritrootError
from writroot.jsonio import canonical, format_time
from writroot.quorum.count import Roster, Tally, count
from writroot.statements import (
    RIGHTS,
    Statement,
    crosses_impact_levels,
    parse_any,
    revocation_target,
    roster_check,
)
from writroot.verify.report import ArtifactResult, Finding, Report

__all__ = ["Anchor", "ArtifactResult", "Finding", "Report", "verify"]

#: A hard bound on the rotation chain, whatever a policy says.
MAX_CHAIN = 64
#: Statements whose validity must fit inside their issuer's (nothing breaks at rotation).
NESTED = ("regional-root", "enclave-bundle", "federation-key", "revocation-list", "oscal-overlay")


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
    tallies: dict[tuple[str, datetime], list[tuple[Any, Roster, Tally]]] = field(
        default_factory=dict)

    def fail(self, item: _Item, check: str, message: str) -> None:
        item.result.findings.append(Finding(item.result.name, check, message))

    # -- signatures and windows -----------------------------------------------------------

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
        for item in items:
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
            elif self.current is None or self.current.statement is None:
                self.current = self.trusted[key.keyid] = _Trusted(
                    key, "fleet-root", None, st, since=st.issued_at)
                self.current_item = item
                self.version = st.subject["version"]
                self.fleet = st.fleet
                self.policies = [(st.issued_at, st.subject["policy"])]
                self.rosters = [(st.issued_at, st.subject["roster"]["version"], roster)]
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
        if st.issuer_role not in RIGHTS.get(st.type, ()):
            self.fail(item, "issuer-authorised",
                      f"a {st.issuer_role} may not sign {st.type} statements")
            ok = False
        trusted = self.trusted.get(st.issuer_keyid)
        if trusted is None:
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
        if trusted.statement is not None and st.type in NESTED \
                and st.not_after > trusted.statement.not_after:
            self.fail(item, "validity-nested", f"valid until {format_time(st.not_after)}, "
                      f"after its issuer expires ({format_time(trusted.statement.not_after)})")
            ok = False
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
        if st.type != "ceremony-record" and st.type not in trusted.statement.subject["may_sign"]:
            self.fail(item, "issuer-authorised", f"regional root {trusted.region} may not "
                      f"sign {st.type}")
            ok = False
        if "region" in st.subject and st.subject["region"] != trusted.region:
            self.fail(item, "region-matches", f"signed by the {trusted.region} regional root "
                      f"for region {st.subject['region']}: a region signs only for itself")
            ok = False
        return ok

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
        tally = self.tally(cer, roster, st.issued_at)
        if not tally.met:
            why = "; ".join(f"{a}: {r}" for a, r in tally.rejected) or "none given"
            self.fail(item, "quorum-proof", f"{len(tally.counted)} of {tally.threshold} "
                      f"approvals hold{' under the ' + label if label else ''} ({why})")
            return False
        return True

    def plan_facts(self, claimed: str, plan: dict[str, Any]) -> tuple[str, Roster]:
        """A plan's digest and roster. Every statement of a ceremony carries the same plan:
        an equal plan seen before is not canonicalised again (equality is exact)."""
        exact = _exact(plan)  # json.dumps tells true from 1, unlike ==
        seen = self.plans.get(claimed)
        if seen is not None and seen[0] == exact:
            return seen[1], seen[2]
        digest = hashlib.sha256(canonical(plan)).hexdigest()
        roster = Roster.from_checked(roster_check(plan.get("roster", {}).get("roster"),
                                                  "plan.roster.roster"))
        self.plans[claimed] = (exact, digest, roster)
        return digest, roster

    def tally(self, cer: dict[str, Any], roster: Roster, when: datetime) -> Tally:
        """Count the approvals; the same approvals, roster and time give the same count."""
        key = (cer["plan_sha256"], when)
        exact = _exact(cer["approvals"])
        for approvals, counted_roster, tally in self.tallies.get(key, []):
            if approvals == exact and counted_roster == roster:
                return tally
        named = [(f"approvals[{i}]", a) for i, a in enumerate(cer["approvals"])]
        tally = count(named, roster, cer["id"], cer["plan_sha256"], when)
        self.tallies.setdefault(key, []).append((exact, roster, tally))
        return tally

    # -- revocation -----------------------------------------------------------------------

    def apply_revocations(self, lists: list[_Item]) -> None:
        """Every verified list's entries apply: no list, older or newer, un-revokes. The
        highest sequence must be current; a later list that drops an entry is reported."""
        good: list[_Item] = []
        by_sequence: dict[int, _Item] = {}
        for item in sorted(lists, key=lambda i: i.statement.subject["sequence"]):
            seq = item.statement.subject["sequence"]
            if seq in by_sequence and canonical(by_sequence[seq].statement.document) != \
                    canonical(item.statement.document):
                self.fail(item, "revocation-sequence", f"sequence {seq} is also used by "
                          f"{by_sequence[seq].result.name} with other contents")
            by_sequence.setdefault(seq, item)
            if self.check_issued(item, window=False):
                good.append(item)
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

    def check_regional_root(self, item: _Item) -> None:
        st = item.statement
        ok = self.check_issued(item)
        key: PublicKey = st.subject["key"]
        policy = self.policy_at(st.issued_at)
        if policy and key.algorithm.name not in policy["regional_root_algorithms"]:
            self.fail(item, "policy-algorithm", f"{key.algorithm.name} is not a regional-root "
                      "algorithm the fleet policy allows")
            ok = False
        if policy:
            limit = policy["regional_root_rotation_days"] + policy["regional_overlap_days"]
            days = (st.not_after - st.not_before).total_seconds() / 86400
            if days > limit:
                self.fail(item, "policy-validity", f"valid for {days:.1f} days, policy allows "
                          f"{limit}")
                ok = False
        if ok and item.result.ok and key.keyid not in self.trusted:
            self.trusted[key.keyid] = _Trusted(key, "regional-root", st.subject["region"], st)

    def check_federation_key(self, item: _Item, bundles: list[_Item]) -> None:
        """The no-cross-impact-level rule: IL4 and IL5 pair only through a registered CDS;
        a pairing's impact levels are those the enclaves' own signed bundles state."""
        st = item.statement
        if not self.check_issued(item):
            return
        levels = {b.statement.subject["trust_domain"]: b.statement.subject["impact_level"]
                  for b in sorted(bundles, key=lambda b: b.statement.issued_at) if b.result.ok}
        for side in st.subject["pairing"]:
            known = levels.get(side["trust_domain"])
            if known is not None and known != side["impact_level"]:
                self.fail(item, "impact-level", f"names {side['trust_domain']} as "
                          f"{side['impact_level']}; its signed bundle says {known}")
        pairing = st.subject["pairing"]
        route = st.subject.get("cds_route")
        if crosses_impact_levels(pairing) and route is None:
            a, b = pairing
            self.fail(item, "impact-level", f"{a['trust_domain']} ({a['impact_level']}) and "
                      f"{b['trust_domain']} ({b['impact_level']}) cross impact levels without "
                      "a CDS route")
        elif route is not None and not registered_route(self.policy_at(st.issued_at), route,
                                                        pairing):
            self.fail(item, "impact-level", f"CDS route {route!r} is not registered between "
                      "these enclaves in the fleet policy")

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
        """Per trust domain, spiffe_sequence strictly increases with issue time; per region,
        regional-root versions are distinct."""
        domains: dict[str, list[_Item]] = defaultdict(list)
        regions: dict[tuple[str, int], _Item] = {}
        for item in sorted(items, key=lambda i: i.statement.issued_at):
            st = item.statement
            if not item.result.ok:  # already failing: a sequence finding would be noise
                continue
            if st.type == "enclave-bundle":
                domains[st.subject["trust_domain"]].append(item)
            if st.type == "regional-root":
                slot = (st.subject["region"], st.subject["version"])
                if slot in regions and regions[slot].statement.subject["key"] != \
                        st.subject["key"]:
                    self.fail(item, "regional-version", f"{slot[0]} version {slot[1]} is also "
                              f"certified for another key by {regions[slot].result.name}")
                regions.setdefault(slot, item)
        by_region: dict[str, list[_Item]] = defaultdict(list)
        for (region, _version), item in sorted(regions.items(),
                                               key=lambda kv: kv[1].statement.issued_at):
            by_region[region].append(item)
        for versions in by_region.values():
            for before, after in itertools.pairwise(versions):
                if after.statement.subject["version"] <= before.statement.subject["version"]:
                    self.fail(after, "regional-version", f"version "
                              f"{after.statement.subject['version']} was certified after "
                              f"version {before.statement.subject['version']}: versions "
                              "only increase")
        for domain, bundles in domains.items():
            owners = {b.statement.subject["region"] for b in bundles}
            first = bundles[0].statement.subject["region"]
            for item in bundles:
                if len(owners) > 1 and item.statement.subject["region"] != first:
                    self.fail(item, "trust-domain-region", f"{domain} belongs to {first} "
                              f"(first signed by {bundles[0].result.name}); "
                              f"{item.statement.subject['region']} may not sign its bundle")
            for before, after in itertools.pairwise(bundles):
                a = before.statement.subject["spiffe_sequence"]
                b = after.statement.subject["spiffe_sequence"]
                if b <= a:
                    self.fail(after, "spiffe-sequence", f"spiffe_sequence {b} does not increase "
                              f"on {a} ({before.result.name}, signed earlier)")


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


def _parse(name: str, data: bytes, serials: dict[str, str],
           verifier: _Verifier) -> tuple[ArtifactResult, _Item | None]:
    result = ArtifactResult(name)
    try:
        envelope = Envelope.parse(data, name)
        statement = parse_any(envelope.payload_type, envelope.payload, f"{name}: payload")
    except (BadInput, WritrootError) as exc:
        result.findings.append(Finding(name, "well-formed", str(exc), malformed=True))
        return result, None
    result.type, result.serial = statement.type, statement.serial
    result.issuer_keyid = statement.issuer_keyid
    result.statement = statement
    item = _Item(result, envelope, statement)
    if envelope.payload_type != payload_type_for(statement.type):
        verifier.fail(item, "payload-type", f"payloadType {envelope.payload_type!r} does not "
                      f"match the statement type {statement.type!r}")
    if statement.serial in serials:
        verifier.fail(item, "serial-unique",
                      f"serial {statement.serial} is also used by {serials[statement.serial]}")
    serials.setdefault(statement.serial, name)
    return result, item


def verify(artifacts: list[tuple[str, bytes]], anchor: Anchor, at: datetime,
           independent: bool = False,
           revocations: list[tuple[str, bytes]] | None = None,
           subject_files: list[tuple[str, bytes]] | None = None) -> Report:
    """Verify artifacts against the anchor at reference time `at`, applying every revocation
    list given (as `revocations`, or among the artifacts); `subject_files` (release files,
    OSCAL documents) must match the subjects of the in-toto statements that name them."""
    verifier = _Verifier(anchor, at, independent)
    results: list[ArtifactResult] = []
    items: list[_Item] = []
    serials: dict[str, str] = {}
    seen: set[bytes] = set()
    for name, data in artifacts + (revocations or []):
        if data in seen:  # the same file given twice (say, in a directory and by name)
            continue
        seen.add(data)
        result, item = _parse(name, data, serials, verifier)
        results.append(result)
        if item is not None:
            items.append(item)
    for name, _data in revocations or []:
        bad = [i for i in items if i.result.name == name
               and i.statement.type != "revocation-list"]
        for item in bad:
            verifier.fail(item, "revocation-list", "--revocations takes revocation lists only")
    by_type: dict[str, list[_Item]] = defaultdict(list)
    for item in items:
        by_type[item.statement.type].append(item)
    verifier.establish_anchor(by_type["fleet-root"] + by_type["fleet-rotation"])
    fleet_level = by_type["fleet-rotation"] + by_type["roster"]
    for item in sorted(fleet_level, key=lambda i: (i.statement.issued_at, i.statement.type)):
        if item.statement.type == "fleet-rotation":
            verifier.check_rotation(item)
        else:
            verifier.check_roster(item)
    if verifier.current_item is not None and not verifier.window(verifier.current_item):
        verifier.root_expired = True  # only the root in force must be unexpired
    verifier.apply_revocations(by_type["revocation-list"])
    for item in fleet_level + by_type["fleet-root"]:
        verifier.not_revoked(item)
    for item in sorted(by_type["regional-root"], key=lambda i: i.statement.issued_at):
        verifier.check_regional_root(item)
    for item in by_type["enclave-bundle"]:
        verifier.check_issued(item)
    for item in by_type["federation-key"]:
        verifier.check_federation_key(item, by_type["enclave-bundle"])
    for kind in ("oscal-baseline", "release-provenance", "oscal-overlay",
                 "ceremony-record", "enrolment", "approval", "key-request"):
        for item in by_type[kind]:
            verifier.check_issued(item)
    verifier.overlays_pin_signed_baselines(by_type["oscal-baseline"], by_type["oscal-overlay"])
    results += verifier.subject_files(by_type, subject_files or [])
    verifier.sequences(items)
    current = verifier.current.key.keyid if verifier.current else None
    return Report(at, anchor.keyid, independent, results, fleet_root=current,
                  fleet_version=verifier.version or None,
                  revocation_sequence=verifier.revocation_sequence)
