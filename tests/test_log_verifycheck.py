"""writroot/log/verifycheck.py: inclusion, the witness quorum and conflicts between checkpoints,
as findings on every party, whatever the input order."""

from __future__ import annotations

import base64
import itertools
import random
from pathlib import Path

import pytest

from writroot.log import logfile, tiles, verifycheck
from writroot.log.logfile import Log, MemoryKey
from writroot.log.verifycheck import Finding, Statement, WitnessPolicy

ORIGIN = "fleet.writsov.example/log"
CLOCK = 1_780_000_000


def _entry(i: int) -> bytes:
    return logfile.entry_for(b"statement %d" % i)


def _log(n: int, fork_at: int | None = None) -> Log:
    log = Log(ORIGIN)
    for i in range(n):
        log.append(logfile.entry_for(b"fork %d" % i) if fork_at is not None and i >= fork_at
                   else _entry(i))
    return log


class Keys:
    def __init__(self) -> None:
        self.log = MemoryKey.generate()
        self.witnesses = [MemoryKey.generate() for _ in range(3)]
        self.names = [f"w{i}.writsov.example" for i in range(3)]

    def policy(self, quorum: int = 2, required: bool = True) -> WitnessPolicy:
        return WitnessPolicy(tuple((n, k.key) for n, k in zip(self.names, self.witnesses,
                                                              strict=True)), quorum, required)

    def sign(self, log: Log, witnesses: int = 2, key: MemoryKey | None = None) -> bytes:
        signers = [logfile.log_signer(ORIGIN, key or self.log, lambda: CLOCK)]
        signers += [logfile.log_signer(n, k, lambda: CLOCK + 1)
                    for n, k in list(zip(self.names, self.witnesses, strict=True))[:witnesses]]
        return log.sign(signers)


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


def _check(keys: Keys, checkpoints: list[tuple[str, bytes]], proofs: list[tuple[str, bytes]],
           statements: list[Statement], policy: WitnessPolicy | None = None,
           readers: dict[str, tiles.TileReader] | None = None) -> list[Finding]:
    return verifycheck.check({ORIGIN: keys.log.key}, policy or keys.policy(), checkpoints,
                             proofs, statements, readers)


def _on(findings: list[Finding], subject: str) -> dict[str, bool]:
    return {f.check: f.ok for f in findings if f.subject == subject}


def _statements(n: int) -> list[Statement]:
    return [Statement(f"st{i}", _entry(i), ORIGIN) for i in range(n)]


def test_included_and_witnessed_statements_are_ok(keys: Keys) -> None:
    log = _log(10)
    signed = keys.sign(log)
    proofs = [(f"p{i}", log.proof_file(i, signed)) for i in range(10)]
    found = _check(keys, [("checkpoint", signed)], proofs, _statements(10))
    assert all(f.ok for f in found), [f for f in found if not f.ok]
    assert _on(found, "st3") == {"log-included": True, "log-witnessed": True}
    assert _on(found, "checkpoint") == {"log-signed": True, "log-witnessed": True}


def test_too_few_cosignatures_is_a_statement_waiting_for_its_witnesses(keys: Keys) -> None:
    log = _log(4)
    signed = keys.sign(log, witnesses=1)
    found = _check(keys, [("checkpoint", signed)], [("p0", log.proof_file(0, signed))],
                   _statements(1))
    assert _on(found, "st0") == {"log-included": True, "log-witnessed": False}
    msg = next(f.message for f in found if f.subject == "st0" and f.check == "log-witnessed")
    assert "1 of the 2" in msg and "waiting for its witnesses" in msg
    assert _on(found, "checkpoint")["log-witnessed"] is False


def test_a_statement_missing_from_a_required_log_is_flagged(keys: Keys) -> None:
    log = _log(4)
    signed = keys.sign(log)
    missing = [Statement("absent", _entry(99), ORIGIN)]
    wrong_log = [Statement("elsewhere", _entry(0), "region.writsov.example/log")]
    proofs = [("p0", log.proof_file(0, signed))]
    found = _check(keys, [], proofs, missing + wrong_log)
    assert _on(found, "absent") == {"log-included": False}
    assert _on(found, "elsewhere") == {"log-included": False}
    assert _check(keys, [], proofs, missing, keys.policy(required=False)) == [
        f for f in found if not f.subject.startswith(("absent", "elsewhere"))]


def test_a_proof_naming_another_entry_proves_nothing(keys: Keys) -> None:
    log = _log(4)
    signed = keys.sign(log)
    liar = log.proof_file(1, signed).replace(b"extra " + base64.b64encode(_entry(1)),
                                             b"extra " + base64.b64encode(_entry(2)))
    found = _check(keys, [], [("liar", liar)], [Statement("st2", _entry(2), ORIGIN)])
    assert _on(found, "st2") == {"log-included": False}


def test_checkpoints_not_signed_by_the_log_are_flagged(keys: Keys) -> None:
    log = _log(4)
    stranger = keys.sign(log, key=MemoryKey.generate())
    found = _check(keys, [("stranger", stranger), ("garbage", b"not a note")], [], [])
    assert _on(found, "stranger") == {"log-signed": False}
    assert _on(found, "garbage") == {"log-signed": False}
    found = verifycheck.check({}, keys.policy(), [("c", keys.sign(log))], [], [])
    assert "no log key" in found[0].message


def test_a_bad_cosignature_does_not_count(keys: Keys) -> None:
    log = _log(4)
    signed = keys.sign(log, witnesses=2)
    line = next(ln for ln in signed.split(b"\n") if ln.startswith("\u2014 w1".encode()))
    blob = line.split(b" ")[2]
    broken = blob[:20] + (b"A" if blob[20:21] != b"A" else b"B") + blob[21:]
    found = _check(keys, [("c", signed.replace(blob, broken))], [], [])
    assert _on(found, "c") == {"log-signed": True, "log-witnessed": False}


def _conflict_subjects(found: list[Finding]) -> set[str]:
    return {f.subject for f in found if f.check == "conflict-log"}


def test_a_split_view_is_a_conflict_on_every_party_in_any_order(keys: Keys) -> None:
    honest, fork = _log(10), _log(10, fork_at=5)
    a, b = keys.sign(honest), keys.sign(fork)
    inputs = [("honest", a), ("fork", b), ("honest-copy", a)]
    proofs = [("p7", honest.proof_file(7, a)), ("f7", fork.proof_file(7, b))]
    statements = [Statement("st7", _entry(7), ORIGIN), Statement("st2", _entry(2), ORIGIN)]
    results = []
    for order in itertools.permutations(inputs):
        found = _check(keys, list(order), proofs, statements)
        assert _conflict_subjects(found) == {"honest", "fork", "honest-copy",
                                             "p7 (checkpoint)", "f7 (checkpoint)", "st7"}
        results.append(found)
    assert all(r == results[0] for r in results)
    # st2 has no proof in this set: not included (and not a party)
    assert _on(results[0], "st2") == {"log-included": False}


def test_a_forked_larger_log_is_a_conflict_when_tiles_are_given(keys: Keys,
                                                                tmp_path: Path) -> None:
    honest, fork = _log(300), _log(700, fork_at=250)
    old, new = keys.sign(honest), keys.sign(fork)
    logfile.write_directory(tmp_path / "fork", fork, new)
    reader = tiles.DirectoryTileReader(tmp_path / "fork")
    inputs = [("old", old), ("new", new)]
    assert _conflict_subjects(_check(keys, inputs, [], [])) == set()  # no tiles, no proof
    for order in (inputs, inputs[::-1]):
        found = _check(keys, order, [], [], readers={ORIGIN: reader})
        assert _conflict_subjects(found) == {"old", "new"}
    # the honest continuation is consistent
    grown = _log(700)
    logfile.write_directory(tmp_path / "grown", grown, keys.sign(grown))
    found = _check(keys, [("old", old), ("new", keys.sign(grown))], [], [],
                   readers={ORIGIN: tiles.DirectoryTileReader(tmp_path / "grown")})
    assert _conflict_subjects(found) == set()
    # tiles of another tree are reported, not used
    found = _check(keys, [("old", old), ("new", keys.sign(grown))], [], [],
                   readers={ORIGIN: reader})
    assert _on(found, f"{ORIGIN} tiles") == {"log-consistent": False}


def test_many_proofs_of_one_checkpoint_cost_one_signature_check(keys: Keys,
                                                                monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    from writroot.log import cosignature

    log = _log(600)
    signed = keys.sign(log)
    calls = {"n": 0}
    real = cosignature.CosignatureVerifier.verify

    def counting(self: cosignature.CosignatureVerifier, message: bytes, sig: bytes) -> bool:
        calls["n"] += 1
        return real(self, message, sig)

    monkeypatch.setattr(cosignature.CosignatureVerifier, "verify", counting)
    proofs = [(f"p{i}", log.proof_file(i, signed)) for i in range(600)]
    random.Random(1).shuffle(proofs)
    found = _check(keys, [], proofs, _statements(600))
    assert calls["n"] == 3  # the log and two witnesses, once
    assert all(f.ok for f in found)
    assert max(len(f.message) for f in found) < 300
