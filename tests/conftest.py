"""Test fixtures on real SoftHSM2 tokens: one token directory per test session.

SOFTHSM2_CONF is set here, at import, before anything loads the PKCS#11 module.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from writroot.hsm import softhsm

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="writroot-tests-"))
os.environ["SOFTHSM2_CONF"] = str(softhsm.write_config(_SESSION_DIR / "softhsm"))

from writroot.crypto import engines  # noqa: E402
from writroot.crypto.algorithms import SLH_DSA_SHA2_256F, SLH_DSA_SHA2_256S, Algorithm  # noqa: E402
from writroot.crypto.keys import PublicKey  # noqa: E402
from writroot.envelope import Envelope, Signature, payload_type_for  # noqa: E402
from writroot.hsm.custody import Custody  # noqa: E402
from writroot.hsm.token import TokenSpec, default_module, open_session  # noqa: E402
from writroot.statements import DEFAULT_POLICY, build  # noqa: E402

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)


@dataclass
class Token:
    spec: TokenSpec
    pin: bytes
    env_var: str

    def session(self, rw: bool = True) -> Any:
        return open_session(self.spec, rw=rw, pin_bytes=bytearray(self.pin))

    def cli_args(self) -> list[str]:
        return ["--module", self.spec.module, "--token-label", str(self.spec.label),
                "--pin", f"env:{self.env_var}"]


@pytest.fixture(scope="session")
def audit_demo() -> dict[str, Any]:
    """One `writroot demo --json` run shared by the auditor and browser tests (its workdir
    holds the audit package, the imported copy and the HTML report)."""
    import json

    workdir = _SESSION_DIR / "audit-demo"
    proc = run_cli("demo", "--workdir", str(workdir), "--json")
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


@pytest.fixture(scope="session")
def module() -> str:
    return default_module()


@pytest.fixture(scope="session")
def make_token(module: str) -> Callable[[str], Token]:
    """Initialise a fresh token with a random PIN; the PIN is exported for CLI subprocesses."""
    made: list[str] = []

    def make(prefix: str) -> Token:
        label = f"{prefix}-{len(made)}-{secrets.token_hex(3)}"
        pin = secrets.token_urlsafe(12).encode()
        softhsm.init_token(module, label, secrets.token_urlsafe(12).encode(), pin)
        env_var = f"WRITROOT_TEST_PIN_{len(made)}"
        os.environ[env_var] = pin.decode()
        made.append(label)
        return Token(TokenSpec(module, label), pin, env_var)

    return make


@dataclass
class FleetKey:
    token: Token
    keyid: str
    key: PublicKey


@pytest.fixture(scope="session")
def fleet_256s(make_token: Callable[[str], Token], module: str) -> FleetKey:
    """A real SLH-DSA-SHA2-256s fleet root in wrapped custody (generated once per session)."""
    token = make_token("fleet256s")
    with token.session() as session:
        record = Custody(session, module).generate(SLH_DSA_SHA2_256S, "fleet-root", "fleet-root-1")
    return FleetKey(token, record.keyid, record.key)


@dataclass
class RawKey:
    """A key held in test memory, for logic tests that are not about custody."""

    key: PublicKey
    private: bytearray

    @property
    def keyid(self) -> str:
        return self.key.keyid


def raw_key(alg: Algorithm = SLH_DSA_SHA2_256F) -> RawKey:
    pk, sk = engines.signer_for(alg).keygen(alg)
    return RawKey(PublicKey(alg, pk), sk)


def sign_raw(signer: RawKey, payload: bytes, payload_type: str | None = None,
             keyid: str | None = None) -> Envelope:
    from writroot.statements import parse_payload

    ptype = payload_type or payload_type_for(parse_payload(payload, "test").type)
    env = Envelope(ptype, payload, ())
    sig = engines.signer_for(signer.key.algorithm).sign(signer.key.algorithm, signer.private,
                                                        env.pae())
    return Envelope(ptype, payload, (Signature(keyid or signer.keyid, sig),))


def fast_policy() -> dict[str, Any]:
    """A test fleet's policy: SLH-DSA-SHA2-256f keeps logic tests fast."""
    policy = dict(DEFAULT_POLICY)
    policy["fleet_root_algorithm"] = "SLH-DSA-SHA2-256f"
    policy["regional_root_algorithms"] = ["SLH-DSA-SHA2-256f", "ML-DSA-87"]
    return policy


CEREMONY = {"id": "test-genesis", "plan_sha256": "ab" * 32, "approvals": []}


@functools.cache
def custodians() -> tuple[RawKey, ...]:
    """Five ML-DSA-65 custodian keys held in test memory."""
    from writroot.crypto.algorithms import ML_DSA_65

    return tuple(raw_key(ML_DSA_65) for _ in range(5))


def roster_json(threshold: int = 2, n: int = 3, version: int = 1) -> dict[str, Any]:
    return {"version": version, "threshold": threshold,
            "custodians": [{"id": f"c{i}", "name": f"Custodian {i}", "key": k.key.to_json()}
                           for i, k in enumerate(custodians()[:n])]}


class _Signer:
    def __init__(self, raw: RawKey) -> None:
        self.key = raw.key
        self._raw = raw

    def sign(self, message: bytes) -> bytes:
        alg = self.key.algorithm
        return engines.signer_for(alg).sign(alg, self._raw.private, message)


def proof(signer: str, operations: list[dict[str, Any]], fleet: str = "testfleet",
          approvers: tuple[int, ...] = (0, 1), ceremony: str = "test-ceremony",
          roster: dict[str, Any] | None = None,
          header: dict[str, Any] | None = None) -> dict[str, Any]:
    """A real proof of quorum: a locked plan and approvals by test custodians (`header`:
    top-level plan members to set or replace)."""
    from writroot.ceremony.approve import approve
    from writroot.ceremony.plan import LockedPlan

    roster = roster or roster_json()
    plan = LockedPlan({"plan": 1, "ceremony": ceremony, "fleet": fleet, "signer": signer,
                       "roster": {"path": "roster.yaml", "sha256": "cd" * 32, "size": 1,
                                  "roster": roster},
                       "operations": operations, "source": {"test": "built by conftest"},
                       **_plan_inputs(signer, operations), **(header or {})})
    approvals = [approve(plan, f"c{i}", _Signer(custodians()[i]), NOW - timedelta(days=2))
                 .to_json() for i in approvers]
    return {"id": ceremony, "plan_sha256": plan.sha256, "plan": plan.document,
            "approvals": approvals}


def ceremony_and_serial(serial: str | None) -> tuple[str, str]:
    """A ceremony id, and the serial its first operation's statement has (`<id>.0`): a given
    serial names the ceremony, so tests can still tell statements apart by it."""
    import secrets

    ceremony = (serial or f"t-{secrets.token_hex(6)}").lower()
    return ceremony, f"{ceremony}.0"


#: signer keyid -> (keyid, version) of the fleet root in force when it was made: what the
#: test plans' `fleet_root` pins (verify judges them: plan-header-fleet-root). Filled by the
#: payload builders below; a key not seen is taken as a version 1 fleet root.
FLEET_PINS: dict[str, tuple[str, int]] = {}
#: Set by `fleet_in_force`: the pin every plan built meanwhile names.
_PIN_OVERRIDE: list[tuple[str, int]] = []


@contextlib.contextmanager
def fleet_in_force(keyid: str, version: int) -> Iterator[None]:
    """Plans built inside name this fleet root (statements signed after a rotation)."""
    _PIN_OVERRIDE.append((keyid, version))
    try:
        yield
    finally:
        _PIN_OVERRIDE.pop()


def _plan_inputs(signer: str, operations: list[dict[str, Any]]) -> dict[str, Any]:
    """The fleet_root (after genesis) and authority (regional ceremonies) a locked plan pins."""
    from writroot.rules.covers import REGIONAL_OPS

    pin = {"sha256": "ab" * 32, "size": 1}
    out: dict[str, Any] = {}
    if signer != "generate":
        keyid, version = _PIN_OVERRIDE[-1] if _PIN_OVERRIDE else FLEET_PINS.get(signer,
                                                                                (signer, 1))
        out["fleet_root"] = {"path": "fleet-root.dsse.json", **pin, "keyid": keyid,
                             "version": version}
    regional = [op for op in operations if op.get("op") in REGIONAL_OPS]
    if regional:
        out["authority"] = {"path": "regional-root.dsse.json", **pin,
                            "region": regional[0]["region"], "not_after": "2099-01-01T00:00:00Z"}
    return out


def fleet_root_payload(fleet: RawKey, policy: dict[str, Any] | None = None,
                       not_before: datetime = NOW - timedelta(days=1),
                       not_after: datetime = NOW + timedelta(days=500), **over: Any) -> bytes:
    policy = policy or fast_policy()
    FLEET_PINS[fleet.keyid] = (fleet.keyid, 1)
    days = (not_after - not_before).days
    cid, _ = ceremony_and_serial(over.get("serial"))
    over["serial"] = f"{cid}.1"  # a genesis plan: generate (0), then sign the statement (1)
    ceremony = over.pop("ceremony", None) or proof(
        "generate", [{"op": "generate-fleet-root", "label": "fleet-root-1",
                      "algorithm": fleet.key.algorithm.name},
                     {"op": "sign-fleet-root", "validity_days": days, "policy": policy}],
        ceremony=cid)
    return build("fleet-root", fleet="testfleet", issuer_role="fleet-root",
                 issuer_keyid=over.pop("issuer_keyid", fleet.keyid), ceremony=ceremony,
                 subject={"key": fleet.key.to_json(), "version": 1,
                          "policy": policy, "roster": roster_json()},
                 issued_at=not_before, not_before=not_before, not_after=not_after, **over)


REGIONAL_MAY_SIGN = ["enclave-bundle", "federation-key"]
BOTH = ["enclave-bundle", "federation-key"]
#: The enclaves test regions are given: each its own, plus partners for federation keys.
TEST_ENCLAVES: dict[str, list[dict[str, Any]]] = {
    "CONUS": [{"trust_domain": "conus-1.writsov.com", "impact_level": "IL4", "may_sign": BOTH},
              {"trust_domain": "conus-2.writsov.com", "impact_level": "IL4", "may_sign": BOTH},
              {"trust_domain": "conus-nss-1.writsov.com", "impact_level": "IL5",
               "may_sign": ["federation-key"]},
              {"trust_domain": "eucom-1.writsov.com", "impact_level": "IL4",
               "may_sign": ["federation-key"]}],
    "EUCOM": [{"trust_domain": "eucom-1.writsov.com", "impact_level": "IL4", "may_sign": BOTH}],
    "CONUS-NSS": [{"trust_domain": "conus-nss-1.writsov.com", "impact_level": "IL5",
                   "may_sign": BOTH}],
}


def test_enclaves(region: str) -> list[dict[str, Any]]:
    return [dict(e) for e in TEST_ENCLAVES.get(region, [])]


test_enclaves.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def regional_op(regional: PublicKey, region: str = "CONUS", days: int = 90,
                enclaves: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"op": "sign-regional-root", "region": region, "validity_days": days,
            "may_sign": REGIONAL_MAY_SIGN, "version": 1,
            "enclaves": test_enclaves(region) if enclaves is None else enclaves,
            "key": {"path": f"{region}.pem", "sha256": "ef" * 32, "size": 1,
                    **regional.to_json()}}


def regional_payload(fleet: RawKey, regional: PublicKey, region: str = "CONUS",
                     not_before: datetime = NOW - timedelta(days=1),
                     not_after: datetime = NOW + timedelta(days=89), **over: Any) -> bytes:
    fleet_id = over.pop("fleet_id", "testfleet")
    issuer_keyid = over.pop("issuer_keyid", fleet.keyid)
    FLEET_PINS[regional.keyid] = FLEET_PINS.get(issuer_keyid, (issuer_keyid, 1))
    days = (not_after - not_before).days
    cid, over["serial"] = ceremony_and_serial(over.get("serial"))
    ceremony = over.pop("ceremony", None) or proof(
        issuer_keyid, [regional_op(regional, region, days)], fleet=fleet_id, ceremony=cid)
    return build("regional-root", fleet=fleet_id,
                 issuer_role=over.pop("issuer_role", "fleet-root"),
                 issuer_keyid=issuer_keyid, ceremony=ceremony,
                 subject={"region": region, "key": regional.to_json(), "version": 1,
                          "may_sign": REGIONAL_MAY_SIGN, "enclaves": test_enclaves(region)},
                 issued_at=not_before, not_before=not_before, not_after=not_after, **over)


def roster_yaml(ids: tuple[str, ...] | list[str], threshold: int = 2) -> str:
    """A roster proposal naming each custodian's enrolment under custodians/ (as the CLI
    tests' `custodian keygen --out custodians` writes them)."""
    return f"threshold: {threshold}\ncustodians:\n" + "".join(
        f"  - id: {c}\n    name: {c.title()}\n    enrolment: custodians/{c}.enrolment.dsse.json\n"
        for c in ids)


def genesis_yaml(ceremony: str, generate_extra: str = "", after: str = "",
                 fleet: str = "testfleet") -> str:
    """A genesis plan on a 256f fleet root (`generate_extra`: more members of the
    generate-fleet-root operation; `after`: the sign-fleet-root operation's `policy:` and
    any further operations, as YAML lines)."""
    return f"""plan: 1
ceremony: {ceremony}
fleet: {fleet}
signer: generate
roster: roster.yaml
operations:
  - op: generate-fleet-root
    label: fleet-root-1
    algorithm: SLH-DSA-SHA2-256f
{generate_extra}  - op: sign-fleet-root
    validity_days: 548
{after}"""


def request_time() -> datetime:
    """When a test's key request is made: now (the CLI locks at the real time, and a request
    lives 30 days), a minute back so a lock in the same second is inside its window."""
    return datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)


def key_request(raw: RawKey, region: str, fleet: str = "testfleet",
                when: datetime | None = None) -> Envelope:
    """A region's key request signed by the requested key (proof of possession), made
    `when` (default: request_time())."""
    from writroot.region import request_payload

    return sign_raw(raw, request_payload(raw.key, region, fleet, "wrapped", "test-token",
                                         when or request_time()))


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real `writroot` entry point in a subprocess (`input_text` on its stdin)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, "-m", "writroot", *args], capture_output=True,
                          text=True, env=full_env, cwd=cwd, timeout=600, check=False,
                          input=input_text)
    assert_no_traceback(proc.stdout, proc.stderr)
    return proc


def proof_of(envelope: Path, published: Path) -> Path:
    """The published tlog-proof of an envelope: named by its log entry, the SHA-256 of its
    payload (a root that keeps a log must show its statements in it, even verified alone)."""
    import base64
    import hashlib

    payload = base64.b64decode(json.loads(envelope.read_bytes())["payload"])
    return published / "proofs" / f"{hashlib.sha256(payload).hexdigest()}.tlog-proof"


def logged(envelope: Path, published: Path) -> list[str]:
    """What shows a fleet statement logged and witnessed, beside it: its proof, the witness
    policy with its proof, and the witnesses' cosignatures of the fleet's log (without the
    policy a statement of a root that keeps a log fails log-witnessed)."""
    policy = next((published / "artifacts").glob("witness-policy-*.dsse.json"))
    cosigned = sorted(published.glob("cosignatures/*_fleet-*.checkpoint"))  # fleet statements
    return [str(proof_of(envelope, published)), str(policy), str(proof_of(policy, published)),
            *map(str, cosigned)]


def assert_no_traceback(*outputs: str) -> None:
    """DESIGN §7: no Python traceback ever reaches a user (unless --debug asks for one)."""
    for text in outputs:
        assert "Traceback" not in (text or ""), text


def failpoint_env(spec: str) -> dict[str, str]:
    """Arm one failpoint (writroot/failpoint.py) for a CLI subprocess."""
    from writroot.failpoint import ARM_VALUE

    return {"WRITROOT_FAILPOINT": spec, "WRITROOT_FAILPOINT_ARMED": ARM_VALUE}


@pytest.fixture()
def workdir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


# -- hierarchy statements with a real proof of quorum (tests/test_hierarchy.py, test_status.py)


def sign_all(payload: bytes, *signers: RawKey | tuple[RawKey, str]) -> Envelope:
    """An envelope signed by several keys; (key, keyid) signs with key under another keyid."""
    from writroot.statements import parse_payload

    ptype = payload_type_for(parse_payload(payload, "test").type)
    pae = Envelope(ptype, payload, ()).pae()
    sigs = []
    for signer in signers:
        raw, keyid = signer if isinstance(signer, tuple) else (signer, signer.keyid)
        alg = raw.key.algorithm
        sigs.append(Signature(keyid, engines.signer_for(alg).sign(alg, raw.private, pae)))
    return Envelope(ptype, payload, tuple(sigs))


def hierarchy_payload(type_: str, issuer_keyid: str, op: dict[str, Any],
                      subject: dict[str, Any], *, issued_at: datetime, days: int,
                      role: str, not_after: datetime | None = None, serial: str | None = None,
                      plan_signer: str | None = None, fleet: str = "testfleet") -> bytes:
    """A statement whose proof of quorum approves `op` (validity_days filled in)."""
    cid, serial = ceremony_and_serial(serial)
    ceremony = proof(plan_signer or issuer_keyid, [{**op, "validity_days": days}], fleet=fleet,
                     ceremony=cid)
    return build(type_, fleet=fleet, issuer_role=role, issuer_keyid=issuer_keyid,
                 ceremony=ceremony, subject=subject, issued_at=issued_at, not_before=issued_at,
                 not_after=not_after or issued_at + timedelta(days=days), serial=serial)


def genesis_payload(fleet: RawKey, policy: dict[str, Any], *, issued_at: datetime,
                    days: int = 500) -> bytes:
    """A fleet-root statement issued at `issued_at` (conftest's default is NOW - 1 day)."""
    return fleet_root_payload(fleet, policy=policy, not_before=issued_at,
                              not_after=issued_at + timedelta(days=days))


def rotation_payload(old: RawKey, new: RawKey, version: int, *, issued_at: datetime,
                     policy: dict[str, Any], days: int = 500,
                     roster: dict[str, Any] | None = None, issuer_keyid: str | None = None,
                     serial: str | None = None) -> bytes:
    """A fleet-rotation statement (sign it with both roots: `sign_all(p, old, new)`)."""
    issuer = issuer_keyid or old.keyid
    FLEET_PINS[new.keyid] = (new.keyid, version)
    op = {"op": "rotate-fleet-root", "label": f"fleet-root-{version}",
          "algorithm": new.key.algorithm.name, "version": version, "policy": policy}
    subject = {"key": new.key.to_json(), "previous": old.key.to_json(), "version": version,
               "policy": policy, "roster": roster or roster_json()}
    return hierarchy_payload("fleet-rotation", issuer, op, subject, issued_at=issued_at,
                             days=days, role="fleet-root", serial=serial)


def regional_root_payload(issuer: RawKey, regional: PublicKey, *, issued_at: datetime,
                          region: str = "CONUS", version: int = 1,
                          may_sign: list[str] | None = None, days: int = 104,
                          role: str = "fleet-root", serial: str | None = None,
                          enclaves: list[dict[str, Any]] | None = None) -> bytes:
    may_sign = may_sign or list(REGIONAL_MAY_SIGN)
    enclaves = test_enclaves(region) if enclaves is None else enclaves
    FLEET_PINS[regional.keyid] = FLEET_PINS.get(issuer.keyid, (issuer.keyid, 1))
    op = {**regional_op(regional, region, days, enclaves), "version": version,
          "may_sign": may_sign}
    subject = {"region": region, "key": regional.to_json(), "version": version,
               "may_sign": may_sign, "enclaves": enclaves}
    return hierarchy_payload("regional-root", issuer.keyid, op, subject, issued_at=issued_at,
                             days=days, role=role, serial=serial)


def revocation_payload(issuer: RawKey, sequence: int, entries: list[dict[str, Any]], *,
                       issued_at: datetime, days: int = 30, role: str = "fleet-root",
                       serial: str | None = None) -> bytes:
    """Entries as {keyid|serial, reason, revoked_at}; the plan op carries them as given."""
    op = {"op": "sign-revocation-list", "sequence": sequence, "entries": entries}
    return hierarchy_payload("revocation-list", issuer.keyid, op,
                             {"sequence": sequence, "entries": entries},
                             issued_at=issued_at, days=days, role=role, serial=serial)


def jwt_bundle(sequence: int, kid: str = "k1") -> dict[str, Any]:
    """A small SPIFFE bundle (one jwt-svid key): enough for statement logic tests."""
    return {"keys": [{"use": "jwt-svid", "kty": "EC", "crv": "P-256", "kid": kid,
                      "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                      "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}],
            "spiffe_sequence": sequence, "spiffe_refresh_hint": 300}


def enclave_bundle_payload(regional: RawKey, trust_domain: str, sequence: int, *,
                           issued_at: datetime, region: str = "CONUS",
                           impact_level: str = "IL4", days: int = 30,
                           bundle: dict[str, Any] | None = None, role: str = "regional-root",
                           not_after: datetime | None = None, serial: str | None = None,
                           plan_signer: str | None = None) -> bytes:
    import hashlib

    from writroot.jsonio import canonical

    bundle = bundle or jwt_bundle(sequence)
    data = canonical(bundle)
    op = {"op": "sign-enclave-bundle", "region": region, "trust_domain": trust_domain,
          "impact_level": impact_level,
          "bundle": {"path": f"bundles/{trust_domain}.json",
                     "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
                     "canonical_sha256": hashlib.sha256(data).hexdigest(),
                     "spiffe_sequence": bundle["spiffe_sequence"]}}
    subject = {"trust_domain": trust_domain, "region": region, "impact_level": impact_level,
               "spiffe_sequence": bundle["spiffe_sequence"], "bundle": bundle}
    return hierarchy_payload("enclave-bundle", regional.keyid, op, subject,
                             issued_at=issued_at, days=days, role=role, not_after=not_after,
                             serial=serial, plan_signer=plan_signer)


def enclave(trust_domain: str, impact_level: str) -> dict[str, str]:
    return {"trust_domain": trust_domain, "impact_level": impact_level}


def federation_key_payload(regional: RawKey, key: PublicKey, pairing: list[dict[str, str]], *,
                           issued_at: datetime, region: str = "CONUS",
                           cds_route: str | None = None, days: int = 30,
                           role: str = "regional-root", serial: str | None = None) -> bytes:
    route = {"cds_route": cds_route} if cds_route is not None else {}
    op = {"op": "sign-federation-key", "region": region, "pairing": pairing,
          "key": {"path": "federation.pem", "sha256": "ef" * 32, "size": 1, **key.to_json()},
          **route}
    subject = {"region": region, "key": key.to_json(), "pairing": pairing, **route}
    return hierarchy_payload("federation-key", regional.keyid, op, subject,
                             issued_at=issued_at, days=days, role=role, serial=serial)
