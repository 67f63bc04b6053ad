"""Section 3: verify-core throughput for SLH-DSA-SHA2-256s envelopes on one core."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import Row
from bench.timing import median_ms
from writroot.crypto import engines
from writroot.crypto.keys import PublicKey, wipe
from writroot.hsm.custody import Custody, KeyRecord
from writroot.signing import sign_statement
from writroot.statements import DEFAULT_POLICY, REGIONAL_MAY_SIGN, build
from writroot.verify.core import Anchor, verify

SECTION = "verify"
ARTIFACTS = 20  # one fleet-root genesis statement and 19 regional roots, each signed (~0.7 s)
PASSES = 15
INDEPENDENT_PASSES = 3
TARGET = 500.0

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


def _proof(fleet_keyid: str, ops: list[dict[str, Any]],
           now: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """A real proof of quorum: a locked plan covering every statement, 2 of 3 approvals."""
    from writroot.ceremony.approve import approve
    from writroot.ceremony.plan import LockedPlan

    members = [_Custodian() for _ in range(3)]
    roster = {"version": 1, "threshold": 2,
              "custodians": [{"id": f"c{i}", "name": f"Custodian {i}", "key": m.key.to_json()}
                             for i, m in enumerate(members)]}
    plan = LockedPlan({"plan": 1, "ceremony": "bench", "fleet": "bench", "signer": fleet_keyid,
                       "roster": {"path": "roster.yaml", "sha256": "0" * 64, "size": 1,
                                  "roster": roster},
                       "operations": ops})
    approvals = [approve(plan, f"c{i}", members[i], now).to_json() for i in (0, 1)]
    return {"id": "bench", "plan_sha256": plan.sha256, "plan": plan.document,
            "approvals": approvals}, roster


def build_artifacts(custody: Custody, fleet: KeyRecord) -> tuple[Artifacts, datetime]:
    """Distinct, really signed envelopes with a real proof of quorum, as in writroot.demo."""
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
    ops: list[dict[str, Any]] = [{"op": "sign-fleet-root", "validity_days": fleet_days,
                                  "policy": policy}]
    ops += [{"op": "sign-regional-root", "region": f"REGION-{i:02d}", "validity_days": days,
             "version": 1, "may_sign": list(REGIONAL_MAY_SIGN),
             "key": {"path": f"r{i}.tar", "sha256": "0" * 64, "size": 1, **key.to_json()}}
            for i, key in enumerate(regional, 1)]
    ceremony, roster = _proof(fleet.keyid, ops, now - timedelta(hours=1))
    common: dict[str, Any] = {"fleet": "bench", "issuer_role": "fleet-root",
                              "issuer_keyid": fleet.keyid, "ceremony": ceremony,
                              "issued_at": now, "not_before": now}
    payloads = [build("fleet-root", **common, not_after=now + timedelta(days=fleet_days),
                      subject={"key": fleet.key.to_json(), "version": 1, "policy": policy,
                               "roster": roster})]
    for i, key in enumerate(regional, 1):
        payloads.append(build(
            "regional-root", **common, not_after=now + timedelta(days=days),
            subject={"region": f"REGION-{i:02d}", "key": key.to_json(), "version": 1,
                     "may_sign": list(REGIONAL_MAY_SIGN)}))
    artifacts = [(f"artifact-{i:02d}.dsse.json",
                  sign_statement(custody, fleet.keyid, payload).envelope.dumps())
                 for i, payload in enumerate(payloads)]
    return artifacts, now


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


def run(custody: Custody, fleet: KeyRecord) -> list[Row]:
    artifacts, at = build_artifacts(custody, fleet)
    anchor = Anchor(fleet.keyid, fleet.key)
    alg = fleet.key.algorithm
    primary = engines.verifier_for(alg)
    second = engines.independent_for(alg, primary)
    size = sum(len(data) for _, data in artifacts) // len(artifacts)
    with one_core():
        plain = _per_second(artifacts, anchor, at, False, PASSES)
        both = _per_second(artifacts, anchor, at, True, INDEPENDENT_PASSES)
        with liboqs_never():
            no_probe = _per_second(artifacts, anchor, at, False, PASSES)
    note = f"{len(artifacts)} envelopes of ~{size // 1024} KiB, median pass of"
    return [
        Row(SECTION, f"verify core [{primary.name}]", plain, "artifacts/s", TARGET, True,
            f"{note} {PASSES}, one core"),
        Row(SECTION, f"verify core --independent [+{second.name}]", both, "artifacts/s",
            note=f"{note} {INDEPENDENT_PASSES}, one core; no target"),
        Row(SECTION, "verify core, WRITROOT_LIBOQS=never", no_probe, "artifacts/s",
            note="diagnostic: no liboqs probe in engine dispatch; no target"),
    ]
