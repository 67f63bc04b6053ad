"""The trust engine's semantics (issue 18, DESIGN §6), each with its hostile case: identity by
canonical payload, conflicts trusting none of their parties, revocations fail-safe, every type
checked (recovery rehearsals), a fault is a finding, revoked custodians' approvals, the same
bytes given twice, and no state left between calls.

Pure verify-core tests with SLH-DSA-SHA2-256f keys in memory."""

from __future__ import annotations

import base64
import gc
import json
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    NOW,
    RawKey,
    custodians,
    enclave_bundle_payload,
    fast_policy,
    genesis_payload,
    jwt_bundle,
    proof,
    raw_key,
    regional_op,
    regional_root_payload,
    revocation_payload,
    roster_json,
    run_cli,
    sign_all,
    sign_raw,
)
from writroot.jsonio import format_time
from writroot.rules import merkle
from writroot.statements import build
from writroot.verify import trust
from writroot.verify.core import Anchor, Report, verify

G = NOW - timedelta(days=1)
C1, C2, E1 = "conus-1.writsov.com", "conus-2.writsov.com", "eucom-1.writsov.com"
BOTH = ["enclave-bundle", "federation-key"]
POLICY = fast_policy()


def h(hours: float) -> datetime:
    return G + timedelta(hours=hours)


def env(payload: bytes, *signers: RawKey) -> bytes:
    return sign_all(payload, *signers).dumps()


def by_name(report: Report) -> dict[str, set[str]]:
    return {r.name: {f.check for f in r.findings} for r in report.results}


def run(blobs: dict[str, bytes], anchor: Anchor, at: datetime = NOW) -> Report:
    return verify(list(blobs.items()), anchor, at)


@dataclass(frozen=True)
class World:
    k0: RawKey
    conus: RawKey
    eucom: RawKey
    rogue: RawKey
    blobs: dict[str, bytes]

    @property
    def anchor(self) -> Anchor:
        return Anchor(self.k0.keyid)


@pytest.fixture(scope="module")
def w() -> World:
    k0, conus, eucom, rogue = raw_key(), raw_key(), raw_key(), raw_key()
    eucom_with_c1 = [{"trust_domain": C1, "impact_level": "IL4", "may_sign": BOTH},
                     {"trust_domain": E1, "impact_level": "IL4", "may_sign": BOTH}]
    blobs = {
        "genesis": env(genesis_payload(k0, POLICY, issued_at=G), k0),
        "genesis-again": env(genesis_payload(k0, POLICY, issued_at=h(1)), k0),
        "reg-CONUS": env(regional_root_payload(k0, conus.key, issued_at=G), k0),
        "reg-CONUS-later": env(regional_root_payload(k0, conus.key, issued_at=h(2)), k0),
        "reg-EUCOM": env(regional_root_payload(k0, eucom.key, issued_at=G, region="EUCOM"), k0),
        "reg-EUCOM-with-C1": env(regional_root_payload(k0, eucom.key, issued_at=G,
                                                       region="EUCOM", enclaves=eucom_with_c1),
                                 k0),
        "bundle-C1": env(enclave_bundle_payload(conus, C1, 5, issued_at=h(2)), conus),
        "bundle-C2": env(enclave_bundle_payload(conus, C2, 5, issued_at=h(2)), conus),
        "bundle-E1": env(enclave_bundle_payload(eucom, E1, 5, issued_at=h(2), region="EUCOM"),
                         eucom),
    }
    return World(k0, conus, eucom, rogue, blobs)


def pick(w: World, *names: str) -> dict[str, bytes]:
    return {n: w.blobs[n] for n in names}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# -- identity by canonical payload (item 5) -------------------------------------------------


def test_reencoded_and_junk_signed_copies_are_the_original(w: World) -> None:
    """A re-indented copy of the fleet-root statement and a bundle with a junk signature
    appended (by its issuer's keyid and by another) are the statements themselves: the same
    findings as the originals alone (none), no serial-unique and no conflict."""
    alone = run(pick(w, "genesis", "reg-CONUS", "bundle-C1"), w.anchor)
    assert alone.ok, alone.findings
    reindented = json.dumps(json.loads(w.blobs["genesis"]), indent=3).encode()
    junk = json.loads(w.blobs["bundle-C1"])
    junk["signatures"] += [{"keyid": w.conus.keyid, "sig": _b64(bytes(8))},
                           {"keyid": w.rogue.keyid, "sig": _b64(b"junk")}]
    for anchor in (w.anchor, Anchor(w.k0.keyid, w.k0.key)):
        both = run({**pick(w, "genesis", "reg-CONUS", "bundle-C1"),
                    "genesis-copy": reindented, "bundle-junk": json.dumps(junk).encode()},
                   anchor)
        assert by_name(both) == {n: set() for n in ("genesis", "reg-CONUS", "bundle-C1",
                                                   "genesis-copy", "bundle-junk")}
        assert (both.fleet_root, both.fleet_version) == (alone.fleet_root, alone.fleet_version)


def test_a_copy_whose_own_signature_is_bad_fails_alone(w: World) -> None:
    """A copy with only a broken signature does not verify as a file, and changes nothing
    for the statement (the original still passes; no conflict)."""
    bad = json.loads(w.blobs["bundle-C1"])
    bad["signatures"] = [{"keyid": w.conus.keyid, "sig": _b64(bytes(8))}]
    report = run({**pick(w, "genesis", "reg-CONUS", "bundle-C1"),
                  "bundle-bad": json.dumps(bad).encode()}, w.anchor)
    assert by_name(report) == {"genesis": set(), "reg-CONUS": set(), "bundle-C1": set(),
                               "bundle-bad": {"signature-valid"}}


def test_a_forged_statement_reusing_a_serial_knocks_nothing_out(w: World) -> None:
    """A different payload with the genuine regional root's serial, not signed by the
    fleet root: it fails its signature; the genuine one keeps its trust (serial-unique and
    conflicts are only between statements that verify)."""
    genuine = json.loads(base64.b64decode(json.loads(w.blobs["reg-CONUS"])["payload"]))
    forged = regional_root_payload(w.k0, w.rogue.key, issued_at=G)
    doc = json.loads(forged)
    doc["serial"] = genuine["serial"]
    from writroot.jsonio import canonical

    forged_env = sign_all(canonical(doc), (w.rogue, w.k0.keyid)).dumps()
    report = run({**pick(w, "genesis", "reg-CONUS", "bundle-C1"), "forged": forged_env},
                 w.anchor)
    assert by_name(report) == {"genesis": set(), "reg-CONUS": set(), "bundle-C1": set(),
                               "forged": {"signature-valid"}}


# -- conflicts trust none of their parties (item 6) -----------------------------------------


def _record(issuer: RawKey, role: str = "regional-root", fleet: str = "testfleet") -> bytes:
    return build("ceremony-record", fleet=fleet, issuer_role=role, issuer_keyid=issuer.keyid,
                 ceremony={"id": "rec", "plan_sha256": "ab" * 32, "approvals": []},
                 subject={"transcript_sha256": "cd" * 32, "entries": 3, "head": "ef" * 32},
                 issued_at=h(3), not_before=h(3), not_after=h(3) + timedelta(days=30),
                 serial="rec.record")


def test_a_regional_root_in_an_enclave_conflict_certifies_nothing(w: World) -> None:
    """CONUS and EUCOM both given conus-1: neither root is trusted, so CONUS's bundle for
    conus-2 and EUCOM's for eucom-1 (enclaves nobody contests) fail too, and so does CONUS's
    ceremony record, each as an upstream finding naming the root."""
    blobs = {**pick(w, "genesis", "reg-CONUS", "reg-EUCOM-with-C1", "bundle-C2",
                    "bundle-E1"), "record": env(_record(w.conus), w.conus)}
    report = run(blobs, w.anchor)
    found = by_name(report)
    assert found["reg-CONUS"] == found["reg-EUCOM-with-C1"] == {"conflict-enclave-assigned"}
    for name, root in (("bundle-C2", "reg-CONUS"), ("bundle-E1", "reg-EUCOM-with-C1"),
                       ("record", "reg-CONUS")):
        (finding,) = [f for f in report.findings if f.artifact == name]
        assert (finding.check, finding.cause) == ("issuer-known", "upstream")
        assert root in finding.message
    established = trust.establish(w.anchor, _parsed(blobs), NOW)
    assert established.authorities == ()
    # Without the rival, the same bundles and record pass.
    assert run({**pick(w, "genesis", "reg-CONUS", "reg-EUCOM", "bundle-C2", "bundle-E1"),
                "record": env(_record(w.conus), w.conus)}, w.anchor).ok


def _parsed(blobs: dict[str, bytes]) -> list[Any]:
    from writroot.verify.core import parse_artifact

    return [parse_artifact(n, b) for n, b in blobs.items()]


def test_revocations_in_conflicting_lists_all_apply(w: World) -> None:
    """Two verified lists with one sequence and other entries: both are flagged, and every
    entry of both applies (fail-safe)."""
    gone = format_time(h(3))
    one = env(revocation_payload(w.k0, 2, [{"serial": _serial(w.blobs["bundle-C1"]),
                                            "reason": "superseded", "revoked_at": gone}],
                                 issued_at=h(4)), w.k0)
    two = env(revocation_payload(w.k0, 2, [{"keyid": w.eucom.keyid,
                                            "reason": "key-compromise", "revoked_at": gone}],
                                 issued_at=h(5)), w.k0)
    blobs = {**pick(w, "genesis", "reg-CONUS", "reg-EUCOM", "bundle-C1", "bundle-E1"),
             "list-a": one, "list-b": two}
    found = by_name(run(blobs, w.anchor))
    assert "revocation-sequence" in found["list-a"] and "revocation-sequence" in found["list-b"]
    assert found["bundle-C1"] == {"not-revoked"}
    assert "not-revoked" in found["reg-EUCOM"] and found["bundle-E1"]
    established = trust.establish(w.anchor, _parsed(blobs), NOW)
    assert established.revoked(f"keyid:{w.eucom.keyid}") is not None
    assert established.revoked(f"serial:{_serial(w.blobs['bundle-C1'])}") is not None


def _serial(blob: bytes) -> str:
    return str(json.loads(base64.b64decode(json.loads(blob)["payload"]))["serial"])


def test_pem_and_fingerprint_anchors_agree_on_a_conflicting_genesis(w: World) -> None:
    blobs = pick(w, "genesis", "genesis-again", "reg-CONUS", "bundle-C1")
    by_keyid = by_name(run(blobs, w.anchor))
    by_pem = by_name(run(blobs, Anchor(w.k0.keyid, w.k0.key)))
    assert by_keyid == by_pem
    assert by_pem["genesis"] == by_pem["genesis-again"] == {"conflict-anchor"}
    assert by_pem["reg-CONUS"] == {"issuer-known"}
    assert trust.establish(Anchor(w.k0.keyid, w.k0.key), _parsed(blobs), NOW).fleet_root is None


# -- every type checked: recovery rehearsals (item 7) ---------------------------------------


def _rehearsal(issuer: RawKey, *, role: str = "fleet-root", fleet: str = "testfleet",
               keyid: str | None = None, at: datetime | None = None) -> bytes:
    at = at or h(6)
    subject = {"split": "s1", "keyid": keyid or issuer.keyid, "threshold": 3, "shares": 5,
               "holders": ["ana", "ben", "cy"], "recovery_sha256": "ab" * 32,
               "result": "restored-and-verified", "token": "SoftHSM2"}
    return build("recovery-rehearsal", fleet=fleet, issuer_role=role,
                 issuer_keyid=issuer.keyid, subject=subject,
                 ceremony={"id": "rehearsal-s1", "plan_sha256": "ab" * 32, "approvals": []},
                 issued_at=at, not_before=at, not_after=at + timedelta(days=3650),
                 serial=f"rehearsal-s1-{at:%Y%m%dT%H%M%SZ}")


def _zero_signed(payload: bytes, keyid: str) -> bytes:
    doc = json.loads(sign_raw(raw_key(), payload).dumps())
    doc["signatures"] = [{"keyid": keyid, "sig": _b64(bytes(8))}]
    return json.dumps(doc).encode()


REHEARSALS: list[tuple[str, Callable[[World], bytes], set[str]]] = [
    ("by the anchor", lambda w: env(_rehearsal(w.k0), w.k0), set()),
    ("by a trusted regional root", lambda w: env(_rehearsal(w.conus, role="regional-root"),
                                                 w.conus), set()),
    ("an 8-byte zero signature", lambda w: _zero_signed(_rehearsal(w.k0), w.k0.keyid),
     {"signature-valid"}),
    ("an unknown key", lambda w: env(_rehearsal(w.rogue), w.rogue), {"issuer-known"}),
    ("another fleet", lambda w: env(_rehearsal(w.k0, fleet="otherfleet"), w.k0),
     {"fleet-matches"}),
    ("names another key than its signer", lambda w: env(_rehearsal(w.k0,
                                                                   keyid=w.conus.keyid), w.k0),
     {"rehearsal-key"}),
    ("a regional key claiming the fleet-root role",
     lambda w: env(_rehearsal(w.conus), w.conus), {"issuer-role"}),
]


@pytest.mark.parametrize(("case", "make", "expected"), REHEARSALS, ids=[r[0] for r in REHEARSALS])
def test_rehearsal_records_are_verified(w: World, case: str, make: Callable[[World], bytes],
                                        expected: set[str]) -> None:
    report = run({**pick(w, "genesis", "reg-CONUS"), "rehearsal": make(w)}, w.anchor)
    result = next(r for r in report.results if r.name == "rehearsal")
    assert {f.check for f in result.findings} == expected, result.findings
    if not expected:
        assert result.checked_by, "OK without a signature check"


def test_a_rehearsal_by_a_revoked_key_fails(w: World) -> None:
    listed = env(revocation_payload(w.k0, 1, [{"keyid": w.conus.keyid,
                                                "reason": "key-compromise",
                                                "revoked_at": format_time(h(5))}],
                                     issued_at=h(5)), w.k0)
    record = env(_rehearsal(w.conus, role="regional-root"), w.conus)
    report = run({**pick(w, "genesis", "reg-CONUS"), "list": listed, "rehearsal": record},
                 w.anchor)
    assert "not-revoked" in by_name(report)["rehearsal"]


# -- a fault is a finding (item 8) ----------------------------------------------------------


def _ill_typed_bundle(w: World) -> bytes:
    """An enclave bundle naming CONUS as issuer whose self-computed inclusion proof holds an
    operation with `validity_days: "x"`."""
    op = {"op": "sign-enclave-bundle", "region": "CONUS", "trust_domain": C1,
          "impact_level": "IL4", "validity_days": "x",
          "bundle": {"path": "b.json", "sha256": "ab" * 32, "size": 1,
                     "canonical_sha256": "ab" * 32, "spiffe_sequence": 7}}
    doc = {"plan": merkle.MERKLE_VERSION, "ceremony": "evil", "fleet": "testfleet",
           "signer": w.conus.keyid,
           "roster": {"path": "roster.yaml", "sha256": "cd" * 32, "size": 1,
                      "roster": roster_json()},
           "fleet_root": {"path": "f", "sha256": "ab" * 32, "size": 1, "keyid": w.k0.keyid,
                          "version": 1},
           "authority": {"path": "a", "sha256": "ab" * 32, "size": 1, "region": "CONUS",
                         "not_after": "2099-01-01T00:00:00Z"},
           "operations": [op], "source": {"x": "y"}}
    bundle = jwt_bundle(7)
    ceremony = {"id": "evil", "plan_sha256": merkle.plan_root(doc), "approvals": [],
                "inclusion": merkle.inclusion(doc, 0)}
    payload = build("enclave-bundle", fleet="testfleet", issuer_role="regional-root",
                    issuer_keyid=w.conus.keyid, ceremony=ceremony,
                    subject={"trust_domain": C1, "region": "CONUS", "impact_level": "IL4",
                             "spiffe_sequence": 7, "bundle": bundle},
                    issued_at=h(3), not_before=h(3), not_after=h(3) + timedelta(days=30),
                    serial="evil.0")
    return payload


def test_an_ill_typed_proof_is_a_finding_and_everything_else_is_judged(w: World) -> None:
    payload = _ill_typed_bundle(w)
    blobs = pick(w, "genesis", "reg-CONUS", "bundle-C2")
    unsigned = _zero_signed(payload, w.conus.keyid)
    found = by_name(run({**blobs, "evil": unsigned}, w.anchor))
    assert found == {"genesis": set(), "reg-CONUS": set(), "bundle-C2": set(),
                     "evil": {"signature-valid"}}  # its proof is not even read
    # Signed by the issuer's own key (a compromised region): a finding, not the end.
    signed = env(payload, w.conus)
    report = run({**blobs, "evil": signed}, w.anchor)
    found = by_name(report)
    assert found["genesis"] == found["reg-CONUS"] == found["bundle-C2"] == set()
    (finding,) = [f for f in report.findings if f.artifact == "evil"]
    assert (finding.check, finding.cause) == ("malformed", "malformed"), finding
    assert "TypeError" in finding.message


# -- revoked custodians (item 4, verify half) -----------------------------------------------


def _approved_by(w: World, approvers: tuple[int, ...]) -> bytes:
    """The CONUS regional root, approved by these test custodians (threshold 2)."""
    op = {**regional_op(w.conus.key, "CONUS", 104), "version": 1}
    ceremony = proof(w.k0.keyid, [op], approvers=approvers, ceremony="reg-by")
    return env(build("regional-root", fleet="testfleet", issuer_role="fleet-root",
                     issuer_keyid=w.k0.keyid, ceremony=ceremony,
                     subject={"region": "CONUS", "key": w.conus.key.to_json(), "version": 1,
                              "may_sign": op["may_sign"], "enclaves": op["enclaves"]},
                     issued_at=h(2), not_before=h(2), not_after=h(2) + timedelta(days=104),
                     serial="reg-by.0"), w.k0)


def test_an_approval_by_a_revoked_custodian_counts_nothing(w: World) -> None:
    """c2's key is revoked (key-compromise) before the regional root is signed: the root's
    proof (c0 and c2 approving, threshold 2) no longer holds, whatever the approval's own
    time says; the same approval given as a binder file fails not-revoked."""
    c2 = custodians()[2]

    def revoking(when: datetime) -> bytes:
        return env(revocation_payload(w.k0, 1, [{"keyid": c2.keyid, "reason": "key-compromise",
                                                 "revoked_at": format_time(when)}],
                                      issued_at=h(3)), w.k0)

    reg = _approved_by(w, (0, 2))
    approval = json.loads(base64.b64decode(json.loads(reg)["payload"]))["ceremony"][
        "approvals"][1]
    early = NOW - timedelta(days=3)  # before c2 approved, before genesis
    blobs = {"genesis": w.blobs["genesis"], "reg": reg, "list": revoking(early),
             "approval": json.dumps(approval).encode()}
    report = run(blobs, w.anchor)
    found = by_name(report)
    assert found["genesis"] == set(), report.findings  # c0 and c1 approved genesis
    assert found["reg"] == {"quorum-proof"}, report.findings
    assert "revoked" in next(f.message for f in report.findings if f.artifact == "reg")
    assert found["approval"] == {"not-revoked"}
    # Revoked after c2 approved but before the root was signed: still not counted.
    assert by_name(run({**blobs, "list": revoking(h(1))}, w.anchor))["reg"] == {"quorum-proof"}
    # Revoked after the statement was signed: the approval counts there.
    assert by_name(run({**blobs, "list": revoking(h(2.5))}, w.anchor))["reg"] == set()


def test_a_revoked_custodian_breaks_the_chain_too(w: World) -> None:
    """The genesis statement's own approvals are counted again once the revocations are
    known: a custodian key revoked before genesis was signed counts nothing there either."""
    c1 = custodians()[1]
    listed = env(revocation_payload(w.k0, 1, [{"keyid": c1.keyid, "reason": "key-compromise",
                                                "revoked_at": format_time(G - timedelta(
                                                    days=3))}], issued_at=h(1)), w.k0)
    found = by_name(run({**pick(w, "genesis"), "list": listed}, w.anchor))
    assert "quorum-proof" in found["genesis"]


# -- duplicates by content (item 9) ---------------------------------------------------------


def test_the_same_list_given_twice_counts_once_whatever_the_spelling(w: World,
                                                                      tmp_path: Path) -> None:
    listed = env(revocation_payload(w.k0, 1, [], issued_at=h(1)), w.k0)
    for name, blob in {**pick(w, "genesis", "reg-CONUS"), "list.dsse.json": listed}.items():
        (tmp_path / (name if name.endswith(".json") else f"{name}.dsse.json")).write_bytes(blob)
    at = format_time(NOW)
    outputs = []
    for spelling in ("list.dsse.json", "./list.dsse.json", str(tmp_path / "list.dsse.json")):
        proc = run_cli("verify", ".", "--anchor", w.k0.keyid, "--revocations", spelling,
                       "--at", at, "--json", "--jobs", "1", cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        outputs.append(json.loads(proc.stdout))
    assert outputs[0] == outputs[1] == outputs[2]
    assert len(outputs[0]["artifacts"]) == 3


# -- no state between calls (item 1) --------------------------------------------------------


def test_verify_leaves_nothing_reachable(w: World) -> None:
    blobs = pick(w, "genesis", "reg-CONUS", "reg-EUCOM", "bundle-C1", "bundle-E1")
    run(blobs, w.anchor)  # warm: imports, engines
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(3):
            run(blobs, w.anchor)
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert grown < 256 * 1024, f"{grown} bytes still reachable after three runs"


# -- plan header pins (item 7) --------------------------------------------------------------


def _regional(w: World, header: dict[str, Any] | None = None) -> bytes:
    op = {**regional_op(w.rogue.key, "CENTCOM", 90, []), "version": 1}
    ceremony = proof(w.k0.keyid, [op], ceremony="pins", header=header)
    return env(build("regional-root", fleet="testfleet", issuer_role="fleet-root",
                     issuer_keyid=w.k0.keyid, ceremony=ceremony,
                     subject={"region": "CENTCOM", "key": w.rogue.key.to_json(), "version": 1,
                              "may_sign": op["may_sign"], "enclaves": []},
                     issued_at=h(2), not_before=h(2), not_after=h(2) + timedelta(days=90),
                     serial="pins.0"), w.k0)


def _fleet_pin(keyid: str, version: int) -> dict[str, Any]:
    return {"path": "fleet-root.dsse.json", "sha256": "ab" * 32, "size": 1, "keyid": keyid,
            "version": version}


def _established(w: World, **over: Any) -> dict[str, Any]:
    return {"established": {"anchor": "cd" * 32, "roster_version": 1,
                            "fleet_root": {"keyid": w.k0.keyid, "version": 1}, **over}}


PINS: list[tuple[str, Callable[[World], dict[str, Any] | None], set[str]]] = [
    ("the fleet root in force", lambda w: None, set()),
    ("another fleet root", lambda w: {"fleet_root": _fleet_pin(w.rogue.keyid, 1)},
     {"plan-header-fleet-root"}),
    ("another version", lambda w: {"fleet_root": _fleet_pin(w.k0.keyid, 2)},
     {"plan-header-fleet-root"}),
    ("established by another anchor (a verifier may pin a later root)",
     lambda w: _established(w), set()),
    ("established names another fleet root",
     lambda w: _established(w, fleet_root={"keyid": w.rogue.keyid, "version": 1}),
     {"plan-header-fleet-root"}),
]


@pytest.mark.parametrize(("case", "header", "expected"), PINS, ids=[p[0] for p in PINS])
def test_plan_header_pins_are_judged(w: World, case: str,
                                     header: Callable[[World], dict[str, Any] | None],
                                     expected: set[str]) -> None:
    report = run({"genesis": w.blobs["genesis"], "reg": _regional(w, header(w))}, w.anchor)
    assert by_name(report)["reg"] == expected, report.findings


def _bundle_with_authority(w: World, region: str, extra: dict[str, Any] | None = None) -> bytes:
    """A CONUS bundle whose plan's authority names `region` (and `extra` members)."""
    from writroot.jsonio import canonical

    payload = json.loads(enclave_bundle_payload(w.conus, C1, 9, issued_at=h(3)))
    plan = payload["ceremony"]["plan"]
    plan["authority"]["region"] = region
    if extra:
        plan.update(extra)
    ceremony = proof(w.conus.keyid, plan["operations"], ceremony=plan["ceremony"],
                     header={k: v for k, v in plan.items() if k in ("authority", "established")})
    payload["ceremony"] = ceremony
    return env(canonical(payload), w.conus)


def test_a_plan_header_naming_another_region_is_a_finding(w: World) -> None:
    base = pick(w, "genesis", "reg-CONUS")
    assert run({**base, "b": _bundle_with_authority(w, "CONUS")}, w.anchor).ok
    found = by_name(run({**base, "b": _bundle_with_authority(w, "EUCOM")}, w.anchor))
    assert found["b"] == {"plan-header-authority"}
    mine = {"region": "CONUS", "version": 1, "keyid": w.conus.keyid}
    good = _established(w, authority=mine)
    assert run({**base, "b": _bundle_with_authority(w, "CONUS", good)}, w.anchor).ok
    for member, value in (("keyid", w.eucom.keyid), ("version", 2), ("region", "EUCOM")):
        bad = _established(w, authority={**mine, member: value})
        found = by_name(run({**base, "b": _bundle_with_authority(w, "CONUS", bad)}, w.anchor))
        assert found["b"] == {"plan-header-authority"}, member


# -- the one entry point: establish ---------------------------------------------------------


def test_establish_reports_what_is_trusted(w: World) -> None:
    from writroot.errors import VerificationFailed

    copy = json.loads(w.blobs["reg-CONUS"])
    copy["signatures"] = [{"keyid": w.k0.keyid, "sig": _b64(bytes(8))}]
    blobs = {**pick(w, "genesis", "reg-CONUS", "reg-EUCOM", "bundle-C1"),
             "reg-CONUS-bad-copy": json.dumps(copy).encode()}
    parsed = {p.name: p for p in _parsed(blobs)}
    established = trust.establish(w.anchor, parsed.values(), NOW)
    assert established.fleet_root == w.k0.key and established.fleet_version == 1
    assert established.roster_version == 1 and established.revocation_sequence is None
    assert [(a.region, a.key) for a in established.authorities] == [
        ("CONUS", w.conus.key), ("EUCOM", w.eucom.key)]
    assert established.authority(w.conus.keyid) is not None
    assert established.require(parsed["bundle-C1"], "bundle").ok
    with pytest.raises(VerificationFailed, match=r"\[signature-valid\]"):
        established.require(parsed["reg-CONUS-bad-copy"], "authority")


# -- judging against the established state in a pool (item 10) -----------------------------


def test_judging_in_a_pool_gives_the_one_process_report(w: World, monkeypatch) -> None:
    """Everything after establishment judged in two forked workers: the same report,
    findings, engines and trust decisions as in one process, hostile inputs included."""
    from writroot.verify import pool
    from writroot.verify.core import parse_artifact, verify_parsed

    bad = json.loads(w.blobs["bundle-C1"])
    bad["signatures"] = [{"keyid": w.conus.keyid, "sig": _b64(bytes(8))}]
    reg = _approved_by(w, (0, 2))
    approval = json.loads(base64.b64decode(json.loads(reg)["payload"]))["ceremony"][
        "approvals"][1]
    blobs = {**pick(w, "genesis", "reg-CONUS", "reg-EUCOM", "bundle-C1", "bundle-C2",
                    "bundle-E1"),
             "bundle-bad-copy": json.dumps(bad).encode(),
             "bundle-C1-again": env(enclave_bundle_payload(w.conus, C1, 5, issued_at=h(3)),
                                    w.conus),
             "evil": env(_ill_typed_bundle(w), w.conus),
             "rehearsal": env(_rehearsal(w.k0), w.k0),
             "rehearsal-zero": _zero_signed(_rehearsal(w.k0), w.k0.keyid),
             "record": env(_record(w.conus), w.conus),
             "approval": json.dumps(approval).encode()}
    parsed = [parse_artifact(n, b) for n, b in sorted(blobs.items())]
    one = verify_parsed(parsed, w.anchor, NOW)
    assert not one.ok and by_name(one)["bundle-C1"] == {"conflict-enclave-bundle"}
    monkeypatch.setattr(pool, "POOL_MIN", 0)
    two = verify_parsed(parsed, w.anchor, NOW, jobs=2)
    assert two.to_json() == one.to_json()


# -- the phases' results are frozen values (item 1) -----------------------------------------


def test_the_phases_results_are_frozen_and_carry_the_decisions(w: World) -> None:
    """What is established is a value: the chain (the root in force, rosters in force with
    their plan-tree leaf), the revocations and the authorities; nothing in it can be
    edited, and later phases read it (the chain decides which fleet roots are trusted)."""
    import dataclasses
    from types import MappingProxyType

    established = trust.establish(w.anchor, _parsed(pick(w, "genesis", "reg-CONUS")), NOW)
    chain = established.chain
    assert chain is not None and chain.holds and not chain.expired
    assert chain.in_force is not None and chain.in_force.key.keyid == w.k0.keyid
    assert chain.trusts(w.k0.keyid) is not None and chain.trusts(w.rogue.keyid) is None
    assert chain.roster_at(NOW) is not None
    assert chain.roster_at(NOW).leaf == merkle.leaf("roster", chain.roster_at(NOW).json).hex()
    assert [a.key.keyid for a in established.authorities] == [w.conus.keyid]
    with pytest.raises(dataclasses.FrozenInstanceError):
        chain.anchor_failed = True  # type: ignore[misc]
    assert isinstance(established.revocation_state.entries, MappingProxyType)

    # Only the root in force must be unexpired: past its window, the chain trusts nothing.
    assert chain.in_force.statement is not None
    late = chain.in_force.statement.not_after + timedelta(days=1)
    expired = trust.establish(w.anchor, _parsed(pick(w, "genesis", "reg-CONUS")), late).chain
    assert expired is not None and expired.expired and expired.trusts(w.k0.keyid) is None
    assert trust.establish(w.anchor, _parsed(pick(w, "genesis")), late).fleet_root is None


def test_the_revocation_step_returns_a_new_chain(w: World) -> None:
    """The chain is judged again once the revocations are known: a list revoking the
    fleet root's key gives a chain naming it revoked, and its statement fails."""
    listed = env(revocation_payload(w.k0, 1, [{"keyid": w.k0.keyid, "reason": "superseded",
                                               "revoked_at": format_time(h(1))}],
                                    issued_at=h(1)), w.k0)
    blobs = {**pick(w, "genesis"), "list": listed}
    chain = trust.establish(w.anchor, _parsed(blobs), NOW).chain
    assert chain is not None and chain.revoked == frozenset({w.k0.keyid})
    assert "not-revoked" in by_name(run(blobs, w.anchor))["genesis"]


def test_judge_against_the_established_state_is_verify_s_judgement(w: World) -> None:
    """`trust.judge(established, item)`: each other artifact judged against the frozen
    established state alone gives the findings `verify` gives it among all the others."""
    base = pick(w, "genesis", "reg-CONUS", "reg-EUCOM")
    others = {**pick(w, "bundle-C1", "bundle-C2", "bundle-E1"),
              "record": env(_record(w.conus), w.conus),
              "rogue-record": env(_record(w.rogue), w.rogue)}
    established = trust.establish(w.anchor, _parsed(base), NOW)
    whole = by_name(run({**base, **others}, w.anchor))
    for one in _parsed(others):
        judged = trust.judge(established, one)
        assert {f.check for f in judged.findings} == whole[one.name], one.name
    assert whole["bundle-C1"] == set() and "issuer-known" in whole["rogue-record"]
    genesis = _parsed(pick(w, "genesis"))[0]
    assert trust.judge(established, genesis).ok  # an establishing statement: its result


def test_a_forged_anchor_statement_distrusts_nothing(w: World) -> None:
    """A copy of the genesis statement with another payload under the genuine signature
    (anyone can make one, no key needed) fails alone; the anchor's genuine statement and
    what it signed still pass, for `verify` and `establish` alike, with either anchor. With
    no genuine statement beside it, nothing of the anchor is trusted."""
    forged = json.loads(w.blobs["genesis"])
    payload = json.loads(base64.b64decode(forged["payload"]))
    payload["subject"]["roster"]["custodians"][0]["name"] = "Mallory"
    forged["payload"] = _b64(json.dumps(payload, sort_keys=True,
                                        separators=(",", ":")).encode())
    blobs = {**pick(w, "genesis", "reg-CONUS", "bundle-C1"),
             "forged": json.dumps(forged).encode()}
    for anchor in (w.anchor, Anchor(w.k0.keyid, w.k0.key)):
        found = by_name(run(blobs, anchor))
        assert "signature-valid" in found.pop("forged")
        assert found == {"genesis": set(), "reg-CONUS": set(), "bundle-C1": set()}
        assert trust.establish(anchor, _parsed(blobs), NOW).fleet_root is not None
    without = by_name(run({k: v for k, v in blobs.items() if k != "genesis"}, w.anchor))
    assert "issuer-known" in without["reg-CONUS"]
