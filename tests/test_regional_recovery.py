"""Regional-root recovery (issue 12, "when the policy says so"), on real SoftHSM2 tokens.

A fleet policy with `regional_recovery: true` makes a region's key request carry the recovery
split made at the key's birth (`writroot region keygen --recovery-holder ...`); a request
without one, or with another M-of-N, is refused at lock. The regional key is rehearsed from M
shares against the keyid the signed regional-root statement certifies. No share, recovery key
or private key reaches a file or a log.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Token, genesis_yaml, roster_yaml, run_cli
from writroot.envelope import Envelope
from writroot.recovery import sharefile
from writroot.recovery.blob import open_blob, recovery_check
from writroot.recovery.split import combine

PASS = "custodian-passphrase-for-tests"
HOLDERS = ("oda", "pim", "quinn")
PASSPHRASES = {h: f"regional-share-passphrase-{h}" for h in HOLDERS}
PASS_ENV = {f"WRITROOT_SHARE_PASSPHRASE_{h.upper()}": p for h, p in PASSPHRASES.items()}
ENCLAVES = """    enclaves:
      - {trust_domain: conus-1.writsov.com, impact_level: IL4}
"""


@dataclass
class World:
    root: Path
    token: Token
    region_token: Token
    fleet_keyid: str = ""
    outputs: list[str] = field(default_factory=list)
    secrets: dict[str, bytes] = field(default_factory=dict)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        proc = run_cli(*args, *self.pinned(*args), cwd=self.root, env={"PP": PASS, **PASS_ENV})
        self.outputs += [proc.stdout, proc.stderr]
        return proc

    def pinned(self, *args: str) -> tuple[str, ...]:
        """After genesis, plan/show/approve pin the anchor and read the genesis outputs as
        the fleet's published set."""
        if not self.fleet_keyid or args[:2] not in (("ceremony", "plan"), ("ceremony", "show"),
                                                    ("ceremony", "approve")):
            return ()
        return ("--anchor", self.fleet_keyid, "--trust", str(self.root / "genesis" / "out"))

    def host(self, token: Token, name: str) -> str:
        """A host profile; after genesis it pins the anchor and names the published set."""
        path = self.root / f"{name}.host.yaml"
        pinned = f"anchor: {self.fleet_keyid}\ntrust: genesis/out\n" if self.fleet_keyid else ""
        path.write_text(f"token_label: {token.spec.label}\npin: env:{token.env_var}\n{pinned}")
        return str(path)

    def approve(self, locked: Path) -> None:
        for cid in ("alice", "chen"):
            proc = self.cli("ceremony", "approve", str(locked), "--yes", "--custodian", cid,
                            "--key", f"custodians/{cid}.key.pem", "--passphrase", "env:PP",
                            "--out", str(locked.parent / "approvals"))
            assert proc.returncode == 0, proc.stderr

    @property
    def fleet_root(self) -> Path:
        return next((self.root / "genesis" / "out" / "artifacts").glob("fleet-root-*.dsse.json"))

    def keygen(self, label: str, out: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.cli("region", "keygen", *self.region_token.cli_args(), "--region", "CONUS",
                        "--fleet", "testfleet", "--label", label, "--algorithm",
                        "SLH-DSA-SHA2-256f", "--out", str(self.root / out), "--json", *extra)

    def plan(self, name: str, request: str) -> Path:
        d = self.root / name
        d.mkdir()
        shutil.copy(self.fleet_root, d / "fleet-root.dsse.json")
        shutil.copy(self.root / request, d / request)
        (d / "plan.yaml").write_text(f"""plan: 1
ceremony: {name}
fleet: testfleet
signer: "{self.fleet_keyid}"
roster: fleet-root.dsse.json
fleet_root: fleet-root.dsse.json
operations:
  - op: sign-regional-root
    region: CONUS
    request: {request}
    validity_days: 60
{ENCLAVES}""")
        return d / "plan.yaml"


def _holders(n: int) -> list[str]:
    return [a for h in HOLDERS[:n] for a in ("--recovery-holder", h)]


@pytest.fixture(scope="module")
def world(make_token: Callable[[str], Token], tmp_path_factory: Any) -> World:
    """Custodians and a genesis whose policy requires 2-of-3 regional recovery splits."""
    root = tmp_path_factory.mktemp("regional-recovery")
    w = World(root, make_token("rr-fleet"), make_token("rr-region"))
    for cid in ("alice", "bruno", "chen"):
        proc = w.cli("custodian", "keygen", "--id", cid, "--name", cid.title(), "--fleet",
                     "testfleet", "--out", "custodians", "--passphrase", "env:PP")
        assert proc.returncode == 0, proc.stderr
    g = root / "genesis"
    g.mkdir()
    (g / "roster.yaml").write_text(roster_yaml(("alice", "bruno", "chen")))
    shutil.copytree(root / "custodians", g / "custodians")
    (g / "plan.yaml").write_text(genesis_yaml("rr-genesis", after="""\
    policy:
      fleet_root_algorithm: SLH-DSA-SHA2-256f
      regional_root_algorithms: [SLH-DSA-SHA2-256f, ML-DSA-87]
      recovery_threshold: 2
      recovery_shares: 3
      regional_recovery: required
"""))
    proc = w.cli("ceremony", "plan", str(g / "plan.yaml"))
    assert proc.returncode == 0, proc.stderr
    w.approve(g / "plan.lock.json")
    proc = w.cli("ceremony", "run", str(g / "plan.lock.json"), "--approvals",
                 str(g / "approvals"), "--host", w.host(w.token, "genesis"), "--out",
                 str(g / "out"), "--yes", "--allow-network", "--json")
    assert proc.returncode == 0, proc.stderr
    w.fleet_keyid = json.loads(proc.stdout)["signer_keyid"]
    return w


@pytest.fixture(scope="module")
def request_with_split(world: World) -> dict[str, Any]:
    proc = world.keygen("conus-root-1", "conus.tar", *_holders(3), "--recovery-threshold", "2",
                        "--shares-out", str(world.root / "shares"))
    assert proc.returncode == 0, proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout)
    split = report["recovery"]["split"]
    with tarfile.open(world.root / "conus.tar") as tar:
        member = tar.extractfile(f"recovery/{split}.recovery.json")
        assert member is not None
        (world.root / "conus.recovery.json").write_bytes(member.read())
    blob = recovery_check(json.loads((world.root / "conus.recovery.json").read_bytes()), "t")
    shares = []
    for h in HOLDERS:
        path = world.root / "shares" / f"{split}-{h}.share.json"
        m = sharefile.decrypt(json.loads(path.read_bytes()),
                              bytearray(PASSPHRASES[h].encode()), str(path))
        shares.append((h, m))
        world.secrets[f"share {h}"] = m.encode()
        world.secrets[f"share {h} (first words)"] = " ".join(m.split()[:6]).encode()
    key, _ = combine(blob.split, shares[:2])
    private = open_blob(blob, key, "test", report["keyid"])
    for name, value in (("recovery key", bytes(key)), ("private key", bytes(private))):
        world.secrets[name] = value
        world.secrets[f"{name} hex"] = value.hex().encode()
        world.secrets[f"{name} b64"] = base64.b64encode(value)
    return report


def test_keygen_puts_the_split_into_the_signed_request(world: World,
                                                       request_with_split: dict[str, Any]
                                                       ) -> None:
    rec = request_with_split["recovery"]
    assert (rec["threshold"], rec["shares"], rec["holders"]) == (2, 3, list(HOLDERS))
    assert sorted(p.name for p in (world.root / "shares").iterdir()) == sorted(
        f"{rec['split']}-{h}.share.json" for h in HOLDERS)
    with tarfile.open(world.root / "conus.tar") as tar:
        member = tar.extractfile("key-request.json")
        assert member is not None
        env = Envelope.parse(member.read(), "key-request.json")
    subject = json.loads(env.payload)["subject"]
    assert subject["recovery"]["split"] == rec["split"]
    assert subject["recovery"]["keyid"] == request_with_split["keyid"]


def test_lock_run_then_rehearse_against_the_certified_keyid(
        world: World, request_with_split: dict[str, Any]) -> None:
    plan = world.plan("rr-sign", "conus.tar")
    proc = world.cli("ceremony", "plan", str(plan))
    assert proc.returncode == 0, proc.stderr
    locked = plan.with_suffix(".lock.json")
    lock = json.loads(locked.read_bytes())
    (op,) = lock["operations"]
    assert op["request_recovery"]["split"] == request_with_split["recovery"]["split"]
    world.approve(locked)
    run = world.cli("ceremony", "run", str(locked), "--approvals",
                    str(locked.parent / "approvals"), "--host", world.host(world.token, "rr"),
                    "--out", str(locked.parent / "out"), "--yes", "--allow-network")
    assert run.returncode == 0, run.stderr
    (statement,) = (locked.parent / "out" / "artifacts").glob("regional-root-*.dsse.json")
    certified = json.loads(Envelope.parse(statement.read_bytes(), "rr").payload)
    keyid = certified["subject"]["key"]["keyid"]
    assert keyid == request_with_split["keyid"]
    record = world.root / "rehearsal.dsse.json"
    split = request_with_split["recovery"]["split"]
    shares = [a for h in ("quinn", "oda") for a in
              ("--share", f"file:{world.root / 'shares' / f'{split}-{h}.share.json'}")]
    proc = world.cli("recovery", "rehearse", "--recovery", str(world.root / "conus.recovery.json"),
                     "--anchor", keyid, *shares, "--out", str(record), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["keyid"] == keyid and report["token_destroyed"]
    st = json.loads(Envelope.parse(record.read_bytes(), "r").payload)
    assert st["subject"]["holders"] == ["quinn", "oda"]
    # one share is not enough
    one = world.cli("recovery", "rehearse", "--recovery", str(world.root / "conus.recovery.json"),
                    "--anchor", keyid, *shares[:2], "--out", str(world.root / "r1.dsse.json"))
    assert one.returncode == 2 and "fewer than M shares" in one.stderr
    assert not (world.root / "r1.dsse.json").exists()


def _refused_at_lock(world: World, name: str, request: str, text: str) -> None:
    plan = world.plan(name, request)
    proc = world.cli("ceremony", "plan", str(plan))
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "regional-recovery" in proc.stderr and text in proc.stderr, proc.stderr
    assert not plan.with_suffix(".lock.json").exists()


def test_a_request_without_a_split_is_refused_at_lock(world: World) -> None:
    proc = world.keygen("conus-root-bare", "bare.tar")
    assert proc.returncode == 0, proc.stderr
    assert "recovery" not in json.loads(proc.stdout)
    _refused_at_lock(world, "rr-bare", "bare.tar", "carries none")


def test_a_split_with_other_m_of_n_is_refused_at_lock(world: World) -> None:
    proc = world.keygen("conus-root-33", "other.tar", *_holders(3), "--recovery-threshold",
                        "3", "--shares-out", str(world.root / "shares-33"))
    assert proc.returncode == 0, proc.stderr
    _refused_at_lock(world, "rr-33", "other.tar", "is 3-of-3; the fleet policy requires 2-of-3")


@pytest.mark.parametrize("args,text", [
    (["--recovery-holder", "oda", "--recovery-holder", "pim"], "--recovery-threshold"),
    (["--recovery-threshold", "2"], "--recovery-holder"),
    (["--recovery-holder", "oda", "--recovery-holder", "oda", "--recovery-threshold", "2",
      "--shares-out", "dup-shares"], "distinct"),
    (["--recovery-holder", "oda", "--recovery-holder", "pim", "--recovery-threshold", "3",
      "--shares-out", "big-shares"], "M <= N"),
    (["--recovery-holder", "oda", "--recovery-holder", "pim", "--recovery-threshold", "2"],
     "terminal"),
])
def test_keygen_recovery_bad_usage(world: World, args: list[str], text: str) -> None:
    proc = world.keygen("conus-bad", "bad.tar", *args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and text in lines[0], proc.stderr
    assert not (world.root / "bad.tar").exists()
    with world.region_token.session() as session:
        from writroot.hsm.custody import Custody

        labels = [k.label for k in Custody(session, world.region_token.spec.module).keys()]
    assert "conus-bad" not in labels


def test_no_secret_in_any_file_or_log(world: World, request_with_split: dict[str, Any],
                                      tmp_path_factory: Any) -> None:
    """Runs last: every file the tests made, every token file and every CLI output."""
    import os

    assert len(world.secrets) >= 10
    haystacks = [(f"cli output {i}", o.encode()) for i, o in enumerate(world.outputs)]
    tokens = Path(os.environ["SOFTHSM2_CONF"]).parent
    for base in (tmp_path_factory.getbasetemp(), tokens):
        for path in base.rglob("*"):
            if path.is_file() and not path.is_symlink():
                haystacks.append((str(path), path.read_bytes()))
    for where, data in haystacks:
        for name, secret in world.secrets.items():
            assert secret not in data, f"{name} found in {where}"


def test_keygen_that_cannot_write_its_request_leaves_no_key(world: World) -> None:
    """An output that cannot be written is refused before the HSM makes a key; a failure
    after the key was made (the failpoint right after generation) removes it again, so no
    key stays on the token, able to sign, that nobody knows of."""
    from tests.conftest import failpoint_env
    from writroot.hsm.custody import Custody

    def labels() -> list[str]:
        with world.region_token.session() as session:
            return [r.label for r in Custody(session, world.region_token.spec.module).keys()]

    (world.root / "not-a-dir").write_text("a file where a directory should be\n")
    early = world.keygen("orphan-early", "not-a-dir/request.tar")
    assert early.returncode == 2 and "is not a directory" in early.stderr, early.stderr
    late = run_cli("region", "keygen", *world.region_token.cli_args(), "--region", "CONUS",
                   "--fleet", "testfleet", "--label", "orphan-late", "--algorithm",
                   "SLH-DSA-SHA2-256f", "--out", str(world.root / "late.tar"),
                   cwd=world.root, env=failpoint_env("after-keygen:fault"))
    assert late.returncode != 0, late.stderr  # run_cli: no traceback
    assert late.stderr.strip().splitlines()[-1].startswith("writroot: error:"), late.stderr
    assert not (world.root / "late.tar").exists()
    assert not {"orphan-early", "orphan-late"} & set(labels())
