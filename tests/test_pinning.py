"""The ceremony machine pins the fleet anchor and trusts its inputs only as `verify` would
(DESIGN §4; issue 18): forged rosters, fake fleet roots, revoked custodians, genesis, and a
lock whose established state no longer holds — each refused before any prompt or HSM session,
with nothing signed. Real SoftHSM2 tokens, the real CLI."""

from __future__ import annotations

import base64
import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    Token,
    genesis_yaml,
    key_request,
    raw_key,
    roster_yaml,
    run_cli,
    sign_raw,
)
from writroot.crypto.algorithms import ML_DSA_65, ML_DSA_87
from writroot.envelope import Envelope

PASS = "pinning-test-passphrase"
#: An input that does not chain is named as such.
UNCHAINED = ("does not chain",)
IDS = ("alice", "bruno", "chen")
POLICY = """    policy:
      fleet_root_algorithm: SLH-DSA-SHA2-256f
      regional_root_algorithms: [SLH-DSA-SHA2-256f, ML-DSA-87]
"""


@dataclass
class World:
    root: Path
    token: Token  # the fleet's token
    region_token: Token  # EUCOM's token: its regional root was made there
    anchor: str  # the genesis fleet root's keyid
    eucom: str  # EUCOM's regional-root keyid
    published: Path  # the trust directory: every ceremony's outputs

    def cli(self, *args: str, **kw: Any) -> Any:
        return run_cli(*args, cwd=self.root, env={"PP": PASS, **kw.pop("env", {})}, **kw)

    def genesis_statement(self) -> Path:
        return next((self.published / "genesis" / "artifacts").glob("fleet-root-*.dsse.json"))

    def authority(self) -> Path:
        return next((self.published / "genesis" / "artifacts").glob(
            "regional-root-EUCOM-*.dsse.json"))

    def host(self, name: str, token: Token, anchor: str | None = None,
             trust: bool = True) -> Path:
        lines = [f"token_label: {token.spec.label}", f"pin: env:{token.env_var}"]
        if anchor:
            lines.append(f"anchor: {anchor}")
        if anchor and trust:
            lines.append(f"trust: {self.published}")
        return _write(self.root / f"{name}.host.yaml", "\n".join(lines) + "\n")

    def approve(self, locked: Path, cids: tuple[str, ...], out: str,
                anchor: str | None = None) -> None:
        pin = ["--anchor", anchor or self.anchor, "--trust", str(self.published)]
        for cid in cids:
            proc = self.cli("ceremony", "approve", str(locked), "--yes", "--custodian", cid,
                            "--key", f"custodians/{cid}.key.pem", "--passphrase", "env:PP",
                            "--out", out, *pin)
            assert proc.returncode == 0, proc.stderr

    def run(self, locked: Path, approvals: str, host: Path, out: str) -> Any:
        return self.cli("ceremony", "run", str(locked), "--approvals", approvals, "--host",
                        str(host), "--out", str(self.published / out), "--yes",
                        "--allow-network", "--json")


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _one_line_error(proc: Any, code: int, *needles: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("writroot: error")]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        options = UNCHAINED if needle == "does not chain" else (needle,)
        assert any(n in proc.stderr for n in options), proc.stderr
    assert "type the ceremony id" not in proc.stderr and "passphrase" not in proc.stderr.lower()


@pytest.fixture(scope="module")
def world(make_token: Any, tmp_path_factory: Any) -> World:
    """Genesis through the CLI: a 2-of-3 roster, a 256f fleet root, and EUCOM's regional
    root (its key made on EUCOM's own token, its request carried to the ceremony)."""
    from writroot.crypto.algorithms import by_name
    from writroot.hsm.custody import Custody
    from writroot.region import make_request

    root = tmp_path_factory.mktemp("pinning")
    token, region_token = make_token("pin-fleet"), make_token("pin-eucom")
    for cid in IDS:
        proc = run_cli("custodian", "keygen", "--id", cid, "--name", cid.title(), "--fleet",
                       "testfleet", "--out", "custodians", "--passphrase", "env:PP",
                       cwd=root, env={"PP": PASS})
        assert proc.returncode == 0, proc.stderr
    with region_token.session() as session:
        req = make_request(Custody(session, region_token.spec.module), by_name("ML-DSA-87"),
                           "EUCOM", "testfleet", "eucom-root-1", str(region_token.spec.label),
                           datetime.now(UTC).replace(microsecond=0))
    _write(root / "requests" / "eucom.json", req.envelope.dumps().decode())
    _write(root / "roster.yaml", roster_yaml(IDS))
    _write(root / "genesis.yaml", genesis_yaml("genesis-1", after=POLICY + """\
  - op: sign-regional-root
    region: EUCOM
    request: requests/eucom.json
    validity_days: 90
    enclaves:
      - {trust_domain: eucom-1.writsov.com, impact_level: IL4}
"""))
    published = root / "published"
    published.mkdir()
    w = World(root, token, region_token, "", req.key.keyid, published)
    proc = w.cli("ceremony", "plan", "genesis.yaml")
    assert proc.returncode == 0, proc.stderr
    for cid in ("alice", "chen"):
        proc = w.cli("ceremony", "approve", "genesis.lock.json", "--yes", "--custodian", cid,
                     "--key", f"custodians/{cid}.key.pem", "--passphrase", "env:PP",
                     "--out", "approvals-genesis")
        assert proc.returncode == 0, proc.stderr
    proc = w.run(root / "genesis.lock.json", "approvals-genesis",
                 w.host("genesis", token), "genesis")
    assert proc.returncode == 0, proc.stderr
    w.anchor = json.loads(proc.stdout)["signer_keyid"]
    return w


def _plan(w: World, name: str, ops: str, *, roster: str = "fleet-root.dsse.json",
          signer: str = "", authority: Path | None = None,
          fleet_root: Path | None = None) -> Path:
    d = w.root / name
    d.mkdir(exist_ok=True)
    shutil.copy(fleet_root or w.genesis_statement(), d / "fleet-root.dsse.json")
    extra = ""
    if authority is not None:
        shutil.copy(authority, d / "authority.dsse.json")
        extra = "authority: authority.dsse.json\n"
    return _write(d / "plan.yaml", f"""plan: 1
ceremony: {name}
fleet: testfleet
signer: {signer or w.anchor}
roster: {roster}
fleet_root: fleet-root.dsse.json
{extra}operations:
{ops}""")


def _regional_ops(region: str = "EUCOM") -> str:
    request = key_request(raw_key(ML_DSA_87), region)
    return f"""  - op: sign-regional-root
    region: {region}
    request: {_store_request(request)}
    validity_days: 90
    enclaves:
      - {{trust_domain: {region.lower()}-2.writsov.com, impact_level: IL4}}
"""


_REQUESTS: list[Envelope] = []


def _store_request(request: Envelope) -> str:
    _REQUESTS.append(request)
    return f"request-{len(_REQUESTS)}.json"


def _with_requests(plan: Path) -> Path:
    for i, request in enumerate(_REQUESTS, 1):
        target = plan.parent / f"request-{i}.json"
        if not target.exists():
            target.write_bytes(request.dumps())
    return plan


def _forged_roster(w: World, into: Path) -> list[Any]:
    """The genuine genesis envelope with attacker keys under the real custodian ids; the
    fleet root's signature is kept as it was (so it no longer verifies)."""
    env = json.loads(w.genesis_statement().read_text())
    payload = json.loads(base64.b64decode(env["payload"]))
    attackers = [raw_key(ML_DSA_65) for _ in IDS]
    for member, key in zip(payload["subject"]["roster"]["custodians"], attackers, strict=True):
        member["key"] = key.key.to_json()
    from writroot.jsonio import canonical

    env["payload"] = base64.b64encode(canonical(payload)).decode()
    into.write_text(json.dumps(env))
    return attackers


def _nothing_signed(w: World, out: str) -> None:
    assert not (w.published / out).exists()


def _lock(w: World, plan: Path, *extra: str) -> Any:
    return w.cli("ceremony", "plan", str(plan), "--anchor", w.anchor, "--trust",
                 str(w.published), *extra)


def test_a_genuine_regional_issuance_locks_and_runs(world: World) -> None:
    """The control: the same plan with genuine inputs locks against the anchor, records what
    it established, and runs."""
    plan = _with_requests(_plan(world, "control", _regional_ops("INDOPAC")))
    proc = _lock(world, plan)
    assert proc.returncode == 0, proc.stderr
    lock = json.loads((plan.parent / "plan.lock.json").read_text())
    assert lock["established"] == {"anchor": world.anchor,
                                   "fleet_root": {"keyid": world.anchor, "version": 1},
                                   "roster_version": 1}
    shown = world.cli("ceremony", "show", str(plan.parent / "plan.lock.json"), "--anchor",
                      world.anchor, "--trust", str(world.published))
    assert shown.returncode == 0, shown.stderr
    assert "established" in shown.stdout and "roster in force: version 1" in shown.stdout
    assert "fleet root in force: version 1" in shown.stdout
    world.approve(plan.parent / "plan.lock.json", ("alice", "bruno"), "approvals-control")
    host = world.host("control", world.token, world.anchor)
    proc = world.run(plan.parent / "plan.lock.json", "approvals-control", host, "control")
    assert proc.returncode == 0, proc.stderr
    record = next((world.published / "control").glob("ceremony-record.dsse.json"))
    from writroot.statements import parse_payload

    subject = parse_payload(Envelope.parse(record.read_bytes(), "r").payload, "r").subject
    assert subject["established"]["anchor"] == world.anchor


def test_a_forged_roster_is_refused_at_plan_approve_and_run(world: World) -> None:
    """Attacker keys under the real custodian ids: refused at lock; a lock written by hand
    around it is refused at approve (before any prompt) and at run (before the HSM)."""
    plan = _with_requests(_plan(world, "forged", _regional_ops("CENTCOM"),
                                roster="roster.dsse.json"))
    attackers = _forged_roster(world, plan.parent / "roster.dsse.json")
    _one_line_error(_lock(world, plan), 1, "does not chain")
    # the hand-made lock: a genuine lock of the plan, with the forged roster pinned in it
    genuine = plan.parent / "genuine.yaml"
    genuine.write_text(plan.read_text().replace("roster: roster.dsse.json",
                                                "roster: fleet-root.dsse.json"))
    assert _lock(world, genuine).returncode == 0
    lock = json.loads((plan.parent / "genuine.lock.json").read_text())
    data = (plan.parent / "roster.dsse.json").read_bytes()
    import hashlib

    from writroot.statements import parse_payload

    forged = parse_payload(Envelope.parse(data, "f").payload, "f").subject["roster"]
    lock["roster"] = {"path": "roster.dsse.json", "sha256": hashlib.sha256(data).hexdigest(),
                      "size": len(data), "roster": {
                          **forged, "custodians": [{**c, "key": c["key"].to_json()}
                                                   for c in forged["custodians"]]}}
    lock["source"]["roster"] = "roster.dsse.json"
    from writroot.jsonio import canonical

    locked = plan.parent / "forged.lock.json"
    locked.write_bytes(canonical(lock) + b"\n")
    proc = world.cli("ceremony", "approve", str(locked), "--custodian", "alice", "--key",
                     "custodians/alice.key.pem", "--passphrase", "prompt", "--out",
                     "approvals-forged", "--anchor", world.anchor, "--trust",
                     str(world.published), input_text="")
    _one_line_error(proc, 1, "does not chain")
    assert not (world.root / "approvals-forged").exists()
    # approvals by the attacker's keys, under the real ids, as the run would be handed them
    from tests.conftest import _Signer
    from writroot.ceremony.approve import approve
    from writroot.ceremony.plan import LockedPlan

    d = world.root / "approvals-forged-run"
    d.mkdir()
    doc = LockedPlan(lock)
    for cid, key in zip(IDS, attackers, strict=True):
        (d / f"{cid}.dsse.json").write_bytes(
            approve(doc, cid, _Signer(key), datetime.now(UTC).replace(microsecond=0)).dumps())
    host = world.host("forged", world.token, world.anchor)
    _one_line_error(world.run(locked, str(d), host, "forged"), 1, "does not chain")
    _nothing_signed(world, "forged")


def test_a_forged_roster_cannot_resplit_the_fleet_roots_recovery(world: World) -> None:
    """The same forged roster with a resplit-recovery naming attacker holders: refused at
    lock, before any recovery input is read."""
    plan = _plan(world, "resplit", """  - op: resplit-recovery
    recovery: recovery.json
    recovery_holders: [mallory1, mallory2, mallory3]
""", roster="roster.dsse.json")
    _forged_roster(world, plan.parent / "roster.dsse.json")
    (plan.parent / "recovery.json").write_text("{}")
    _one_line_error(_lock(world, plan), 1, "does not chain")
    assert not (plan.parent / "plan.lock.json").exists()


def test_a_fake_fleet_root_cannot_make_a_regional_hsm_sign(world: World) -> None:
    """An attacker-made fleet root and an authority it signs, giving EUCOM another region's
    enclave: locked against the fake anchor, it is refused on EUCOM's host, whose profile pins
    the real anchor; locked against the real anchor, refused at once."""
    from tests.conftest import NOW as now  # when conftest's approvals were valid
    from tests.conftest import fast_policy, genesis_payload, regional_root_payload

    fake = raw_key()
    fake_genesis = sign_raw(fake, genesis_payload(fake, fast_policy(), issued_at=now))
    from writroot.crypto.keys import PublicKey

    with world.region_token.session() as session:
        from writroot.hsm.custody import Custody

        eucom_key: PublicKey = Custody(session, world.region_token.spec.module).find(
            world.eucom).key
    authority = sign_raw(fake, regional_root_payload(
        fake, eucom_key, issued_at=now, region="EUCOM",
        enclaves=[{"trust_domain": "conus-1.writsov.com", "impact_level": "IL4",
                   "may_sign": ["enclave-bundle", "federation-key"]}]))
    d = world.root / "fake"
    d.mkdir()
    (d / "fake-root.dsse.json").write_bytes(fake_genesis.dumps())
    (d / "authority.dsse.json").write_bytes(authority.dumps())
    from tests.conftest import jwt_bundle

    (d / "bundle.json").write_text(json.dumps(jwt_bundle(1)))
    plan = _write(d / "plan.yaml", f"""plan: 1
ceremony: fake-bundle
fleet: testfleet
signer: {world.eucom}
roster: fake-root.dsse.json
fleet_root: fake-root.dsse.json
authority: authority.dsse.json
operations:
  - op: sign-enclave-bundle
    region: EUCOM
    trust_domain: conus-1.writsov.com
    impact_level: IL4
    bundle: bundle.json
    validity_days: 30
""")
    _one_line_error(_lock(world, plan), 1, "does not chain")
    # the attacker locks it against their own anchor ...
    proc = world.cli("ceremony", "plan", str(plan), "--anchor", fake.keyid)
    assert proc.returncode == 0, proc.stderr
    # ... and EUCOM's host, pinning the real anchor, refuses it before the HSM opens
    host = world.host("eucom-real", world.region_token, world.anchor)
    proc = world.run(plan.parent / "plan.lock.json", str(d), host, "fake")
    _one_line_error(proc, 1, "anchor")
    _nothing_signed(world, "fake")


def test_revoked_custodian_counts_nothing_at_run(world: World) -> None:
    """bruno's key is revoked (key-compromise) by a list the fleet signed; his approval then
    counts nothing at run, whatever time it claims."""
    from writroot.jsonio import format_time

    now = datetime.now(UTC).replace(microsecond=0)
    entry = (f'{{keyid: "{_keyid(world, "bruno")}", reason: key-compromise, '
             f'revoked_at: "{format_time(now)}"}}')
    rev = _plan(world, "revoke-bruno", f"""  - op: sign-revocation-list
    sequence: 1
    validity_days: 30
    known: [fleet-root.dsse.json]
    entries:
      - {entry}
""")
    assert _lock(world, rev).returncode == 0
    world.approve(rev.parent / "plan.lock.json", ("alice", "chen"), "approvals-revoke")
    host = world.host("revoke", world.token, world.anchor)
    proc = world.run(rev.parent / "plan.lock.json", "approvals-revoke", host, "revoke-bruno")
    assert proc.returncode == 0, proc.stderr
    plan = _with_requests(_plan(world, "after-revoke", _regional_ops("FVEY")))
    assert _lock(world, plan).returncode == 0
    locked = plan.parent / "plan.lock.json"
    world.approve(locked, ("alice",), "approvals-after")
    # bruno approves with his (compromised) key: approve itself still lets him sign ...
    world.approve(locked, ("bruno",), "approvals-after")
    proc = world.run(locked, "approvals-after", host, "after-revoke")
    assert proc.returncode == 4, proc.stderr
    assert "revoked" in proc.stderr and "counts nothing" in proc.stderr
    _nothing_signed(world, "after-revoke")
    world.approve(locked, ("chen",), "approvals-after")
    proc = world.run(locked, "approvals-after", host, "after-revoke")
    assert proc.returncode == 0, proc.stderr


def _keyid(w: World, cid: str) -> str:
    from writroot.crypto.keys import PublicKey

    pem = (w.root / "custodians" / f"{cid}.pub.pem").read_bytes()
    return PublicKey.from_pem(pem, cid).keyid


def test_run_refuses_when_the_established_state_changed(world: World) -> None:
    """A lock records what was established; at run the host's trust directory establishes
    something else (a newer revocation list), or the host pins another anchor: refused."""
    plan = _with_requests(_plan(world, "stale", _regional_ops("CONUS")))
    assert _lock(world, plan).returncode == 0
    locked = plan.parent / "plan.lock.json"
    lock = json.loads(locked.read_text())
    world.approve(locked, ("alice", "chen"), "approvals-stale")
    other = world.host("other-anchor", world.token, world.eucom)
    _one_line_error(world.run(locked, "approvals-stale", other, "stale"), 1, "anchor")
    # a trust directory with one statement fewer (no revocation list) establishes another
    # state than the lock recorded (when the revocation test ran first) - or the same
    partial = world.root / "partial-trust"
    shutil.copytree(world.published / "genesis", partial / "genesis")
    host = _write(world.root / "partial.host.yaml",
                  f"token_label: {world.token.spec.label}\npin: env:{world.token.env_var}\n"
                  f"anchor: {world.anchor}\ntrust: {partial}\n")
    proc = world.run(locked, "approvals-stale", host, "stale")
    if "revocation_sequence" in lock["established"]:
        _one_line_error(proc, 1, "established")
        _nothing_signed(world, "stale")
    # an old lock, without `established`: one line saying to lock again
    del lock["established"]
    from writroot.jsonio import canonical

    old = plan.parent / "old.lock.json"
    old.write_bytes(canonical(lock) + b"\n")
    _one_line_error(world.cli("ceremony", "show", str(old), "--anchor", world.anchor), 1,
                    "lock the plan again")
    # no anchor at all: exit 2 naming what to add
    _one_line_error(world.cli("ceremony", "show", str(locked)), 2, "--anchor")
    nohost = world.host("no-anchor", world.token)
    _one_line_error(world.run(locked, "approvals-stale", nohost, "stale2"), 2, "anchor")


def test_a_superseded_or_unknown_root_does_not_sign(world: World) -> None:
    """A fleet plan whose signer is not the root in force is refused; so is an authority
    that is not a trusted regional root."""
    plan = _with_requests(_plan(world, "wrong-signer", _regional_ops("SOUTHCOM"),
                                signer=world.eucom))
    _one_line_error(_lock(world, plan), 1)
    fake_authority = raw_key(ML_DSA_87)
    from tests.conftest import regional_root_payload

    now = datetime.now(UTC).replace(microsecond=0)
    forged = sign_raw(fake_authority, regional_root_payload(fake_authority,
                                                            fake_authority.key,
                                                            issued_at=now, region="EUCOM"))
    d = world.root / "self-made-authority"
    d.mkdir()
    (d / "auth.dsse.json").write_bytes(forged.dumps())
    plan = _plan(world, "self-made-authority", """  - op: sign-enclave-bundle
    region: EUCOM
    trust_domain: eucom-1.writsov.com
    impact_level: IL4
    bundle: bundle.json
    validity_days: 30
""", signer=fake_authority.keyid, authority=d / "auth.dsse.json")
    from tests.conftest import jwt_bundle

    (plan.parent / "bundle.json").write_text(json.dumps(jwt_bundle(1)))
    _one_line_error(_lock(world, plan), 1, "authority")


def test_genesis_holds_only_genesis_operations_and_needs_a_fresh_token(world: World) -> None:
    """A genesis plan with a retire operation is refused; a genesis plan given an anchor is
    refused; a genesis run on a token that holds a fleet key is refused, nothing signed."""
    base = (world.root / "genesis.yaml").read_text().replace("genesis-1", "genesis-2")
    bad = _write(world.root / "genesis-retire.yaml", base + f"""  - op: retire-key
    keyid: "{world.anchor}"
    reason: superseded
""")
    _one_line_error(world.cli("ceremony", "plan", str(bad)), 2, "genesis")
    again = _write(world.root / "genesis-2.yaml", base)
    _one_line_error(world.cli("ceremony", "plan", str(again), "--anchor", world.anchor), 1,
                    "genesis")
    proc = world.cli("ceremony", "plan", str(again))
    assert proc.returncode == 0, proc.stderr
    for cid in ("alice", "chen"):
        proc = world.cli("ceremony", "approve", "genesis-2.lock.json", "--yes", "--custodian",
                         cid, "--key", f"custodians/{cid}.key.pem", "--passphrase", "env:PP",
                         "--out", "approvals-genesis-2")
        assert proc.returncode == 0, proc.stderr
    anchored = world.host("genesis-anchored", world.token, world.anchor, trust=False)
    _one_line_error(world.run(world.root / "genesis-2.lock.json", "approvals-genesis-2",
                              anchored, "genesis-2"), 1, "genesis")
    proc = world.run(world.root / "genesis-2.lock.json", "approvals-genesis-2",
                     world.host("genesis-2", world.token), "genesis-2")
    _one_line_error(proc, 1, "holds fleet root")
    _nothing_signed(world, "genesis-2")


def test_the_ceremony_machine_and_verify_make_the_same_trust_decisions(world: World) -> None:
    """Every statement in the test world's trust directory, plus forged ones: the ceremony
    machine's input check accepts exactly what `writroot verify` passes (same anchor, same
    statements, same time)."""
    from writroot.ceremony.trust import Pinned, chained, establish_inputs
    from writroot.errors import VerificationFailed
    from writroot.verify.core import Anchor, verify
    from writroot.verify.files import gather_paths

    hostile = world.root / "hostile"
    hostile.mkdir(exist_ok=True)
    _forged_roster(world, hostile / "forged-roster.dsse.json")
    (hostile / "junk.dsse.json").write_text('{"payloadType": "x", "payload": "", '
                                            '"signatures": []}')
    now = datetime.now(UTC).replace(microsecond=0)
    files = gather_paths([str(world.published), str(hostile)])
    source = {"known": [str(f.relative_to(world.root)) for f in files]}
    import hashlib

    report = verify([(str(f), f.read_bytes()) for f in files], Anchor(world.anchor), now)
    by_name = {r.name: r.ok for r in report.results}
    assert len(by_name) >= 4
    # a forged copy of the anchor's statement (not the anchor's signature) is reported, and
    # does not take the anchor down: the chain is still established
    trust = establish_inputs(Pinned(Anchor(world.anchor)), source, world.root, now)
    assert by_name[str(world.genesis_statement())]
    for f in files:
        digest = hashlib.sha256(f.read_bytes()).hexdigest()
        try:
            chained(trust, digest, str(f))
            accepted = True
        except VerificationFailed:
            accepted = False
        assert accepted == by_name[str(f)], f
    assert not by_name[str(hostile / "forged-roster.dsse.json")]


def test_approve_checks_everything_before_any_prompt(world: World) -> None:
    """`approve` checks the anchor, the roster, the lock and the output before it asks for
    the typed id or a passphrase (issue 20, item 3); what it says names what to do."""
    from datetime import timedelta

    from writroot.ceremony.approve import approve
    from writroot.ceremony.plan import load_locked
    from writroot.quorum.custodian import load_file_key

    plan = _with_requests(_plan(world, "approve-order", _regional_ops("AFRICOM")))
    assert _lock(world, plan).returncode == 0
    locked = plan.parent / "plan.lock.json"
    pin = ["--anchor", world.anchor, "--trust", str(world.published)]

    def attempt(cid: str, out: str) -> Any:  # no --yes, passphrase by prompt, empty stdin
        return world.cli("ceremony", "approve", str(locked), "--custodian", cid, "--key",
                         f"custodians/{'alice' if cid == 'zed' else cid}.key.pem",
                         "--passphrase", "prompt", "--out", out, *pin, input_text="")

    stranger = attempt("zed", "approvals-order")
    _one_line_error(stranger, 1, "'zed' is not on the plan's roster", "alice, bruno, chen")
    assert not (world.root / "approvals-order").exists()
    # an earlier approval of this plan that has expired: named, with what to do
    name = "approve-order.approval.alice.dsse.json"
    signer = load_file_key(world.root / "custodians" / "alice.key.pem", bytearray(PASS.encode()))
    old = approve(load_locked(locked), "alice", signer,
                  datetime.now(UTC).replace(microsecond=0) - timedelta(hours=80), 1)
    (world.root / "approvals-old").mkdir()
    (world.root / "approvals-old" / name).write_bytes(old.dumps())
    _one_line_error(attempt("alice", "approvals-old"), 2, "expired at",
                    "move it away and approve again")
    # the same custodian's approval of another lock of this ceremony
    other = dict(json.loads(old.dumps()))
    (world.root / "approvals-other").mkdir()
    relocked = plan.read_text().replace("validity_days: 90", "validity_days: 89")
    plan.write_text(relocked)
    assert _lock(world, plan, "--out", str(plan.parent / "second.lock.json")).returncode == 0
    newer = approve(load_locked(plan.parent / "second.lock.json"), "alice", signer,
                    datetime.now(UTC).replace(microsecond=0))
    (world.root / "approvals-other" / name).write_bytes(newer.dumps())
    _one_line_error(attempt("alice", "approvals-other"), 2, "another lock of this ceremony",
                    "approve this lock")
    del other
    # success says when the approval expires
    done = world.cli("ceremony", "approve", str(locked), "--yes", "--custodian", "chen",
                     "--key", "custodians/chen.key.pem", "--passphrase", "env:PP", "--out",
                     "approvals-order-ok", *pin)
    assert done.returncode == 0, done.stderr
    assert "; it expires 20" in done.stdout
    # one approval short: who else may approve, and how
    host = world.host("order", world.token, world.anchor)
    short = world.run(locked, "approvals-order-ok", host, "order")
    assert short.returncode == 4, short.stderr
    assert "1 more needed, from alice, bruno" in short.stderr
    assert "writroot ceremony approve plan.lock.json --custodian ID" in short.stderr
    _nothing_signed(world, "order")
