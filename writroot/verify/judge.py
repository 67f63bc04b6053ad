"""Judging statements against what is trusted: issued statements, the ceremony binder
(approvals, enrolments, key requests, recovery rehearsals), bundles and the sequences."""

from __future__ import annotations

import hashlib
import itertools
from collections import defaultdict

from writroot.crypto.keys import PublicKey
from writroot.envelope import INTOTO_TYPES
from writroot.jsonio import canonical, format_time
from writroot.rules.enclaves import bundle_assigned, pairing_allowed
from writroot.rules.rights import region_may_sign, role_may_sign
from writroot.rules.validity import NESTED, approval_lifetime, nested
from writroot.verify.model import Item, Trusted, oscal_name
from writroot.verify.quorum import enclaves_of, quorum_proven
from writroot.verify.report import ArtifactResult, Finding
from writroot.verify.signatures import signature_valid
from writroot.verify.state import Verifier, guarded


@guarded
def check_issued(v: Verifier, item: Item, window: bool = True) -> bool:
    st = item.statement
    ok = v.fleet_matches(item)
    if not role_may_sign(st.issuer_role, st.type):
        v.fail(item, "issuer-authorised",
               f"a {st.issuer_role} may not sign {st.type} statements")
        ok = False
    trusted = v.trusted.get(st.issuer_keyid)
    if trusted is None:
        if ok:  # an issuer that may not sign this type says so already
            v.unknown_issuer(item)
        return False
    if trusted.role == "fleet-root" and not v.chain_trusts(st.issuer_keyid):
        v.fail(item, "issuer-known", "the fleet root in force did not verify (see its "
               "findings)")
        return False
    if trusted.role != st.issuer_role:
        v.fail(item, "issuer-role", f"key {st.issuer_keyid} is a {trusted.role}, "
               f"not a {st.issuer_role}")
        ok = False
    ok = issuer_in_office(v, item, trusted) and ok
    if trusted.role == "regional-root":
        ok = regional_rights(v, item, trusted) and ok
    if trusted.statement is not None and st.type in NESTED:
        ok = v.violations(item, nested(st.not_after, trusted.statement.not_after,
                                       "its issuer")) and ok
    signed = signature_valid(v, item, trusted.key)
    # The record seals a transcript; artifacts carry proof, judged once the signature
    # holds (an unsigned statement's proof is the forger's to shape).
    if signed and st.type != "ceremony-record":
        ok = quorum_proven(v, item, v.roster_at(st.issued_at)) and ok
    ok = signed and ok
    ok = v.not_revoked(item) and ok
    return (v.window(item) if window else True) and ok


def issuer_in_office(v: Verifier, item: Item, trusted: Trusted) -> bool:
    """A fleet root signs only between taking office and its successor doing so; a
    regional root only inside its own validity."""
    st = item.statement
    if trusted.until is not None and st.issued_at > trusted.until:
        v.fail(item, "issuer-superseded", f"issued {format_time(st.issued_at)}, after "
               f"its fleet root was rotated out ({format_time(trusted.until)})")
        return False
    if trusted.since is not None and st.issued_at < trusted.since:
        v.fail(item, "issuer-superseded", f"issued {format_time(st.issued_at)}, before "
               f"its issuer took office ({format_time(trusted.since)})")
        return False
    if trusted.role == "regional-root" and trusted.statement is not None \
            and not trusted.statement.valid_at(st.issued_at):
        v.fail(item, "issuer-valid-when-signed", "issued outside its regional root's "
               "validity")
        return False
    return True


def regional_rights(v: Verifier, item: Item, trusted: Trusted) -> bool:
    st = item.statement
    ok = True
    assert trusted.statement is not None
    region = trusted.region or ""
    if not region_may_sign(trusted.statement.subject["may_sign"], st.type):
        v.fail(item, "issuer-authorised", f"regional root {region} may not "
               f"sign {st.type}")
        ok = False
    if "region" in st.subject and st.subject["region"] != region:
        v.fail(item, "region-matches", f"signed by the {region} regional root "
               f"for region {st.subject['region']}: a region signs only for itself")
        ok = False
    # An enclave in conflict (two regions, or two levels) is trusted to no region.
    domains = [st.subject["trust_domain"]] if st.type == "enclave-bundle" else [
        p["trust_domain"] for p in st.subject.get("pairing") or []]
    enclaves = [e for e in enclaves_of(v, trusted, domains)
                if e["trust_domain"] not in v.contested]
    if st.type == "enclave-bundle":  # the region's right to the enclave, from its root
        ok = v.violations(item, bundle_assigned(
            enclaves, region, st.subject["trust_domain"], st.subject["impact_level"],
            "subject.")) and ok
    if st.type == "federation-key":
        ok = v.violations(item, pairing_allowed(
            enclaves, region, st.subject["pairing"], st.subject.get("cds_route"),
            v.policy_at(st.issued_at) or None, "subject.")) and ok
    return ok

# -- the ceremony binder: approvals, enrolments, key requests -------------------------
# Records of past acts, not artifacts relying parties use: each is checked as what it
# is (no reference-time window; a key revoked before the act makes it fail).


def binder_signer(v: Verifier, item: Item, role: str) -> bool:
    st = item.statement
    ok = v.fleet_matches(item)
    if st.issuer_role != role:
        v.fail(item, "issuer-authorised", f"a {st.issuer_role} may not sign {st.type} "
               "statements")
        ok = False
    hit = v.revoked.get(f"keyid:{st.issuer_keyid}")
    if hit is not None and hit.entry["revoked_at"] <= st.issued_at:
        v.fail(item, "not-revoked", f"signed {format_time(st.issued_at)} by a key "
               f"revoked at {format_time(hit.entry['revoked_at'])} by revocation list "
               f"{hit.sequence}")
        ok = False
    return ok


@guarded
def check_approval(v: Verifier, item: Item) -> None:
    """An approval verifies against the roster in force when it was signed (for genesis
    approvals, signed before the anchor took office: the anchor's own roster)."""
    st = item.statement
    binder_signer(v, item, "custodian")
    in_force = v.roster_at(st.issued_at)
    if in_force is None and v.rosters:
        in_force = min(v.rosters, key=lambda r: (r.since, r.version))
    if in_force is None:
        v.fail(item, "approver-rostered", "the roster in force is unknown: pass the "
               "anchor's fleet-root statement")
        return
    roster = in_force.checked
    custodian = roster.by_keyid(st.issuer_keyid)
    if custodian is None:
        v.fail(item, "approver-rostered", f"signed by {st.issuer_keyid}, not a custodian "
               f"of roster v{roster.version}, in force at {format_time(st.issued_at)}")
        return
    sub = st.subject
    if custodian.id != sub["custodian"]:
        v.fail(item, "approver-rostered", f"claims custodian {sub['custodian']!r} but "
               f"the key is {custodian.id!r}'s")
    if sub["ceremony"] != st.ceremony["id"] or sub["plan_sha256"] != \
            st.ceremony["plan_sha256"]:
        v.fail(item, "approval-plan", "subject.ceremony and subject.plan_sha256 differ "
               "from the header's ceremony")
    policy = v.policy_at(st.issued_at)
    if policy:
        too_long = approval_lifetime(policy, st.not_before, st.not_after)
        if too_long:
            v.fail(item, "approval-lifetime", too_long)
    signature_valid(v, item, custodian.key)


@guarded
def check_enrolment(v: Verifier, item: Item) -> None:
    """Self-signed by the enrolled key, and that custodian (id and key) on a roster
    certified under the anchor."""
    st = item.statement
    ok = binder_signer(v, item, "custodian")
    member = st.subject["custodian"]
    key: PublicKey = member["key"]
    if st.issuer_keyid != key.keyid:
        v.fail(item, "proof-of-possession", "an enrolment is signed by the enrolled "
               f"key {key.keyid}, not {st.issuer_keyid}")
        return
    ok = signature_valid(v, item, key) and ok
    rostered = any(c.id == member["id"] and c.key.keyid == key.keyid
                   for term in v.rosters for c in term.checked.custodians)
    if ok and not rostered:
        v.fail(item, "enrolment-rostered", f"custodian {member['id']!r} with key "
               f"{key.keyid} is on no roster certified under the anchor")


@guarded
def check_key_request(v: Verifier, item: Item, regional: list[Item]) -> None:
    """A key request proves possession: signed by the requested key itself. A regional
    root certifying that key must be for the requested region."""
    st = item.statement
    ok = binder_signer(v, item, "regional-root")
    key: PublicKey = st.subject["key"]
    if st.issuer_keyid != key.keyid:
        v.fail(item, "proof-of-possession", "a key request is signed by the requested "
               f"key {key.keyid}, not {st.issuer_keyid}")
        return
    ok = signature_valid(v, item, key) and ok
    if "log_key" in st.subject:  # the log key's possession: a second signature
        ok = signature_valid(v, item, st.subject["log_key"]) and ok
    for root in regional:
        sub = root.statement.subject
        if ok and sub["key"].keyid == key.keyid and sub["region"] != st.subject["region"]:
            v.fail(item, "request-region", f"requested for {st.subject['region']}, "
                   f"certified for {sub['region']} ({root.result.name})")


@guarded
def check_rehearsal(v: Verifier, item: Item) -> None:
    """A recovery rehearsal record: signed by the key the rehearsal restored (the fleet
    root or a trusted regional root, as its issuer says), which is the key it names,
    for this fleet, by a key not revoked when it was signed. A record of a past act: no
    proof of quorum (the rehearsal is not a ceremony) and no reference-time window."""
    st = item.statement
    binder_signer(v, item, st.issuer_role)
    if not role_may_sign(st.issuer_role, st.type):
        v.fail(item, "issuer-authorised", f"a {st.issuer_role} may not sign {st.type} "
               "statements")
        return
    if st.subject["keyid"] != st.issuer_keyid:
        v.fail(item, "rehearsal-key", f"names the restored key {st.subject['keyid']} "
               f"but is signed as {st.issuer_keyid}: a rehearsal is signed by the key "
               "it restored")
    trusted = v.trusted.get(st.issuer_keyid)
    if trusted is None:
        v.unknown_issuer(item)
        return
    if trusted.role != st.issuer_role:
        v.fail(item, "issuer-role", f"key {st.issuer_keyid} is a {trusted.role}, "
               f"not a {st.issuer_role}")
    if trusted.role == "fleet-root" and not v.chain_trusts(st.issuer_keyid):
        v.fail(item, "issuer-known", "the fleet root in force did not verify (see its "
               "findings)")
        return
    signature_valid(v, item, trusted.key)

# -- proof of quorum ------------------------------------------------------------------


def bundle_conflicts(v: Verifier, passed: list[Item]) -> None:
    """Two verified bundles (that passed `check_issued`) for one trust domain and
    spiffe_sequence, with different payloads, are a conflict."""
    slots: dict[tuple[str, int], list[Item]] = defaultdict(list)
    for item in sorted(passed, key=lambda i: i.order):
        st = item.statement
        slots[(st.subject["trust_domain"], st.subject["spiffe_sequence"])].append(item)
    for (domain, sequence), claims in sorted(slots.items()):
        if len({c.digest for c in claims}) > 1:
            v.conflict(claims, "conflict-enclave-bundle", f"{domain} spiffe_sequence "
                       f"{sequence}")


#: The statements judged against the established state, one at a time (in any order, in
#: any process: each reads the established state and writes only its own result).
LEAF_TYPES = ("enclave-bundle", "federation-key", "oscal-baseline", "release-provenance",
              "oscal-overlay", "ceremony-record", "approval", "enrolment", "key-request",
              "recovery-rehearsal", "witness-policy")


def judge_leaf(v: Verifier, item: Item, regional: list[Item]) -> bool:
    """Judge one statement of LEAF_TYPES; True when a statement checked as issued passed."""
    kind = item.statement.type
    if kind == "approval":
        check_approval(v, item)
    elif kind == "enrolment":
        check_enrolment(v, item)
    elif kind == "key-request":
        check_key_request(v, item, regional)
    elif kind == "recovery-rehearsal":
        check_rehearsal(v, item)
    else:
        return bool(check_issued(v, item))
    return False


def overlays_pin_signed_baselines(v: Verifier, baselines: list[Item],
                                  overlays: list[Item]) -> None:
    signed = {(b.statement.subject["name"], b.statement.subject["sha256"])
              for b in baselines if b.result.ok}
    for item in overlays:
        pinned = item.statement.subject["baseline"]
        if (pinned["name"], pinned["sha256"]) not in signed:
            v.fail(item, "overlay-baseline", f"tailors {pinned['name']} (sha256 "
                   f"{pinned['sha256'][:16]}...), which is not a verified signed baseline "
                   "among the artifacts")


def check_subject_files(v: Verifier, by_type: dict[str, list[Item]],
                        files: list[tuple[str, bytes]]) -> list[ArtifactResult]:
    """Files given to check against in-toto subjects: a release file by its name and
    SHA-256; an OSCAL document by `<model>/<uuid>@<version>` and its canonical SHA-256."""
    from pathlib import PurePath

    from writroot.jsonio import loads_strict

    named = [(item, n) for kind in INTOTO_TYPES for item in by_type[kind]
             for n in (item.statement.subject.get("artifacts") or [item.statement.subject])]
    extra: list[ArtifactResult] = []
    for fname, data in files:
        oscal = oscal_name(data)
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
                v.fail(item, "subject-digest", f"{fname} has sha256 {digest}, the "
                       f"signed subject {n['name']} has {n['sha256']}")
        if not matched:
            result = ArtifactResult(fname, type="subject-file")
            result.findings.append(Finding(fname, "subject-unmatched",
                                           "no signed statement names this file"))
            extra.append(result)
    return extra


def sequences(v: Verifier, items: list[Item]) -> None:
    """Per region, regional-root versions increase with issue time; per trust domain,
    so does spiffe_sequence. (Equal claims are conflicts, reported elsewhere.)"""
    domains: dict[str, list[Item]] = defaultdict(list)
    regions: dict[str, list[Item]] = defaultdict(list)
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
                v.fail(after, "regional-version", f"version "
                       f"{after.statement.subject['version']} was certified after "
                       f"version {before.statement.subject['version']}: versions "
                       "only increase")
    for bundles in domains.values():
        for before, after in itertools.pairwise(bundles):
            a = before.statement.subject["spiffe_sequence"]
            b = after.statement.subject["spiffe_sequence"]
            if b < a:
                v.fail(after, "spiffe-sequence", f"spiffe_sequence {b} does not increase "
                       f"on {a} ({before.result.name}, signed earlier)")
