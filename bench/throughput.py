"""Section 3: verify-core throughput for SLH-DSA-SHA2-256s envelopes on one core."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import Row
from bench.timing import median_ms
from writroot.ceremony.plan import LockedPlan
from writroot.crypto import engines
from writroot.crypto.keys import PublicKey, wipe
from writroot.hsm.custody import Custody, KeyRecord
from writroot.statements import DEFAULT_POLICY, REGIONAL_MAY_SIGN, build
from writroot.verify.core import Anchor, verify

SECTION = "verify"
ARTIFACTS = 20  # one fleet-root genesis statement and 19 regional roots (signed on every core)
PASSES = 15
INDEPENDENT_PASSES = 3
TARGET = 500.0
RATIO_TARGET = 0.8

Artifacts = list[tuple[str, bytes]]


class _Custodian:
    """An ML-DSA-65 custodian key in memory (the bench's approvals are real signatures)."""

    def __init__(self) -> None:
        from writroot.crypto.algorithms import ML_DSA_65

        raw, self._private = engines.signer_for(ML_DSA_65).keygen(ML_DSA_65)
        self.key = PublicKey(ML_DSA_65, raw)

    def sign(self, message: bytes) -> bytes:
        return engines.signer_for(self.key.algorithm).sign(self.key.algorithm, self._private,
                                                          message)


def _proof(fleet_keyid: str, ops: list[dict[str, Any]], now: datetime,
           ceremony: str = "bench") -> tuple[LockedPlan, list[dict[str, Any]], dict[str, Any]]:
    """A real proof of quorum as `ceremony run` writes it: a version 2 locked plan (with
    `source` and the fleet-root pin), 2 of 3 approvals of its Merkle root."""
    from writroot.ceremony.approve import approve
    from writroot.ceremony.plan import LockedPlan

    members = _members()
    roster = {"version": 1, "threshold": 2,
              "custodians": [{"id": f"c{i}", "name": f"Custodian {i}", "key": m.key.to_json()}
                             for i, m in enumerate(members)]}
    plan = LockedPlan({"plan": 2, "ceremony": ceremony, "fleet": "bench",
                       "signer": fleet_keyid,
                       "roster": {"path": "roster.yaml", "sha256": "0" * 64, "size": 1,
                                  "roster": roster},
                       "fleet_root": {"path": "fleet-root.dsse.json", "sha256": "0" * 64,
                                      "size": 1, "keyid": fleet_keyid, "version": 1},
                       "source": {"plan": 1, "ceremony": ceremony, "note": "built by bench"},
                       "operations": ops})
    approvals = [approve(plan, f"c{i}", members[i], now).to_json() for i in (0, 1)]
    return plan, approvals, roster


_MEMBERS: list[_Custodian] = []


def _members() -> list[_Custodian]:
    if not _MEMBERS:
        _MEMBERS.extend(_Custodian() for _ in range(3))
    return _MEMBERS


def enclaves(region: int, count: int = 2) -> list[dict[str, Any]]:
    return [{"trust_domain": f"r{region:02d}-{e:04d}.bench.example", "impact_level": "IL4",
             "may_sign": ["enclave-bundle", "federation-key"]} for e in range(count)]


def regional_ops(keys: list[PublicKey], days: int, count: int = 2) -> list[dict[str, Any]]:
    return [{"op": "sign-regional-root", "region": f"REGION-{i:02d}", "validity_days": days,
             "version": 1, "may_sign": list(REGIONAL_MAY_SIGN),
             "enclaves": enclaves(i, count),
             "key": {"path": f"r{i}.tar", "sha256": "0" * 64, "size": 1, **key.to_json()}}
            for i, key in enumerate(keys, 1)]


def genesis_payloads(fleet: PublicKey, policy: dict[str, Any], fleet_days: int,
                     regional: list[dict[str, Any]], now: datetime,
                     ceremony: str = "bench") -> list[bytes]:
    """The statements a genesis ceremony signs (its fleet-root statement, then regional
    roots), each carrying its proof of quorum by inclusion, as `ceremony run` builds them."""
    ops = [{"op": "generate-fleet-root", "label": "fleet-root-1",
            "algorithm": fleet.algorithm.name},
           {"op": "sign-fleet-root", "validity_days": fleet_days, "policy": policy}, *regional]
    plan, _approvals, _roster = _proof(fleet.keyid, ops, now - timedelta(hours=1), ceremony)
    plan.document["signer"] = "generate"  # a genesis plan signs its own fleet-root statement
    del plan.document["fleet_root"]
    plan, approvals, roster = _relock(plan.document, now - timedelta(hours=1))
    payloads = []
    for index, op in enumerate(plan.operations):
        if op["op"] == "generate-fleet-root":
            continue
        common: dict[str, Any] = {
            "fleet": "bench", "issuer_role": "fleet-root", "issuer_keyid": fleet.keyid,
            "ceremony": {"id": plan.ceremony, "plan_sha256": plan.sha256,
                         "approvals": approvals, "inclusion": plan.inclusion(index)},
            "issued_at": now, "not_before": now, "serial": f"{plan.ceremony}.{index}",
            "not_after": now + timedelta(days=op["validity_days"])}
        if op["op"] == "sign-fleet-root":
            payloads.append(build("fleet-root", **common, subject={
                "key": fleet.to_json(), "version": 1, "policy": policy, "roster": roster}))
        else:
            payloads.append(build("regional-root", **common, subject={
                "region": op["region"], "key": {k: op["key"][k] for k in
                                                ("algorithm", "public_key", "keyid")},
                "version": 1, "may_sign": op["may_sign"], "enclaves": op["enclaves"]}))
    return payloads


def build_artifacts(custody: Custody, fleet: KeyRecord) -> tuple[Artifacts, datetime]:
    """Distinct, really signed envelopes with a real proof of quorum by inclusion, as
    `ceremony run` writes them (genesis: the fleet-root statement and regional roots)."""
    from writroot.ceremony.parallel import sign_all

    now = datetime.now(UTC).replace(microsecond=0)
    policy = dict(DEFAULT_POLICY)
    alg = fleet.key.algorithm
    keygen = engines.signer_for(alg)
    regional = []
    for _ in range(1, ARTIFACTS):
        raw, private = keygen.keygen(alg)
        wipe(private)
        regional.append(PublicKey(alg, raw))
    fleet_days, days = policy["fleet_root_rotation_days"], policy["regional_root_rotation_days"]
    payloads = genesis_payloads(fleet.key, policy, fleet_days, regional_ops(regional, days),
                                now)
    signed = sign_all(custody, fleet.keyid, payloads, _cores())
    artifacts = [(f"artifact-{i:02d}.dsse.json", s.envelope.dumps())
                 for i, s in enumerate(signed)]
    return artifacts, now


def _relock(document: dict[str, Any],
            when: datetime) -> tuple[LockedPlan, list[dict[str, Any]], dict[str, Any]]:
    from writroot.ceremony.approve import approve
    from writroot.ceremony.plan import LockedPlan

    plan = LockedPlan(document)
    members = _members()
    approvals = [approve(plan, f"c{i}", members[i], when).to_json() for i in (0, 1)]
    return plan, approvals, document["roster"]["roster"]


def _cores() -> int:
    from writroot.ceremony.host import default_workers

    return default_workers()


@contextmanager
def one_core() -> Iterator[None]:
    """Pin this thread to one CPU where the OS allows it."""
    if not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


@contextmanager
def liboqs_never() -> Iterator[None]:
    """Engine dispatch without looking for liboqs (WRITROOT_LIBOQS is read on every call)."""
    previous = os.environ.get("WRITROOT_LIBOQS")
    os.environ["WRITROOT_LIBOQS"] = "never"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["WRITROOT_LIBOQS"]
        else:
            os.environ["WRITROOT_LIBOQS"] = previous


def _per_second(artifacts: Artifacts, anchor: Anchor, at: datetime, independent: bool,
                passes: int) -> float:
    report = verify(artifacts, anchor, at, independent=independent)
    if not report.ok:
        raise RuntimeError(f"bench artifacts do not verify: {report.findings[:3]}")
    ms, _ = median_ms(lambda: verify(artifacts, anchor, at, independent=independent), passes)
    return len(artifacts) / (ms / 1000)


def raw_rate(artifacts: Artifacts, key: PublicKey, passes: int) -> float:
    """Signature verifications per second by the primary engine alone (the bound)."""
    from writroot.envelope import Envelope

    primary = engines.verifier_for(key.algorithm)
    work = [(e.pae(), e.signatures[0].sig) for e in
            (Envelope.parse(data, name) for name, data in artifacts)]

    def once() -> None:
        for message, sig in work:
            if not primary.verify(key.algorithm, key.raw, message, sig):
                raise RuntimeError("bench signature does not verify")

    ms, _ = median_ms(once, passes)
    return len(work) / (ms / 1000)


def run(custody: Custody, fleet: KeyRecord) -> list[Row]:
    artifacts, at = build_artifacts(custody, fleet)
    anchor = Anchor(fleet.keyid, fleet.key)
    alg = fleet.key.algorithm
    primary = engines.verifier_for(alg)
    second = engines.independent_for(alg, primary)
    size = sum(len(data) for _, data in artifacts) // len(artifacts)
    with one_core():
        bound = raw_rate(artifacts, fleet.key, PASSES)
        plain = _per_second(artifacts, anchor, at, False, PASSES)
        both = _per_second(artifacts, anchor, at, True, INDEPENDENT_PASSES)
        with liboqs_never():
            no_probe = _per_second(artifacts, anchor, at, False, PASSES)
    note = f"{len(artifacts)} envelopes of ~{size // 1024} KiB, median pass of"
    return [
        Row(SECTION, f"raw signature verify [{primary.name}] (the bound)", bound,
            "signatures/s", note=f"{len(artifacts)} SLH-DSA-SHA2-256s signatures, median pass "
            f"of {PASSES}, one core"),
        Row(SECTION, f"verify core [{primary.name}]", plain, "artifacts/s", TARGET, True,
            f"{note} {PASSES}, one core"),
        Row(SECTION, "verify core / signature bound", plain / bound, "ratio", RATIO_TARGET,
            True, "same artifacts, same core, one run"),
        Row(SECTION, f"verify core --independent [+{second.name}]", both, "artifacts/s",
            note=f"{note} {INDEPENDENT_PASSES}, one core; no target"),
        Row(SECTION, "verify core, WRITROOT_LIBOQS=never", no_probe, "artifacts/s",
            note="diagnostic: no liboqs probe in engine dispatch; no target"),
    ]
