"""Proofs of quorum by inclusion (docs/format.md §5.10a): the plan digest as a Merkle root,
an artifact carrying its own operation and audit path, and old-style artifacts (the whole
plan) still verifying. Pure verify-core tests with SLH-DSA-SHA2-256f keys in memory."""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import (
    NOW,
    REGIONAL_MAY_SIGN,
    RawKey,
    _Signer,
    custodians,
    fast_policy,
    genesis_payload,
    raw_key,
    regional_op,
    roster_json,
    sign_raw,
    test_enclaves,
)
from writroot.ceremony.approve import approve
from writroot.ceremony.plan import LockedPlan
from writroot.jsonio import canonical
from writroot.rules import merkle
from writroot.statements import build, parse_payload
from writroot.verify.core import Anchor, Report, verify

G = NOW - timedelta(days=1)
REGIONS = ("CONUS", "EUCOM", "CONUS-NSS")


def _hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- the tree itself ----------------------------------------------------------------------------

def test_tree_shapes_are_rfc9162() -> None:
    a, b, c = (merkle.leaf("operation", {"op": n}) for n in "abc")
    assert merkle.mth([]) == hashlib.sha256(b"").digest()
    assert merkle.mth([a]) == a
    assert merkle.mth([a, b, c]) == merkle.node(merkle.node(a, b), c)
    assert a == hashlib.sha256(b"\x00" + b'{"operation":{"op":"a"}}').digest()
    assert merkle.node(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    for n in range(1, 12):
        leaves = [merkle.leaf("operation", {"i": i}) for i in range(n)]
        for i in range(n):
            path = merkle.audit_path(leaves, i)
            assert merkle.root_from_path(leaves[i], i, n, path) == merkle.mth(leaves)
            if n > 1:  # the same path proves nothing at another index or size
                assert merkle.root_from_path(leaves[i], (i + 1) % n, n, path) != \
                    merkle.mth(leaves)


def test_plan_digest_by_version() -> None:
    doc = {"plan": 1, "ceremony": "c", "operations": [{"op": "x"}]}
    assert merkle.plan_digest(doc) == _hex(canonical(doc))
    doc2 = {**doc, "plan": 2, "roster": {"path": "r", "roster": {"v": 1}}, "source": {}}
    ops = merkle.mth([merkle.leaf("operation", {"count": 1, "index": 0,
                                                "operation": {"op": "x"}})])
    header = merkle.leaf("header", {"plan": 2, "ceremony": "c", "roster": {"path": "r"}})
    want = merkle.node(merkle.node(header, merkle.leaf("roster", {"v": 1})),
                       merkle.node(merkle.leaf("source", {}), ops))
    assert merkle.plan_digest(doc2) == want.hex()
    proof = merkle.inclusion(doc2, 0)
    assert merkle.inclusion_root(proof) == want.hex()


# -- artifacts ------------------------------------------------------------------------------------

@dataclass
class World:
    fleet: RawKey
    regional: dict[str, RawKey]
    genesis: bytes
    plan: LockedPlan  # version 2: three regional roots
    approvals: list[dict[str, Any]]


def _plan(fleet: RawKey, regional: dict[str, RawKey], version: int,
          ceremony: str = "merkle-regions",
          roster: dict[str, Any] | None = None) -> tuple[LockedPlan, list[dict[str, Any]]]:
    ops = [regional_op(regional[r].key, r, 104) for r in REGIONS]
    doc = {"plan": version, "ceremony": ceremony, "fleet": "testfleet", "signer": fleet.keyid,
           "roster": {"path": "fleet-root.dsse.json", "sha256": "cd" * 32, "size": 1,
                      "roster": roster or roster_json()},
           "operations": ops, "source": {"test": "built by test_merkle"},
           "fleet_root": {"path": "fleet-root.dsse.json", "sha256": "ab" * 32, "size": 1,
                          "keyid": fleet.keyid, "version": 1}}
    plan = LockedPlan(doc)
    approvals = [approve(plan, f"c{i}", _Signer(custodians()[i]), NOW - timedelta(days=2))
                 .to_json() for i in (0, 1)]
    return plan, approvals


@pytest.fixture(scope="module")
def world() -> World:
    fleet = raw_key()
    regional = {r: raw_key() for r in REGIONS}
    genesis = sign_raw(fleet, genesis_payload(fleet, fast_policy(), issued_at=G)).dumps()
    plan, approvals = _plan(fleet, regional, 2)
    return World(fleet, regional, genesis, plan, approvals)


def _statement(w: World, index: int, ceremony: dict[str, Any]) -> bytes:
    region = REGIONS[index]
    issued = G + timedelta(hours=1)
    return build("regional-root", fleet="testfleet", issuer_role="fleet-root",
                 issuer_keyid=w.fleet.keyid, ceremony=ceremony,
                 subject={"region": region, "key": w.regional[region].key.to_json(),
                          "version": 1, "may_sign": list(REGIONAL_MAY_SIGN),
                          "enclaves": test_enclaves(region)},
                 issued_at=issued, not_before=issued, not_after=issued + timedelta(days=104),
                 serial=f"{ceremony['id']}.{index}")


def _included(w: World, index: int, plan: LockedPlan | None = None,
              approvals: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    plan = plan or w.plan
    return {"id": plan.ceremony, "plan_sha256": plan.sha256,
            "approvals": approvals or w.approvals, "inclusion": plan.inclusion(index)}


def _check(w: World, artifacts: dict[str, bytes]) -> Report:
    blobs = {"fleet-root.dsse.json": w.genesis, **artifacts}
    return verify(list(blobs.items()), Anchor(w.fleet.keyid), NOW)


def _signed(w: World, payload: bytes) -> bytes:
    return sign_raw(w.fleet, payload).dumps()


def _findings(report: Report, name: str) -> dict[str, str]:
    return {f.check: f.message for f in report.findings if f.artifact == name}


def test_inclusion_artifacts_verify_and_are_smaller(world: World) -> None:
    blobs = {f"r{i}.dsse.json": _signed(world, _statement(world, i, _included(world, i)))
             for i in range(len(REGIONS))}
    report = _check(world, blobs)
    assert report.ok, report.findings
    old_plan, old_approvals = _plan(world.fleet, world.regional, 1, "merkle-old")
    whole = {"id": old_plan.ceremony, "plan_sha256": old_plan.sha256,
             "approvals": old_approvals, "plan": old_plan.document}
    old = _signed(world, _statement(world, 0, whole))
    assert _check(world, {"old.dsse.json": old}).ok  # old-style: the whole version 1 plan
    assert len(blobs["r0.dsse.json"]) < len(old)


def test_whole_version_2_plan_verifies(world: World) -> None:
    whole = {"id": world.plan.ceremony, "plan_sha256": world.plan.sha256,
             "approvals": world.approvals, "plan": world.plan.document}
    report = _check(world, {"w.dsse.json": _signed(world, _statement(world, 1, whole))})
    assert report.ok, report.findings


def _tampered(world: World, change: Any) -> dict[str, str]:
    cer = _included(world, 1)
    cer = {**cer, "inclusion": copy.deepcopy(cer["inclusion"])}
    change(cer["inclusion"])
    report = _check(world, {"t.dsse.json": _signed(world, _statement(world, 1, cer))})
    assert not report.ok
    return _findings(report, "t.dsse.json")


def _flip(h: str) -> str:
    return ("0" if h[0] != "0" else "1") + h[1:]


@pytest.mark.parametrize("what", ["path", "index", "size", "source", "header", "operation"])
def test_tampered_proof_is_refused(world: World, what: str) -> None:
    def change(inc: dict[str, Any]) -> None:
        if what == "path":
            inc["path"][0] = _flip(inc["path"][0])
        elif what == "index":
            inc["index"] = 2
        elif what == "size":
            inc["operations"] = 4
        elif what == "source":
            inc["source"] = _flip(inc["source"])
        elif what == "header":
            inc["header"]["fleet_root"]["version"] = 2
        else:
            inc["operation"]["validity_days"] = 103

    found = _tampered(world, change)
    assert "does not lead to the plan" in found["quorum-proof"]


def test_leaf_moved_between_plans_is_refused(world: World) -> None:
    """Operation and path from another approved plan (same ceremony id, same roster), under
    this plan's digest and approvals: the root differs."""
    other, _ = _plan(world.fleet, world.regional, 2)
    other.document["source"] = {"test": "another plan"}
    assert other.sha256 != world.plan.sha256
    cer = {**_included(world, 1), "inclusion": other.inclusion(1)}
    report = _check(world, {"m.dsse.json": _signed(world, _statement(world, 1, cer))})
    assert "does not lead to the plan" in _findings(report, "m.dsse.json")["quorum-proof"]


def test_operation_at_another_index_does_not_cover(world: World) -> None:
    """A genuine proof of operation 0 under a statement whose serial is operation 1's."""
    payload = json.loads(_statement(world, 1, _included(world, 0)))
    report = _check(world, {"x.dsse.json": _signed(world, canonical(payload))})
    assert "operation 0 does not yield" in _findings(report, "x.dsse.json")["quorum-proof"]


def test_roster_not_in_force_is_refused(world: World) -> None:
    plan, approvals = _plan(world.fleet, world.regional, 2, "merkle-roster",
                            roster=roster_json(threshold=2, n=4))
    cer = _included(world, 0, plan, approvals)
    report = _check(world, {"r.dsse.json": _signed(world, _statement(world, 0, cer))})
    assert "not the roster in force" in _findings(report, "r.dsse.json")["quorum-proof"]


def test_header_rules_judged_from_the_header(world: World) -> None:
    """A regional-root operation in a plan whose header names an authority: the header alone
    says the plan mixes a regional ceremony's authority with a fleet-root operation."""
    doc = copy.deepcopy(world.plan.document)
    doc["ceremony"] = "merkle-authority"
    doc["authority"] = {"path": "a.dsse.json", "sha256": "ab" * 32, "size": 1,
                        "region": "CONUS", "not_after": "2099-01-01T00:00:00Z"}
    plan = LockedPlan(doc)
    approvals = [approve(plan, f"c{i}", _Signer(custodians()[i]), NOW - timedelta(days=2))
                 .to_json() for i in (0, 1)]
    cer = _included(world, 0, plan, approvals)
    report = _check(world, {"a.dsse.json": _signed(world, _statement(world, 0, cer))})
    assert "only a regional ceremony names an authority" in \
        _findings(report, "a.dsse.json")["plan-structure"]


def test_parsed_statement_keeps_the_proof(world: World) -> None:
    st = parse_payload(_statement(world, 2, _included(world, 2)), "t")
    assert st.ceremony["inclusion"]["index"] == 2 and "plan" not in st.ceremony
