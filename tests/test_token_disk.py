"""The token and the disk (issue 10), on real SoftHSM2 tokens through the real CLI.

Planted objects are refused or ignored, a stopped run leaves no key that blocks its re-run, a
plan runs once, outputs appear all at once or not at all, and no traceback reaches a user.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Token, failpoint_env, run_cli
from writroot.crypto.algorithms import SLH_DSA_SHA2_256F
from writroot.errors import BadInput, HSMError
from writroot.hsm.custody import APPLICATION, KEK_LABEL, Custody, aad_for
from writroot.hsm.p11raw import _SIGNATURES, RawPQC
from writroot.hsm.token import open_session
from writroot.jsonio import canonical, read_capped

PASS = "custodian-passphrase-for-tests"


def _one_line_error(proc: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines()  # progress steps are on stderr too
             if ln.strip() and not ln.startswith(("writroot: failpoint", "- operation "))]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("writroot: error: ") and text in lines[0], lines[0]
    assert lines[0].endswith(f"(exit {code})")
    assert "Traceback" not in proc.stdout + proc.stderr


# -- the key-encryption key -------------------------------------------------------------------


def test_planted_public_kek_is_ignored_and_nothing_opens_without_the_pin(make_token, module,
                                                                          tmp_path) -> None:
    from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag
    from pkcs11.mechanisms import GCMParams

    token: Token = make_token("planted-kek")
    # The attacker: a read-write public session, no PIN.
    with open_session(token.spec, rw=True, login=False) as public:
        public.generate_key(KeyType.AES, 256, label=KEK_LABEL, store=True,
                            capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT,
                            template={Attribute.PRIVATE: False, Attribute.SENSITIVE: True,
                                      Attribute.EXTRACTABLE: False})
    with token.session() as session:
        custody = Custody(session, module)
        record = custody.generate(SLH_DSA_SHA2_256F, "fleet-root", "fleet-root-1",
                                  backup_dir=tmp_path)
        attrs = custody.kek_attributes()
        planted = custody.planted()
    assert attrs["private"] is True and attrs["local"] is True
    assert [(p.label, p.kind) for p in planted] == [(KEK_LABEL, "secret key")]
    # Without the PIN: the planted key does not open the blob, and the real KEK is invisible.
    with open_session(token.spec, rw=True, login=False) as public:
        keys = list(public.get_objects({Attribute.LABEL: KEK_LABEL}))
        assert len(keys) == 1 and keys[0][Attribute.PRIVATE] is False
        aad = aad_for(record.role, record.key, record.kek_check)
        with pytest.raises(Exception):
            keys[0].decrypt(record.ciphertext, mechanism=Mechanism.AES_GCM,
                            mechanism_param=GCMParams(record.nonce, aad, 128))
    info = run_cli("hsm", "info", *token.cli_args(), "--no-login", "--json")
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["planted"] == [{"label": KEK_LABEL, "kind": "secret key"}]
    text = run_cli("hsm", "info", *token.cli_args())
    assert "PLANTED" in text.stdout and KEK_LABEL in text.stdout


def _make_kek(session: Any, row: str) -> None:
    from pkcs11 import Attribute, KeyType, MechanismFlag, ObjectClass

    caps = MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT
    good = {Attribute.PRIVATE: True, Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
            Attribute.MODIFIABLE: False, Attribute.COPYABLE: False}
    if row == "not local":
        session.create_object({Attribute.CLASS: ObjectClass.SECRET_KEY,
                               Attribute.KEY_TYPE: KeyType.AES, Attribute.TOKEN: True,
                               Attribute.LABEL: KEK_LABEL, Attribute.VALUE: os.urandom(32),
                               Attribute.ENCRYPT: True, Attribute.DECRYPT: True, **good})
        return
    changes = {"extractable": {Attribute.EXTRACTABLE: True},
               "not sensitive": {Attribute.SENSITIVE: False},
               "modifiable": {Attribute.MODIFIABLE: True},
               "copyable": {Attribute.COPYABLE: True}}
    key_type, bits = KeyType.AES, 256
    if row == "16 bytes":
        bits = 128
    if row == "not AES":
        key_type = KeyType.GENERIC_SECRET
    count = 2 if row == "two of them" else 1
    for _ in range(count):
        session.generate_key(key_type, bits, label=KEK_LABEL, store=True,
                             capabilities=caps if key_type == KeyType.AES else 0,
                             template={**good, **changes.get(row, {})})


@pytest.mark.parametrize(("row", "words"), [
    ("extractable", "not extractable"),
    ("not sensitive", "sensitive"),
    ("16 bytes", "32 bytes long"),
    ("not AES", "an AES key"),
    ("not local", "local (generated on the token)"),
    ("modifiable", "not modifiable"),
    ("copyable", "not copyable"),
    ("two of them", "refusing to choose"),
])
def test_kek_with_a_wrong_attribute_is_refused(make_token, module, row: str,
                                               words: str) -> None:
    token: Token = make_token("bad-kek")
    with token.session() as session:
        _make_kek(session, row)
        custody = Custody(session, module)
        with pytest.raises(HSMError, match=words.replace("(", r"\(").replace(")", r"\)")):
            custody.generate(SLH_DSA_SHA2_256F, "fleet-root", "fleet-root-1")
        assert custody.keys() == []


# -- key records --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def records_token(make_token, module) -> Token:
    token: Token = make_token("records")
    with token.session() as session:
        Custody(session, module).generate(SLH_DSA_SHA2_256F, "regional-root", "good-1")
    return token


def test_corrupted_and_planted_records(records_token: Token, module: str) -> None:
    from pkcs11 import Attribute, ObjectClass

    with records_token.session() as session:
        custody = Custody(session, module)
        good = custody.keys()[0]
        base = {Attribute.CLASS: ObjectClass.DATA, Attribute.TOKEN: True,
                Attribute.APPLICATION: APPLICATION}
        session.create_object({**base, Attribute.PRIVATE: True, Attribute.LABEL: "corrupt-1",
                               Attribute.VALUE: b'{"format": "writroot-key/1", "label": '})
    with open_session(records_token.spec, rw=True, login=False) as public:
        forged = {**good.token_json(), "label": "forged-1"}
        public.create_object({**base, Attribute.PRIVATE: False, Attribute.LABEL: "forged-1",
                              Attribute.VALUE: canonical(forged)})
    with records_token.session() as session:
        custody = Custody(session, module)
        assert [r.label for r in custody.keys()] == ["good-1"]
        assert [label for label, _ in custody.problems] == ["corrupt-1"]
        assert custody.find(good.keyid).label == "good-1"  # one match, the private one
        assert [p.label for p in custody.planted()] == ["forged-1"]
        assert custody.sign(good.keyid, b"still signs").custody == "wrapped"
    info = run_cli("hsm", "info", *records_token.cli_args(), "--json")
    assert info.returncode == 0, info.stderr
    report = json.loads(info.stdout)
    assert [k["label"] for k in report["keys"]] == ["good-1"]
    assert report["unreadable_records"][0]["label"] == "corrupt-1"
    assert {"label": "forged-1", "kind": "data object"} in report["planted"]


def test_retire_and_superseded(make_token, module, tmp_path) -> None:
    token: Token = make_token("retire")
    with token.session() as session:
        custody = Custody(session, module)
        old = custody.generate(SLH_DSA_SHA2_256F, "fleet-root", "fleet-root-1",
                               backup_dir=tmp_path)
        custody.generate(SLH_DSA_SHA2_256F, "fleet-root", "fleet-root-2",
                         supersedes=old.keyid)
    info = json.loads(run_cli("hsm", "info", *token.cli_args(), "--json").stdout)
    assert {k["label"]: k["status"] for k in info["keys"]} == {"fleet-root-1": "superseded",
                                                                "fleet-root-2": "active"}
    with token.session() as session:
        custody = Custody(session, module)
        custody.retire(old.keyid, "superseded", "test")
        with pytest.raises(HSMError, match="retired"):
            custody.sign(old.keyid, b"x")
        with pytest.raises(HSMError, match="retired"):
            custody.restore_backup(tmp_path / "fleet-root-1.sealed.json")
        assert [r.label for r in custody.keys()] == ["fleet-root-2"]
    info = json.loads(run_cli("hsm", "info", *token.cli_args(), "--json").stdout)
    assert info["retired_keys"] == [old.keyid]


# -- native custody: read-back and ctypes hygiene ---------------------------------------------


def test_raw_calls_declare_their_c_signatures(make_token, module) -> None:
    from pkcs11 import Attribute, KeyType

    token: Token = make_token("raw")
    with token.session() as session:
        raw = RawPQC(module, session.handle)
        for name in _SIGNATURES:
            fn = getattr(raw._lib, name)
            assert fn.argtypes and fn.restype is ctypes.c_ulong, name
        from pkcs11.util.ec import encode_named_curve_parameters

        params = session.create_domain_parameters(
            KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
            local=True)
        _, weak_priv = params.generate_keypair(
            store=True, label="weak", private_template={Attribute.SENSITIVE: False,
                                                        Attribute.EXTRACTABLE: True})
        with pytest.raises(HSMError, match="not sensitive, not extractable"):
            raw.require_protected(ctypes.c_ulong(weak_priv.handle))
        _, strong_priv = params.generate_keypair(
            store=True, label="strong", private_template={Attribute.SENSITIVE: True,
                                                          Attribute.EXTRACTABLE: False})
        raw.require_protected(ctypes.c_ulong(strong_priv.handle))
        # a sensitive attribute is "unavailable", not a crash or a garbage length
        assert raw._attribute(ctypes.c_ulong(strong_priv.handle), 0x11, "CKA_VALUE") is None


# -- the one capped read ------------------------------------------------------------------------


def test_capped_read_refuses_fifos_devices_and_links(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(BadInput, match="is a FIFO"):
        read_capped(fifo, 1024)
    with pytest.raises(BadInput, match="character device"):
        read_capped(Path("/dev/zero"), 1024)
    (tmp_path / "real").write_bytes(b"x" * 10)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(BadInput, match="symbolic link"):
        read_capped(tmp_path / "link", 1024)
    with pytest.raises(BadInput, match="larger than the 5-byte cap"):
        read_capped(tmp_path / "real", 5)
    assert read_capped(tmp_path / "real", 10) == b"x" * 10
    proc = run_cli("verify", str(fifo), "--anchor", "ab" * 32)
    _one_line_error(proc, 2, "is a FIFO")


def test_failpoint_cannot_be_switched_on_by_accident() -> None:
    proc = run_cli("ceremony", "run", "x.lock.json", "--approvals", "a", "--host", "h",
                   "--out", "o", env={"WRITROOT_FAILPOINT": "after-keygen:kill"})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_debug_keeps_the_traceback(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    quiet = run_cli("verify", str(fifo), "--anchor", "ab" * 32)
    assert quiet.returncode == 2
    loud = subprocess.run([*_python(), "-m", "writroot", "--debug", "verify", str(fifo),
                           "--anchor", "ab" * 32], capture_output=True, text=True, check=False)
    assert loud.returncode == 2 and "Traceback" in loud.stderr


def _python() -> list[str]:
    import sys

    return [sys.executable]


# -- ceremonies: crash windows, a plan runs once, output paths ----------------------------------


@dataclass
class Fleet:
    root: Path
    token: Token

    def cli(self, *args: str, env: dict[str, str] | None = None) -> Any:
        return run_cli(*args, cwd=self.root, env={"PP": PASS, **(env or {})})

    def plan(self, name: str, label: str) -> Path:
        d = self.root / name
        d.mkdir()
        shutil.copy(self.root / "roster.yaml", d / "roster.yaml")
        shutil.copytree(self.root / "custodians", d / "custodians")
        (d / "plan.yaml").write_text(f"""plan: 1
ceremony: {name}
fleet: testfleet
signer: generate
roster: roster.yaml
operations:
  - op: generate-fleet-root
    label: {label}
    algorithm: SLH-DSA-SHA2-256f
  - op: sign-fleet-root
    validity_days: 548
    policy:
      fleet_root_algorithm: SLH-DSA-SHA2-256f
      regional_root_algorithms: [SLH-DSA-SHA2-256f, ML-DSA-87]
""")
        proc = self.cli("ceremony", "plan", str(d / "plan.yaml"))
        assert proc.returncode == 0, proc.stderr
        locked = d / "plan.lock.json"
        for cid in ("alice", "chen"):
            proc = self.cli("ceremony", "approve", str(locked), "--yes", "--custodian", cid,
                            "--key", f"custodians/{cid}.key.pem", "--passphrase", "env:PP",
                            "--out", str(d / "approvals"))
            assert proc.returncode == 0, proc.stderr
        return locked

    def run(self, locked: Path, out: Path, env: dict[str, str] | None = None,
            host: str = "host.yaml") -> Any:
        return self.cli("ceremony", "run", str(locked), "--approvals",
                        str(locked.parent / "approvals"), "--host", host, "--out", str(out),
                        "--yes", "--allow-network", env=env)

    def keys(self, module: str) -> list[str]:
        with self.token.session() as session:
            return [r.label for r in Custody(session, module).keys()]


@pytest.fixture(scope="module")
def fleet(make_token, tmp_path_factory) -> Fleet:
    root = tmp_path_factory.mktemp("token-disk")
    token = make_token("token-disk")
    (root / "host.yaml").write_text(f"token_label: {token.spec.label}\n"
                                    f"pin: env:{token.env_var}\n")
    for cid in ("alice", "bruno", "chen"):
        proc = run_cli("custodian", "keygen", "--id", cid, "--name", cid.title(), "--fleet",
                       "testfleet", "--out", "custodians", "--passphrase", "env:PP",
                       cwd=root, env={"PP": PASS})
        assert proc.returncode == 0, proc.stderr
    (root / "roster.yaml").write_text("threshold: 2\ncustodians:\n" + "".join(
        f"  - id: {c}\n    name: {c.title()}\n    enrolment: custodians/{c}.enrolment.dsse.json\n"
        for c in ("alice", "bruno", "chen")))
    return Fleet(root, token)


def _fresh_host(fleet: Fleet, make_token, name: str) -> tuple[Token, str]:
    token: Token = make_token(name)
    host = fleet.root / f"{name}.host.yaml"
    host.write_text(f"token_label: {token.spec.label}\npin: env:{token.env_var}\n")
    return token, str(host)


def test_sigkill_after_keygen_then_rerun_with_the_same_label(fleet: Fleet, make_token,
                                                             module: str) -> None:
    token, host = _fresh_host(fleet, make_token, "kill-keygen")
    locked = fleet.plan("kill-keygen", "fleet-root-k")
    out = fleet.root / "kill-keygen" / "out"
    killed = fleet.run(locked, out, failpoint_env("after-keygen:kill"), host)
    assert killed.returncode == -9, killed.stderr
    assert not out.exists()
    with token.session() as session:
        assert [r.label for r in Custody(session, module).keys()] == ["fleet-root-k"]
    again = fleet.run(locked, out, host=host)
    assert again.returncode == 0, again.stderr
    with token.session() as session:
        records = Custody(session, module).keys()
    assert [r.label for r in records] == ["fleet-root-k"]
    pem = (out / "fleet-root.pem").read_text()
    assert records[0].key.pem == pem
    assert (out / "keys" / "fleet-root-k.sealed.json").exists()


def test_a_plan_runs_once(fleet: Fleet, make_token, module: str) -> None:
    _token, host = _fresh_host(fleet, make_token, "once")
    locked = fleet.plan("once", "fleet-root-o")
    first = fleet.run(locked, fleet.root / "once" / "out-1", host=host)
    assert first.returncode == 0, first.stderr
    plan_sha = json.loads(run_cli("ceremony", "show", str(locked), "--json").stdout
                          or "{}").get("plan_sha256", "")
    second = fleet.run(locked, fleet.root / "once" / "out-2", host=host)
    _one_line_error(second, 1, "already ran")
    if plan_sha:
        assert plan_sha in second.stderr
    assert not (fleet.root / "once" / "out-2").exists()



def test_run_warns_of_planted_public_objects(fleet: Fleet, make_token) -> None:
    """A public object named like the KEK (made without the PIN): the run goes on (custody
    ignores it), but warns on stderr and records it in the transcript."""
    from pkcs11 import Attribute, KeyType, MechanismFlag

    token, host = _fresh_host(fleet, make_token, "planted-run")
    with open_session(token.spec, rw=True, login=False) as public:
        public.generate_key(KeyType.AES, 256, label=KEK_LABEL, store=True,
                            capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT,
                            template={Attribute.PRIVATE: False})
    locked = fleet.plan("planted-run", "fleet-root-pl")
    out = fleet.root / "planted-run" / "out"
    proc = fleet.run(locked, out, host=host)
    assert proc.returncode == 0, proc.stderr
    warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith("writroot: warning:")]
    assert len(warnings) == 1 and "PLANTED public secret key" in warnings[0]
    assert KEK_LABEL in warnings[0]
    events = [json.loads(line) for line in (out / "transcript.jsonl").read_text().splitlines()]
    planted = [e for e in events if e["event"] == "planted"]
    assert planted and planted[0]["facts"]["objects"] == [{"label": KEK_LABEL,
                                                           "kind": "secret key"}]

@pytest.mark.parametrize(("point", "rerun"), [("before-publish", 0), ("after-publish", 1)])
def test_killed_around_the_publish(fleet: Fleet, make_token, module: str, point: str,
                                   rerun: int) -> None:
    token, host = _fresh_host(fleet, make_token, f"kill-{point}")
    locked = fleet.plan(f"kill-{point}", "fleet-root-p")
    out = fleet.root / f"kill-{point}" / "out"
    killed = fleet.run(locked, out, failpoint_env(f"{point}:kill"), host)
    assert killed.returncode == -9, killed.stderr
    assert out.exists() == (point == "after-publish")
    again = fleet.run(locked, out if rerun == 0 else out.with_name("out-again"), host=host)
    assert again.returncode == rerun, again.stderr
    if rerun:
        _one_line_error(again, 1, "already ran")
    with token.session() as session:
        assert [r.label for r in Custody(session, module).keys()] == ["fleet-root-p"]


def test_disk_full_after_signing_is_one_line_and_leaves_no_key(fleet: Fleet, make_token,
                                                               module: str) -> None:
    token, host = _fresh_host(fleet, make_token, "enospc")
    locked = fleet.plan("enospc", "fleet-root-e")
    out = fleet.root / "enospc" / "out"
    proc = fleet.run(locked, out, failpoint_env("before-publish:enospc"), host)
    _one_line_error(proc, 2, "signed, but could not publish: ")
    assert "nothing was written; re-run the plan" in proc.stderr
    assert not out.exists()
    assert not list(out.parent.glob(".out.writroot-staging-*"))
    stopped = out.parent / "out.stopped.transcript.jsonl"
    assert b'"event":"stopped"' in stopped.read_bytes()
    with token.session() as session:
        assert Custody(session, module).keys() == []
    again = fleet.run(locked, out, host=host)
    assert again.returncode == 0, again.stderr


def _mount_tmpfs(where: Path, options: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a tmpfs: {done.stderr.strip()}")
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


@pytest.fixture()
def mounts() -> Iterator[list[Path]]:
    made: list[Path] = []
    yield made
    for where in reversed(made):
        subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


@pytest.mark.parametrize("case", ["full disk", "read-only", "dangling symlink", "not a dir"])
def test_unpublishable_output_is_refused_before_the_hsm(fleet: Fleet, make_token, module: str,
                                                        mounts: list[Path], case: str) -> None:
    token, host = _fresh_host(fleet, make_token, "outpath")
    name = "outpath-" + case.replace(" ", "-")
    locked = fleet.plan(name, "fleet-root-x")
    media = fleet.root / name / "media"
    if case == "full disk":
        _mount_tmpfs(media, "size=256k")
        mounts.append(media)
        (media / "filler").write_bytes(b"\0" * (200 * 1024))
        out, words, code = media / "out", "bytes free", 2
    elif case == "read-only":
        _mount_tmpfs(media, "ro,size=1m")
        mounts.append(media)
        out, words, code = media / "out", "read-only file system", 2
    elif case == "dangling symlink":
        media.mkdir()
        out = media / "out"
        out.symlink_to(media / "nowhere")
        words, code = "dangling symbolic link", 2
    else:
        media.write_text("a file")
        out, words, code = media / "out", "is not a directory", 2
    proc = fleet.run(locked, out, host=host)
    _one_line_error(proc, code, words)
    assert not os.path.exists(out)
    with token.session() as session:  # the HSM was never asked for anything
        assert Custody(session, module).keys() == []
