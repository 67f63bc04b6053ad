"""`writroot demo`: the ceremony story on throwaway SoftHSM2 tokens, verified as auditors do."""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from writroot import __version__
from writroot.crypto.algorithms import SLH_DSA_SHA2_256S
from writroot.crypto.keys import wipe
from writroot.errors import BadInput, VerificationFailed
from writroot.hsm import softhsm
from writroot.hsm.custody import Custody, KeyRecord
from writroot.hsm.token import TokenSpec, default_module, open_session
from writroot.jsonio import canonical
from writroot.outputs import Staging
from writroot.signing import Signed, sign_statement
from writroot.statements import DEFAULT_POLICY, build
from writroot.verify.core import Anchor, Report, verify

FLEET = "writsov"
FLEET_TOKEN = "writroot-fleet"  # noqa: S105 (token labels, not secrets)
REGION_TOKEN = "writroot-conus"  # noqa: S105

Progress = Callable[[str], None]


@dataclass
class DemoResult:
    workdir: Path
    anchor: KeyRecord
    anchor_pem: Path
    artifacts: list[Path] = field(default_factory=list)
    signed: list[Signed] = field(default_factory=list)
    report: Report | None = None
    independent_report: Report | None = None
    tokens: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        assert self.report is not None and self.independent_report is not None
        return {
            "workdir": str(self.workdir),
            "anchor_fingerprint": self.anchor.keyid,
            "anchor_pem": str(self.anchor_pem),
            "anchor_algorithm": self.anchor.key.algorithm.name,
            "custody": self.anchor.custody,
            "tokens": self.tokens,
            "artifacts": [{"path": str(p), "type": s.statement.type, "serial": s.statement.serial,
                           "engine": s.engine, "checked_by": s.checked_by}
                          for p, s in zip(self.artifacts, self.signed, strict=True)],
            "verified": self.report.ok,
            "verified_independent": self.independent_report.ok,
            "writroot_version": __version__,
        }


def _prepare_workdir(workdir: Path | None) -> Path:
    if workdir is None:
        return Path(tempfile.mkdtemp(prefix="writroot-demo-"))
    if workdir.exists() and any(workdir.iterdir()):
        raise BadInput("work directory is not empty (demo outputs are write-once)", str(workdir))
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir


CUSTODIANS = (("alice", "Alice Abara"), ("bruno", "Bruno Bianchi"), ("chen", "Chen Cao"),
              ("dana", "Dana Dahl"), ("emeka", "Emeka Eze"))


def _custodians(directory: Path) -> dict[str, Any]:
    """Five custodian key files; the demo's passphrases are random and never kept."""
    from writroot.quorum.custodian import create_file_key

    members = []
    for cid, name in CUSTODIANS:
        passphrase = bytearray(secrets.token_urlsafe(18).encode())
        try:
            key = create_file_key(directory / f"{cid}.key.pem", passphrase)
        finally:
            wipe(passphrase)
        members.append({"id": cid, "name": name, "key": key.to_json()})
    return {"version": 1, "threshold": 3, "custodians": members}


def run_demo(workdir: Path | None = None, pin: bytearray | None = None,
             progress: Progress | None = None) -> DemoResult:
    """Genesis of a fleet root and one regional root on fresh SoftHSM2 tokens, then verify.

    The token PINs are random and held only in memory unless `pin` is given (tests pass one so
    they can reopen the token); they are wiped at the end.
    """
    say = progress or (lambda _msg: None)
    workdir = _prepare_workdir(workdir)
    softhsm.use_config(softhsm.write_config(workdir / "hsm"))
    module = default_module()
    user_pin = bytearray(pin) if pin is not None else bytearray(secrets.token_urlsafe(18).encode())
    so_pin = bytearray(secrets.token_urlsafe(18).encode())
    try:
        return _story(workdir, module, user_pin, so_pin, say)
    finally:
        wipe(user_pin)
        wipe(so_pin)


def _story(workdir: Path, module: str, user_pin: bytearray, so_pin: bytearray,
           say: Progress) -> DemoResult:
    tokens = {}
    for label in (FLEET_TOKEN, REGION_TOKEN):
        tokens[label] = softhsm.init_token(module, label, bytes(so_pin), bytes(user_pin))
        say(f"initialised SoftHSM2 token {label} (serial {tokens[label]})")
    fleet_spec = TokenSpec(module, FLEET_TOKEN)
    region_spec = TokenSpec(module, REGION_TOKEN)
    keys_dir = workdir / "keys"
    now = datetime.now(UTC).replace(microsecond=0)
    policy = dict(DEFAULT_POLICY)

    with open_session(region_spec, rw=True, pin_bytes=user_pin) as session:
        say("generating the CONUS regional root (SLH-DSA-SHA2-256s) in the region's HSM")
        conus = Custody(session, module).generate(SLH_DSA_SHA2_256S, "regional-root",
                                                  "region-conus-1", backup_dir=keys_dir)

    say("enrolling five custodians (ML-DSA-65 keys in passphrase-encrypted files), 3 of 5")
    roster = _custodians(workdir / "custodians")

    with open_session(fleet_spec, rw=True, pin_bytes=user_pin) as session:
        custody = Custody(session, module)
        say("generating the fleet root (SLH-DSA-SHA2-256s) in the fleet HSM")
        fleet = custody.generate(SLH_DSA_SHA2_256S, "fleet-root", "fleet-root-1",
                                 backup_dir=keys_dir)
        plan = canonical({"ceremony": "demo-genesis", "fleet": FLEET, "operations": [
            {"op": "fleet-root", "keyid": fleet.keyid},
            {"op": "regional-root", "region": "CONUS", "keyid": conus.keyid}]})
        ceremony = {"id": "demo-genesis", "plan_sha256": hashlib.sha256(plan).hexdigest(),
                    "approvals": []}
        common: dict[str, Any] = {
            "fleet": FLEET, "issuer_role": "fleet-root", "issuer_keyid": fleet.keyid,
            "ceremony": ceremony, "issued_at": now, "not_before": now}
        say("signing the fleet-root statement (self-signed genesis)")
        genesis = sign_statement(custody, fleet.keyid, build(
            "fleet-root", **common, not_after=now + timedelta(days=policy[
                "fleet_root_rotation_days"]),
            subject={"key": fleet.key.to_json(), "version": 1, "policy": policy,
                     "roster": roster}))
        say("signing the CONUS regional-root statement")
        regional = sign_statement(custody, fleet.keyid, build(
            "regional-root", **common, not_after=now + timedelta(days=policy[
                "regional_root_rotation_days"]),
            subject={"region": "CONUS", "key": conus.key.to_json(), "version": 1,
                     "may_sign": ["enclave-bundle", "federation-key", "oscal-overlay",
                                  "ceremony-record"]}))

    result = DemoResult(workdir, fleet, workdir / "fleet-root.pem", tokens=tokens)
    with Staging(workdir) as stage:
        stage.write("fleet-root.pem", fleet.key.pem.encode())
        stage.write("ceremonies/demo-genesis.plan.json", plan + b"\n")
        for name, signed in (("fleet-root.dsse.json", genesis),
                             ("regional-root-CONUS.dsse.json", regional)):
            stage.write(f"artifacts/{name}", signed.envelope.dumps())
            result.artifacts.append(workdir / "artifacts" / name)
            result.signed.append(signed)

    say("verifying every artifact as an auditor would (pinned fingerprint, then --independent)")
    blobs = [(str(p), p.read_bytes()) for p in result.artifacts]
    result.report = verify(blobs, Anchor(fleet.keyid), now)
    result.independent_report = verify(blobs, Anchor(fleet.keyid, fleet.key), now,
                                       independent=True)
    if not (result.report.ok and result.independent_report.ok):
        problems = "; ".join(f"{f.artifact}: {f.message}" for f in
                             result.report.findings + result.independent_report.findings)
        raise VerificationFailed(f"demo artifacts failed verification: {problems}")
    os.environ.pop("SOFTHSM2_CONF", None)
    return result
