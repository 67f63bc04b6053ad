"""`writroot demo`: the whole ceremony story on throwaway SoftHSM2 tokens, verified as auditors do.

Genesis with six regional roots (each with its log key), regional ceremonies signing enclave
bundles and federation keys (each extending its region's witnessed log),
a regional rotation with overlap, a fleet-root rotation and an emergency revocation, on a
simulated clock that starts 60 days ago; then the published set is verified (twice: the second
time with an independent SLH-DSA implementation), every transcript audited and the rotation
calendar computed.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from writroot import __version__
from writroot.ceremony.trust import Pinned
from writroot.crypto.keys import PublicKey, wipe
from writroot.errors import BadInput, VerificationFailed
from writroot.hsm import softhsm
from writroot.hsm.custody import Custody, KeyRecord
from writroot.hsm.token import TokenSpec, default_module, open_session
from writroot.outputs import Staging, write_once
from writroot.signing import Signed
from writroot.verify.core import Anchor, Report, verify

FLEET = "writsov"
FLEET_TOKEN = "writroot-fleet"  # noqa: S105 (token labels, not secrets)
REGION_TOKEN = "writroot-conus"  # noqa: S105
#: Regions and their regional-root algorithms (ML-DSA-87 where the policy allows it).
REGIONS = (("CONUS", "SLH-DSA-SHA2-256s"), ("CONUS-NSS", "SLH-DSA-SHA2-256s"),
           ("EUCOM", "SLH-DSA-SHA2-256s"), ("INDOPAC", "SLH-DSA-SHA2-256s"),
           ("CENTCOM", "ML-DSA-87"), ("FVEY", "ML-DSA-87"))
TOKENS = (FLEET_TOKEN, *(f"writroot-{r.lower()}" for r, _ in REGIONS))
START_DAYS_AGO = 60
CDS_ROUTE = "cds-conus-nss-1"
#: The enclaves each region is given in its regional-root statement (trust domain, impact
#: level, what the region may sign for it). CONUS certifies federation keys that pair its
#: enclave with EUCOM's and with CONUS-NSS's, so it is given those for federation keys only.
ENCLAVES: dict[str, list[tuple[str, str, str]]] = {
    "CONUS": [("conus-1.writsov.com", "IL4", "[enclave-bundle, federation-key]"),
              ("conus-nss-1.writsov.com", "IL5", "[federation-key]"),
              ("eucom-1.writsov.com", "IL4", "[federation-key]")],
    "CONUS-NSS": [("conus-nss-1.writsov.com", "IL5", "[enclave-bundle, federation-key]")],
    "EUCOM": [("eucom-1.writsov.com", "IL4", "[enclave-bundle, federation-key]")],
    "INDOPAC": [("indopac-1.writsov.com", "IL4", "[enclave-bundle, federation-key]")],
    "CENTCOM": [("centcom-1.writsov.com", "IL5", "[enclave-bundle, federation-key]")],
    "FVEY": [("fvey-1.writsov.com", "IL4", "[enclave-bundle, federation-key]")],
}


def enclaves_yaml(region: str) -> str:
    """The `enclaves:` field of a sign-regional-root operation, as plan YAML."""
    return "    enclaves:\n" + "".join(
        f"      - {{trust_domain: {d}, impact_level: {lvl}, may_sign: {rights}}}\n"
        for d, lvl, rights in ENCLAVES[region])
CATALOG = "NIST_SP-800-53_rev5_MODERATE-baseline-resolved-profile_catalog-min.json"
BASELINE = "baseline-component-definition.json"
OVERLAY = "overlay-conus.json"

if TYPE_CHECKING:
    from writroot.ceremony.runner import RunResult

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
    ceremonies: list[str] = field(default_factory=list)
    audits: dict[str, bool] = field(default_factory=dict)
    revoked: dict[str, str] = field(default_factory=dict)  # artifact -> finding
    calendar: list[dict[str, Any]] = field(default_factory=list)
    current_root: str = ""
    recovery: dict[str, Any] = field(default_factory=dict)  # the genesis split and rehearsal
    audit_package: Path | None = None
    audit_report: Path | None = None
    log: dict[str, Any] = field(default_factory=dict)  # the logs (the fleet's first), witnesses

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
            "published": str(self.workdir / "published"),
            "ceremonies": self.ceremonies,
            "audits": self.audits,
            "revoked_rejected": self.revoked,
            "current_fleet_root": self.current_root,
            "calendar": self.calendar,
            "verified": self.report.ok,
            "verified_independent": self.independent_report.ok,
            "writroot_version": __version__,
            "recovery": self.recovery,
            "audit_package": str(self.audit_package) if self.audit_package else None,
            "audit_report": str(self.audit_report) if self.audit_report else None,
            "log": self.log,
        }


def _prepare_workdir(workdir: Path | None) -> Path:
    if workdir is None:
        return Path(tempfile.mkdtemp(prefix="writroot-demo-"))
    if workdir.exists() and any(workdir.iterdir()):
        raise BadInput("work directory is not empty (demo outputs are write-once)", str(workdir))
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir


def _release_file() -> bytes:
    """A small, real gzip'd tar standing in for a release (the demo signs its provenance)."""
    import gzip
    import io
    import tarfile

    body = f"writroot {__version__}: demo release\n".encode()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(f"writroot-{__version__}/README")
        info.size, info.mtime = len(body), 0
        tar.addfile(info, io.BytesIO(body))
    return gzip.compress(raw.getvalue(), mtime=0)


CUSTODIANS = (("alice", "Alice Abara"), ("bruno", "Bruno Bianchi"), ("chen", "Chen Cao"),
              ("dana", "Dana Dahl"), ("emeka", "Emeka Eze"))


APPROVERS = ("alice", "chen", "emeka")
#: Recovery-share holders (not the custodians): 3 of 5 rebuild the fleet root.
RECOVERY_HOLDERS = (("fatima", "Fatima Farah"), ("gustav", "Gustav Gren"), ("hiro", "Hiro Hara"),
                    ("ines", "Ines Ibarra"), ("jonas", "Jonas Juhl"))
REHEARSERS = ("gustav", "ines", "jonas")


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



def run_demo(workdir: Path | None = None, pin: bytearray | None = None,
             progress: Progress | None = None) -> DemoResult:
    """The whole story on fresh SoftHSM2 tokens, then verify, audit and compute the calendar.

    The token PINs and custodian passphrases are random and held only in memory unless `pin`
    is given (tests pass one so they can reopen the tokens); they are wiped at the end.
    """
    say = progress or (lambda _msg: None)
    workdir = _prepare_workdir(workdir)
    softhsm.use_config(softhsm.write_config(workdir / "hsm"))
    module = default_module()
    user_pin = bytearray(pin) if pin is not None else bytearray(secrets.token_urlsafe(18).encode())
    so_pin = bytearray(secrets.token_urlsafe(18).encode())
    story = _Story(workdir, module, user_pin, say)
    try:
        for label in TOKENS:
            story.tokens[label] = softhsm.init_token(module, label, bytes(so_pin),
                                                     bytes(user_pin))
        say(f"initialised {len(TOKENS)} SoftHSM2 tokens: the fleet HSM and one per region")
        result = story.tell()
        result.recovery = story.recovery
        return result
    finally:
        story.close()
        wipe(user_pin)
        wipe(so_pin)
        os.environ.pop("SOFTHSM2_CONF", None)


class _Story:
    def __init__(self, workdir: Path, module: str, pin: bytearray, say: Progress) -> None:
        self.workdir, self.module, self.pin, self.say = workdir, module, pin, say
        self.cdir = workdir / "ceremony"
        self.out = workdir / "out"
        self.tokens: dict[str, str] = {}
        self.signers: dict[str, Any] = {}
        self.t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=START_DAYS_AGO)
        self.fleet_keyid = ""
        self.regional: dict[str, str] = {}  # region -> keyid of its newest root
        self.outcomes: dict[str, RunResult] = {}
        self.revoked_artifact = Path()
        self.recovery: dict[str, Any] = {}
        self.share_passphrases: dict[str, bytearray] = {}
        from writroot.demo_logs import Witnesses

        self.witnesses = Witnesses()
        self.returned = workdir / "witnesses" / "returned"  # cosigned checkpoints, back

    def close(self) -> None:
        self.signers.clear()  # the custodian keys live in `cryptography` objects: drop them
        for passphrase in self.share_passphrases.values():
            wipe(passphrase)

    # -- the parties ----------------------------------------------------------------------

    def day(self, n: int) -> datetime:
        return self.t0 + timedelta(days=n)

    def write(self, rel: str, data: bytes) -> str:
        write_once(self.cdir / rel, data)
        return rel

    def carry(self, src: Path, rel: str) -> str:
        """Carry a published file across the gap into the ceremony directory."""
        return self.write(rel, src.read_bytes())

    def request(self, region: str, algorithm: str, version: int, when: datetime) -> str:
        """On the region's side: keygen in its HSM (the regional root and the region's log
        key), key request as a transfer bundle."""
        from writroot.crypto.algorithms import by_name
        from writroot.region import make_request
        from writroot.transfer import export_bundle

        label = f"writroot-{region.lower()}"
        rdir = self.workdir / "regions" / region
        with open_session(TokenSpec(self.module, label), rw=True, pin_bytes=self.pin) as s:
            req = make_request(Custody(s, self.module), by_name(algorithm), region, FLEET,
                               f"{region.lower()}-root-{version}", label, when, rdir / "keys",
                               log_label=f"{region.lower()}-log-{version}")
        src = rdir / f"request-{version}"
        for name, data in req.files().items():
            write_once(src / name, data)
        bundle = rdir / f"request-{version}.tar"
        manifest = export_bundle(src, bundle, "key-request")
        self.say(f"{region}: regional root v{version} ({algorithm}) and its log key generated "
                 f"in the region's HSM; key request read aloud as: {manifest.words}")
        self.regional[region] = req.key.keyid
        return self.carry(bundle, f"requests/{region.lower()}-{version}.tar")

    def ceremony(self, name: str, plan: str, token: str, when: datetime,
                 recovery: Any = None) -> RunResult:
        """Lock the plan, collect 3 of 5 approvals, run it on `token` at time `when`."""
        from writroot.ceremony.approve import approve
        from writroot.ceremony.host import HostProfile
        from writroot.ceremony.plan import lock
        from writroot.ceremony.runner import run

        self.write(f"{name}.yaml", plan.encode())
        pinned = self.pinned()
        locked = lock(self.cdir / f"{name}.yaml", when, pinned)
        self.write(f"{name}.lock.json", locked.dumps())
        for cid in APPROVERS:
            self.write(f"approvals/{name}/{cid}.dsse.json",
                       approve(locked, cid, self.signers[cid], when - timedelta(hours=1))
                       .dumps())
        self.say(f"{name}: plan {locked.sha256[:16]}... approved by {', '.join(APPROVERS)}")
        outcome = run(self.cdir / f"{name}.lock.json", [self.cdir / "approvals" / name],
                      HostProfile(self.module, token, None, "prompt", (),
                                  anchor=pinned.anchor.keyid if pinned else None,
                                  trust=pinned.trust_dir if pinned else None), self.out / name,
                      confirm=lambda _plan: True, allow_network=True, now=when, pin=self.pin,
                      recovery=recovery)
        self.outcomes[name] = outcome
        if outcome.log is not None:  # its checkpoint crosses to the witnesses, and back
            self.cosign(name, str(outcome.log["origin"]), when)
        return outcome

    def cosign(self, name: str, origin: str, when: datetime) -> None:
        from writroot.demo_logs import log_dirs

        signed = (self.out / name / "logs" / origin / "checkpoint").read_bytes()
        cosigned = self.witnesses.cosign_all(signed, log_dirs(self.out, origin),
                                             int(when.timestamp()) + 3600)
        write_once(self.returned / f"{name}.checkpoint", cosigned)

    def pinned(self) -> Pinned | None:
        """After genesis, every ceremony pins the anchor (the genesis fleet root) and reads
        the statements published so far as its trust directory."""
        pem = self.out / "demo-genesis" / "fleet-root.pem"
        if not pem.exists():
            return None
        key = PublicKey.from_pem(pem.read_bytes(), str(pem))
        return Pinned(Anchor(key.keyid, key), self.out)

    def signed(self, ceremony: str, type_: str, **subject: Any) -> Signed:
        """What a ceremony signed, found by type and subject fields."""
        for signed in self.outcomes[ceremony].signed:
            st = signed.statement
            if st.type == type_ and all(st.subject.get(k) == v for k, v in subject.items()):
                return signed
        raise BadInput(f"no {type_} artifact in {ceremony}")

    def artifact(self, ceremony: str, type_: str, **subject: Any) -> Path:
        """The published artifact of a ceremony, found by type and subject fields."""
        from writroot.ceremony.runner import artifact_name

        signed = self.signed(ceremony, type_, **subject)
        return Path(self.out / ceremony / "artifacts" / artifact_name(signed))

    # -- the story ------------------------------------------------------------------------

    def tell(self) -> DemoResult:
        from writroot.quorum.custodian import load_file_key

        say = self.say
        say("enrolling five custodians (ML-DSA-65 keys in passphrase-encrypted files), 3 of 5")
        passphrases = _enrol_custodians(self.cdir, self.t0)
        for cid in APPROVERS:
            self.signers[cid] = load_file_key(self.cdir / "custodians" / f"{cid}.key.pem",
                                              passphrases.pop(cid))
        for leftover in passphrases.values():
            wipe(leftover)
        say(f"simulated clock: the story starts {START_DAYS_AGO} days ago "
            f"({self.t0:%Y-%m-%d})")
        self.genesis()
        self.regional_ceremonies()
        self.mldsa_region()
        self.oscal()
        self.release()
        self.regional_rotation()
        self.fleet_rotation()
        self.revocation()
        self.recovery_rehearsal()
        result = self.publish_and_verify()
        self.audit_package(result)
        return result

    def genesis(self) -> None:
        requests = [(r, self.request(r, alg, 1, self.day(0))) for r, alg in REGIONS]
        ops = "".join(f"  - op: sign-regional-root\n    region: {r}\n    request: {rel}\n"
                      "    validity_days: 104\n" + enclaves_yaml(r) for r, rel in requests)
        plan = f"""plan: 1
ceremony: demo-genesis
fleet: {FLEET}
signer: generate
roster: roster.yaml
operations:
  - op: generate-fleet-root
    label: fleet-root-1
    algorithm: SLH-DSA-SHA2-256s
    log_key_label: fleet-log-1
    recovery_holders: [{", ".join(h for h, _ in RECOVERY_HOLDERS)}]
  - op: sign-fleet-root
    validity_days: 548
    policy:
      recovery_threshold: 3
      recovery_shares: 5
      cds_routes:
        - id: {CDS_ROUTE}
          between: [conus-1.writsov.com, conus-nss-1.writsov.com]
{self.witnesses.policy_op()}{ops}"""
        outcome = self.ceremony("demo-genesis", plan, FLEET_TOKEN, self.day(0),
                                self.recovery_handout())
        self.fleet_keyid = outcome.signer_keyid
        self.say(f"genesis: fleet root {self.fleet_keyid[:16]}..., its log key, a witness "
                 "policy (two regions and an auditor, 2 of 3) and six regional roots signed; "
                 "the witnesses cosigned the log's first checkpoint")
        self.carry(self.artifact("demo-genesis", "fleet-root"), "inputs/fleet-root.dsse.json")
        for region, _alg in REGIONS:
            self.carry(self.artifact("demo-genesis", "regional-root", region=region),
                       f"inputs/regional-root-{region}-1.dsse.json")

    def fleet_plan(self, name: str, ops: str, fleet_root: str = "inputs/fleet-root.dsse.json"
                   ) -> str:
        return f"""plan: 1
ceremony: {name}
fleet: {FLEET}
signer: "{self.fleet_keyid}"
roster: {fleet_root}
fleet_root: {fleet_root}
operations:
{ops}"""

    def regional_plan(self, name: str, region: str, version: int, ops: str,
                      fleet_root: str = "inputs/fleet-root.dsse.json") -> str:
        return f"""plan: 1
ceremony: {name}
fleet: {FLEET}
signer: "{self.regional[region]}"
roster: {fleet_root}
fleet_root: {fleet_root}
authority: inputs/regional-root-{region}-{version}.dsse.json
operations:
{ops}"""

    def bundle_op(self, region: str, domain: str, level: str, seq: int, when: datetime,
                  previous: str | None = None) -> str:
        from writroot.demo_inputs import spire_bundle

        rel = self.write(f"bundles/{domain}-{seq}.json", spire_bundle(domain, seq, when, 90))
        return (f"  - op: sign-enclave-bundle\n    region: {region}\n    trust_domain: {domain}\n"
                f"    impact_level: {level}\n    bundle: {rel}\n    validity_days: 90\n"
                + (f"    previous: {previous}\n" if previous else ""))

    def regional_ceremonies(self) -> None:
        from writroot.demo_inputs import federation_key_pem

        when = self.day(1)
        fed_same = self.write("federation/conus-1-eucom-1.pem", federation_key_pem())
        fed_cds = self.write("federation/conus-1-conus-nss-1.pem", federation_key_pem())
        conus_ops = self.bundle_op("CONUS", "conus-1.writsov.com", "IL4", 1, when) + f"""\
  - op: sign-federation-key
    region: CONUS
    key: {fed_same}
    pairing:
      - {{trust_domain: conus-1.writsov.com, impact_level: IL4}}
      - {{trust_domain: eucom-1.writsov.com, impact_level: IL4}}
    validity_days: 90
  - op: sign-federation-key
    region: CONUS
    key: {fed_cds}
    pairing:
      - {{trust_domain: conus-1.writsov.com, impact_level: IL4}}
      - {{trust_domain: conus-nss-1.writsov.com, impact_level: IL5}}
    cds_route: {CDS_ROUTE}
    validity_days: 90
"""
        for region, domain, level, ops in (
                ("CONUS", "conus-1.writsov.com", "IL4", conus_ops),
                ("CONUS-NSS", "conus-nss-1.writsov.com", "IL5", None),
                ("EUCOM", "eucom-1.writsov.com", "IL4", None)):
            name = f"demo-{region.lower()}-enclaves"
            ops = ops or self.bundle_op(region, domain, level, 1, when)
            self.ceremony(name, self.regional_plan(name, region, 1, ops),
                          f"writroot-{region.lower()}", when)
            self.say(f"{region}: regional ceremony signed the {domain} ({level}) bundle"
                     + (", a federation key and a CDS-routed IL4-IL5 federation key"
                        if region == "CONUS" else ""))
        self.carry(self.artifact("demo-conus-enclaves", "enclave-bundle"),
                   "inputs/enclave-bundle-conus-1-1.dsse.json")

    def oscal(self) -> None:
        """The fleet signs NIST's example component definition (made writroot-ready, checked
        against the SP 800-53 rev 5 MODERATE baseline); CONUS signs its tailoring overlay."""
        from importlib.resources import files

        data = files("writroot") / "data" / "oscal"
        for name in (CATALOG, BASELINE, OVERLAY):
            self.write(f"oscal/{name}", (data / name).read_bytes())
        plan = self.fleet_plan("demo-oscal-baseline", f"""\
  - op: sign-oscal-baseline
    document: oscal/{BASELINE}
    validity_days: 365
""")
        self.ceremony("demo-oscal-baseline", plan, FLEET_TOKEN, self.day(2))
        self.carry(self.artifact("demo-oscal-baseline", "oscal-baseline"),
                   "inputs/oscal-baseline.dsse.json")
        self.say("fleet: signed the OSCAL baseline (trestle-validated, every control in the "
                 "SP 800-53 rev 5 MODERATE baseline)")
        ops = f"""  - op: sign-oscal-overlay
    region: CONUS
    profile: oscal/{OVERLAY}
    baseline: inputs/oscal-baseline.dsse.json
    baseline_document: oscal/{BASELINE}
    validity_days: 90
"""
        self.ceremony("demo-conus-overlay", self.regional_plan("demo-conus-overlay", "CONUS", 1,
                                                               ops), REGION_TOKEN, self.day(3))
        self.say("CONUS: signed its tailoring overlay, pinned to the signed baseline by hash")

    def regional_rotation(self) -> None:
        when = self.day(50)
        rel = self.request("CONUS", "SLH-DSA-SHA2-256s", 2, when)
        plan = self.fleet_plan("demo-conus-rotation", f"""\
  - op: sign-regional-root
    region: CONUS
    request: {rel}
    version: 2
    validity_days: 104
{enclaves_yaml("CONUS")}""")
        self.ceremony("demo-conus-rotation", plan, FLEET_TOKEN, when)
        self.carry(self.artifact("demo-conus-rotation", "regional-root"),
                   "inputs/regional-root-CONUS-2.dsse.json")
        self.say("CONUS: rotated to regional root v2; v1 stays valid through the overlap")
        when = self.day(51)
        ops = self.bundle_op("CONUS", "conus-1.writsov.com", "IL4", 2, when,
                             previous="inputs/enclave-bundle-conus-1-1.dsse.json")
        self.ceremony("demo-conus-resign", self.regional_plan("demo-conus-resign", "CONUS", 2,
                                                              ops), REGION_TOKEN, when)
        self.say("CONUS: v2 re-signed conus-1.writsov.com's bundle (spiffe_sequence 1 -> 2)")

    def fleet_rotation(self) -> None:
        plan = self.fleet_plan("demo-fleet-rotation", """\
  - op: rotate-fleet-root
    label: fleet-root-2
    algorithm: SLH-DSA-SHA2-256s
    validity_days: 548
""")
        self.ceremony("demo-fleet-rotation", plan, FLEET_TOKEN, self.day(55))
        rotation = self.artifact("demo-fleet-rotation", "fleet-rotation")
        self.carry(rotation, "inputs/fleet-rotation.dsse.json")
        signed = self.signed("demo-fleet-rotation", "fleet-rotation")
        self.fleet_keyid = signed.statement.subject["key"].keyid
        self.say(f"fleet root rotated to v2 ({self.fleet_keyid[:16]}...), signed by the old "
                 "and the new root")

    def revocation(self) -> None:
        pairing = [{"trust_domain": "conus-1.writsov.com", "impact_level": "IL4"},
                   {"trust_domain": "eucom-1.writsov.com", "impact_level": "IL4"}]
        self.revoked_artifact = self.artifact("demo-conus-enclaves", "federation-key",
                                              pairing=pairing)
        # the target is given as the artifact itself: locking refuses a keyid or serial that
        # no given artifact carries (a typo would revoke nothing)
        target = self.carry(self.revoked_artifact, "inputs/revoked-federation-key.dsse.json")
        plan = self.fleet_plan("demo-revocation", f"""\
  - op: sign-revocation-list
    sequence: 1
    validity_days: 30
    entries:
      - artifact: {target}
        reason: key-compromise
""", "inputs/fleet-rotation.dsse.json")
        self.ceremony("demo-revocation", plan, FLEET_TOKEN, self.day(58))
        self.say("emergency: the new fleet root revoked the conus-1/eucom-1 federation key")

    def mldsa_region(self) -> None:
        """CENTCOM's regional root is ML-DSA-87: its ceremony signs its enclave's bundle."""
        name = "demo-centcom-enclaves"
        ops = self.bundle_op("CENTCOM", "centcom-1.writsov.com", "IL5", 1, self.day(1))
        self.ceremony(name, self.regional_plan(name, "CENTCOM", 1, ops), "writroot-centcom",
                      self.day(1))
        self.say("CENTCOM: its ML-DSA-87 regional root signed the centcom-1.writsov.com (IL5) "
                 "bundle")

    def release(self) -> None:
        """The fleet signs release provenance (in-toto / SLSA) for a release file."""
        rel = self.write(f"release/writroot-{__version__}-demo.tar.gz", _release_file())
        plan = self.fleet_plan("demo-release", f"""\
  - op: sign-release-provenance
    artifacts:
      - {rel}
    validity_days: 365
""")
        self.ceremony("demo-release", plan, FLEET_TOKEN, self.day(4))
        self.say(f"fleet: signed release provenance for {Path(rel).name}")

    def audit_package(self, result: DemoResult) -> None:
        """Export the audit package, import it elsewhere (checking the read-aloud words), and
        verify it there as an auditor would, writing the HTML report."""
        from writroot.transfer import import_bundle
        from writroot.transfer.bundle import export_files
        from writroot.transfer.publish import PACKAGE_KIND, add_returns, collect, package_files
        from writroot.verify import package
        from writroot.verify.html import render

        pub = collect([self.out / name for name in self.outcomes], [self.cdir],
                      Anchor(result.anchor.keyid), datetime.now(UTC).replace(microsecond=0),
                      binder=True)
        add_returns(pub, [self.returned])
        path = self.workdir / "audit-package.tar"
        manifest = export_files(package_files(pub), path, PACKAGE_KIND, str(path))
        auditor = self.workdir / "auditor"
        auditor.mkdir()
        import_bundle(path, auditor / "audit-package", manifest.words, kind=PACKAGE_KIND)
        report = package.check(package.load(auditor / "audit-package"),
                               Anchor(result.anchor.keyid), datetime.now(UTC).replace(
                                   microsecond=0))
        if not report.ok:
            problems = "; ".join(f"{f.artifact}: {f.check}: {f.message}"
                                 for f in report.findings)
            raise VerificationFailed(f"the demo's audit package failed verification: "
                                     f"{problems}")
        write_once(auditor / "report.html", render(report).encode())
        result.audit_package, result.audit_report = path, auditor / "report.html"
        self.say(f"audit package {path.name} ({manifest.words}) imported in {auditor} and "
                 f"verified; report: {result.audit_report}")

    # -- recovery: a 3-of-5 split at genesis, a rehearsal with three shares ---------------

    def recovery_handout(self) -> Any:
        """Genesis hands each recovery-share holder a share file under their passphrase
        (random, in memory only, as the custodians' are)."""
        from writroot.recovery.handout import FileHandout
        from writroot.recovery.session import RecoveryIO

        for holder, _name in RECOVERY_HOLDERS:
            self.share_passphrases[holder] = bytearray(secrets.token_urlsafe(18).encode())
        return RecoveryIO(FileHandout(self.workdir / "recovery-shares",
                                      dict(self.share_passphrases)))

    def recovery_rehearsal(self) -> None:
        """Three holders rehearse a restore of the anchor into a throwaway token; the signed
        record goes to the binder."""
        from writroot.crypto.keys import PublicKey
        from writroot.recovery.blob import read_recovery
        from writroot.recovery.collect import ShareInput
        from writroot.recovery.rehearse import rehearse

        (path,) = (self.out / "demo-genesis" / "recovery").glob("*.recovery.json")
        blob = read_recovery(path)
        anchor = PublicKey.from_pem((self.out / "demo-genesis" / "fleet-root.pem").read_bytes(),
                                    "fleet-root.pem")
        shares = [ShareInput(f"file:{self.workdir / 'recovery-shares' / name}",
                             self.share_passphrases[holder])
                  for holder in REHEARSERS
                  for name in [f"{blob.split_id}-{holder}.share.json"]]
        done = rehearse(path, anchor, shares, self.day(59))
        record = self.workdir / "binder" / f"rehearsal-{done.split}.dsse.json"
        write_once(record, done.envelope.dumps())
        self.recovery = {"split": done.split, "threshold": blob.split["threshold"],
                         "shares": blob.split["shares"], "holders": done.holders,
                         "rehearsed": True, "restored_keyid": done.keyid,
                         "record": str(record), "token_destroyed": done.token_destroyed}
        self.say(f"recovery: {', '.join(done.holders)} rehearsed a restore of the anchor from 3 "
                 f"of 5 shares (split {done.split}) into a throwaway token; record: {record}")

    # -- the logs (the fleet's, each region's): published with their cosignatures; a split
    # view of the fleet's refused ------------------------------------------------------

    def log_files(self) -> dict[str, bytes]:
        """The logs, proofs and returned cosignatures as `writroot publish --cosigned` puts
        them in the published set."""
        from writroot.transfer.publish import Published, _logs, add_returns

        pub = Published()
        for name in self.outcomes:
            _logs(pub, self.out / name)
        add_returns(pub, [self.returned])
        return pub.dist

    def split_view(self, pub: Path, blobs: dict[str, bytes], anchor: Anchor,
                   now: datetime) -> dict[str, Any]:
        """A replay on a rolled-back log, simulated: the fleet's log key signs a checkpoint
        of the same size with another last entry. The auditor's witness refuses it with
        evidence, and verify on the published set with it reports the conflict."""
        import hashlib

        from writroot.demo_logs import WITNESSES
        from writroot.log import cosignature
        from writroot.log.logfile import Log
        from writroot.verify.logs import fleet_origin, read_published

        origin = fleet_origin(FLEET)
        genesis = self.signed("demo-genesis", "fleet-root")
        log_key = genesis.statement.subject["log_key"]
        honest = read_published(pub, origin, log_key).log
        forked = Log(origin)
        for entry in honest.entries[:-1]:
            forked.append(entry)
        forked.append(hashlib.sha256(b"demo: a replayed plan on a rolled-back log").digest())
        with open_session(TokenSpec(self.module, FLEET_TOKEN), pin_bytes=self.pin) as s:
            from writroot.ceremony.logs import _CustodyKey

            signer = cosignature.CosignatureSigner(
                origin, _CustodyKey(Custody(s, self.module), log_key),
                lambda: int(now.timestamp()))
            signed = forked.sign([signer])
        fork_dir = self.workdir / "forked" / "logs" / origin
        write_once(fork_dir / "checkpoint", signed)
        evidence = self.workdir / "witnesses" / "auditor.evidence.json"
        refusal = self.witnesses.refuse(WITNESSES[2], signed, [fork_dir],
                                        int(now.timestamp()), evidence)
        report = verify(list(blobs.items()), anchor, now)
        _judge_logs(report, [pub, self.workdir / "forked"], blobs)
        flagged = sorted(f.artifact for f in report.findings if f.check == "conflict-log")
        if not flagged:
            raise VerificationFailed("verify did not flag the forked checkpoint")
        self.say(f"split view: {WITNESSES[2]} refused a forked checkpoint of {origin} "
                 f"({refusal.kind}; evidence {evidence}); verify flags it (conflict-log)")
        fleet = self.witnesses.cosigned.get(origin, 0)
        return {"origin": origin, "size": honest.size, "witnesses": list(WITNESSES),
                "quorum": 2, "checkpoints": fleet, "cosigned": fleet,
                "split_view_refused": True, "evidence": str(evidence),
                "conflict_flagged": flagged}

    def log_rows(self, pub: Path, report: Report) -> list[dict[str, Any]]:
        """Each log with a certified key, as `writroot status` shows it (its newest
        checkpoint in the published set, the witnesses that cosigned it), and how many of
        its checkpoints the witnesses cosigned. A region that held no ceremony since its
        log key was certified has no checkpoint yet (size null)."""
        from writroot.verify.logs import log_status, split_inputs

        _paths, files = split_inputs([str(pub)])
        return [{**row.to_json(), "checkpoints": self.witnesses.cosigned.get(row.origin, 0)}
                for row in log_status(report, FLEET, files)]

    # -- what relying parties get, checked as an auditor would ----------------------------

    def publish_and_verify(self) -> DemoResult:
        from writroot.ceremony.runner import artifact_name
        from writroot.status import calendar
        from writroot.verify.transcript import check_chain

        pub = self.workdir / "published"
        anchor_pem = self.out / "demo-genesis" / "fleet-root.pem"
        with open_session(TokenSpec(self.module, FLEET_TOKEN), pin_bytes=self.pin) as session:
            genesis_key = Custody(session, self.module).find(
                self.outcomes["demo-genesis"].signer_keyid)
        result = DemoResult(self.workdir, genesis_key, pub / "fleet-root.pem",
                            tokens=self.tokens, ceremonies=list(self.outcomes))
        with Staging(pub) as stage:
            stage.write("fleet-root.pem", anchor_pem.read_bytes())
            for name, outcome in self.outcomes.items():
                for signed in outcome.signed:
                    src = self.out / name / "artifacts" / artifact_name(signed)
                    if src == self.revoked_artifact:
                        continue
                    stage.write(f"artifacts/{src.name}", src.read_bytes())
                    result.artifacts.append(pub / "artifacts" / src.name)
                    result.signed.append(signed)
                stage.write(f"records/{name}.ceremony-record.dsse.json",
                            (self.out / name / "ceremony-record.dsse.json").read_bytes())
                for bundle in sorted((self.out / name).glob("bundles/*.spiffe.json")):
                    stage.write(f"spire/{name}/{bundle.name}", bundle.read_bytes())
                for doc in sorted((self.out / name).glob("oscal/*.json")):
                    stage.write(f"oscal/{doc.name}", doc.read_bytes())
            for rel, data in self.log_files().items():
                stage.write(rel, data)
        self.say("published the distribution set; verifying it as an auditor would")
        blobs = [(str(p), p.read_bytes()) for p in sorted(pub.rglob("*.dsse.json"))]
        docs = [(str(p), p.read_bytes()) for p in sorted(pub.glob("oscal/*.json"))]
        now = datetime.now(UTC).replace(microsecond=0)
        anchor = Anchor(genesis_key.keyid)
        result.report = verify(blobs, anchor, now, subject_files=docs)
        result.independent_report = verify(blobs, Anchor(genesis_key.keyid, genesis_key.key),
                                           now, independent=True)
        for report in (result.report, result.independent_report):
            _judge_logs(report, [pub], dict(blobs))
        for report in (result.report, result.independent_report):
            if not report.ok:
                problems = "; ".join(f"{f.artifact}: {f.check}: {f.message}"
                                     for f in report.findings)
                raise VerificationFailed(f"demo artifacts failed verification: {problems}")
        result.current_root = result.report.fleet_root or ""
        revoked = str(self.revoked_artifact)
        check = verify([*blobs, (revoked, self.revoked_artifact.read_bytes())], anchor, now)
        findings = check.findings
        if [f.artifact for f in findings] != [revoked] or findings[0].check != "not-revoked":
            raise VerificationFailed(f"the revoked federation key was not rejected: {findings}")
        result.revoked[revoked] = findings[0].message
        for name in self.outcomes:
            _events, _head = check_chain((self.out / name / "transcript.jsonl").read_bytes(),
                                         name)
            record = str(pub / "records" / f"{name}.ceremony-record.dsse.json")
            result.audits[name] = next(r.ok for r in result.report.results if r.name == record)
        result.calendar = [r.to_json() for r in calendar(result.report)]
        result.log = {**self.split_view(pub, dict(blobs), anchor, now),
                      "logs": self.log_rows(pub, result.report)}
        self.say(f"verified {len(blobs)} published artifacts (and independently); the revoked "
                 "federation key is rejected; every transcript audited")
        return result


def _judge_logs(report: Report, roots: list[Path], blobs: dict[str, bytes]) -> None:
    """verify's log checks (writroot/verify/logs.py) over the logs below `roots`."""
    from writroot.envelope import Envelope
    from writroot.verify.logs import judge, split_inputs

    _paths, files = split_inputs([str(r) for r in roots])
    judge(report, FLEET, files,
          lambda name: Envelope.parse(blobs[name], name).payload if name in blobs else None)
