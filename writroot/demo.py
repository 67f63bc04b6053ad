"""`writroot demo`: the ceremony story on throwaway SoftHSM2 tokens, verified as auditors do."""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from writroot import __version__
from writroot.crypto.algorithms import SLH_DSA_SHA2_256S
from writroot.crypto.keys import wipe
from writroot.errors import BadInput, VerificationFailed
from writroot.hsm import softhsm
from writroot.hsm.custody import Custody, KeyRecord
from writroot.hsm.token import TokenSpec, default_module, open_session
from writroot.outputs import Staging
from writroot.signing import Signed
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


APPROVERS = ("alice", "chen", "emeka")
GENESIS_PLAN = """\
plan: 1
ceremony: demo-genesis
fleet: writsov
signer: generate
roster: roster.yaml
operations:
  - op: generate-fleet-root
    label: fleet-root-1
    algorithm: SLH-DSA-SHA2-256s
  - op: sign-fleet-root
    validity_days: 548
  - op: sign-regional-root
    region: CONUS
    key: requests/conus-1.pem
    validity_days: 90
"""


def _enrol_custodians(cdir: Path, now: datetime) -> dict[str, bytearray]:
    """Five custodian key files and enrolments, and the roster proposal naming them.

    The passphrases are random and live only in memory for the demo's approvals.
    """
    from writroot.quorum.custodian import create_file_key, load_file_key
    from writroot.quorum.enrol import enrol

    passphrases: dict[str, bytearray] = {}
    roster = ["threshold: 3", "custodians:"]
    with Staging(cdir) as stage:
        for cid, name in CUSTODIANS:
            passphrase = bytearray(secrets.token_urlsafe(18).encode())
            path = cdir / "custodians" / f"{cid}.key.pem"
            create_file_key(path, passphrase)
            signer = load_file_key(path, bytearray(passphrase))
            stage.write(f"custodians/{cid}.enrolment.dsse.json",
                        enrol(signer, FLEET, cid, name, now).dumps())
            passphrases[cid] = passphrase
            roster += [f"  - id: {cid}", f"    name: {name}",
                       f"    enrolment: custodians/{cid}.enrolment.dsse.json"]
        stage.write("roster.yaml", ("\n".join(roster) + "\n").encode())
    return passphrases


def _name(signed: Signed) -> str:
    from writroot.ceremony.runner import artifact_name

    return artifact_name(signed)


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
    from writroot.ceremony.approve import approve
    from writroot.ceremony.host import HostProfile
    from writroot.ceremony.plan import lock
    from writroot.ceremony.runner import run
    from writroot.quorum.custodian import load_file_key

    tokens = {}
    for label in (FLEET_TOKEN, REGION_TOKEN):
        tokens[label] = softhsm.init_token(module, label, bytes(so_pin), bytes(user_pin))
        say(f"initialised SoftHSM2 token {label} (serial {tokens[label]})")
    now = datetime.now(UTC).replace(microsecond=0)
    cdir = workdir / "ceremony"

    say("enrolling five custodians (ML-DSA-65 keys in passphrase-encrypted files), 3 of 5")
    passphrases = _enrol_custodians(cdir, now)

    with open_session(TokenSpec(module, REGION_TOKEN), rw=True, pin_bytes=user_pin) as session:
        say("generating the CONUS regional root (SLH-DSA-SHA2-256s) in the region's HSM")
        conus = Custody(session, module).generate(SLH_DSA_SHA2_256S, "regional-root",
                                                  "region-conus-1", backup_dir=workdir / "keys")
    with Staging(cdir) as stage:
        stage.write("requests/conus-1.pem", conus.key.pem.encode())
        stage.write("genesis.yaml", GENESIS_PLAN.encode())

    say("locking the genesis plan; custodians review its digest")
    plan = lock(cdir / "genesis.yaml")
    with Staging(cdir) as stage:
        stage.write("genesis.lock.json", plan.dumps())
        for cid in APPROVERS:
            signer = load_file_key(cdir / "custodians" / f"{cid}.key.pem", passphrases.pop(cid))
            stage.write(f"approvals/{cid}.dsse.json",
                        approve(plan, cid, signer, now).dumps())
            say(f"{cid} approved plan {plan.sha256[:16]}...")
    for leftover in passphrases.values():
        wipe(leftover)

    say("running the genesis ceremony on the fleet HSM (quorum counted first)")
    outcome = run(cdir / "genesis.lock.json", [cdir / "approvals"],
                  HostProfile(module, FLEET_TOKEN, None, "prompt", ()), workdir / "genesis",
                  confirm=lambda _plan: True, allow_network=True, say=say, now=now,
                  pin=user_pin)
    fleet_keyid = outcome.signer_keyid
    with open_session(TokenSpec(module, FLEET_TOKEN), pin_bytes=user_pin) as session:
        fleet = Custody(session, module).find(fleet_keyid)
    result = DemoResult(workdir, fleet, workdir / "genesis" / "fleet-root.pem", tokens=tokens)
    for signed in outcome.signed:
        result.artifacts.append(workdir / "genesis" / "artifacts" / _name(signed))
        result.signed.append(signed)

    say("verifying every artifact as an auditor would (pinned fingerprint, then --independent)")
    blobs = [(str(p), p.read_bytes()) for p in result.artifacts]
    now = datetime.now(UTC).replace(microsecond=0)
    result.report = verify(blobs, Anchor(fleet.keyid), now)
    result.independent_report = verify(blobs, Anchor(fleet.keyid, fleet.key), now,
                                       independent=True)
    if not (result.report.ok and result.independent_report.ok):
        problems = "; ".join(f"{f.artifact}: {f.message}" for f in
                             result.report.findings + result.independent_report.findings)
        raise VerificationFailed(f"demo artifacts failed verification: {problems}")
    os.environ.pop("SOFTHSM2_CONF", None)
    return result
