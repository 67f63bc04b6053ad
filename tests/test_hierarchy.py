"""The trust hierarchy's rules, each both ways: fleet-root rotation, revocation lists, enclave
bundles, federation keys, issuer rights, the proof of quorum's `covers`, and what plan locking
refuses before anything is signed.

Pure verify-core tests with SLH-DSA-SHA2-256f keys in memory (fast_policy allows them); every
key and signature is made once per module where the cases share it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    NOW,
    RawKey,
    enclave,
    enclave_bundle_payload,
    fast_policy,
    federation_key_payload,
    fleet_in_force,
    genesis_payload,
    jwt_bundle,
    key_request,
    raw_key,
    regional_root_payload,
    revocation_payload,
    roster_json,
    rotation_payload,
    run_cli,
    sign_all,
    sign_raw,
)
from writroot.crypto.algorithms import ML_DSA_87
from writroot.crypto.keys import PublicKey
from writroot.errors import BadInput, PolicyRefused, VerificationFailed
from writroot.jsonio import canonical, format_time
from writroot.verify import core
from writroot.verify.core import Anchor, Report, verify

#: The genesis statement's issue time; everything else is placed in hours after it (the
#: conftest proofs' approvals are valid from NOW - 2 days to NOW + 1 day).
G = NOW - timedelta(days=1)

C1, C2, CN, E1 = ("conus-1.writsov.com", "conus-2.writsov.com", "conus-nss-1.writsov.com",
                  "eucom-1.writsov.com")
I1, I2, X1 = "indopac-1.writsov.com", "indopac-2.writsov.com", "centcom-1.writsov.com"
BOTH = ["enclave-bundle", "federation-key"]
#: Enclaves of the regions conftest's TEST_ENCLAVES does not know.
INDOPAC_ENCLAVES = [{"trust_domain": I1, "impact_level": "IL4", "may_sign": BOTH},
                    {"trust_domain": I2, "impact_level": "IL4", "may_sign": BOTH}]
CENTCOM_ENCLAVES = [{"trust_domain": X1, "impact_level": "IL4", "may_sign": BOTH}]
POLICY = {**fast_policy(),
          "cds_routes": [{"id": "cds-1", "between": [C1, CN]},
                         {"id": "cds-2", "between": [C2, E1]}]}


def h(hours: float) -> datetime:
    return G + timedelta(hours=hours)


def checks(report: Report) -> set[str]:
    return {f.check for f in report.findings}


def by_name(report: Report) -> dict[str, set[str]]:
    """Artifacts with findings, and their check names."""
    return {r.name: {f.check for f in r.findings} for r in report.results if r.findings}


def run(blobs: dict[str, bytes], anchor: Anchor, at: datetime = NOW,
        revocations: dict[str, bytes] | None = None) -> Report:
    return verify(list(blobs.items()), anchor, at,
                  revocations=list(revocations.items()) if revocations is not None else None)


def env(payload: bytes, *signers: RawKey | tuple[RawKey, str]) -> bytes:
    return sign_all(payload, *signers).dumps()


@dataclass(frozen=True)
class Keys:
    roots: tuple[RawKey, ...]  # K0 (genesis) .. K4
    rogue: RawKey
    conus: RawKey
    conus_b: RawKey
    eucom: RawKey
    indopac: RawKey
    spare: RawKey
    federation: PublicKey
    nss: RawKey  # the CONUS-NSS regional root


    @property
    def k0(self) -> RawKey:
        return self.roots[0]


@pytest.fixture(scope="module")
def k() -> Keys:
    return Keys(tuple(raw_key() for _ in range(5)), raw_key(), raw_key(), raw_key(), raw_key(),
                raw_key(), raw_key(), raw_key(ML_DSA_87).key, raw_key())


@pytest.fixture(scope="module")
def base(k: Keys) -> dict[str, bytes]:
    """Genesis (K0) and three regional roots; INDOPAC may sign enclave bundles only."""
    return {
        "fleet-root": env(genesis_payload(k.k0, POLICY, issued_at=G), k.k0),
        "regional-CONUS": env(regional_root_payload(k.k0, k.conus.key, issued_at=G,
                                                    serial="reg-conus-1"), k.k0),
        "regional-EUCOM": env(regional_root_payload(k.k0, k.eucom.key, issued_at=G,
                                                    region="EUCOM", serial="reg-eucom-1"), k.k0),
        "regional-INDOPAC": env(regional_root_payload(k.k0, k.indopac.key, issued_at=G,
                                                      region="INDOPAC",
                                                      may_sign=["enclave-bundle"],
                                                      enclaves=INDOPAC_ENCLAVES), k.k0),
    }


def test_base_set_verifies(k: Keys, base) -> None:
    report = run(base, Anchor(k.k0.keyid))
    assert report.ok, report.findings
    assert (report.fleet_root, report.fleet_version) == (k.k0.keyid, 1)
    assert report.revocation_sequence is None


# -- fleet-root rotation: the table ---------------------------------------------------------

@dataclass(frozen=True)
class Step:
    """One fleet-rotation statement: roots[old] -> roots[new] at `version`.

    signed: "both", "old" (new signature missing), "new" (old missing), "forged-old" (a rogue
    signature filed under the old root's keyid, plus the new root's).
    """

    old: int
    new: int
    version: int
    signed: str = "both"
    roster: bool = True  # carries the roster in force
    issuer: str = "old"
    hour: float | None = None  # default: the step's position, in hours after genesis
    max_chain: int | None = None  # the policy it installs (default: the genesis policy's)


def _policy(max_chain: int) -> dict[str, Any]:
    return {**POLICY, "max_rotation_chain": max_chain}


ROTATIONS = [
    # (case, genesis policy max_rotation_chain, steps, expected checks, final root, version)
    ("one rotation", 16, [Step(0, 1, 2)], set(), 1, 2),
    ("old signature missing", 16, [Step(0, 1, 2, "new")], {"signature-present"}, 0, 1),
    ("new signature missing", 16, [Step(0, 1, 2, "old")], {"signature-present"}, 0, 1),
    ("old signature forged", 16, [Step(0, 1, 2, "forged-old")], {"signature-valid"}, 0, 1),
    ("version skips", 16, [Step(0, 1, 3)], {"rotation-version"}, 0, 1),
    ("version repeats", 16, [Step(0, 1, 2), Step(1, 2, 2)], {"rotation-version"}, 1, 2),
    ("version goes back", 16, [Step(0, 1, 2), Step(1, 2, 3), Step(2, 3, 2)],
     {"rotation-version"}, 2, 3),
    ("two rotations, max 2", 2, [Step(0, 1, 2), Step(1, 2, 3)], set(), 2, 3),
    ("three rotations, max 2", 2, [Step(0, 1, 2), Step(1, 2, 3), Step(2, 3, 4)],
     {"rotation-chain-length"}, 2, 3),
    ("three rotations, max 3", 3, [Step(0, 1, 2), Step(1, 2, 3), Step(2, 3, 4)], set(), 3, 4),
    ("four rotations, max 3", 3,
     [Step(0, 1, 2), Step(1, 2, 3), Step(2, 3, 4), Step(3, 4, 5)],
     {"rotation-chain-length"}, 3, 4),
    ("a rotation lowering max_rotation_chain binds later steps", 16,
     [Step(0, 1, 2, max_chain=1), Step(1, 2, 3)], {"rotation-chain-length"}, 1, 2),
    ("fork: a second rotation from the same root", 16, [Step(0, 1, 2), Step(0, 2, 2)],
     {"conflict-rotation"}, 0, 1),
    ("fork, then a step from one branch", 16, [Step(0, 1, 2), Step(0, 2, 2), Step(1, 3, 3)],
     {"conflict-rotation", "rotation-chain"}, 0, 1),
    ("rotation from a root never in the chain", 16, [Step(3, 4, 2)], {"rotation-chain"}, 0, 1),
    ("a step after a rejected one", 16, [Step(0, 1, 2, "new"), Step(1, 2, 3)],
     {"signature-present", "rotation-chain"}, 0, 1),
    ("roster differs from the roster in force", 16, [Step(0, 1, 2, roster=False)],
     {"roster-matches"}, 0, 1),
    ("issued by the new root, not the one it replaces", 16, [Step(0, 1, 2, issuer="new")],
     {"rotation-issuer"}, 0, 1),
    ("issued before the old root took office (no roster was in force either)", 16,
     [Step(0, 1, 2, hour=-1)], {"rotation-chain", "quorum-proof"}, 0, 1),
]


@pytest.fixture(scope="module")
def chain(k: Keys) -> Callable[..., bytes]:
    """Signed statements for the rotation tables, each made once."""
    made: dict[tuple[Any, ...], bytes] = {}

    def genesis(max_chain: int) -> bytes:
        key = ("genesis", max_chain)
        if key not in made:
            made[key] = env(genesis_payload(k.k0, _policy(max_chain), issued_at=G), k.k0)
        return made[key]

    def step(s: Step, position: int, max_chain: int) -> bytes:
        hour = s.hour if s.hour is not None else position + 1
        policy = _policy(s.max_chain or max_chain)
        key = ("step", s, hour, max_chain)
        if key not in made:
            old, new = k.roots[s.old], k.roots[s.new]
            with fleet_in_force(old.keyid, s.old + 1):  # roots[i] is version i + 1
                payload = rotation_payload(
                    old, new, s.version, issued_at=h(hour), policy=policy,
                    roster=None if s.roster else roster_json(threshold=1),
                    issuer_keyid=new.keyid if s.issuer == "new" else None)
            signers: list[RawKey | tuple[RawKey, str]] = {
                "both": [old, new], "old": [old], "new": [new],
                "forged-old": [(k.rogue, old.keyid), new]}[s.signed]
            made[key] = env(payload, *signers)
        return made[key]

    def probe(issuer: int, version: int = 0) -> bytes:
        """A regional root the final root (of this version) certifies after every step."""
        version = version or issuer + 1
        key = ("probe", issuer, version)
        if key not in made:
            with fleet_in_force(k.roots[issuer].keyid, version):
                made[key] = env(regional_root_payload(k.roots[issuer], k.spare.key,
                                                      issued_at=h(10), region="CENTCOM",
                                                      days=90), k.roots[issuer])
        return made[key]

    def build(what: str, *args: Any) -> bytes:
        return {"genesis": genesis, "step": step, "probe": probe}[what](*args)

    return build


@pytest.mark.parametrize(("case", "max_chain", "steps", "expected", "final", "version"),
                         ROTATIONS, ids=[r[0] for r in ROTATIONS])
def test_rotation_table(k: Keys, chain, case, max_chain, steps, expected, final,
                        version) -> None:
    blobs = {"fleet-root": chain("genesis", max_chain)}
    for i, s in enumerate(steps):
        blobs[f"rotation-{i}"] = chain("step", s, i, max_chain)
    blobs["probe"] = chain("probe", final, version)  # the final root is trusted: it signs
    report = run(blobs, Anchor(k.k0.keyid))
    assert checks(report) == expected, report.findings
    assert report.fleet_root == k.roots[final].keyid
    assert report.fleet_version == version
    assert "probe" not in by_name(report)
    assert by_name(report).keys() <= {n for n in blobs if n.startswith("rotation-")}


def test_rotated_out_candidate_is_not_trusted(k: Keys, chain) -> None:
    """A root whose rotation was rejected certifies nothing."""
    blobs = {"fleet-root": chain("genesis", 16),
             "rotation-0": chain("step", Step(0, 1, 2, "new"), 0, 16),
             "probe": chain("probe", 1)}
    report = run(blobs, Anchor(k.k0.keyid))
    assert by_name(report)["probe"] == {"issuer-known"}


def test_chain_hard_cap_applies_whatever_the_policy(k: Keys, chain, monkeypatch) -> None:
    assert core.MAX_CHAIN == 64
    steps = [Step(0, 1, 2), Step(1, 2, 3), Step(2, 3, 4)]
    blobs = {"fleet-root": chain("genesis", 1000)}
    blobs.update({f"rotation-{i}": chain("step", s, i, 1000) for i, s in enumerate(steps)})
    assert run(blobs, Anchor(k.k0.keyid)).ok
    from writroot.verify import chain as chain_phase

    monkeypatch.setattr(chain_phase, "MAX_CHAIN", 2)  # a policy of 1000 is capped by the bound
    report = run(blobs, Anchor(k.k0.keyid))
    assert by_name(report) == {"rotation-2": {"rotation-chain-length"}}
    assert report.fleet_version == 3


# -- pinning the new root directly ----------------------------------------------------------

def test_pinning_the_new_root_uses_its_rotation_as_the_anchor_statement(k: Keys, chain) -> None:
    k1 = k.roots[1]
    blobs = {"rotation-0": chain("step", Step(0, 1, 2), 0, 16), "probe": chain("probe", 1)}
    for anchor in (Anchor(k1.keyid), Anchor(k1.keyid, k1.key)):
        report = run(blobs, anchor)
        assert report.ok, report.findings
        assert (report.fleet_root, report.fleet_version) == (k1.keyid, 2)


def test_pinning_the_new_root_walks_on_from_it(k: Keys, chain) -> None:
    k1, k2 = k.roots[1], k.roots[2]
    blobs = {"rotation-0": chain("step", Step(0, 1, 2), 0, 16),
             "rotation-1": chain("step", Step(1, 2, 3), 1, 16), "probe": chain("probe", 2)}
    report = run(blobs, Anchor(k1.keyid))
    assert report.ok, report.findings
    assert (report.fleet_root, report.fleet_version) == (k2.keyid, 3)


def test_pinned_rotation_still_needs_the_old_roots_signature(k: Keys, chain) -> None:
    k1 = k.roots[1]
    blobs = {"rotation-0": chain("step", Step(0, 1, 2, "new"), 0, 16),
             "probe": chain("probe", 1)}
    report = run(blobs, Anchor(k1.keyid))
    found = by_name(report)
    assert found.keys() == {"rotation-0", "probe"} and "signature-present" in found["rotation-0"]
    assert found["probe"] == {"issuer-known"}
    assert "did not verify" in next(f.message for f in report.findings if f.artifact == "probe")


def test_rotation_with_a_pem_anchor_and_no_genesis_statement_is_a_finding(k: Keys,
                                                                         chain) -> None:
    k0 = k.k0
    report = run({"rotation-0": chain("step", Step(0, 1, 2), 0, 16)}, Anchor(k0.keyid, k0.key))
    assert "quorum-proof" in checks(report)  # the roster in force is unknown


# -- a superseded root: before the rotation its statements stand, after it they do not ------

ROTATED_AT = 6  # hours after genesis

SUPERSEDED = [
    # (case, issuer root index, hours relative to the rotation, expected checks)
    ("old root, before the rotation", 0, -1, set()),
    ("old root, at the rotation instant", 0, 0, set()),
    ("old root, after the rotation", 0, 1, {"issuer-superseded"}),
    ("new root, before it took office", 1, -1, {"issuer-superseded"}),
    ("new root, after the rotation", 1, 1, set()),
]


@pytest.fixture(scope="module")
def rotated(k: Keys, base) -> dict[str, bytes]:
    """The base set after K0 -> K1 at ROTATED_AT, with an enclave bundle CONUS signed after."""
    k0, k1 = k.roots[0], k.roots[1]
    return {**base,
            "rotation": env(rotation_payload(k0, k1, 2, issued_at=h(ROTATED_AT), policy=POLICY),
                            k0, k1),
            "bundle-after": _after_rotation(k, lambda: env(enclave_bundle_payload(
                k.conus, C1, 1, issued_at=h(8)), k.conus))}


def _after_rotation(k: Keys, make: Callable[[], bytes]) -> bytes:
    """Made after K0 -> K1 (version 2): its plan names K1."""
    with fleet_in_force(k.roots[1].keyid, 2):
        return make()


@pytest.mark.parametrize("kind", ["regional-root", "revocation-list"])
@pytest.mark.parametrize(("case", "issuer", "offset", "expected"), SUPERSEDED,
                         ids=[s[0] for s in SUPERSEDED])
def test_statements_of_a_superseded_root(k: Keys, rotated, kind, case, issuer, offset,
                                         expected) -> None:
    root, when = k.roots[issuer], h(ROTATED_AT + offset)
    if kind == "regional-root":
        payload = regional_root_payload(root, k.spare.key, issued_at=when, region="CENTCOM",
                                        days=90)
    else:
        payload = revocation_payload(root, 1, [], issued_at=when)
    report = run({**rotated, "item": env(payload, root)}, Anchor(k.k0.keyid))
    assert by_name(report) == ({"item": expected} if expected else {}), report.findings
    assert (report.fleet_root, report.fleet_version) == (k.roots[1].keyid, 2)
    if kind == "revocation-list" and not expected:
        assert report.revocation_sequence == 1
    if expected:
        message = next(f.message for f in report.findings)
        assert ("after its fleet root was rotated out" if issuer == 0 else
                "before its issuer took office") in message


# -- revocation lists -------------------------------------------------------------------------

CASCADE = None  # fails, whatever the check (it was signed by a revoked key)


@pytest.fixture(scope="module")
def revocation_set(k: Keys, base) -> dict[str, dict[str, bytes]]:
    """The base set plus one enclave bundle per region; and the lists the table combines."""
    k0 = k.k0

    def entry(target: dict[str, str], reason: str, when: datetime) -> dict[str, Any]:
        return {**target, "reason": reason, "revoked_at": format_time(when)}

    eucom = entry({"keyid": k.eucom.keyid}, "key-compromise", h(2))
    eucom_other = {**eucom, "reason": "unspecified"}
    bundle = entry({"serial": "bundle-conus-1.0"}, "superseded", h(2))
    conus_future = entry({"keyid": k.conus.keyid}, "cessation-of-operation",
                         NOW + timedelta(days=1))
    conus_now = entry({"keyid": k.conus.keyid}, "key-compromise", h(2))
    lists = {  # name: (sequence, entries, issued (hours after genesis), validity days)
        "L1": (1, [eucom], 3, 30),
        "L1-empty": (1, [], 3, 30),
        "L1-short": (1, [eucom], 3, 1),  # expired from NOW + 3 h
        "L2": (2, [eucom, bundle], 4, 30),
        "L2-drops": (2, [bundle], 4, 30),
        "L2-other": (2, [eucom_other, bundle], 5, 30),
        "L3-future": (3, [eucom, bundle, conus_future], 5, 30),
        "L3-short": (3, [eucom, bundle], 5, 1),  # expired from NOW + 5 h
        "L-conus": (1, [conus_now], 3, 30),
        "L-serial": (1, [bundle], 3, 30),
    }
    artifacts = {
        **base,
        "bundle-CONUS": env(enclave_bundle_payload(k.conus, C1, 1, issued_at=h(1),
                                                   serial="bundle-conus-1"), k.conus),
        "bundle-EUCOM": env(enclave_bundle_payload(k.eucom, E1, 1, issued_at=h(1),
                                                   region="EUCOM", serial="bundle-eucom-1"),
                            k.eucom),
    }
    signed = {name: env(revocation_payload(k0, seq, entries, issued_at=h(hour), days=days,
                                           serial=f"rev-{name.lower()}"), k0)
              for name, (seq, entries, hour, days) in lists.items()}
    return {"artifacts": artifacts, "lists": signed}


EUCOM_REVOKED = {"regional-EUCOM": {"not-revoked"}, "bundle-EUCOM": CASCADE}
L2_APPLIED = {**EUCOM_REVOKED, "bundle-CONUS": {"not-revoked"}}

REVOCATIONS = [
    # (case, lists in the order given, reference time, expected {artifact: checks}, sequence)
    ("no list", [], NOW, {}, None),
    ("one list", ["L1"], NOW, EUCOM_REVOKED, 1),
    ("given newest first", ["L2", "L1"], NOW, L2_APPLIED, 2),
    ("a later list drops an entry", ["L1", "L2-drops"], NOW,
     {**L2_APPLIED, "L2-drops": {"revocation-cumulative"}}, 2),
    ("an older list cannot un-revoke", ["L2", "L1-empty"], NOW, L2_APPLIED, 2),
    ("same sequence, other contents: a conflict on both lists", ["L2", "L2-other"], NOW,
     {**L2_APPLIED, "L2": {"revocation-sequence"}, "L2-other": {"revocation-sequence"}}, 2),
    ("revoked_at in the future is not yet effective", ["L3-future"], NOW, L2_APPLIED, 3),
    ("revoked_at in the future, once reached", ["L3-future"], NOW + timedelta(days=2),
     {**L2_APPLIED, "regional-CONUS": {"not-revoked"}, "bundle-CONUS": CASCADE}, 3),
    ("the highest list expired", ["L1", "L3-short"], NOW + timedelta(hours=6),
     {**L2_APPLIED, "L3-short": {"validity-window"}}, 3),
    ("an older list expired", ["L1-short", "L2"], NOW + timedelta(hours=4), L2_APPLIED, 2),
    ("revoking a regional root cascades to what it signed", ["L-conus"], NOW,
     {"regional-CONUS": {"not-revoked"}, "bundle-CONUS": CASCADE}, 1),
    ("revoking one serial", ["L-serial"], NOW, {"bundle-CONUS": {"not-revoked"}}, 1),
]


@pytest.mark.parametrize("via", ["revocations", "artifacts"])
@pytest.mark.parametrize(("case", "lists", "at", "expected", "sequence"), REVOCATIONS,
                         ids=[r[0] for r in REVOCATIONS])
def test_revocation_table(k: Keys, revocation_set, via, case, lists, at, expected,
                          sequence) -> None:
    given = {name: revocation_set["lists"][name] for name in lists}
    artifacts = dict(revocation_set["artifacts"])
    if via == "artifacts":
        report = run({**artifacts, **given}, Anchor(k.k0.keyid), at)
    else:
        report = run(artifacts, Anchor(k.k0.keyid), at, revocations=given)
    found = by_name(report)
    assert found.keys() == expected.keys(), report.findings
    for name, want in expected.items():
        if want is not CASCADE:
            assert found[name] == want, (name, report.findings)
    assert report.revocation_sequence == sequence
    for f in report.findings:
        if f.check == "not-revoked":
            assert "revoked at" in f.message and "by revocation list" in f.message


def test_revocations_takes_revocation_lists_only(k: Keys, revocation_set) -> None:
    artifacts = dict(revocation_set["artifacts"])
    bundle = artifacts.pop("bundle-CONUS")
    report = run(artifacts, Anchor(k.k0.keyid), revocations={"bundle-CONUS": bundle})
    assert by_name(report) == {"bundle-CONUS": {"revocation-list"}}


def test_the_same_list_given_twice_counts_once(k: Keys, revocation_set) -> None:
    """In the directory and by --revocations: not a duplicate serial, not two sequences."""
    lists = revocation_set["lists"]
    report = run({**revocation_set["artifacts"], "dir/L2": lists["L2"]}, Anchor(k.k0.keyid),
                 revocations={"L2": lists["L2"]})
    assert by_name(report).keys() == L2_APPLIED.keys(), report.findings
    assert report.revocation_sequence == 2


# -- impact levels, regions and issuer rights: one extra artifact on the base set ------------

def _fed(k: Keys, a: tuple[str, str], b: tuple[str, str], route: str | None = None,
         signer: str = "conus", region: str = "CONUS") -> bytes:
    key = getattr(k, signer) if signer != "k0" else k.k0
    return env(federation_key_payload(key, k.federation, [enclave(*a), enclave(*b)],
                                      issued_at=h(2), region=region, cds_route=route,
                                      role="fleet-root" if signer == "k0" else "regional-root"),
               key)


def _bundle(k: Keys, signer: str = "conus", region: str = "CONUS", td: str = C1,
            **over: Any) -> bytes:
    key = getattr(k, signer) if signer != "k0" else k.k0
    role = "fleet-root" if signer == "k0" else "regional-root"
    return env(enclave_bundle_payload(key, td, 1, issued_at=over.pop("issued_at", h(2)),
                                      region=region, role=role, **over), key)


IL4_C1, IL4_C2, IL5_CN, IL4_CN, IL5_C1, IL4_E1 = (
    (C1, "IL4"), (C2, "IL4"), (CN, "IL5"), (CN, "IL4"), (C1, "IL5"), (E1, "IL4"))

RULES: list[tuple[str, Callable[[Keys], bytes], set[str]]] = [
    # (case, the extra artifact, expected checks on it; everything else stays clean)
    ("federation key, same impact level", lambda k: _fed(k, IL4_C1, IL4_C2), set()),
    ("federation key crossing IL4/IL5 without a CDS route",
     lambda k: _fed(k, IL4_C1, IL5_CN), {"impact-level"}),
    ("federation key crossing IL4/IL5 through a registered route",
     lambda k: _fed(k, IL4_C1, IL5_CN, "cds-1"), set()),
    ("registered route, pairing in the other order",
     lambda k: _fed(k, IL5_CN, IL4_C1, "cds-1"), set()),
    ("crossing through a route not registered",
     lambda k: _fed(k, IL4_C1, IL5_CN, "cds-9"), {"cds-route"}),
    ("crossing through a route registered between other enclaves",
     lambda k: _fed(k, IL4_C2, IL5_CN, "cds-1"), {"cds-route"}),
    ("same level, naming a route not registered",
     lambda k: _fed(k, IL4_C1, IL4_C2, "cds-9"), {"cds-route"}),
    ("same level, through the route registered for these enclaves",
     lambda k: _fed(k, IL4_C2, IL4_E1, "cds-2"), set()),
    ("a pairing calling an IL5 enclave IL4, even through its registered route",
     lambda k: _fed(k, IL4_C1, IL4_CN, "cds-1"), {"impact-level"}),
    ("federation key for an enclave its region was not given",
     lambda k: _fed(k, IL4_C1, (I1, "IL4")), {"enclave-assigned"}),
    ("federation key for another region", lambda k: _fed(k, IL4_C1, IL4_C2, region="EUCOM"),
     {"region-matches"}),
    ("federation key signed by the fleet root", lambda k: _fed(k, IL4_C1, IL4_C2, signer="k0"),
     {"issuer-authorised"}),
    ("federation key outside the regional root's may_sign",
     lambda k: _fed(k, (I1, "IL4"), (I2, "IL4"), signer="indopac", region="INDOPAC"),
     {"issuer-authorised"}),
    ("enclave bundle inside the regional root's may_sign",
     lambda k: _bundle(k, "indopac", "INDOPAC", td=I1), set()),
    ("enclave bundle for an enclave its region was not given",
     lambda k: _bundle(k, "indopac", "INDOPAC"), {"enclave-assigned"}),
    ("enclave bundle for an enclave given for federation keys only",
     lambda k: _bundle(k, td=CN, impact_level="IL5"), {"enclave-assigned"}),
    ("enclave bundle at another level than its region's root gives",
     lambda k: _bundle(k, impact_level="IL5"), {"impact-level"}),
    ("enclave bundle for another region", lambda k: _bundle(k, region="EUCOM"),
     {"region-matches"}),
    ("enclave bundle signed by the fleet root", lambda k: _bundle(k, "k0"),
     {"issuer-authorised"}),
    ("enclave bundle outliving its regional root", lambda k: _bundle(k, days=120),
     {"validity-nested"}),
    ("enclave bundle valid an hour longer than the approved validity_days",
     lambda k: _bundle(k, not_after=h(2) + timedelta(days=30, hours=1)), {"quorum-proof"}),
    ("enclave bundle whose approved plan names another signer",
     lambda k: _bundle(k, plan_signer=k.k0.keyid), {"quorum-proof"}),
    ("regional root certified by a regional root",
     lambda k: env(regional_root_payload(k.conus, k.spare.key, issued_at=h(2), days=90,
                                         role="regional-root"), k.conus),
     {"issuer-authorised"}),
    ("revocation list outliving the fleet root",
     lambda k: env(revocation_payload(k.k0, 1, [], issued_at=h(2), days=600), k.k0),
     {"validity-nested"}),
    ("regional root at the policy's rotation + overlap (104 days)",
     lambda k: env(regional_root_payload(k.k0, k.spare.key, issued_at=h(2), region="CENTCOM",
                                         days=104), k.k0), set()),
    ("regional root over the policy's rotation + overlap (105 days)",
     lambda k: env(regional_root_payload(k.k0, k.spare.key, issued_at=h(2), region="CENTCOM",
                                         days=105), k.k0), {"policy-validity"}),
]


@pytest.mark.parametrize(("case", "make", "expected"), RULES, ids=[r[0] for r in RULES])
def test_rules(k: Keys, base, case, make, expected) -> None:
    report = run({**base, "item": make(k)}, Anchor(k.k0.keyid))
    assert by_name(report) == ({"item": expected} if expected else {}), report.findings


@pytest.mark.parametrize(("hour", "expected"), [(3, {"issuer-valid-when-signed"}), (4, set())],
                         ids=["before its regional root's validity", "from its start"])
def test_signed_inside_the_regional_roots_validity(k: Keys, base, hour, expected) -> None:
    blobs = {**base,
             "regional-CENTCOM": env(regional_root_payload(k.k0, k.spare.key, issued_at=h(4),
                                                           region="CENTCOM", days=90,
                                                           enclaves=CENTCOM_ENCLAVES), k.k0),
             "item": _bundle(k, "spare", "CENTCOM", td=X1, issued_at=h(hour))}
    report = run(blobs, Anchor(k.k0.keyid))
    assert by_name(report) == ({"item": expected} if expected else {}), report.findings


def test_regional_root_cannot_sign_a_revocation_list(k: Keys, base) -> None:
    payload = revocation_payload(k.conus, 1, [{"keyid": k.eucom.keyid, "reason":
                                               "key-compromise", "revoked_at":
                                               format_time(h(1))}],
                                 issued_at=h(2), role="regional-root")
    report = run({**base, "item": env(payload, k.conus)}, Anchor(k.k0.keyid))
    found = by_name(report)
    assert found.keys() == {"item"} and "issuer-authorised" in found["item"]
    assert report.revocation_sequence is None  # and its entries do not apply


def test_federation_key_alone_is_a_finding_not_a_crash(k: Keys) -> None:
    report = run({"item": _fed(k, IL4_C1, IL5_CN, "cds-1")}, Anchor(k.k0.keyid))
    assert "issuer-known" in checks(report)


def test_federation_key_alone_without_a_route(k: Keys) -> None:
    report = run({"item": _fed(k, IL4_C1, IL4_C2)}, Anchor(k.k0.keyid))
    assert checks(report) == {"issuer-known"}


# -- sequences: spiffe_sequence per trust domain, regional-root versions per region ----------

SEQ, CONFLICT = {"spiffe-sequence"}, {"conflict-enclave-bundle"}
SPIFFE: list[tuple[str, list[tuple[str, int, float]], dict[str, set[str]]]] = [
    # (case, bundles as (trust domain, spiffe_sequence, hours after genesis), findings)
    ("increasing", [(C1, 5, 2), (C1, 6, 3)], {}),
    ("repeated: one slot claimed twice, a conflict on both", [(C1, 5, 2), (C1, 5, 3)],
     {"b0": CONFLICT, "b1": CONFLICT}),
    ("the same statement given twice", [(C1, 5, 2), (C1, 5, 2)], {}),
    ("decreasing", [(C1, 6, 2), (C1, 5, 3)], {"b1": SEQ}),
    ("given out of order, increasing by issue time", [(C1, 6, 3), (C1, 5, 2)], {}),
    ("given out of order, decreasing by issue time", [(C1, 5, 3), (C1, 6, 2)], {"b0": SEQ}),
    ("trust domains are independent", [(C1, 5, 2), (C2, 1, 3)], {}),
    ("the middle one regresses", [(C1, 5, 2), (C1, 4, 3), (C1, 7, 4)], {"b1": SEQ}),
]


def test_a_bundle_needs_the_enclave_in_its_regions_own_root(k: Keys, base) -> None:
    """EUCOM cannot take over conus-1, whatever it signs and whenever it claims to: its own
    regional root was not given the enclave. The rule does not depend on which bundle was
    issued first, nor on which are verified together (the old first-signer rule did, and let
    a compromised region claim an enclave by backdating)."""
    own = env(enclave_bundle_payload(k.conus, C1, 5, issued_at=h(2)), k.conus)
    for when in (h(3), h(1)):  # after CONUS's bundle, and backdated before it
        takeover = env(enclave_bundle_payload(k.eucom, C1, 9, issued_at=when, region="EUCOM"),
                       k.eucom)
        alone = run({**base, "takeover": takeover}, Anchor(k.k0.keyid))
        assert by_name(alone) == {"takeover": {"enclave-assigned"}}, alone.findings
        for names in (("own", "takeover"), ("takeover", "own")):  # either sorts first
            blobs = {**base, names[0]: own, names[1]: takeover}
            report = run(blobs, Anchor(k.k0.keyid))
            assert by_name(report) == {names[1]: {"enclave-assigned"}}, report.findings
    genuine = run({**base, "own": own}, Anchor(k.k0.keyid))
    assert genuine.ok, genuine.findings


@pytest.mark.parametrize(("level", "with_bundle", "flagged"), [
    ("IL5", True, False), ("IL4", True, True), ("IL5", False, False), ("IL4", False, True)],
    ids=["as its region's root says", "contradicting its region's root",
         "as its region's root says, no bundle", "contradicting its region's root, no bundle"])
def test_pairing_levels_come_from_the_signing_regions_root(k: Keys, base, level: str,
                                                          with_bundle: bool,
                                                          flagged: bool) -> None:
    """A federation key cannot dodge the IL rule by calling an IL5 enclave IL4: the level is
    the one the CONUS regional root gives conus-nss-1, whether or not that enclave's owner
    (CONUS-NSS) has a signed bundle among the artifacts."""
    blobs = {**base, "fed": _fed(k, IL4_C1, (CN, level), "cds-1")}
    if with_bundle:
        blobs["regional-CONUS-NSS"] = env(regional_root_payload(
            k.k0, k.nss.key, issued_at=G, region="CONUS-NSS", serial="reg-nss-1"), k.k0)
        blobs["bundle"] = env(enclave_bundle_payload(k.nss, CN, 1, issued_at=h(2),
                                                     region="CONUS-NSS", impact_level="IL5"),
                              k.nss)
    report = run(blobs, Anchor(k.k0.keyid))
    assert by_name(report) == ({"fed": {"impact-level"}} if flagged else {}), report.findings


@pytest.fixture(scope="module")
def bundles(k: Keys) -> Callable[[str, int, float], bytes]:
    made: dict[tuple[str, int, float], bytes] = {}

    def make(td: str, seq: int, hour: float) -> bytes:
        if (td, seq, hour) not in made:
            made[td, seq, hour] = env(enclave_bundle_payload(k.conus, td, seq,
                                                             issued_at=h(hour)), k.conus)
        return made[td, seq, hour]

    return make


@pytest.mark.parametrize(("case", "given", "expected"), SPIFFE, ids=[s[0] for s in SPIFFE])
def test_spiffe_sequence(k: Keys, base, bundles, case, given, expected) -> None:
    blobs = {**base, **{f"b{i}": bundles(*b) for i, b in enumerate(given)}}
    report = run(blobs, Anchor(k.k0.keyid))
    assert by_name(report) == expected, report.findings


BOTH_CLAIMS = {"regional-CONUS": {"conflict-regional-root"}, "second": {"conflict-regional-root"}}
VERSIONS: list[tuple[str, str, int, dict[str, set[str]]]] = [
    # (case, the second CONUS regional root: key, version, findings)
    ("another key, the same version: a conflict on both", "conus_b", 1, BOTH_CLAIMS),
    ("another key, the next version", "conus_b", 2, {}),
    ("the same key certified again at the same version: a conflict on both", "conus", 1,
     BOTH_CLAIMS),
    ("a lower version certified later", "conus_b", 0, {"second": {"regional-version"}}),
]


@pytest.mark.parametrize(("case", "key", "version", "expected"), VERSIONS,
                         ids=[v[0] for v in VERSIONS])
def test_regional_version(k: Keys, base, case, key, version, expected) -> None:
    blobs = dict(base)
    if version == 0:  # CONUS v3 first, then v2 after it
        blobs["third"] = env(regional_root_payload(k.k0, k.spare.key, issued_at=h(2),
                                                   version=3, days=90), k.k0)
        version, when = 2, h(3)
    else:
        when = h(2)
    payload = regional_root_payload(k.k0, getattr(k, key).key, issued_at=when,
                                    version=version, days=90)
    report = run({**blobs, "second": env(payload, k.k0)}, Anchor(k.k0.keyid))
    assert by_name(report) == expected, report.findings


# -- proof of quorum: does the approved plan op cover the statement? --------------------------

def _statement_and_plan(payload: bytes) -> tuple[Any, dict[str, Any]]:
    from writroot.statements import parse_payload

    st = parse_payload(payload, "test")
    return st, json.loads(json.dumps(st.ceremony["plan"]))


def _mutate(plan: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Set operations[0].<path> (dotted) in a copy; value DELETE removes the field."""
    out = json.loads(json.dumps(plan))
    node = out["operations"][0]
    *parents, last = path.split(".")
    for p in parents:
        node = node[p]
    if value is DELETE:
        node.pop(last)
    else:
        node[last] = value
    return out


DELETE = object()


@pytest.fixture(scope="module")
def covered(k: Keys) -> dict[str, bytes]:
    """Unsigned payloads of each type (covers() is pure: no signature involved)."""
    k0, k1 = k.roots[0], k.roots[1]
    entries = [{"serial": "x-1", "reason": "superseded", "revoked_at": format_time(h(1))}]
    return {
        "fleet-rotation": rotation_payload(k0, k1, 2, issued_at=h(1), policy=POLICY),
        "revocation-list": revocation_payload(k0, 4, entries, issued_at=h(1)),
        "enclave-bundle": enclave_bundle_payload(k.conus, C1, 7, issued_at=h(1)),
        "federation-key": federation_key_payload(k.conus, k.federation,
                                                 [enclave(*IL4_C1), enclave(*IL5_CN)],
                                                 issued_at=h(1), cds_route="cds-1"),
    }


COVERS = [
    # (statement type, op field (dotted) changed, new value)
    ("fleet-rotation", "validity_days", 499),
    ("fleet-rotation", "algorithm", "SLH-DSA-SHA2-256s"),
    ("fleet-rotation", "version", 3),
    ("fleet-rotation", "policy.max_rotation_chain", 15),
    ("fleet-rotation", "op", "sign-fleet-root"),
    ("revocation-list", "sequence", 5),
    ("revocation-list", "entries", []),
    ("revocation-list", "validity_days", 31),
    ("enclave-bundle", "bundle.canonical_sha256", "00" * 32),
    ("enclave-bundle", "region", "EUCOM"),
    ("enclave-bundle", "trust_domain", C2),
    ("enclave-bundle", "impact_level", "IL5"),
    ("enclave-bundle", "validity_days", 29),
    ("federation-key", "key.keyid", "00" * 32),
    ("federation-key", "pairing", [enclave(*IL5_CN), enclave(*IL4_C1)]),
    ("federation-key", "cds_route", DELETE),
    ("federation-key", "cds_route", "cds-2"),
    ("federation-key", "region", "EUCOM"),
]


@pytest.mark.parametrize(("kind", "path", "value"), COVERS,
                         ids=[f"{c[0]}:{c[1]}={c[2] if c[2] is not DELETE else 'deleted'}"
                              for c in COVERS])
def test_covers_requires_the_exact_operation(covered, kind, path, value) -> None:
    from writroot.rules.covers import covers

    st, plan = _statement_and_plan(covered[kind])
    assert covers(plan, st)
    assert not covers(_mutate(plan, path, value), st)


@pytest.mark.parametrize("kind", ["fleet-rotation", "revocation-list", "enclave-bundle",
                                  "federation-key"])
def test_covers_binds_the_plans_signer(covered, kind) -> None:
    from writroot.rules.covers import covers

    st, plan = _statement_and_plan(covered[kind])
    assert not covers({**plan, "signer": "00" * 32}, st)
    assert not covers({**plan, "operations": []}, st)


def test_covers_fills_revoked_at_with_the_issue_time(k: Keys) -> None:
    """A plan entry without revoked_at means: revoked when the list is signed."""
    from writroot.rules.covers import covers

    entry = {"keyid": k.eucom.keyid, "reason": "key-compromise"}
    at_issue = {**entry, "revoked_at": format_time(h(1))}
    st, plan = _statement_and_plan(revocation_payload(k.k0, 1, [at_issue], issued_at=h(1)))
    assert covers(_mutate(plan, "entries", [entry]), st)
    later = revocation_payload(k.k0, 1, [{**entry, "revoked_at": format_time(h(2))}],
                               issued_at=h(1))
    st_later, _ = _statement_and_plan(later)
    assert not covers(_mutate(plan, "entries", [entry]), st_later)


# -- plan locking: refusals before anything is signed ------------------------------------------

@pytest.fixture(scope="module")
def lock_inputs(k: Keys) -> dict[str, bytes]:
    """Input files a plan names, signed once; written beside each test's plan."""
    k0 = k.k0
    prev_entries = [
        {"serial": "reg-eucom-1", "reason": "superseded", "revoked_at": format_time(h(1))},
        {"keyid": "11" * 32, "reason": "key-compromise", "revoked_at": format_time(h(1))}]
    forged_request = key_request(k.eucom, "EUCOM", when=NOW)
    return {
        "fleet-root.dsse.json": env(genesis_payload(k0, POLICY, issued_at=G), k0),
        "regional-root-CONUS.dsse.json": env(regional_root_payload(k0, k.conus.key,
                                                                   issued_at=G), k0),
        "regional-root-INDOPAC.dsse.json": env(regional_root_payload(
            k0, k.indopac.key, issued_at=G, region="INDOPAC", may_sign=["enclave-bundle"]), k0),
        "bundles/conus-1.json": json.dumps(jwt_bundle(5), indent=2).encode(),
        "bundles/conus-1-next.json": json.dumps(jwt_bundle(6), indent=2).encode(),
        "enclave-bundle-conus-1.dsse.json": env(enclave_bundle_payload(k.conus, C1, 5,
                                                                       issued_at=h(1)), k.conus),
        "federation/conus-1-conus-nss-1.pem": k.federation.pem.encode(),
        "revocation-list-1.dsse.json": env(revocation_payload(k0, 1, prev_entries,
                                                              issued_at=h(1)), k0),
        "revocation-list-rogue.dsse.json": env(revocation_payload(k.rogue, 1, prev_entries,
                                                                  issued_at=h(1)), k.rogue),
        "requests/eucom.json": key_request(k.eucom, "EUCOM", when=NOW).dumps(),
        "requests/conus.json": key_request(k.spare, "CONUS", when=NOW).dumps(),
        "requests/eucom-forged.json": sign_raw(k.rogue, forged_request.payload,
                                               keyid=k.eucom.keyid).dumps(),
    }


@pytest.fixture()
def plandir(tmp_path: Path, lock_inputs) -> Path:
    for name, data in lock_inputs.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    return tmp_path


def _header(signer: str, ceremony: str, authority: bool | str = False,
            fleet_root: bool = True) -> str:
    region = authority if isinstance(authority, str) else "CONUS"
    return (f'plan: 1\nceremony: {ceremony}\nfleet: testfleet\nsigner: "{signer}"\n'
            "roster: fleet-root.dsse.json\n"
            + ("fleet_root: fleet-root.dsse.json\n" if fleet_root else "")
            + (f"authority: regional-root-{region}.dsse.json\n" if authority else "")
            + "operations:\n")


def _lock(plandir: Path, text: str):
    from writroot.ceremony.plan import lock
    from writroot.ceremony.trust import Pinned

    path = plandir / "plan.yaml"
    path.write_text(text)
    return lock(path, NOW, Pinned(_anchor(plandir)))


def _anchor(plandir: Path) -> Anchor:
    """The pinned anchor: the genesis root (K0) that signed the plan's fleet-root input."""
    genesis = json.loads((plandir / "fleet-root.dsse.json").read_text())
    return Anchor(genesis["signatures"][0]["keyid"])


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def _refused(plandir: Path, text: str, error: type[Exception], field: str, needle: str,
             message: str) -> Exception:
    """Locking raises `error` located at plan.yaml:<line of needle>: <field>."""
    with pytest.raises(error) as info:
        _lock(plandir, text)
    exc = info.value
    assert type(exc) is error
    assert exc.where == f"{plandir / 'plan.yaml'}:{_line(text, needle)}: {field}", exc.where
    assert re.search(message, exc.message), exc.message
    return exc


def _federation_plan(k: Keys, pairing: str, route: str | None) -> str:
    return (_header(k.conus.keyid, "conus-federation", authority=True)
            + "  - op: sign-federation-key\n    region: CONUS\n"
            "    key: federation/conus-1-conus-nss-1.pem\n    pairing:\n" + pairing
            + (f"    cds_route: {route}\n" if route else "") + "    validity_days: 30\n")


CROSS = (f"      - {{trust_domain: {C1}, impact_level: IL4}}\n"
         f"      - {{trust_domain: {CN}, impact_level: IL5}}\n")
SAME = (f"      - {{trust_domain: {C1}, impact_level: IL4}}\n"
        f"      - {{trust_domain: {C2}, impact_level: IL4}}\n")


def test_lock_refuses_crossing_impact_levels_without_a_route(k: Keys, plandir) -> None:
    text = _federation_plan(k, CROSS, None)
    exc = _refused(plandir, text, PolicyRefused, "operations[0].pairing", "- {trust_domain",
                   "cross impact levels; name a registered CDS route")
    assert exc.exit_code == 1


def test_lock_refuses_an_unregistered_route(k: Keys, plandir) -> None:
    for route, pairing in (("cds-9", CROSS), ("cds-2", CROSS), ("cds-9", SAME)):
        text = _federation_plan(k, pairing, route)
        _refused(plandir, text, PolicyRefused, "operations[0].cds_route", "cds_route:",
                 f"CDS route '{route}' is not registered")


@pytest.mark.parametrize(("pairing", "route"), [(CROSS, "cds-1"), (SAME, None)],
                         ids=["crossing through a registered route", "same level"])
def test_lock_accepts_federation_keys_within_the_rule(k: Keys, plandir, pairing,
                                                      route) -> None:
    locked = _lock(plandir, _federation_plan(k, pairing, route))
    op = locked.operations[0]
    assert op["key"]["keyid"] == k.federation.keyid
    assert op["key"]["sha256"] == hashlib.sha256(k.federation.pem.encode()).hexdigest()
    assert op.get("cds_route") == route


def test_cli_plan_refusal_exits_1_and_writes_nothing(k: Keys, plandir) -> None:
    text = _federation_plan(k, CROSS, None)
    (plandir / "plan.yaml").write_text(text)
    proc = run_cli("ceremony", "plan", str(plandir / "plan.yaml"), "--anchor", k.k0.keyid)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    where = f"{plandir / 'plan.yaml'}:{_line(text, '- {trust_domain')}: operations[0].pairing"
    assert where in proc.stdout + proc.stderr
    assert not list(plandir.glob("plan.lock*"))


def _bundle_plan(k: Keys, region: str = "CONUS", bundle: str = "bundles/conus-1.json",
                 previous: bool = False) -> str:
    return (_header(k.conus.keyid, "conus-enclaves", authority=True)
            + f"  - op: sign-enclave-bundle\n    region: {region}\n    trust_domain: {C1}\n"
            f"    impact_level: IL4\n    bundle: {bundle}\n    validity_days: 30\n"
            + ("    previous: enclave-bundle-conus-1.dsse.json\n" if previous else ""))


def test_lock_refuses_a_regional_op_for_another_region(k: Keys, plandir) -> None:
    text = _bundle_plan(k, region="EUCOM")
    _refused(plandir, text, PolicyRefused, "operations[0].region", "region: EUCOM",
             "the signer is the CONUS regional root; it does not sign for EUCOM")
    fed = _federation_plan(k, SAME, None).replace("region: CONUS", "region: EUCOM")
    _refused(plandir, fed, PolicyRefused, "operations[0].region", "region: EUCOM",
             "does not sign for EUCOM")


def test_lock_refuses_a_type_outside_the_authoritys_may_sign(k: Keys, plandir) -> None:
    text = (_header(k.indopac.keyid, "indopac-federation", authority="INDOPAC")
            + "  - op: sign-federation-key\n    region: INDOPAC\n"
            "    key: federation/conus-1-conus-nss-1.pem\n    pairing:\n" + SAME
            + "    validity_days: 30\n")
    _refused(plandir, text, PolicyRefused, "operations[0].op", "- op: sign-federation-key",
             "the INDOPAC regional root may not sign federation-key")


def test_lock_refuses_a_spiffe_sequence_that_does_not_increase(k: Keys, plandir) -> None:
    text = _bundle_plan(k, previous=True)  # 5, and the signed previous is 5
    exc = _refused(plandir, text, PolicyRefused, "operations[0].bundle", "    bundle:",
                   r"spiffe_sequence 5 does not increase on the signed 5 \[spiffe-sequence\]")
    assert exc.exit_code == 1


def test_lock_pins_an_increasing_spiffe_sequence(k: Keys, plandir, lock_inputs) -> None:
    locked = _lock(plandir, _bundle_plan(k, bundle="bundles/conus-1-next.json", previous=True))
    op = locked.operations[0]
    assert op["bundle"]["spiffe_sequence"] == 6 and op["previous"]["spiffe_sequence"] == 5
    assert op["bundle"]["canonical_sha256"] == hashlib.sha256(canonical(jwt_bundle(6))
                                                              ).hexdigest()
    assert op["previous"]["sha256"] == hashlib.sha256(
        lock_inputs["enclave-bundle-conus-1.dsse.json"]).hexdigest()


def _revocation_plan(k: Keys, sequence: int, entries: list[str],
                     previous: str = "revocation-list-1.dsse.json") -> str:
    return (_header(k.k0.keyid, "revocation-2")
            + f"  - op: sign-revocation-list\n    sequence: {sequence}\n"
            f"    previous: {previous}\n    validity_days: 30\n    entries:\n"
            + "".join(f"      - {e}\n" for e in entries))


KEEP = ['{serial: reg-eucom-1, reason: superseded}',
        '{keyid: "' + "11" * 32 + '", reason: key-compromise}']


def test_lock_accepts_a_cumulative_list_with_a_higher_sequence(k: Keys, plandir) -> None:
    locked = _lock(plandir, _revocation_plan(
        k, 2, [*KEEP, "{artifact: enclave-bundle-conus-1.dsse.json, revoke: serial, "
               "reason: unspecified}"]))
    op = locked.operations[0]
    assert op["sequence"] == 2 and op["previous"]["sequence"] == 1 and len(op["entries"]) == 3
    assert op["targets"][0]["path"] == "enclave-bundle-conus-1.dsse.json"
    assert op["entries"][2]["serial"] == op["targets"][0]["target"].removeprefix("serial:")


@pytest.mark.parametrize("sequence", [1, 0])
def test_lock_refuses_a_sequence_that_does_not_exceed_the_previous(k: Keys, plandir,
                                                                   sequence) -> None:
    text = _revocation_plan(k, sequence, KEEP)
    if sequence == 0:  # the schema refuses it before the previous list is read
        _refused(plandir, text, BadInput, "operations[0].sequence", "sequence:",
                 "expected an integer from 1")
    else:
        _refused(plandir, text, PolicyRefused, "operations[0].sequence", "sequence:",
                 "sequence 1 does not exceed the previous list's 1")


def test_lock_refuses_a_list_that_drops_an_entry(k: Keys, plandir) -> None:
    text = _revocation_plan(k, 2, KEEP[:1])
    _refused(plandir, text, PolicyRefused, "operations[0].entries", "      - {serial",
             "keyid:" + "11" * 32 + " was revoked by list 1; a later list cannot un-revoke")


def test_lock_refuses_a_previous_list_not_signed_by_the_fleet_root(k: Keys, plandir) -> None:
    text = _revocation_plan(k, 2, KEEP, previous="revocation-list-rogue.dsse.json")
    exc = _refused(plandir, text, VerificationFailed, "operations[0].previous", "previous:",
                   r"does not chain to the pinned anchor .*\[issuer-known\]")
    assert exc.exit_code == 1


def _issuance_plan(k: Keys, request: str, region: str = "EUCOM", days: int = 104) -> str:
    return (_header(k.k0.keyid, "regional-eucom")
            + f"  - op: sign-regional-root\n    region: {region}\n    request: {request}\n"
            f"    validity_days: {days}\n    enclaves:\n"
            f"      - {{trust_domain: {E1}, impact_level: IL4}}\n")


def test_lock_pins_a_key_request_at_the_policy_limit(k: Keys, plandir) -> None:
    locked = _lock(plandir, _issuance_plan(k, "requests/eucom.json"))
    op = locked.operations[0]
    assert op["key"]["keyid"] == k.eucom.keyid and op["validity_days"] == 104
    assert op["version"] == 1 and "request" not in op


def test_lock_refuses_a_request_whose_proof_of_possession_fails(k: Keys, plandir) -> None:
    with pytest.raises(VerificationFailed) as info:
        _lock(plandir, _issuance_plan(k, "requests/eucom-forged.json"))
    assert info.value.where == str(plandir / "requests/eucom-forged.json")
    assert "proof of possession fails" in info.value.message


def test_lock_refuses_a_request_for_another_region(k: Keys, plandir) -> None:
    text = _issuance_plan(k, "requests/conus.json")
    _refused(plandir, text, PolicyRefused, "operations[0].request", "request:",
             "the request is for region CONUS, not EUCOM")


def test_lock_refuses_regional_validity_above_policy(k: Keys, plandir) -> None:
    text = _issuance_plan(k, "requests/eucom.json", days=105)
    _refused(plandir, text, PolicyRefused, "operations[0].validity_days", "validity_days:",
             "valid for 105 days; policy allows regional roots at most 104 "
             r"\[policy-validity\]")


PLAN_SHAPES = [
    ("regional and fleet operations mixed",
     "  - op: sign-regional-root\n    region: EUCOM\n    request: requests/eucom.json\n"
     f"    validity_days: 90\n    enclaves:\n      - {{trust_domain: {E1}, impact_level: IL4}}\n"
     f"  - op: sign-enclave-bundle\n    region: CONUS\n    trust_domain: {C1}\n"
     "    impact_level: IL4\n    bundle: bundles/conus-1.json\n    validity_days: 30\n",
     True, "operations", "  - op:", "not both"),
    ("a rotation with another operation",
     "  - op: rotate-fleet-root\n    label: fleet-root-2\n    algorithm: SLH-DSA-SHA2-256f\n"
     "    validity_days: 500\n"
     "  - op: sign-revocation-list\n    sequence: 1\n    entries: []\n    validity_days: 30\n",
     True, "operations", "  - op:", "a ceremony of its own"),
    ("no fleet_root after genesis",
     "  - op: sign-revocation-list\n    sequence: 1\n    entries: []\n    validity_days: 30\n",
     False, "fleet_root", "plan: 1", "names the fleet root in force"),
]


@pytest.mark.parametrize(("case", "ops", "fleet_root", "field", "needle", "message"),
                         PLAN_SHAPES, ids=[p[0] for p in PLAN_SHAPES])
def test_lock_refuses_plan_shapes(k: Keys, plandir, case, ops, fleet_root, field, needle,
                                  message) -> None:
    text = _header(k.k0.keyid, "shapes", fleet_root=fleet_root) + ops
    _refused(plandir, text, BadInput, field, needle, message)


def test_lock_accepts_a_rotation_alone(k: Keys, plandir) -> None:
    text = (_header(k.k0.keyid, "rotation")
            + "  - op: rotate-fleet-root\n    label: fleet-root-2\n"
            "    algorithm: SLH-DSA-SHA2-256f\n    validity_days: 500\n")
    op = _lock(plandir, text).operations[0]
    assert op["version"] == 2 and op["policy"] == POLICY


# -- issue 9: hostile inputs ------------------------------------------------------------------
#
# (a) Verification is order-free: every slot claimed twice is a conflict on each claimant, in
# whatever order the artifacts are given and whatever they are called.


def order_free(blobs: dict[str, bytes], anchor: Anchor, at: datetime = NOW,
               shuffles: int = 12) -> tuple[dict[str, set[str]], Report]:
    """Verify `blobs` in every order (all permutations of up to four inputs, else the given
    order, its reverse and `shuffles` seeded shuffles), each time under names that sort in
    that order. The (artifact, check) findings and the report's fleet root, version and
    revocation sequence must be identical every time; returns the findings by name."""
    import itertools
    import random

    names = list(blobs)
    if len(names) <= 4:
        orders = [list(p) for p in itertools.permutations(names)]
    else:
        orders = [names, names[::-1]] + [random.Random(seed).sample(names, len(names))
                                         for seed in range(shuffles)]
    answers: set[tuple[Any, ...]] = set()
    first: tuple[dict[str, set[str]], Report] | None = None
    for order in orders:
        renamed = {f"{pos:02d}~{name}": name for pos, name in enumerate(order)}
        report = verify([(new, blobs[old]) for new, old in renamed.items()], anchor, at)
        found = frozenset((renamed[f.artifact], f.check) for f in report.findings)
        answers.add((found, report.fleet_root, report.fleet_version,
                     report.revocation_sequence))
        if first is None:
            named: dict[str, set[str]] = {}
            for name, check in found:
                named.setdefault(name, set()).add(check)
            first = named, report
    assert len(answers) == 1, f"the answer depends on the order: {answers}"
    assert first is not None
    return first


@pytest.fixture(scope="module")
def hostile(k: Keys) -> Callable[[str], bytes]:
    """Named statements for the hostile tables, each signed once."""
    k0, k1, k2, k3 = k.roots[:4]
    eucom_with_c1 = sorted([{"trust_domain": C1, "impact_level": "IL4", "may_sign": BOTH},
                            {"trust_domain": E1, "impact_level": "IL4", "may_sign": BOTH}],
                           key=lambda e: e["trust_domain"])
    eucom_e1_il5 = [{"trust_domain": E1, "impact_level": "IL5", "may_sign": BOTH}]
    makers: dict[str, Callable[[], bytes]] = {
        "genesis": lambda: env(genesis_payload(k0, POLICY, issued_at=G), k0),
        "genesis-again": lambda: env(genesis_payload(k0, POLICY, issued_at=h(1)), k0),
        "rotate-0-1": lambda: env(rotation_payload(k0, k1, 2, issued_at=h(1), policy=POLICY),
                                  k0, k1),
        "rotate-0-2": lambda: env(rotation_payload(k0, k2, 2, issued_at=h(2), policy=POLICY),
                                  k0, k2),
        "rotate-1-3": lambda: env(rotation_payload(k1, k3, 3, issued_at=h(3), policy=POLICY),
                                  k1, k3),
        "reg-CONUS": lambda: env(regional_root_payload(k0, k.conus.key, issued_at=G), k0),
        "reg-CONUS-b": lambda: env(regional_root_payload(k0, k.conus_b.key, issued_at=h(1)), k0),
        "reg-CONUS-v3": lambda: env(regional_root_payload(k0, k.spare.key, issued_at=h(2),
                                                          version=3, days=90), k0),
        "reg-CONUS-v2-later": lambda: env(regional_root_payload(
            k0, k.conus_b.key, issued_at=h(3), version=2, days=90), k0),
        "reg-EUCOM": lambda: env(regional_root_payload(k0, k.eucom.key, issued_at=G,
                                                       region="EUCOM"), k0),
        "reg-EUCOM-with-C1": lambda: env(regional_root_payload(
            k0, k.eucom.key, issued_at=G, region="EUCOM", enclaves=eucom_with_c1), k0),
        "reg-EUCOM-E1-IL5": lambda: env(regional_root_payload(
            k0, k.eucom.key, issued_at=G, region="EUCOM", enclaves=eucom_e1_il5), k0),
        "reg-CONUS-shared": lambda: env(regional_root_payload(k0, k.conus.key, issued_at=G,
                                                              serial="shared"), k0),
        "reg-EUCOM-shared": lambda: env(regional_root_payload(k0, k.eucom.key, issued_at=G,
                                                              region="EUCOM", serial="shared"),
                                        k0),
        "bundle-5": lambda: env(enclave_bundle_payload(k.conus, C1, 5, issued_at=h(2)), k.conus),
        "bundle-5-again": lambda: env(enclave_bundle_payload(k.conus, C1, 5, issued_at=h(3)),
                                      k.conus),
        "bundle-6": lambda: env(enclave_bundle_payload(k.conus, C1, 6, issued_at=h(2)), k.conus),
        "bundle-5-later": lambda: env(enclave_bundle_payload(k.conus, C1, 5, issued_at=h(4)),
                                      k.conus),
        "list-2": lambda: env(revocation_payload(k0, 2, [_entry("11")], issued_at=h(4)), k0),
        "list-2-other": lambda: env(revocation_payload(k0, 2, [_entry("22")], issued_at=h(5)),
                                    k0),
        "list-3": lambda: env(revocation_payload(k0, 3, [], issued_at=h(3)), k0),
        "list-2-after-3": lambda: env(revocation_payload(k0, 2, [], issued_at=h(4)), k0),
    }
    made: dict[str, bytes] = {}

    def get(name: str) -> bytes:
        if name not in made:
            made[name] = makers[name]()
        return made[name]

    return get


def _entry(byte: str) -> dict[str, str]:
    return {"keyid": byte * 32, "reason": "key-compromise", "revoked_at": format_time(h(1))}


def _all(names: tuple[str, ...], check: str) -> dict[str, set[str]]:
    return {name: {check} for name in names}


CONFLICTS: list[tuple[str, tuple[str, ...], dict[str, set[str]]]] = [
    # (case, the artifacts, the findings: exactly these, whatever the order)
    ("two fleet-root statements of the pinned anchor: neither is trusted",
     ("genesis", "genesis-again", "reg-CONUS"),
     {**_all(("genesis", "genesis-again"), "conflict-anchor"), "reg-CONUS": {"issuer-known"}}),
    ("two rotations from one root (a fork): later rotations fail the chain",
     ("genesis", "rotate-0-1", "rotate-0-2", "rotate-1-3"),
     {**_all(("rotate-0-1", "rotate-0-2"), "conflict-rotation"),
      "rotate-1-3": {"rotation-chain"}}),
    ("two regional roots for one region and version",
     ("genesis", "reg-CONUS", "reg-CONUS-b"),
     _all(("reg-CONUS", "reg-CONUS-b"), "conflict-regional-root")),
    ("two bundles for one trust domain and spiffe_sequence",
     ("genesis", "reg-CONUS", "bundle-5", "bundle-5-again"),
     _all(("bundle-5", "bundle-5-again"), "conflict-enclave-bundle")),
    ("two revocation lists with one sequence and other contents (the later one also drops "
     "the earlier one's entry)",
     ("genesis", "list-2", "list-2-other"),
     {"list-2": {"revocation-sequence"},
      "list-2-other": {"revocation-sequence", "revocation-cumulative"}}),
    ("a revocation list issued after another with a higher sequence",
     ("genesis", "list-3", "list-2-after-3"), {"list-2-after-3": {"revocation-sequence"}}),
    ("two statements with one serial",
     ("genesis", "reg-CONUS-shared", "reg-EUCOM-shared"),
     _all(("reg-CONUS-shared", "reg-EUCOM-shared"), "serial-unique")),
    ("one enclave given to two regions",
     ("genesis", "reg-CONUS", "reg-EUCOM-with-C1"),
     _all(("reg-CONUS", "reg-EUCOM-with-C1"), "conflict-enclave-assigned")),
    ("one enclave given at two impact levels",
     ("genesis", "reg-CONUS", "reg-EUCOM-E1-IL5"),
     _all(("reg-CONUS", "reg-EUCOM-E1-IL5"), "conflict-impact-level")),
    ("a lower spiffe_sequence issued later (not a conflict: the later one fails)",
     ("genesis", "reg-CONUS", "bundle-6", "bundle-5-later"),
     {"bundle-5-later": {"spiffe-sequence"}}),
    ("a lower regional version certified later (not a conflict: the later one fails)",
     ("genesis", "reg-CONUS-v3", "reg-CONUS-v2-later"),
     {"reg-CONUS-v2-later": {"regional-version"}}),
]


@pytest.mark.parametrize(("case", "names", "expected"), CONFLICTS, ids=[c[0] for c in CONFLICTS])
def test_conflicts_are_found_on_every_party_in_every_order(k: Keys, hostile, case, names,
                                                           expected) -> None:
    found, report = order_free({name: hostile(name) for name in names}, Anchor(k.k0.keyid))
    assert found == expected, report.findings


def test_a_fork_leaves_the_forking_root_in_force(k: Keys, hostile) -> None:
    """Neither side of a fork is trusted: the chain stays at the root that forked."""
    names = ("genesis", "rotate-0-1", "rotate-0-2")
    _found, report = order_free({n: hostile(n) for n in names}, Anchor(k.k0.keyid))
    assert (report.fleet_root, report.fleet_version) == (k.k0.keyid, 1)


def test_conflicting_regional_roots_certify_nothing(k: Keys, hostile) -> None:
    """A bundle signed by either claimant of a conflicting regional-root slot is not trusted."""
    names = ("genesis", "reg-CONUS", "reg-CONUS-b", "bundle-5")
    found, report = order_free({n: hostile(n) for n in names}, Anchor(k.k0.keyid))
    assert found.keys() == {"reg-CONUS", "reg-CONUS-b", "bundle-5"}, report.findings
    assert "issuer-known" in found["bundle-5"]


@pytest.mark.parametrize(("rival", "item"), [
    ("reg-EUCOM-with-C1", "bundle"), ("reg-EUCOM-E1-IL5", "federation")],
    ids=["conus-1 given to CONUS and EUCOM: CONUS's bundle for it",
         "eucom-1 given as IL4 and IL5: CONUS's federation key naming it"])
def test_an_enclave_in_conflict_is_trusted_to_no_region(k: Keys, hostile, rival,
                                                        item) -> None:
    """`conflict-enclave-assigned` / `conflict-impact-level`: neither regional root's claim
    to the contested enclave is trusted, so what a claimant signs for it does not verify."""
    signed = (hostile("bundle-5") if item == "bundle"
              else _fed(k, IL4_C2, IL4_E1, "cds-2"))
    names = ("genesis", "reg-CONUS", rival)
    found, report = order_free({**{n: hostile(n) for n in names}, "item": signed},
                               Anchor(k.k0.keyid))
    assert {"reg-CONUS", rival} <= found.keys(), report.findings
    assert "item" in found, f"{item} for the contested enclave verified: {report.findings}"


# (b) A compromised EUCOM regional root claims conus-1.


@pytest.fixture(scope="module")
def takeover(k: Keys) -> dict[str, bytes]:
    """EUCOM's key signs bundles for conus-1: claiming EUCOM, claiming CONUS, and backdated
    before CONUS's genuine bundle (with a higher, and with the same, spiffe_sequence)."""
    def forged(seq: int, hour: float, region: str) -> bytes:
        return env(enclave_bundle_payload(k.eucom, C1, seq, issued_at=h(hour), region=region),
                   k.eucom)

    return {
        "genuine": env(enclave_bundle_payload(k.conus, C1, 5, issued_at=h(2)), k.conus),
        "as-EUCOM": forged(9, 3, "EUCOM"),
        "as-CONUS": forged(9, 3, "CONUS"),
        "backdated": forged(9, 1, "EUCOM"),
        "backdated-same-sequence": forged(5, 1, "EUCOM"),
    }


@pytest.mark.parametrize(("forgery", "expected"), [
    ("as-EUCOM", {"enclave-assigned"}),
    ("as-CONUS", {"region-matches", "enclave-assigned"}),
    ("backdated", {"enclave-assigned"}),
])
def test_compromised_region_bundle_for_another_regions_enclave_alone(k: Keys, base, takeover,
                                                                     forgery, expected) -> None:
    report = run({**base, "forged": takeover[forgery]}, Anchor(k.k0.keyid))
    assert by_name(report) == {"forged": expected}, report.findings


@pytest.mark.parametrize("forgery", ["backdated", "backdated-same-sequence"])
def test_backdated_forgery_fails_and_the_genuine_bundle_passes_in_either_order(
        k: Keys, hostile, takeover, forgery) -> None:
    """Backdated before CONUS's bundle, the forgery gains nothing: it fails on its own
    region's root, and (same sequence) knocks nothing out by conflict."""
    blobs = {"genesis": hostile("genesis"), "reg-CONUS": hostile("reg-CONUS"),
             "reg-EUCOM": hostile("reg-EUCOM"), "genuine": takeover["genuine"],
             "forged": takeover[forgery]}
    for names in (("forged", "genuine"), ("genuine", "forged")):  # forged first, then last
        given = [(n, blobs[n]) for n in ("genesis", "reg-CONUS", "reg-EUCOM", *names)]
        report = verify(given, Anchor(k.k0.keyid), NOW)
        assert by_name(report) == {"forged": {"enclave-assigned"}}, report.findings
        assert next(r for r in report.results if r.name == "genuine").ok
    found, _report = order_free(blobs, Anchor(k.k0.keyid))
    assert found == {"forged": {"enclave-assigned"}}


# (c) Federation keys: both ends judged by the signing region's own root.


def test_federation_key_naming_an_enclave_its_region_was_not_given(k: Keys, base) -> None:
    """EUCOM was given eucom-1 only; a pairing with conus-1 is not EUCOM's to certify."""
    fed = _fed(k, IL4_E1, IL4_C1, signer="eucom", region="EUCOM")
    report = run({**base, "fed": fed}, Anchor(k.k0.keyid))
    assert by_name(report) == {"fed": {"enclave-assigned"}}, report.findings
    message = next(f.message for f in report.findings)
    assert "pairing[1].trust_domain" in message and C1 in message


def test_federation_key_claiming_il4_for_an_il5_enclave_without_any_bundle(k: Keys,
                                                                          base) -> None:
    """The CONUS root lists conus-nss-1 as IL5; no bundle is needed to know it."""
    assert not [n for n in base if "bundle" in n]
    fed = _fed(k, IL4_C1, IL4_CN)  # "same level", so no route asked for
    report = run({**base, "fed": fed}, Anchor(k.k0.keyid))
    assert by_name(report) == {"fed": {"impact-level"}}, report.findings
    message = next(f.message for f in report.findings)
    assert "pairing[1].impact_level" in message and "IL5 in the CONUS regional root" in message


# (d) Approvals live no longer than the policy's approval_expiry_hours.


def _approval(cer: dict[str, Any], index: int, hours: float,
              created: datetime = NOW - timedelta(days=2)) -> dict[str, Any]:
    """An approval built by hand (approve() refuses hours above the policy's limit)."""
    from tests.conftest import custodians
    from writroot.statements import build

    custodian = custodians()[index]
    payload = build("approval", fleet="testfleet", issuer_role="custodian",
                    issuer_keyid=custodian.keyid,
                    ceremony={"id": cer["id"], "plan_sha256": cer["plan_sha256"],
                              "approvals": []},
                    subject={"custodian": f"c{index}", "ceremony": cer["id"],
                             "plan_sha256": cer["plan_sha256"]},
                    issued_at=created, not_before=created,
                    not_after=created + timedelta(hours=hours))
    return sign_raw(custodian, payload).to_json()


@pytest.mark.parametrize(("hours", "expected"), [
    ({0: 72, 1: 73}, {"quorum-proof"}),   # one hour over the limit: 1 of 2
    ({0: 72, 1: 240}, {"quorum-proof"}),
    ({0: 72, 1: 72}, set()),              # at the limit: counted
    ({0: 72, 1: 240, 2: 72}, set()),      # the long one is not counted; two others are
])
def test_an_approval_living_longer_than_policy_is_not_counted(k: Keys, hostile, hours,
                                                              expected) -> None:
    from tests.conftest import proof, regional_op, regional_payload

    assert POLICY["approval_expiry_hours"] == 72
    days = 90
    cer = proof(k.k0.keyid, [regional_op(k.spare.key, "CONUS", days)],
                ceremony="long-approval", roster=roster_json(n=3))
    cer = {**cer, "approvals": [_approval(cer, i, n) for i, n in hours.items()]}
    payload = regional_payload(k.k0, k.spare.key, not_before=G,
                               not_after=G + timedelta(days=days), serial="long-approval",
                               ceremony=cer)
    report = run({"genesis": hostile("genesis"), "item": env(payload, k.k0)},
                 Anchor(k.k0.keyid))
    assert by_name(report) == ({"item": expected} if expected else {}), report.findings
    if expected:
        message = next(f.message for f in report.findings)
        assert "1 of 2 approvals hold" in message
        assert f"lives {max(hours.values())} hours; the fleet policy allows approvals 72 " \
               "hours" in message


# (e) An engine that fails is an engine error, not a bad signature.


def test_an_engine_fault_is_an_engine_error_not_a_bad_signature(k: Keys, base,
                                                                monkeypatch) -> None:
    from writroot.crypto import engines
    from writroot.errors import EngineFault

    bundle = _bundle(k)
    assert run({**base, "bundle": bundle}, Anchor(k.k0.keyid)).ok
    engine = engines.verifier_for(k.conus.key.algorithm)
    real = engine.verify

    def failing(alg: Any, public_key: bytes, message: bytes, signature: bytes) -> bool:
        if bytes(public_key) == bytes(k.conus.key.raw):  # only the CONUS root's signatures
            raise EngineFault("the verifier crashed")
        return real(alg, public_key, message, signature)

    monkeypatch.setattr(engine, "verify", failing)
    report = run({**base, "bundle": bundle}, Anchor(k.k0.keyid))
    assert by_name(report) == {"bundle": {"engine-error"}}, report.findings
    finding = next(f for f in report.findings)
    assert "could not check the signature" in finding.message
    assert "the verifier crashed" in finding.message


# (f) The approvals' common window (rules.validity.approval_window), pure.

T0 = datetime(2026, 11, 20, 0, 0, tzinfo=NOW.tzinfo)
#: Two approvals: created T0 (72 h) and T0 + 1 h (49 h): common window T0 + 1 h .. T0 + 50 h.
WINDOWS = [(T0, T0 + timedelta(hours=72)), (T0 + timedelta(hours=1), T0 + timedelta(hours=50))]


@pytest.mark.parametrize(("issued", "inside"), [
    (timedelta(hours=10), True),
    (timedelta(hours=1), True),                    # at the newest creation
    (timedelta(hours=50), True),                   # at the earliest expiry
    (timedelta(minutes=30), False),                # after the first approval, before the newest
    (timedelta(hours=-1), False),                  # before any approval
    (timedelta(hours=50, seconds=1), False),       # after the earliest expiry
    (timedelta(hours=60), False),                  # the later approval still lives: no matter
], ids=["inside", "at the newest creation", "at the earliest expiry",
        "before the newest creation", "before every approval", "just after the earliest expiry",
        "after the earliest expiry, before the latest"])
def test_approval_window(issued: timedelta, inside: bool) -> None:
    from writroot.rules.validity import approval_window

    found = approval_window(T0 + issued, WINDOWS)
    if inside:
        assert found == []
    else:
        assert [(v.rule, v.where) for v in found] == [("approval-window", "issued_at")]
        assert "2026-11-20T01:00:00Z .. 2026-11-22T02:00:00Z" in found[0].message


def test_approval_window_without_approvals_is_silent() -> None:
    from writroot.rules.validity import approval_window

    assert approval_window(T0, []) == []
