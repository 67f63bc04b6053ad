"""`writroot witness init|cosign|status` through the real entry point: a consistent advance is
cosigned; a rollback, a split view and a forked log are refused (exit 1) with the evidence
(both signed checkpoints); hostile inputs are one-line exit-2 errors; nothing is written on
failure and no traceback reaches the user."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from writroot.log import checkpoint, cosignature, logfile, note
from writroot.log.logfile import Log, MemoryKey

ORIGIN = "fleet.writsov.example/log"
WITNESS = "auditor.writsov.example/witness"
PASS = {"WITNESS_PASS": "a witness passphrase"}


@dataclass
class World:
    dir: Path
    log_key: MemoryKey

    def signed(self, log: Log) -> bytes:
        return log.sign([logfile.log_signer(log.origin, self.log_key, lambda: int(time.time()))])

    def publish(self, name: str, log: Log, key: MemoryKey | None = None) -> Path:
        """A log directory (tiles and checkpoint); returns the checkpoint's path."""
        signer = logfile.log_signer(log.origin, key or self.log_key, lambda: int(time.time()))
        logfile.write_directory(self.dir / name, log, log.sign([signer]))
        return self.dir / name / "checkpoint"

    def cosign(self, cp: Path, out: str, *extra: str) -> Any:
        return run_cli("witness", "cosign", str(cp), "--key", str(self.dir / "w.key"),
                       "--state", str(self.dir / "w.state"), "--log-key",
                       str(self.dir / "log.pem"), "--out", str(self.dir / out),
                       "--passphrase", "env:WITNESS_PASS", *extra, env=PASS)


def _log(n: int, fork_at: int | None = None) -> Log:
    log = Log(ORIGIN)
    for i in range(n):
        tag = b"fork %d" if fork_at is not None and i >= fork_at else b"statement %d"
        log.append(logfile.entry_for(tag % i))
    return log


@pytest.fixture(scope="module")
def log_key() -> MemoryKey:
    return MemoryKey.generate()


@pytest.fixture()
def world(tmp_path: Path, log_key: MemoryKey) -> World:
    (tmp_path / "log.pem").write_text(log_key.key.pem)
    proc = run_cli("witness", "init", "--name", WITNESS, "--key", str(tmp_path / "w.key"),
                   "--state", str(tmp_path / "w.state"), "--passphrase", "env:WITNESS_PASS",
                   "--json", env=PASS)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["vkey"].startswith(WITNESS + "+")
    return World(tmp_path, log_key)


def _state(world: World) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((world.dir / "w.state").read_text())
    return data


def _first(world: World, size: int = 300) -> Path:
    cp = world.publish(f"log{size}", _log(size))
    proc = world.cosign(cp, f"c{size}")
    assert proc.returncode == 0, proc.stderr
    return cp


def test_init_makes_an_encrypted_ml_dsa_44_key_and_an_empty_state(world: World) -> None:
    assert b"ENCRYPTED PRIVATE KEY" in (world.dir / "w.key").read_bytes()
    assert (world.dir / "w.key").stat().st_mode & 0o077 == 0
    state = _state(world)
    assert state["witness"] == WITNESS and state["logs"] == {}
    name, key = cosignature.parse_vkey(state["vkey"], "vkey")
    assert name == WITNESS and key.algorithm.name == "ML-DSA-44"
    again = run_cli("witness", "init", "--name", WITNESS, "--key", str(world.dir / "w.key"),
                    "--state", str(world.dir / "other.state"), "--passphrase",
                    "env:WITNESS_PASS", env=PASS)
    assert again.returncode == 2 and "exists already" in again.stderr
    assert not (world.dir / "other.state").exists()


def test_consistent_advance_is_cosigned_and_remembered(world: World) -> None:
    _first(world, 300)
    cp = world.publish("log700", _log(700))
    proc = world.cosign(cp, "c700", "--tiles", str(world.dir / "log700"), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert (out["size"], out["previous_size"]) == (700, 300)
    head = _state(world)["logs"][ORIGIN]
    assert head["size"] == 700 and head["checkpoint"] == cp.read_text()
    # the output verifies under the log key and under the witness's own vkey
    _, key = cosignature.parse_vkey(_state(world)["vkey"], "vkey")
    opened = note.open_note((world.dir / "c700").read_bytes(), [
        cosignature.CosignatureVerifier(ORIGIN, world.log_key.key),
        cosignature.CosignatureVerifier(WITNESS, key)], "c700")
    assert [s.name for s in opened.verified] == [ORIGIN, WITNESS]
    status = run_cli("witness", "status", "--state", str(world.dir / "w.state"))
    assert status.returncode == 0 and f"{ORIGIN}  size 700" in status.stdout
    # the same checkpoint again is fine (a fresh timestamp, no new state)
    assert world.cosign(cp, "c700-again").returncode == 0


def _evidence(world: World, out: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((world.dir / f"{out}.evidence.json").read_text())
    return data


def _refused(world: World, proc: Any, out: str, kind: str, known: Path, shown: Path) -> None:
    assert proc.returncode == 1, proc.stderr
    assert f"refused ({kind})" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (world.dir / out).exists()
    ev = _evidence(world, out)
    assert (ev["kind"], ev["origin"], ev["witness"]) == (kind, ORIGIN, WITNESS)
    assert ev["cosigned"] == known.read_text() and ev["presented"] == shown.read_text()
    for signed in (ev["cosigned"], ev["presented"]):  # both are the log's own signatures
        note.open_note(signed.encode(), [cosignature.CosignatureVerifier(
            ORIGIN, world.log_key.key)], "evidence")


def test_rollback_is_refused_with_evidence(world: World) -> None:
    old = world.publish("log300", _log(300))
    assert world.cosign(old, "c300").returncode == 0
    new = world.publish("log700", _log(700))
    assert world.cosign(new, "c700", "--tiles", str(world.dir / "log700")).returncode == 0
    before = (world.dir / "w.state").read_bytes()
    proc = world.cosign(old, "c300-again")
    _refused(world, proc, "c300-again", "rollback", new, old)
    assert (world.dir / "w.state").read_bytes() == before


def test_split_view_is_refused_with_evidence(world: World) -> None:
    honest = _first(world, 300)
    other = world.publish("fork300", _log(300, fork_at=100))
    proc = world.cosign(other, "cfork")
    _refused(world, proc, "cfork", "split-view", honest, other)


def test_a_forked_larger_log_is_refused_with_evidence(world: World) -> None:
    honest = _first(world, 300)
    other = world.publish("fork700", _log(700, fork_at=250))
    proc = world.cosign(other, "cfork", "--tiles", str(world.dir / "fork700"))
    _refused(world, proc, "cfork", "inconsistent", honest, other)


def test_tiles_of_another_tree_are_refused(world: World) -> None:
    _first(world, 300)
    cp = world.publish("log700", _log(700))
    world.publish("fork700", _log(700, fork_at=250))
    proc = world.cosign(cp, "c700", "--tiles", str(world.dir / "fork700"))
    assert proc.returncode == 1 and "do not hash to" in proc.stderr
    assert not (world.dir / "c700").exists() and not (world.dir / "c700.evidence.json").exists()


def test_growth_without_tiles_is_a_usage_error(world: World) -> None:
    _first(world, 300)
    proc = world.cosign(world.publish("log700", _log(700)), "c700")
    assert proc.returncode == 2 and "--tiles" in proc.stderr


def test_a_checkpoint_signed_by_another_key_is_refused(world: World) -> None:
    cp = world.publish("log300", _log(300), key=MemoryKey.generate())
    proc = world.cosign(cp, "c300")
    assert proc.returncode == 1 and "not signed by a known key" in proc.stderr
    assert _state(world)["logs"] == {} and not (world.dir / "c300").exists()


def test_a_wrong_passphrase_writes_nothing(world: World) -> None:
    cp = world.publish("log300", _log(300))
    proc = run_cli("witness", "cosign", str(cp), "--key", str(world.dir / "w.key"), "--state",
                   str(world.dir / "w.state"), "--log-key", str(world.dir / "log.pem"),
                   "--out", str(world.dir / "c300"), "--passphrase", "env:WRONG",
                   env={"WRONG": "not the passphrase"})
    assert proc.returncode == 2 and "passphrase" in proc.stderr
    assert _state(world)["logs"] == {} and not (world.dir / "c300").exists()


def _hostile(world: World) -> dict[str, bytes]:
    good = world.signed(_log(3))
    text, sigs = note.split(good, "x")
    sig = "".join(s.line() for s in sigs)
    root = text.split("\n")[2]
    return {
        "garbage": b"\x00\x01 not a note",
        "no signatures": text.encode(),
        "huge size": f"{ORIGIN}\n{2**63}\n{root}\n\n{sig}".encode(),
        "size with leading zero": f"{ORIGIN}\n03\n{root}\n\n{sig}".encode(),
        "bad base64 root": f"{ORIGIN}\n3\n{root[:-2]}!=\n\n{sig}".encode(),
        "bad base64 signature": (text + "\n" + sig.replace("A", "!", 1)).encode(),
        "over-long line": f"{ORIGIN}\n3\n{root}\n{'x' * 5000}\n\n{sig}".encode(),
        "terminal escape": f"{ORIGIN}\x1b[31m\n3\n{root}\n\n{sig}".encode(),
        "too large": b"x" * (note.MAX_NOTE_BYTES + 1),
    }


@pytest.mark.parametrize("case", ["garbage", "no signatures", "huge size",
                                  "size with leading zero", "bad base64 root",
                                  "bad base64 signature", "over-long line", "terminal escape",
                                  "too large"])
def test_hostile_checkpoints_are_one_line_exit_2(world: World, case: str) -> None:
    path = world.dir / "hostile"
    path.write_bytes(_hostile(world)[case])
    proc = world.cosign(path, "out")
    assert proc.returncode == 2, (case, proc.stderr)
    assert len(proc.stderr.strip().splitlines()) == 1 and str(path) in proc.stderr
    assert "\x1b" not in proc.stderr
    assert not (world.dir / "out").exists() and _state(world)["logs"] == {}


@pytest.mark.parametrize("damage", ["not json", "wrong type", "checkpoint mismatch",
                                    "symlink"])
def test_a_damaged_state_file_is_exit_2(world: World, damage: str) -> None:
    cp = _first(world, 300)
    state_path = world.dir / "w.state"
    state = _state(world)
    if damage == "not json":
        state_path.write_text("{")
    elif damage == "wrong type":
        state_path.write_text(json.dumps({**state, "type": "other"}))
    elif damage == "checkpoint mismatch":
        state["logs"][ORIGIN]["root"] = base64.b64encode(b"x" * 32).decode()
        state_path.write_text(json.dumps(state))
    else:
        (world.dir / "real.state").write_text(json.dumps(state))
        state_path.unlink()
        state_path.symlink_to(world.dir / "real.state")
    proc = world.cosign(cp, "again")
    assert proc.returncode == 2 and str(state_path) in proc.stderr
    status = run_cli("witness", "status", "--state", str(state_path))
    assert status.returncode == 2


def test_checkpoint_text_round_trips_through_the_cli(world: World) -> None:
    cp = _first(world, 300)
    text, _ = note.split(cp.read_bytes(), "cp")
    assert checkpoint.parse(text, "cp").format() == text
