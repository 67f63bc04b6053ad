"""Section: scale. A 10,000-artifact audit on every core (throughput, peak RSS of the
verifying process, 1 -> N core speed-up), parallel signing in a ceremony (8 SLH-DSA-SHA2-256s
signatures, serial against all cores), and cold start of `writroot verify` on one artifact.

The 10,000 artifacts: a fleet root (the bench's SLH-DSA-SHA2-256s key in wrapped custody)
certifies 10 regional roots (ML-DSA-87, which policy allows), each assigned 1,000 enclaves;
each regional root signs one enclave bundle per enclave, in ceremonies of 64 operations with
real approvals and inclusion proofs. (10,000 SLH-DSA-SHA2-256s signatures would take about
95 CPU-minutes to make; the per-signature bound for 256s is measured in section verify.)
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import Row
from bench.throughput import _proof, _relock, enclaves, genesis_payloads, regional_ops
from writroot.crypto import engines
from writroot.crypto.algorithms import ML_DSA_87
from writroot.crypto.keys import PublicKey
from writroot.hsm.custody import Custody, KeyRecord
from writroot.statements import DEFAULT_POLICY, build

SECTION = "scale"
AUDIT = 10_000
REGIONS = 10
PER_PLAN = 64
AUDIT_TARGET_S = 8.0  # issue 18
RSS_TARGET_MIB = 1024.0
SPEEDUP_TARGET = 1.8
AUDIT_SPEEDUP_TARGET = 1.7  # issue 18
SIGNATURES = 8

_VERIFY = """
import json, resource, sys, time
from datetime import datetime
from writroot.verify.core import Anchor
from writroot.crypto.keys import PublicKey
from writroot.cli.verify import _run
key = PublicKey.from_pem(open(sys.argv[1], "rb").read(), "anchor")
at = datetime.fromisoformat(sys.argv[3])
start = time.perf_counter()
report = _run([sys.argv[2]], Anchor(key.keyid, key), at, False, (), (), int(sys.argv[4]))
took = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"ok": report.ok, "n": len(report.results), "s": took,
                  "rss_kib": rss, "children_kib": kids,
                  "bad": [f.message for f in report.findings][:3]}))
"""


def _signer(alg: Any) -> tuple[PublicKey, bytearray]:
    raw, private = engines.signer_for(alg).keygen(alg)
    return PublicKey(alg, raw), private


def build_audit(custody: Custody, fleet: KeyRecord, out: Path) -> datetime:
    """Write the 10,000-artifact set (and the fleet-root statement) into `out`."""
    from writroot.ceremony.parallel import sign_all
    from writroot.envelope import Envelope, Signature, payload_type_for

    now = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    policy = dict(DEFAULT_POLICY)
    per_region = AUDIT // REGIONS
    regional = [_signer(ML_DSA_87) for _ in range(REGIONS)]
    ops = regional_ops([k for k, _ in regional], 90, per_region)
    payloads = genesis_payloads(fleet.key, policy, 548, ops, now, "scale-genesis")
    for i, s in enumerate(sign_all(custody, fleet.keyid, payloads, 2)):
        (out / f"root-{i:02d}.dsse.json").write_bytes(s.envelope.dumps())
    bundle = {"keys": [{"use": "jwt-svid", "kty": "EC", "crv": "P-256", "kid": "k1",
                        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}],
              "spiffe_sequence": 1, "spiffe_refresh_hint": 300}
    signer = engines.signer_for(ML_DSA_87)
    for r, (key, private) in enumerate(regional, 1):
        region = f"REGION-{r:02d}"
        domains = [e["trust_domain"] for e in enclaves(r, per_region)]
        for start in range(0, len(domains), PER_PLAN):
            chunk = domains[start:start + PER_PLAN]
            bops = [{"op": "sign-enclave-bundle", "region": region, "trust_domain": d,
                     "impact_level": "IL4", "validity_days": 30,
                     "bundle": _pin(bundle)} for d in chunk]
            cid = f"scale-{r:02d}-{start // PER_PLAN:03d}"
            bplan, bapprovals, _ = _proof(key.keyid, bops, now - timedelta(hours=1), cid)
            bplan.document["fleet_root"]["keyid"] = fleet.keyid
            bplan.document["authority"] = {"path": "a.dsse.json", "sha256": "0" * 64,
                                           "size": 1, "region": region,
                                           "not_after": "2099-01-01T00:00:00Z"}
            bplan, bapprovals, _ = _relock(bplan.document, now - timedelta(hours=1))
            for index, d in enumerate(chunk):
                payload = build("enclave-bundle", fleet="bench", issuer_role="regional-root",
                                issuer_keyid=key.keyid,
                                ceremony={"id": cid, "plan_sha256": bplan.sha256,
                                          "approvals": bapprovals,
                                          "inclusion": bplan.inclusion(index)},
                                issued_at=now, not_before=now,
                                not_after=now + timedelta(days=30), serial=f"{cid}.{index}",
                                subject={"trust_domain": d, "region": region,
                                         "impact_level": "IL4", "spiffe_sequence": 1,
                                         "bundle": bundle})
                ptype = payload_type_for("enclave-bundle")
                pae = Envelope(ptype, payload, ()).pae()
                sig = signer.sign(ML_DSA_87, private, pae)
                env = Envelope(ptype, payload, (Signature(key.keyid, sig),))
                (out / f"{cid}.{index}.dsse.json").write_bytes(env.dumps())
    return now


def _pin(bundle: dict[str, Any]) -> dict[str, Any]:
    import hashlib

    from writroot.jsonio import canonical

    digest = hashlib.sha256(canonical(bundle)).hexdigest()
    return {"path": "bundle.json", "sha256": digest, "size": 1, "canonical_sha256": digest,
            "spiffe_sequence": 1}


def _audit(pem: Path, folder: Path, at: datetime, jobs: int) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-c", _VERIFY, str(pem), str(folder),
                           at.isoformat(), str(jobs)], capture_output=True, text=True,
                          check=True)
    result: dict[str, Any] = json.loads(proc.stdout)
    if not result["ok"]:
        raise RuntimeError(f"scale artifacts do not verify: {result['bad']}")
    return result


def parallel_signing(custody: Custody, fleet: KeyRecord) -> tuple[float, float]:
    """Seconds for 8 SLH-DSA-SHA2-256s statement signatures: serial, then on every core."""
    from writroot.ceremony.host import default_workers
    from writroot.ceremony.parallel import sign_all

    now = datetime.now(UTC).replace(microsecond=0)
    keys = [_signer(fleet.key.algorithm)[0] for _ in range(SIGNATURES)]
    plan, approvals, _ = _proof(fleet.keyid, regional_ops(keys, 90), now, "scale-sign")
    payloads = [build("regional-root", fleet="bench", issuer_role="fleet-root",
                      issuer_keyid=fleet.keyid,
                      ceremony={"id": plan.ceremony, "plan_sha256": plan.sha256,
                                "approvals": approvals, "inclusion": plan.inclusion(i)},
                      issued_at=now, not_before=now, not_after=now + timedelta(days=90),
                      serial=f"{plan.ceremony}.{i}",
                      subject={"region": op["region"], "key": keys[i].to_json(),
                               "version": 1, "may_sign": op["may_sign"],
                               "enclaves": op["enclaves"]})
                for i, op in enumerate(plan.operations)]
    start = time.perf_counter()
    sign_all(custody, fleet.keyid, payloads, 1)
    serial = time.perf_counter() - start
    start = time.perf_counter()
    sign_all(custody, fleet.keyid, payloads, default_workers())
    return serial, time.perf_counter() - start


def run(custody: Custody, fleet: KeyRecord) -> list[Row]:
    from writroot.ceremony.host import default_workers

    cores = default_workers()
    serial, par = parallel_signing(custody, fleet)
    rows = [
        Row(SECTION, f"sign {SIGNATURES} x SLH-DSA-SHA2-256s, serial (workers: 1)", serial,
            "s"),
        Row(SECTION, f"sign {SIGNATURES} x SLH-DSA-SHA2-256s, workers: {cores}", par, "s"),
        Row(SECTION, f"parallel signing speed-up, {cores} cores", serial / par, "x",
            SPEEDUP_TARGET, True, "each signature re-verified by an independent engine"),
    ]
    with tempfile.TemporaryDirectory(prefix="writroot-scale-") as tmp:
        folder = Path(tmp) / "set"
        folder.mkdir()
        began = time.perf_counter()
        at = build_audit(custody, fleet, folder) + timedelta(minutes=30)
        built = time.perf_counter() - began
        pem = Path(tmp) / "fleet-root.pem"
        pem.write_text(fleet.key.pem)
        one = _audit(pem, folder, at, 1)
        many = _audit(pem, folder, at, cores)
        cold = _cold_verify(pem, next(folder.glob("scale-01-000.0.dsse.json")))
    n = many["n"]
    rss = max(many["rss_kib"], many["children_kib"]) / 1024
    rows += [
        Row(SECTION, f"audit {n} artifacts, {cores} cores (verify --jobs {cores})",
            many["s"], "s", AUDIT_TARGET_S,
            note=f"{n / many['s']:.0f} artifacts/s; set built in {built:.0f} s"),
        Row(SECTION, f"audit {n} artifacts, peak RSS (largest process)", rss, "MiB",
            RSS_TARGET_MIB),
        Row(SECTION, f"audit {n} artifacts, one core (--jobs 1)", one["s"], "s",
            note=f"{n / one['s']:.0f} artifacts/s"),
        Row(SECTION, f"audit speed-up 1 -> {cores} cores", one["s"] / many["s"], "x",
            AUDIT_SPEEDUP_TARGET, True),
        Row(SECTION, "writroot verify, one artifact, cold start", cold, "s",
            note="median of 5 fresh processes"),
    ]
    return rows


def _cold_verify(pem: Path, artifact: Path) -> float:
    import statistics

    writroot = str(Path(sys.executable).with_name("writroot"))
    times = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run([writroot, "verify", str(artifact), "--anchor", str(pem)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)
