"""Fleet-root recovery (issue 12), on real SoftHSM2 tokens through the real CLI.

A genesis makes a 3-of-5 recovery split; a quorum-approved restore rebuilds the key into a
fresh token from three shares; every bad share set or blob is refused with nothing left on the
token; a rehearsal restores into a throwaway token and leaves a signed record; a re-split
retires the old split. No share, recovery key or private key reaches a file or a log.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    Token,
    failpoint_env,
    genesis_yaml,
    key_request,
    raw_key,
    roster_yaml,
    run_cli,
)
from writroot.crypto.keys import PublicKey
from writroot.envelope import Envelope
from writroot.hsm.custody import Custody
from writroot.jsonio import canonical
from writroot.recovery import sharefile
from writroot.recovery.blob import open_blob, read_recovery, seal
from writroot.recovery.split import combine, new_split

PASS = "custodian-passphrase-for-tests"
HOLDERS = ("hana", "ivo", "jun", "kemal", "lea")
#: each holder's share passphrase, as CI gives it (WRITROOT_SHARE_PASSPHRASE_<HOLDER>)
PASSPHRASES = {h: f"share-passphrase-of-{h}" for h in HOLDERS}
PASS_ENV = {f"WRITROOT_SHARE_PASSPHRASE_{h.upper()}": p for h, p in PASSPHRASES.items()}
POLICY = """    policy:
      fleet_root_algorithm: SLH-DSA-SHA2-256f
      regional_root_algorithms: [SLH-DSA-SHA2-256f, ML-DSA-87]
      recovery_threshold: 3
      recovery_shares: 5
"""


def _error(proc: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    """One line naming what failed, the documented exit code, no traceback."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines()
             if ln.strip() and not ln.startswith("writroot: failpoint")]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("writroot: error: ") and text in lines[0], lines[0]
    assert lines[0].endswith(f"(exit {code})")


@dataclass
class World:
    root: Path
    token: Token
    module: str
    keyid: str = ""
    split: str = ""
    outputs: list[str] = field(default_factory=list)  # every CLI stdout/stderr, for the scan
    secrets: dict[str, bytes] = field(default_factory=dict)

    def cli(self, *args: str, env: dict[str, str] | None = None) -> Any:
        proc = run_cli(*args, *self.pinned(*args), cwd=self.root,
                       env={"PP": PASS, **PASS_ENV, **(env or {})})
        self.outputs += [proc.stdout, proc.stderr]
        return proc

    def pinned(self, *args: str) -> tuple[str, ...]:
        """After genesis, plan/show/approve pin the anchor and read the genesis outputs as
        the fleet's published set (a genesis plan, locked again later, pins none)."""
        if not self.keyid or args[:2] not in (("ceremony", "plan"), ("ceremony", "show"),
                                              ("ceremony", "approve")) or _genesis(args[2]):
            return ()
        return ("--anchor", self.keyid, "--trust", str(self.root / "genesis" / "out"))

    @property
    def recovery(self) -> Path:
        return self.root / "genesis" / "out" / "recovery" / f"{self.split}.recovery.json"

    def share(self, holder: str, split: str | None = None, where: str = "genesis/shares") -> str:
        return f"file:{self.root / where / f'{split or self.split}-{holder}.share.json'}"

    def host(self, token: Token, name: str, genesis: bool = False) -> str:
        """A host profile; after genesis it pins the anchor and names the published set."""
        path = self.root / f"{name}.host.yaml"
        pinned = "" if genesis or not self.keyid else \
            f"anchor: {self.keyid}\ntrust: genesis/out\n"
        path.write_text(f"token_label: {token.spec.label}\npin: env:{token.env_var}\n{pinned}")
        return str(path)

    def approve(self, locked: Path) -> None:
        for cid in ("alice", "chen"):
            proc = self.cli("ceremony", "approve", str(locked), "--yes", "--custodian", cid,
                            "--key", f"custodians/{cid}.key.pem", "--passphrase", "env:PP",
                            "--out", str(locked.parent / "approvals"))
            assert proc.returncode == 0, proc.stderr

    def plan(self, name: str, body: str, files: dict[str, Path] | None = None) -> Path:
        """A plan after genesis: roster and fleet root in force carried beside it."""
        d = self.root / name
        d.mkdir()
        shutil.copy(self.fleet_root, d / "fleet-root.dsse.json")
        for rel, src in (files or {}).items():
            (d / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, d / rel)
        (d / "plan.yaml").write_text(f"""plan: 1
ceremony: {name}
fleet: testfleet
signer: "{self.keyid}"
roster: fleet-root.dsse.json
fleet_root: fleet-root.dsse.json
operations:
{body}""")
        return d / "plan.yaml"

    def lock(self, plan: Path) -> Path:
        proc = self.cli("ceremony", "plan", str(plan))
        assert proc.returncode == 0, proc.stderr
        locked = plan.with_suffix(".lock.json")
        self.approve(locked)
        return locked

    @property
    def fleet_root(self) -> Path:
        return next((self.root / "genesis" / "out" / "artifacts").glob("fleet-root-*.dsse.json"))

    def restore(self, locked: Path, token: Token, name: str, shares: list[str],
                env: dict[str, str] | None = None) -> Any:
        return self.cli("recovery", "restore", str(locked), "--approvals",
                        str(locked.parent / "approvals"), "--host", self.host(token, name),
                        "--out", str(locked.parent / f"out-{name}"), "--yes",
                        "--allow-network", *[a for s in shares for a in ("--share", s)],
                        env=env)


def _genesis(plan: str) -> bool:
    """A genesis plan (YAML or locked): it makes the anchor, so it pins none."""
    text = Path(plan).read_text()
    return "signer: generate" in text or '"signer":"generate"' in text


def objects(token: Token) -> list[str]:
    """Every object on the token (public or private), by class and label."""
    from pkcs11 import Attribute

    with token.session() as session:
        return sorted(f"{o[Attribute.CLASS]}:{o[Attribute.LABEL]}"
                      for o in session.get_objects())


@pytest.fixture(scope="module")
def world(make_token: Callable[[str], Token], module: str, tmp_path_factory: Any) -> World:
    """Custodians, a genesis that makes a 3-of-5 split (share files under passphrases)."""
    root = tmp_path_factory.mktemp("recovery")
    w = World(root, make_token("rec-genesis"), module)
    for cid in ("alice", "bruno", "chen"):
        proc = w.cli("custodian", "keygen", "--id", cid, "--name", cid.title(), "--fleet",
                     "testfleet", "--out", "custodians", "--passphrase", "env:PP")
        assert proc.returncode == 0, proc.stderr
    g = root / "genesis"
    g.mkdir()
    (g / "roster.yaml").write_text(roster_yaml(("alice", "bruno", "chen")))
    shutil.copytree(root / "custodians", g / "custodians")
    (g / "plan.yaml").write_text(genesis_yaml(
        "rec-genesis", f"    recovery_holders: [{', '.join(HOLDERS)}]\n", POLICY))
    proc = w.cli("ceremony", "plan", str(g / "plan.yaml"))
    assert proc.returncode == 0, proc.stderr
    w.approve(g / "plan.lock.json")
    proc = w.cli("ceremony", "run", str(g / "plan.lock.json"), "--approvals",
                 str(g / "approvals"), "--host", w.host(w.token, "genesis"), "--out",
                 str(g / "out"), "--yes", "--allow-network", "--shares-out", str(g / "shares"),
                 "--json")
    assert proc.returncode == 0, proc.stderr
    w.keyid = json.loads(proc.stdout)["signer_keyid"]
    (recovery,) = (g / "out" / "recovery").glob("*.recovery.json")
    w.split = recovery.name.split(".")[0]
    _learn_secrets(w)
    return w


def _mnemonic(w: World, holder: str, split: str | None = None,
              where: str = "genesis/shares") -> str:
    path = Path(w.share(holder, split, where).removeprefix("file:"))
    return sharefile.decrypt(json.loads(path.read_bytes()),
                             bytearray(PASSPHRASES[holder].encode()), str(path))


def _learn_secrets(w: World, split: str | None = None, where: str = "genesis/shares",
                   recovery: Path | None = None) -> None:
    """What must never be found in a file or a log: shares, recovery key, private key."""
    blob = read_recovery(recovery or w.recovery)
    shares = [(h, _mnemonic(w, h, split, where)) for h in HOLDERS]
    for h, m in shares:
        w.secrets[f"share {h}"] = m.encode()
        w.secrets[f"share {h} (first words)"] = " ".join(m.split()[:6]).encode()
    key, _ = combine(blob.split, shares[:3])
    private = open_blob(blob, key, "test", w.keyid)
    for name, value in (("recovery key", bytes(key)), ("private key", bytes(private))):
        w.secrets[name] = value
        w.secrets[f"{name} hex"] = value.hex().encode()
        w.secrets[f"{name} b64"] = base64.b64encode(value)


def _restore_plan(w: World, name: str, recovery: Path, extra: str = "") -> Path:
    return w.lock(w.plan(name, f"""  - op: restore-key
    label: fleet-root-1
    recovery: recovery.json
{extra}""", {"recovery.json": recovery}))


@pytest.fixture(scope="module")
def restore_plan(world: World) -> Path:
    return _restore_plan(world, "restore-1", world.recovery)


def test_genesis_makes_the_split_and_shares_only_for_holders(world: World) -> None:
    out = world.root / "genesis" / "out"
    blob = read_recovery(world.recovery)
    assert blob.keyid == world.keyid and blob.split["threshold"] == 3
    assert [h["id"] for h in blob.split["holders"]] == list(HOLDERS)
    shares = sorted(p.name for p in (world.root / "genesis" / "shares").iterdir())
    assert shares == sorted(f"{world.split}-{h}.share.json" for h in HOLDERS)
    events = [json.loads(line) for line in (out / "transcript.jsonl").read_text().splitlines()]
    split_events = [e for e in events if e["event"] == "recovery-split"]
    assert len(split_events) == 1 and split_events[0]["facts"]["split"] == world.split
    with world.token.session() as session:
        (record,) = Custody(session, world.module).keys()
    assert record.recovery_split == world.split
    info = world.cli("hsm", "info", *world.token.cli_args(), "--json")
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["keys"][0]["recovery"] == world.split


def test_check_share(world: World, tmp_path: Path) -> None:
    ok = world.cli("recovery", "check-share", world.share("jun"), "--recovery",
                   str(world.recovery), "--json")
    assert ok.returncode == 0, ok.stderr
    report = json.loads(ok.stdout)
    assert (report["split"], report["holder"], report["member_index"], report["belongs"]) == \
        (world.split, "jun", 2, True)
    other = new_split(3, list(HOLDERS), world.keyid)
    foreign = world.cli("recovery", "check-share", "env:FOREIGN", "--recovery",
                        str(world.recovery), env={"FOREIGN": other.shares["jun"]})
    _error(foreign, 1, "not of split")
    words = _mnemonic(world, "ivo").split()
    words[4] = "academic" if words[4] != "academic" else "acid"
    typo = world.cli("recovery", "check-share", "env:TYPO", env={"TYPO": " ".join(words)})
    _error(typo, 2, "checksum")
    assert " ".join(words) not in typo.stderr


def _foreign_share(w: World) -> str:
    return new_split(3, list(HOLDERS), w.keyid).shares["kemal"]


def _mistyped(w: World) -> str:
    words = _mnemonic(w, "kemal").split()
    words[7] = "academic" if words[7] != "academic" else "acid"
    return " ".join(words)


#: (case, shares as (source, env), exit code, words in the error)
ROWS: list[tuple[str, Callable[[World], list[tuple[str, str | None]]], int, str]] = [
    ("m-1 shares", lambda w: [(w.share("hana"), None), (w.share("ivo"), None)], 2,
     "fewer than M shares"),
    ("a share of another split", lambda w: [(w.share("hana"), None), (w.share("ivo"), None),
                                            ("env:S", _foreign_share(w))], 2, "another split"),
    ("the same share twice", lambda w: [(w.share("hana"), None), (w.share("hana"), None),
                                        (w.share("ivo"), None)], 2, "given twice"),
    ("a mistyped word", lambda w: [(w.share("hana"), None), (w.share("ivo"), None),
                                   ("env:S", _mistyped(w))], 2, "checksum"),
]


@pytest.mark.parametrize("case, shares, code, text", ROWS, ids=[r[0] for r in ROWS])
def test_bad_share_sets_are_refused_with_nothing_on_the_token(
        world: World, restore_plan: Path, make_token: Callable[[str], Token], case: str,
        shares: Callable[[World], list[tuple[str, str | None]]], code: int, text: str) -> None:
    token = make_token("rec-bad")
    given = shares(world)
    env = {"S": value for _src, value in given if value is not None}
    proc = world.restore(restore_plan, token, "bad", [s for s, _ in given], env)
    _error(proc, code, text)
    assert objects(token) == []
    assert not (restore_plan.parent / "out-bad").exists()


def test_tampered_blob_is_refused_at_restore_and_rehearsal(world: World,
                                                           make_token: Callable[[str], Token],
                                                           tmp_path: Path) -> None:
    token = make_token("rec-tamper")
    locked = _restore_plan(world, "restore-tamper", world.recovery)
    recovery = locked.parent / "recovery.json"
    doc = json.loads(recovery.read_bytes())
    ct = bytearray(base64.b64decode(doc["ciphertext"]))
    ct[10] ^= 1
    doc["ciphertext"] = base64.b64encode(bytes(ct)).decode()
    recovery.write_bytes(canonical(doc) + b"\n")
    shares = [world.share(h) for h in ("hana", "jun", "lea")]
    _error(world.restore(locked, token, "tamper", shares), 1, "input changed")
    assert objects(token) == []
    # without a plan's pin (a rehearsal), the AEAD refuses it
    proc = world.cli("recovery", "rehearse", "--recovery", str(recovery), "--anchor",
                     world.keyid, *[a for s in shares for a in ("--share", s)], "--out",
                     str(tmp_path / "record.dsse.json"))
    _error(proc, 1, "did not open")
    assert not (tmp_path / "record.dsse.json").exists()


@pytest.mark.parametrize("field_", ["fleet", "keyid"])
def test_blob_of_another_fleet_or_keyid(world: World, tmp_path: Path, field_: str) -> None:
    doc = json.loads(world.recovery.read_bytes())
    other = raw_key()
    if field_ == "fleet":
        doc["fleet"] = "otherfleet"
    else:
        doc["key"] = other.key.to_json()
        doc["split"]["keyid"] = other.keyid
    edited = tmp_path / "edited.recovery.json"
    edited.write_bytes(canonical(doc) + b"\n")
    shares = [world.share(h) for h in ("ivo", "kemal", "lea")]
    anchor = world.keyid if field_ == "fleet" else other.keyid
    proc = world.cli("recovery", "rehearse", "--recovery", str(edited), "--anchor", anchor,
                     *[a for s in shares for a in ("--share", s)], "--out",
                     str(tmp_path / "record.dsse.json"))
    _error(proc, 1, "did not open")
    # a restore plan naming it is refused when it is locked
    plan = world.plan(f"restore-other-{field_}", """  - op: restore-key
    label: fleet-root-1
    recovery: recovery.json
""", {"recovery.json": edited})
    locked = world.cli("ceremony", "plan", str(plan))
    _error(locked, 1, "recovery-key")


def test_a_key_that_does_not_match_the_anchor(world: World, make_token: Callable[[str], Token],
                                              tmp_path: Path) -> None:
    """A blob that claims the anchor but seals another key: refused before the token."""
    blob = read_recovery(world.recovery)
    impostor = raw_key()
    split = new_split(3, list(HOLDERS), world.keyid)
    doc = seal(split.recovery_key, impostor.private, blob.key, "testfleet", "fleet-root",
               split.description())
    crafted = tmp_path / "crafted.recovery.json"
    crafted.write_bytes(canonical(doc) + b"\n")
    locked = _restore_plan(world, "restore-impostor", crafted)
    token = make_token("rec-impostor")
    env = {f"S{i}": split.shares[h] for i, h in enumerate(HOLDERS[:3])}
    proc = world.restore(locked, token, "impostor", [f"env:S{i}" for i in range(3)], env)
    _error(proc, 1, "does not match")
    assert objects(token) == []
    wrong_anchor = world.cli("recovery", "rehearse", "--recovery", str(world.recovery),
                             "--anchor", raw_key().keyid, "--share", world.share("hana"),
                             "--out", str(tmp_path / "r.dsse.json"))
    _error(wrong_anchor, 2, "not the anchor")


def test_restore_into_a_fresh_token_then_sign_a_regional_root(
        world: World, restore_plan: Path, make_token: Callable[[str], Token]) -> None:
    token = make_token("rec-fresh")
    proc = world.restore(restore_plan, token, "fresh",
                         [world.share(h) for h in ("lea", "hana", "kemal")])
    assert proc.returncode == 0, proc.stderr
    with token.session() as session:
        custody = Custody(session, world.module)
        (record,) = custody.keys()
        kek_check = custody.kek_check_value()
    with world.token.session() as session:
        assert kek_check != Custody(session, world.module).kek_check_value()  # a new KEK
    assert record.keyid == world.keyid and record.recovery_split == world.split
    out = restore_plan.parent / "out-fresh"
    events = [json.loads(line)["event"] for line in
              (out / "transcript.jsonl").read_text().splitlines()]
    assert "restore" in events
    # the restored key signs a regional root that verifies under the same anchor
    regional = raw_key()
    request = world.root / "conus.request.dsse.json"
    request.write_bytes(key_request(regional, "CONUS").dumps())
    plan = world.plan("after-restore", """  - op: sign-regional-root
    region: CONUS
    request: conus.request.dsse.json
    validity_days: 60
    enclaves:
      - {trust_domain: conus-1.writsov.com, impact_level: IL4}
""", {"conus.request.dsse.json": request})
    locked = world.lock(plan)
    run = world.cli("ceremony", "run", str(locked), "--approvals",
                    str(locked.parent / "approvals"), "--host", world.host(token, "fresh"),
                    "--out", str(locked.parent / "out"), "--yes", "--allow-network")
    assert run.returncode == 0, run.stderr
    verify = world.cli("verify", str(world.fleet_root), str(locked.parent / "out" / "artifacts"),
                       "--anchor", world.keyid, "--json")
    assert verify.returncode == 0, verify.stdout
    types = sorted(r["type"] for r in json.loads(verify.stdout)["artifacts"])
    assert "regional-root" in types


def test_sigkill_during_a_restore_then_rerun(world: World, make_token: Callable[[str], Token]
                                              ) -> None:
    token = make_token("rec-kill")
    locked = _restore_plan(world, "restore-kill", world.recovery)
    shares = [world.share(h) for h in ("ivo", "jun", "kemal")]
    killed = world.restore(locked, token, "kill", shares, failpoint_env("after-restore:kill"))
    assert killed.returncode == -9, killed.stderr
    assert not (locked.parent / "out-kill").exists()
    again = world.restore(locked, token, "kill", shares)
    assert again.returncode == 0, again.stderr
    with token.session() as session:
        keys = Custody(session, world.module).keys()
    assert [k.keyid for k in keys] == [world.keyid]  # the orphan was removed, one key left


def test_rehearsal(world: World, tmp_path: Path) -> None:
    record = tmp_path / "rehearsal.dsse.json"
    before = set(Path("/tmp").glob("writroot-rehearsal-*"))
    proc = world.cli("recovery", "rehearse", "--recovery", str(world.recovery), "--anchor",
                     world.keyid, "--share", world.share("jun"), "--share",
                     world.share("hana"), "--share", world.share("lea"), "--out", str(record),
                     "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["holders"] == ["jun", "hana", "lea"] and report["token_destroyed"]
    assert set(Path("/tmp").glob("writroot-rehearsal-*")) == before
    env = Envelope.parse(record.read_bytes(), str(record))
    anchor = read_recovery(world.recovery).key
    assert env.signed_by(anchor)
    st = json.loads(env.payload)
    assert st["type"] == "recovery-rehearsal" and st["subject"]["split"] == world.split
    assert st["subject"]["result"] == "restored-and-verified"
    # a record is never a key: no PEM, no sealed backup beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rehearsal.dsse.json"]


def test_resplit_retires_the_old_split(world: World, tmp_path: Path) -> None:
    new_holders = ["hana", "ivo", "jun", "mo", "nia"]
    plan = world.plan("resplit", f"""  - op: resplit-recovery
    recovery: recovery.json
    recovery_holders: [{", ".join(new_holders)}]
""", {"recovery.json": world.recovery})
    locked = world.lock(plan)
    env = {"WRITROOT_SHARE_PASSPHRASE_MO": "share-passphrase-of-mo",
           "WRITROOT_SHARE_PASSPHRASE_NIA": "share-passphrase-of-nia"}
    proc = world.cli("ceremony", "run", str(locked), "--approvals",
                     str(locked.parent / "approvals"), "--host", world.host(world.token, "rs"),
                     "--out", str(locked.parent / "out"), "--yes", "--allow-network",
                     "--shares-out", str(locked.parent / "shares"), env=env)
    assert proc.returncode == 0, proc.stderr
    (new,) = (locked.parent / "out" / "recovery").glob("*.recovery.json")
    blob = read_recovery(new)
    assert blob.split["retires"] == world.split and blob.keyid == world.keyid
    assert [h["id"] for h in blob.split["holders"]] == new_holders
    shares = [f"file:{p}" for p in sorted((locked.parent / "shares").iterdir())
              if p.name.split("-", 1)[1].split(".")[0] in ("jun", "mo", "nia")]
    rehearsal = world.cli("recovery", "rehearse", "--recovery", str(new), "--anchor",
                          world.keyid, *[a for s in shares for a in ("--share", s)], "--out",
                          str(tmp_path / "r.dsse.json"), env=env)
    assert rehearsal.returncode == 0, rehearsal.stderr
    old_share = world.cli("recovery", "check-share", world.share("hana"), "--recovery", str(new))
    _error(old_share, 1, "not of split")
    for h in ("mo", "nia"):
        m = _mnemonic_at(locked.parent / "shares", blob.split_id, h, env)
        world.secrets[f"resplit share {h}"] = m.encode()


def _mnemonic_at(d: Path, split: str, holder: str, env: dict[str, str]) -> str:
    path = d / f"{split}-{holder}.share.json"
    passphrase = env.get(f"WRITROOT_SHARE_PASSPHRASE_{holder.upper()}", PASSPHRASES.get(holder))
    assert passphrase is not None
    return sharefile.decrypt(json.loads(path.read_bytes()), bytearray(passphrase.encode()),
                             str(path))


def test_a_genesis_with_recovery_holders_needs_the_policy_and_a_place_for_shares(
        world: World) -> None:
    d = world.root / "no-policy"
    shutil.copytree(world.root / "genesis", d, ignore=shutil.ignore_patterns("out", "shares",
                                                                             "approvals",
                                                                             "*.lock.json"))
    text = (d / "plan.yaml").read_text()
    (d / "plan.yaml").write_text(text.replace("      recovery_threshold: 3\n", "")
                                 .replace("      recovery_shares: 5\n", ""))
    _error(world.cli("ceremony", "plan", str(d / "plan.yaml")), 1, "recovery-policy")
    (d / "plan.yaml").write_text(text.replace("recovery_shares: 5", "recovery_shares: 4"))
    _error(world.cli("ceremony", "plan", str(d / "plan.yaml")), 1, "4 holders")
    # native custody and recovery holders: refused at lock, before anyone approves or types
    native = text.replace("    algorithm: SLH-DSA-SHA2-256f\n",
                          "    algorithm: SLH-DSA-SHA2-256f\n    custody: native\n", 1)
    assert native != text
    (d / "plan.yaml").write_text(native)
    proc = world.cli("ceremony", "plan", str(d / "plan.yaml"))
    _error(proc, 1, "operations[0].recovery_holders")
    assert "native custody never leaves the token" in proc.stderr and "[recovery-custody]" \
        in proc.stderr
    assert not (d / "plan.lock.json").exists()
    (d / "plan.yaml").write_text(native.replace("custody: native", "custody: wrapped"))
    assert world.cli("ceremony", "plan", str(d / "plan.yaml")).returncode == 0
    (d / "plan.lock.json").unlink()
    (d / "plan.yaml").write_text(native.replace("custody: native", "custody: hsm"))
    _error(world.cli("ceremony", "plan", str(d / "plan.yaml")), 2, "custody")
    (d / "plan.yaml").write_text(text.replace("ceremony: rec-genesis", "ceremony: rec-noout"))
    proc = world.cli("ceremony", "plan", str(d / "plan.yaml"))
    assert proc.returncode == 0, proc.stderr
    world.approve(d / "plan.lock.json")
    run = world.cli("ceremony", "run", str(d / "plan.lock.json"), "--approvals",
                    str(d / "approvals"), "--host", world.host(world.token, "noout", True),
                    "--out", str(d / "out"), "--yes", "--allow-network")
    _error(run, 2, "--shares-out")
    assert not (d / "out").exists()


def test_no_secret_in_any_file_or_log(world: World, tmp_path_factory: Any) -> None:
    """Runs last in this module: every file the tests made, every token file and every CLI
    output is searched for shares, the recovery key and the private key."""
    import os

    assert len(world.secrets) >= 10
    haystacks: list[tuple[str, bytes]] = [(f"cli output {i}", o.encode())
                                          for i, o in enumerate(world.outputs)]
    tokens = Path(os.environ["SOFTHSM2_CONF"]).parent
    for base in (tmp_path_factory.getbasetemp(), tokens):
        for path in base.rglob("*"):
            if path.is_file() and not path.is_symlink():
                haystacks.append((str(path), path.read_bytes()))
    for where, data in haystacks:
        for name, secret in world.secrets.items():
            assert secret not in data, f"{name} found in {where}"
    assert PublicKey  # the public key is no secret: PEMs and blobs carry it


@pytest.mark.parametrize("name", ["restore", "resplit-recovery", "genesis", "fleet-rotation"])
def test_standard_recovery_plans_pass_the_plan_rules(name: str) -> None:
    from writroot.ceremony import strictyaml
    from writroot.ceremony.plan import check_plan

    path = Path(__file__).parent.parent / "ceremonies" / f"{name}.yaml"
    plan = check_plan(strictyaml.load_file(path))
    assert any(op["op"] in ("restore-key", "resplit-recovery") or "recovery_holders" in op
               for op in plan["operations"])
