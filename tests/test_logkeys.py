"""Log keys certified by their root and the witness-policy statement (issue 21, DESIGN §6a),
through the real CLI on SoftHSM2 tokens."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    NOW,
    Token,
    genesis_yaml,
    jwt_bundle,
    raw_key,
    request_time,
    roster_yaml,
    run_cli,
    sign_all,
)
from writroot.crypto.algorithms import ML_DSA_44, ML_DSA_87
from writroot.crypto.keys import PublicKey
from writroot.errors import BadInput
from writroot.log import cosignature
from writroot.log.logfile import MemoryKey
from writroot.region import check_request, request_payload
from writroot.rules.rights import role_may_sign
from writroot.statements import witness_policy_check
from writroot.verify.core import Anchor, parse_artifact
from writroot.verify.logs import fleet_origin, region_origin
from writroot.verify.trust import establish

PASS = "custodian-passphrase-for-tests"
FLEET = "logfleet"
WITNESSES = {name: MemoryKey.generate() for name in
             ("conus.example/witness", "eucom.example/witness", "auditor.example/witness")}


def _vkey(name: str) -> str:
    return cosignature.vkey(name, WITNESSES[name].key)


def _witness_lines(names: list[str], quorum: int, logging: str = "required") -> str:
    lines = "".join(f"      - name: {n}\n        vkey: '{_vkey(n)}'\n" for n in names)
    return (f"  - op: sign-witness-policy\n    witnesses:\n{lines}    quorum: {quorum}\n"
            f"    logging: {logging}\n    validity_days: 365\n")


@dataclass
class World:
    root: Path
    token: Token
    keyid: str = ""

    def cli(self, *args: str, **kw: Any):
        pinned: tuple[str, ...] = ()
        if self.keyid and args[:2] in (("ceremony", "plan"), ("ceremony", "show"),
                                       ("ceremony", "approve")):
            pinned = ("--anchor", self.keyid, "--trust", str(self.root / "published"))
        return run_cli(*args, *pinned, cwd=self.root, env={"PP": PASS, **kw.pop("env", {})},
                       **kw)

    def ceremony(self, name: str, text: str, host: str = "host.yaml") -> Any:
        """Lock, approve (two of three) and run a plan; publish its outputs; the run's
        summary, or the failing process."""
        d = self.root / name
        d.mkdir(exist_ok=True)
        (d / "plan.yaml").write_text(text)
        proc = self.cli("ceremony", "plan", str(d / "plan.yaml"))
        if proc.returncode != 0:
            return proc
        for cid in ("alice", "chen"):
            proc = self.cli("ceremony", "approve", str(d / "plan.lock.json"), "--yes",
                            "--custodian", cid, "--key", f"custodians/{cid}.key.pem",
                            "--passphrase", "env:PP", "--out", str(d / "approvals"))
            assert proc.returncode == 0, proc.stderr
        proc = self.cli("ceremony", "run", str(d / "plan.lock.json"), "--approvals",
                        str(d / "approvals"), "--host", host, "--out", str(d / "out"), "--yes",
                        "--allow-network", "--json")
        if proc.returncode != 0:
            return proc
        self.publish(d / "out", name)
        return json.loads(proc.stdout)

    def publish(self, out: Path, name: str) -> None:
        """The published set is the union of the ceremonies' outputs (sealed backups
        aside)."""
        shutil.copytree(out, self.root / "published" / name,
                        ignore=shutil.ignore_patterns("keys"))

    def header(self, name: str) -> str:
        fleet_root = next((self.root / "published").rglob("fleet-root-*.dsse.json"))
        shutil.copy(fleet_root, self.root / name / "fleet-root.dsse.json")
        return (f"plan: 1\nceremony: {name}\nfleet: {FLEET}\nsigner: {self.keyid}\n"
                "roster: fleet-root.dsse.json\nfleet_root: fleet-root.dsse.json\n"
                "operations:\n")

    def established(self, at: datetime | None = None) -> Any:
        parsed = [parse_artifact(str(p), p.read_bytes())
                  for p in sorted((self.root / "published").rglob("*.dsse.json"))]
        return establish(Anchor(self.keyid), parsed, at or datetime.now(UTC))


@pytest.fixture(scope="module")
def world(make_token, tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("logkeys")
    token = make_token("logkeys")
    (root / "published").mkdir()
    host = f"token_label: {token.spec.label}\npin: env:{token.env_var}\n"
    (root / "genesis-host.yaml").write_text(host)
    for cid in ("alice", "bruno", "chen"):
        proc = run_cli("custodian", "keygen", "--id", cid, "--name", cid.title(), "--fleet",
                       FLEET, "--out", "custodians", "--passphrase", "env:PP", cwd=root,
                       env={"PP": PASS})
        assert proc.returncode == 0, proc.stderr
    (root / "genesis").mkdir()
    shutil.copytree(root / "custodians", root / "genesis" / "custodians")
    (root / "genesis" / "roster.yaml").write_text(roster_yaml(("alice", "bruno", "chen")))
    w = World(root, token)
    plan = genesis_yaml("genesis-1", "    log_key_label: fleet-log-1\n", """\
    policy:
      fleet_root_algorithm: SLH-DSA-SHA2-256f
      regional_root_algorithms: [SLH-DSA-SHA2-256f, ML-DSA-87]
""" + _witness_lines(sorted(WITNESSES), 2), fleet=FLEET)
    summary = w.ceremony("genesis", plan, host="genesis-host.yaml")
    assert isinstance(summary, dict), summary.stderr
    w.keyid = summary["signer_keyid"]
    (root / "host.yaml").write_text(f"{host}anchor: {w.keyid}\ntrust: published\n")
    return w


def _statement(path: Path) -> dict[str, Any]:
    import base64

    return json.loads(base64.b64decode(json.loads(path.read_text())["payload"]))


def test_genesis_names_the_fleet_log_key_and_signs_a_witness_policy(world: World) -> None:
    out = world.root / "genesis" / "out"
    pem = (out / "log-keys" / "fleet-log-1.pem").read_bytes()
    log_key = PublicKey.from_pem(pem, "pem")
    assert log_key.algorithm is ML_DSA_44
    fleet_root = _statement(next((out / "artifacts").glob("fleet-root-*.dsse.json")))
    assert fleet_root["subject"]["log_key"]["keyid"] == log_key.keyid
    policy = _statement(next((out / "artifacts").glob("witness-policy-*.dsse.json")))
    assert policy["subject"]["version"] == 1 and policy["subject"]["quorum"] == 2
    assert policy["subject"]["logging"] == "required"
    assert [w["name"] for w in policy["subject"]["witnesses"]] == sorted(WITNESSES)
    trust = world.established()
    assert trust.log_keys[fleet_origin(FLEET)] == log_key
    assert trust.witness_policy.subject["quorum"] == 2
    transcript = (out / "transcript.jsonl").read_text()
    assert '"role":"fleet-log"' in transcript.replace(" ", "")
    keys = world.cli("hsm", "info", *world.token.cli_args(), "--json")
    assert "fleet-log-1" in keys.stdout, keys.stdout + keys.stderr


def test_a_new_witness_policy_takes_the_next_version_and_is_in_force(world: World) -> None:
    name = "witness-policy-2"
    (world.root / name).mkdir()
    names = sorted(WITNESSES)[:2]
    summary = world.ceremony(name, world.header(name) + _witness_lines(names, 1, "optional"))
    assert isinstance(summary, dict), summary.stderr
    locked = json.loads((world.root / name / "plan.lock.json").read_text())
    assert locked["operations"][0]["version"] == 2
    policy = world.established().witness_policy
    assert policy.subject["version"] == 2 and policy.subject["quorum"] == 1
    assert [w["name"] for w in policy.subject["witnesses"]] == names
    # the fleet log key named at genesis stays in force (this policy names none)
    pem = (world.root / "genesis" / "out" / "log-keys" / "fleet-log-1.pem").read_bytes()
    assert world.established().log_keys[fleet_origin(FLEET)] == PublicKey.from_pem(pem, "p")


FLEET_LOG = f"writroot/{FLEET}/fleet"


def _cosign(signed: bytes, names: list[str]) -> bytes:
    """The checkpoint with these witnesses' cosignatures added (as `witness cosign` does)."""
    import time

    from writroot.log import note

    text, sigs = note.split(signed, "checkpoint")
    signers = [cosignature.CosignatureSigner(n, WITNESSES[n], lambda: int(time.time()))
               for n in names]
    return note.sign(text, signers, sigs)


def _verify(world: World, *paths: Path | str) -> tuple[int, dict[str, set[str]]]:
    """verify --json: the exit code and each result's failing checks, by name."""
    proc = world.cli("verify", *map(str, paths), "--anchor", world.keyid, "--json")
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    return proc.returncode, {r["artifact"]: {f["check"] for f in r["findings"]}
                             for r in report["artifacts"]}


def test_verify_flags_a_statement_missing_from_a_required_log(world: World) -> None:
    code, found = _verify(world, world.root / "genesis" / "out" / "artifacts")
    assert code == 1
    assert len(found) == 2 and all(checks == {"log-included"} for checks in found.values()), \
        found


def test_withholding_the_witness_policy_does_not_turn_logging_off(world: World) -> None:
    """A relying party shown the fleet-root statement without the witness policy (or the
    policy's proof) still requires inclusion: the root certified a log key, so it keeps it."""
    out = world.root / "genesis" / "out"
    fleet_root = next((out / "artifacts").glob("fleet-root-*.dsse.json"))
    code, found = _verify(world, fleet_root)
    assert code == 1 and list(found.values()) == [{"log-included", "log-witnessed"}], found
    # shown in the log but without the policy: who must cosign is unknown, so it fails too
    # (a thief with the log key could sign that checkpoint alone)
    from tests.conftest import proof_of

    code, found = _verify(world, fleet_root, proof_of(fleet_root, out))
    assert code == 1 and found[str(fleet_root)] == {"log-witnessed"}, found
    proc = world.cli("verify", str(fleet_root), "--anchor", world.keyid)
    assert "no witness policy is among the inputs" in proc.stdout, proc.stdout


def test_an_expired_witness_policy_still_requires_its_witnesses(world: World) -> None:
    """Time passing never turns logging off: after the policy's not_after (365 days; the
    fleet root lasts 548) its quorum still applies and the policy itself fails its window."""
    from writroot.jsonio import format_time

    out = world.root / "genesis" / "out"
    policy = _statement(next((out / "artifacts").glob("witness-policy-*.dsse.json")))
    at = format_time(datetime.strptime(policy["not_after"], "%Y-%m-%dT%H:%M:%SZ")
                     .replace(tzinfo=UTC) + timedelta(days=10))
    proc = world.cli("verify", str(out), "--anchor", world.keyid, "--at", at, "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    found = {r["type"]: {f["check"] for f in r["findings"]}
             for r in json.loads(proc.stdout)["artifacts"]}
    assert found["fleet-root"] == {"log-witnessed"}, found
    assert "validity-window" in found["witness-policy"], found


def test_verify_waits_for_the_witness_quorum_then_passes(world: World) -> None:
    out = world.root / "genesis" / "out"
    code, found = _verify(world, out)
    assert code == 1
    failing = {c for checks in found.values() for c in checks}
    assert failing == {"log-witnessed"}, found
    proc = world.cli("verify", str(out), "--anchor", world.keyid)
    assert "waiting for its witnesses" in proc.stdout
    signed = (out / "logs" / FLEET_LOG / "checkpoint").read_bytes()
    names = sorted(WITNESSES)
    one = world.root / "cosigned-1"
    one.mkdir()
    (one / "genesis.checkpoint").write_bytes(_cosign(signed, names[:1]))
    code, found = _verify(world, out, one / "genesis.checkpoint")
    assert code == 1 and {c for v in found.values() for c in v} == {"log-witnessed"}
    proc = world.cli("verify", str(out), str(one / "genesis.checkpoint"), "--anchor",
                     world.keyid)
    assert "1 of the 2 cosignatures" in proc.stdout
    two = world.root / "cosigned-2"
    two.mkdir()
    (two / "genesis.checkpoint").write_bytes(_cosign(signed, names[1:]))
    code, found = _verify(world, out, two / "genesis.checkpoint")
    assert code == 0, found
    # a cosignature by a key that is not the witness's counts nothing
    forged = cosignature.CosignatureSigner(names[0], MemoryKey.generate(), lambda: 1)
    from writroot.log import note

    text, sigs = note.split(signed, "cp")
    bad = world.root / "cosigned-forged.checkpoint"
    bad.write_bytes(note.sign(text, [forged], sigs))
    code, _found = _verify(world, out, one / "genesis.checkpoint", bad)
    assert code == 1



def _fleet_log_key(world: World) -> PublicKey:
    pem = (world.root / "genesis" / "out" / "log-keys" / "fleet-log-1.pem").read_bytes()
    return PublicKey.from_pem(pem, "pem")


def test_genesis_starts_the_fleet_log_with_a_proof_per_statement(world: World) -> None:
    from writroot.log import proof, tree
    from writroot.verify.logs import read_published

    out = world.root / "genesis" / "out"
    published = read_published(out, FLEET_LOG, _fleet_log_key(world))
    arts = [*sorted((out / "artifacts").glob("*.dsse.json")), out / "ceremony-record.dsse.json"]
    assert published.log.size == len(arts) == 3
    for art in arts:
        entry = hashlib.sha256(_payload(art.read_bytes())).digest()
        found = proof.parse((out / "proofs" / f"{entry.hex()}.tlog-proof").read_bytes(), "p")
        assert found.extra == entry
        assert tree.check_inclusion(found.path, 3, found.index, tree.leaf_hash(entry),
                                    published.log.hashes.root())
    locked = json.loads((out / "plan.lock.json").read_text())
    assert locked["log"] == {"origin": FLEET_LOG, "size": 0, "root": hashlib.sha256(
        b"").hexdigest()}


def test_a_ceremony_extends_the_log_from_the_head_it_was_approved_on(world: World) -> None:
    from writroot.verify.logs import read_published

    locked = json.loads((world.root / "witness-policy-2" / "plan.lock.json").read_text())
    genesis = read_published(world.root / "published" / "genesis", FLEET_LOG,
                             _fleet_log_key(world))
    assert locked["log"] == {"origin": FLEET_LOG, "size": 3,
                             "root": genesis.log.hashes.root().hex()}
    now = read_published(world.root / "published", FLEET_LOG, _fleet_log_key(world))
    assert now.log.size == 5 and now.log.hashes.root(3) == genesis.log.hashes.root()


def _forget_spent(world: World, plan_sha256: str) -> None:
    """The attack of issue 21: the token's spent-plan record deleted (no PIN is needed to
    delete a SoftHSM2 object file; here through PKCS#11)."""
    from pkcs11 import Attribute

    from writroot.hsm.custody import SPENT_APPLICATION, SPENT_LABEL, Custody

    with world.token.session() as session:
        custody = Custody(session, world.token.spec.module)
        gone = 0
        for obj in custody._private_data(SPENT_APPLICATION, SPENT_LABEL):
            if json.loads(bytes(obj[Attribute.VALUE]))["plan_sha256"] == plan_sha256:
                obj.destroy()
                gone += 1
        assert gone


def _rerun(world: World, name: str, out: str, host: str = "host.yaml") -> Any:
    d = world.root / name
    return world.cli("ceremony", "run", str(d / "plan.lock.json"), "--approvals",
                     str(d / "approvals"), "--host", host, "--out", str(d / out), "--yes",
                     "--allow-network", "--json")


def test_a_replayed_plan_is_refused_by_the_log_after_its_token_record_is_gone(
        world: World) -> None:
    from writroot.ceremony.plan import load_locked

    name = "witness-policy-2"
    digest = load_locked(world.root / name / "plan.lock.json").sha256
    again = _rerun(world, name, "out-again")
    assert again.returncode != 0 and not (world.root / name / "out-again").exists()
    _forget_spent(world, digest)
    proc = _rerun(world, name, "out-replay")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "[plan-logged]" in proc.stderr and "ran already" in proc.stderr
    assert not (world.root / name / "out-replay").exists()


def test_a_replay_on_a_rolled_back_log_signs_but_forks_the_log(world: World) -> None:
    from writroot.errors import PolicyRefused
    from writroot.log.verifycheck import WitnessPolicy, check
    from writroot.verify.logs import read_published

    name = "witness-policy-2"
    rolled = world.root / "rolled-back"  # the published set as it was before the first run
    shutil.copytree(world.root / "published" / "genesis", rolled / "genesis")
    host = (world.root / "host.yaml").read_text().replace("trust: published",
                                                          "trust: rolled-back")
    (world.root / "host-rolled.yaml").write_text(host)
    proc = _rerun(world, name, "out-forked", host="host-rolled.yaml")
    assert proc.returncode == 0, proc.stderr  # both the token and the log were rolled back
    forked = world.root / name / "out-forked" / "logs" / FLEET_LOG / "checkpoint"
    honest = world.root / "published" / name / "logs" / FLEET_LOG / "checkpoint"
    key = _fleet_log_key(world)
    with pytest.raises(PolicyRefused, match=r"\[conflict-log\]"):
        read_published(world.root / name, FLEET_LOG, key)  # out/ and out-forked/ together
    policy = WitnessPolicy((), 0)
    named = {"honest": honest.read_bytes(), "forked": forked.read_bytes()}
    for order in (["honest", "forked"], ["forked", "honest"]):
        found = check({FLEET_LOG: key}, policy, [(n, named[n]) for n in order], [], [])
        assert {f.subject for f in found if f.check == "conflict-log" and not f.ok} == \
            {"honest", "forked"}


def test_verify_flags_the_fork_on_every_party_in_any_order(world: World) -> None:
    honest = world.root / "witness-policy-2" / "out"
    forked = world.root / "witness-policy-2" / "out-forked"
    genesis = world.root / "genesis" / "out"
    runs = [_verify(world, genesis, honest, forked), _verify(world, forked, honest, genesis)]
    assert runs[0] == runs[1]
    code, found = runs[0]
    assert code == 1
    cps = {name for name, checks in found.items() if "conflict-log" in checks}
    assert str(honest / "logs" / FLEET_LOG / "checkpoint") in cps
    assert str(forked / "logs" / FLEET_LOG / "checkpoint") in cps
    forked_st = next(str(p) for p in (forked / "artifacts").glob("*.dsse.json"))
    assert "conflict-log" in found[forked_st]
    for st in (genesis / "artifacts").glob("*.dsse.json"):  # the common prefix stays trusted
        assert "conflict-log" not in found[str(st)], found[str(st)]


def _witness(world: World, name: str) -> Path:
    """A witness made with `witness init` (its key is then named in no policy: the test
    policies name the in-memory WITNESSES; this one cosigns all the same)."""
    d = world.root / "witnesses" / name.split(".")[0]
    d.mkdir(parents=True)
    proc = run_cli("witness", "init", "--name", name, "--key", str(d / "key.pem"), "--state",
                   str(d / "state.json"), "--passphrase", "env:PP", env={"PP": PASS})
    assert proc.returncode == 0, proc.stderr
    return d


def _cosign_cli(world: World, d: Path, checkpoint: Path, out: str,
                tiles: Path | None = None) -> Any:
    extra = ("--tiles", str(tiles)) if tiles is not None else ()
    return run_cli("witness", "cosign", str(checkpoint), "--key", str(d / "key.pem"),
                   "--state", str(d / "state.json"), "--anchor", world.keyid, "--trust",
                   str(world.root / "published"), "--out", str(d / out), *extra,
                   "--passphrase", "env:PP", "--json", env={"PP": PASS})


def test_a_witness_gets_the_log_key_from_the_anchor_and_refuses_split_view_and_rollback(
        world: World) -> None:
    d = _witness(world, "partner.example/witness")
    genesis_cp = world.root / "genesis" / "out" / "logs" / FLEET_LOG / "checkpoint"
    honest = world.root / "witness-policy-2" / "out" / "logs" / FLEET_LOG
    forked = world.root / "witness-policy-2" / "out-forked" / "logs" / FLEET_LOG
    proc = _cosign_cli(world, d, genesis_cp, "genesis.checkpoint")
    assert proc.returncode == 0, proc.stderr
    proc = _cosign_cli(world, d, honest / "checkpoint", "wp2.checkpoint", honest)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["previous_size"] == 3
    proc = _cosign_cli(world, d, forked / "checkpoint", "forked.checkpoint", forked)
    assert proc.returncode == 1, proc.stderr
    assert "refused (split-view)" in proc.stderr
    evidence = d / "forked.checkpoint.evidence.json"
    assert evidence.exists() and not (d / "forked.checkpoint").exists()
    code, found = _verify(world, world.root / "published", evidence)
    assert code == 1 and "conflict-log" in found[str(evidence)], found
    proc = _cosign_cli(world, d, genesis_cp, "rollback.checkpoint")
    assert proc.returncode == 1 and "refused (rollback)" in proc.stderr
    rollback = d / "rollback.checkpoint.evidence.json"
    code, found = _verify(world, world.root / "published", rollback)
    assert found[str(rollback)] == set(), found
    # a log key nobody certified: refused before anything is cosigned
    other = MemoryKey.generate()
    from writroot.log import logfile

    log = logfile.Log("writroot/other/fleet")
    log.append(b"\x01" * 32)
    stray = world.root / "stray.checkpoint"
    stray.write_bytes(log.sign([logfile.log_signer(log.origin, other, lambda: 1)]))
    proc = _cosign_cli(world, d, stray, "stray.out")
    assert proc.returncode == 1 and "no log key" in proc.stderr, proc.stderr


def test_publish_adds_what_the_witnesses_returned(world: World) -> None:
    returned = world.root / "returned"
    returned.mkdir()
    for name, cp in (("g", world.root / "genesis" / "out"),
                     ("w", world.root / "witness-policy-2" / "out")):
        signed = (cp / "logs" / FLEET_LOG / "checkpoint").read_bytes()
        (returned / f"{name}.checkpoint").write_bytes(_cosign(signed, sorted(WITNESSES)[:2]))
    dist = world.root / "dist"
    proc = run_cli("publish", str(world.root / "genesis" / "out"),
                   str(world.root / "witness-policy-2" / "out"), "--cosigned", str(returned),
                   "--out", str(dist), "--json", "--anchor", world.keyid, cwd=world.root)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["cosigned"]
    assert (dist / "logs" / FLEET_LOG / "checkpoint").read_bytes().count("\u2014".encode()) == 3
    assert list((dist / "proofs").glob("*.tlog-proof"))
    code, found = _verify(world, dist)
    assert code == 0, {k: v for k, v in found.items() if v}
    proc = run_cli("status", str(dist), "--anchor", world.keyid, "--json")
    assert proc.returncode == 0, proc.stderr
    (log,) = json.loads(proc.stdout)["logs"]
    assert log["origin"] == FLEET_LOG and log["size"] == 5 and log["quorum"] == 1
    assert log["witnesses"] == sorted(WITNESSES)[:2] and log["last_cosigned"]
    text = run_cli("status", str(dist), "--anchor", world.keyid)
    assert FLEET_LOG in text.stdout and "2 (quorum 1)" in text.stdout, text.stdout
    names = ", ".join(sorted(WITNESSES)[:2])
    assert f"{FLEET_LOG} cosigned by: {names}" in text.stdout, text.stdout
    forked = world.root / "witness-policy-2" / "out-forked"
    proc = run_cli("publish", str(world.root / "genesis" / "out"),
                   str(world.root / "witness-policy-2" / "out"), str(forked), "--out",
                   str(world.root / "dist-forked"), "--anchor", world.keyid, cwd=world.root)
    assert proc.returncode == 2 and "published already" in proc.stderr  # the replay


def test_hostile_log_files_are_findings_or_one_line_errors(world: World) -> None:
    out = world.root / "genesis" / "out"
    bad = world.root / "hostile"
    bad.mkdir()
    # the proof of entry 0 (proof names are entry hashes: any other one has no "index 0")
    proof = next(data for p in sorted((out / "proofs").glob("*.tlog-proof"))
                 if b"\nindex 0\n" in (data := p.read_bytes()))
    (bad / "leading-zero.tlog-proof").write_bytes(proof.replace(b"\nindex 0\n",
                                                                b"\nindex 00\n", 1))
    proc = world.cli("verify", str(out / "artifacts"), str(bad / "leading-zero.tlog-proof"),
                     "--anchor", world.keyid)
    assert proc.returncode == 2 and "malformed proof" in proc.stdout, proc.stdout
    # a proof moved to another statement's name proves nothing for it: pairing is by entry
    named = sorted((out / "proofs").glob("*.tlog-proof"))
    swapped = bad / "swapped"
    (swapped / "proofs").mkdir(parents=True)
    for one, other in zip(named, named[1:] + named[:1], strict=True):
        (swapped / "proofs" / other.name).write_bytes(one.read_bytes())
    code, found = _verify(world, out / "artifacts", out / "logs", swapped)
    assert code == 1 and not any("log-included" in c for c in found.values()), found
    # publish: a returned file that is neither a cosigned checkpoint nor evidence
    (bad / "junk.checkpoint").write_bytes(b"\x1b[31mnot a note\n")
    proc = run_cli("publish", str(out), "--cosigned", str(bad / "junk.checkpoint"), "--out",
                   str(bad / "dist"), "--anchor", world.keyid)
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert "junk.checkpoint" in proc.stderr and not (bad / "dist").exists()


def test_a_plan_on_a_log_smaller_than_its_head_or_with_no_log_is_refused(
        world: World) -> None:
    name = "witness-policy-3"
    (world.root / name).mkdir()
    (world.root / name / "plan.yaml").write_text(
        world.header(name) + _witness_lines(sorted(WITNESSES), 3))
    proc = world.cli("ceremony", "plan", str(world.root / name / "plan.yaml"))
    assert proc.returncode == 0, proc.stderr
    show = world.cli("ceremony", "show", str(world.root / name / "plan.lock.json"))
    assert show.returncode == 0, show.stderr
    assert f"{FLEET_LOG}, extended from size 5" in show.stdout, show.stdout
    for cid in ("alice", "chen"):
        assert world.cli("ceremony", "approve", str(world.root / name / "plan.lock.json"),
                         "--yes", "--custodian", cid, "--key", f"custodians/{cid}.key.pem",
                         "--passphrase", "env:PP", "--out",
                         str(world.root / name / "approvals")).returncode == 0
    proc = _rerun(world, name, "out", host="host-rolled.yaml")  # genesis only: size 3
    assert proc.returncode == 1, proc.stderr
    assert "[log-head]" in proc.stderr and "smaller than the head" in proc.stderr
    assert not (world.root / name / "out").exists()
    bare = world.root / "no-logs"  # the statements without the logs/ beside them
    bare.mkdir()
    for art in (world.root / "published").rglob("*.dsse.json"):
        shutil.copy(art, bare / f"{art.parent.name}-{art.name}")
    lock = world.root / name / "bare.yaml"
    lock.write_text((world.root / name / "plan.yaml").read_text())
    proc = run_cli("ceremony", "plan", str(lock), "--anchor", world.keyid, "--trust",
                   str(bare), cwd=world.root)
    assert proc.returncode == 1 and "[log-missing]" in proc.stderr, proc.stderr


def _request_with_log_key(region: str, sign_with_log: bool = True) -> bytes:
    regional, log = raw_key(ML_DSA_87), raw_key(ML_DSA_44)
    payload = request_payload(regional.key, region, FLEET, "wrapped", "test-token",
                              request_time(), None, log.key)
    env = sign_all(payload, regional, log) if sign_with_log else sign_all(payload, regional)
    return env.dumps()


def _regional_plan(world: World, name: str, region: str, request: bytes) -> str:
    (world.root / name).mkdir(exist_ok=True)
    (world.root / name / "request.json").write_bytes(request)
    return world.header(name) + (
        f"  - op: sign-regional-root\n    region: {region}\n    request: request.json\n"
        f"    validity_days: 90\n    enclaves:\n"
        f"      - {{trust_domain: {region.lower()}-1.writsov.com, impact_level: IL4}}\n")


def test_a_regional_root_names_the_log_key_its_request_proves(world: World) -> None:
    request = _request_with_log_key("EUCOM")
    log_key = json.loads(_payload(request))["subject"]["log_key"]
    summary = world.ceremony("regional-log", _regional_plan(world, "regional-log", "EUCOM",
                                                             request))
    assert isinstance(summary, dict), summary.stderr
    art = next((world.root / "regional-log" / "out" / "artifacts").glob("regional-root-*"))
    assert _statement(art)["subject"]["log_key"] == log_key
    keys = world.established().log_keys
    assert keys[region_origin(FLEET, "EUCOM")].keyid == log_key["keyid"]


def _payload(envelope: bytes) -> bytes:
    import base64

    return base64.b64decode(json.loads(envelope)["payload"])


def test_a_revocation_in_a_forked_branch_still_applies(world: World) -> None:
    """A revocation list signed on a rolled-back log (so only a forked branch holds it) is
    not trusted for anything else, but what it revokes stays revoked (DESIGN §6)."""
    name = "revoke-forked"
    (world.root / name).mkdir()
    target = next((world.root / "regional-log" / "out" / "artifacts").glob("regional-root-*"))
    shutil.copy(target, world.root / name / "eucom.dsse.json")
    text = world.header(name) + (
        "  - op: sign-revocation-list\n    sequence: 1\n    validity_days: 30\n"
        "    entries:\n      - {artifact: eucom.dsse.json, revoke: key, "
        "reason: key-compromise}\n")
    (world.root / name / "plan.yaml").write_text(text)
    proc = run_cli("ceremony", "plan", str(world.root / name / "plan.yaml"), "--anchor",
                   world.keyid, "--trust", str(world.root / "rolled-back"), cwd=world.root)
    assert proc.returncode == 0, proc.stderr
    for cid in ("alice", "chen"):
        assert run_cli("ceremony", "approve", str(world.root / name / "plan.lock.json"),
                       "--yes", "--custodian", cid, "--key", f"custodians/{cid}.key.pem",
                       "--passphrase", "env:PP", "--out", str(world.root / name / "approvals"),
                       "--anchor", world.keyid, "--trust", str(world.root / "rolled-back"),
                       cwd=world.root, env={"PP": PASS}).returncode == 0
    proc = _rerun(world, name, "out", host="host-rolled.yaml")
    assert proc.returncode == 0, proc.stderr
    revocation = next((world.root / name / "out" / "artifacts").glob("revocation-list-*"))
    code, found = _verify(world, world.root / "published", world.root / name / "out")
    assert code == 1
    assert "conflict-log" in found[str(revocation)], found[str(revocation)]
    assert "not-revoked" in found[str(world.root / "published" / "regional-log" / "artifacts"
                                      / target.name)]


def test_a_request_its_log_key_did_not_sign_is_refused(world: World) -> None:
    request = _request_with_log_key("PACOM", sign_with_log=False)
    with pytest.raises(Exception, match="not signed by the log key it names"):
        check_request(json.loads(request), "request.json")
    d = world.root / "regional-unsigned"
    d.mkdir()
    (d / "plan.yaml").write_text(_regional_plan(world, "regional-unsigned", "PACOM", request))
    proc = world.cli("ceremony", "plan", str(d / "plan.yaml"))
    assert proc.returncode == 1, proc.stderr
    assert "not signed by the log key it names" in proc.stderr
    assert not (d / "plan.lock.json").exists()
    (d / "request.dsse.json").write_bytes(request)
    verify = world.cli("verify", str(d / "request.dsse.json"), "--anchor", world.keyid,
                       "--json")
    found = json.loads(verify.stdout)
    assert verify.returncode == 1
    checks = {f["check"] for f in found["findings"]}
    assert "signature-present" in checks, found


def test_witness_policy_statements_are_checked_strictly() -> None:
    good = {"version": 1, "quorum": 1, "logging": "required",
            "witnesses": [{"name": "a.example/w", "key": WITNESSES[
                "conus.example/witness"].key.to_json()}]}
    assert witness_policy_check(good, "s")["quorum"] == 1
    bad_cases: list[tuple[dict[str, Any], str]] = [
        ({**good, "quorum": 2}, "quorum must not exceed"),
        ({**good, "logging": True}, "must be one of"),
        ({**good, "witnesses": good["witnesses"] * 2}, "duplicate items"),
        ({**good, "witnesses": [{"name": "a b", "key": good["witnesses"][0]["key"]}]},
         "spaces"),
        ({**good, "witnesses": [{"name": "a", "key": raw_key(ML_DSA_87).key.to_json()}]},
         "ML-DSA-44"),
        ({**good, "log_key": raw_key(ML_DSA_87).key.to_json()}, "ML-DSA-44"),
    ]
    for case, message in bad_cases:
        with pytest.raises(BadInput, match=message):
            witness_policy_check(case, "s")


def test_only_the_fleet_root_signs_a_witness_policy() -> None:
    assert role_may_sign("fleet-root", "witness-policy")
    assert not role_may_sign("regional-root", "witness-policy")
    assert not role_may_sign("custodian", "witness-policy")


def test_a_witness_policy_plan_with_a_bad_witness_is_refused_naming_the_field(
        world: World) -> None:
    name = "witness-bad"
    (world.root / name).mkdir()
    wrong = _witness_lines(["conus.example/witness"], 1).replace(
        "name: conus.example/witness", "name: other.example/witness")
    (world.root / name / "plan.yaml").write_text(world.header(name) + wrong)
    proc = world.cli("ceremony", "plan", str(world.root / name / "plan.yaml"))
    assert proc.returncode == 2, proc.stderr
    assert "witnesses[0]" in proc.stderr and "other.example/witness" in proc.stderr
    assert not (world.root / name / "plan.lock.json").exists()


def summary_keyid(bundle: Path) -> str:
    return str(json.loads(_payload((bundle / "key-request.json").read_bytes()))["subject"][
        "log_key"]["keyid"])


def test_region_keygen_makes_a_log_key_on_the_token(world: World, make_token) -> None:
    token = make_token("logkeys-region")
    out = world.root / "region-request"
    proc = run_cli("region", "keygen", *token.cli_args(), "--region", "AFRICOM", "--fleet",
                   FLEET, "--label", "africom-1", "--algorithm", "ML-DSA-87",
                   "--log-key-label", "africom-log-1", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    request = json.loads((out / "key-request.json").read_text())
    subject = check_request(request, "request")
    assert subject["log_key"].keyid == summary["log_key"]["keyid"]
    assert len(request["signatures"]) == 2
    assert (out / "africom-log.pem").exists()
    same = run_cli("region", "keygen", *token.cli_args(), "--region", "AFRICOM", "--fleet",
                   FLEET, "--label", "x-1", "--log-key-label", "x-1", "--out",
                   str(world.root / "region-request-2"))
    assert same.returncode == 2 and "--log-key-label" in same.stderr
    # the fleet certifies AFRICOM with its log key; AFRICOM's own ceremony keeps its log
    name = "africom-root"
    summary = world.ceremony(name, _regional_plan(world, name, "AFRICOM",
                                                  (out / "key-request.json").read_bytes()))
    assert isinstance(summary, dict), summary.stderr
    authority = next((world.root / name / "out" / "artifacts").glob("regional-root-*"))
    origin = f"writroot/{FLEET}/region/AFRICOM"
    assert world.established().log_keys[origin].keyid == summary_keyid(out)
    d = world.root / "africom-bundle"
    d.mkdir()
    (world.root / "host-africom.yaml").write_text(
        f"token_label: {token.spec.label}\npin: env:{token.env_var}\nanchor: {world.keyid}\n"
        "trust: published\n")
    shutil.copy(authority, d / "authority.dsse.json")
    (d / "bundle.json").write_text(json.dumps(jwt_bundle(1)))
    text = world.header("africom-bundle").replace(
        "operations:\n", "authority: authority.dsse.json\noperations:\n").replace(
        f"signer: {world.keyid}", f"signer: {_statement(authority)['subject']['key']['keyid']}")
    text += ("  - op: sign-enclave-bundle\n    region: AFRICOM\n"
             "    trust_domain: africom-1.writsov.com\n    impact_level: IL4\n"
             "    bundle: bundle.json\n    validity_days: 30\n")
    summary = world.ceremony("africom-bundle", text, host="host-africom.yaml")
    assert isinstance(summary, dict), summary.stderr
    assert summary["log"]["origin"] == origin and summary["log"]["size"] == 2
    locked = json.loads((d / "plan.lock.json").read_text())
    assert locked["log"] == {"origin": origin, "size": 0,
                             "root": hashlib.sha256(b"").hexdigest()}
    _code, found = _verify(world, world.root / "published" / "africom-bundle",
                           world.root / "published" / name, world.root / "published" / "genesis")
    failing = {c for checks in found.values() for c in checks}
    assert failing <= {"log-witnessed"}, found  # in the region's log, waiting for witnesses


def test_the_fleet_log_key_is_replaced_and_the_log_continues(world: World) -> None:
    from writroot.verify.logs import read_published

    before = world.established()
    old_key = before.log_keys[FLEET_LOG]
    old = read_published(world.root / "published", FLEET_LOG, before.log_key_history[FLEET_LOG])
    name = "new-log-key"
    (world.root / name).mkdir()
    ops = _witness_lines(sorted(WITNESSES), 2).replace(
        "    validity_days: 365\n", "    validity_days: 365\n    log_key_label: fleet-log-2\n")
    summary = world.ceremony(name, world.header(name) + ops)
    assert isinstance(summary, dict), summary.stderr
    new_key = PublicKey.from_pem((world.root / name / "out" / "log-keys" / "fleet-log-2.pem")
                                 .read_bytes(), "pem")
    after = world.established()
    assert after.log_keys[FLEET_LOG] == new_key != old_key
    assert after.log_key_history[FLEET_LOG] == (old_key, new_key)
    now = read_published(world.root / "published", FLEET_LOG, (old_key, new_key))
    assert now.log.size == old.log.size + 2
    assert now.log.hashes.root(old.log.size) == old.log.hashes.root()
    _code, found = _verify(world, world.root / "published")
    assert not any("log-signed" in c or "conflict-log" in c or "log-included" in c
                   for c in found.values()), found


# last: it rotates the module's fleet root
def test_a_rotation_carries_the_log_key_on(world: World) -> None:
    name = "rotation"
    (world.root / name).mkdir()
    text = world.header(name) + ("  - op: rotate-fleet-root\n    label: fleet-root-2\n"
                                 "    algorithm: SLH-DSA-SHA2-256f\n    validity_days: 500\n")
    (world.root / name / "plan.yaml").write_text(text)
    proc = world.cli("ceremony", "plan", str(world.root / name / "plan.yaml"))
    assert proc.returncode == 0, proc.stderr
    locked = json.loads((world.root / name / "plan.lock.json").read_text())
    fleet_log = world.established().log_keys[FLEET_LOG]  # the key in force is carried on
    assert locked["operations"][0]["log_key"]["keyid"] == fleet_log.keyid
    (world.root / name / "plan.lock.json").unlink()
    summary = world.ceremony(name, text)
    assert isinstance(summary, dict), summary.stderr
    art = next((world.root / name / "out" / "artifacts").glob("fleet-rotation-*"))
    assert _statement(art)["subject"]["log_key"]["keyid"] == fleet_log.keyid
    trust = world.established()
    assert trust.fleet_version == 2
    assert trust.log_keys[fleet_origin(FLEET)] == fleet_log


def test_two_witness_policies_of_one_version_are_both_out_of_force() -> None:
    from writroot.statements import build, parse_payload
    from writroot.verify.logs import contested_policies, derive

    def policy(version: int, quorum: int, serial: str) -> Any:
        subject = {"version": version, "quorum": quorum, "logging": "required",
                   "witnesses": [{"name": n, "key": WITNESSES[n].key.to_json()}
                                 for n in sorted(WITNESSES)]}
        return parse_payload(build(
            "witness-policy", fleet=FLEET, issuer_role="fleet-root", issuer_keyid="ab" * 32,
            ceremony={"id": "c", "plan_sha256": "cd" * 32, "approvals": []}, subject=subject,
            issued_at=NOW, not_before=NOW, not_after=NOW, serial=serial), "p")

    one, two, other = policy(1, 1, "a.0"), policy(2, 2, "b.0"), policy(2, 3, "c.0")
    assert contested_policies([one, two, other]) == {"b.0": 2, "c.0": 2}
    assert derive([one, two, other], FLEET).policy == one  # neither version 2 is in force
    assert derive([one, two], FLEET).policy == two
