"""Quorum-gated ceremonies end to end on SoftHSM2, through the real CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    NOW,
    Token,
    custodians,
    failpoint_env,
    genesis_yaml,
    jwt_bundle,
    key_request,
    raw_key,
    request_time,
    roster_json,
    roster_yaml,
    run_cli,
    sign_raw,
)
from writroot.ceremony.approve import approve
from writroot.ceremony.plan import LockedPlan
from writroot.quorum.count import Roster, count, roster_change
from writroot.statements import roster_check

PASS = "custodian-passphrase-for-tests"
POLICY = """    policy:
      fleet_root_algorithm: SLH-DSA-SHA2-256f
      regional_root_algorithms: [SLH-DSA-SHA2-256f, ML-DSA-87]
"""


@dataclass
class Env:
    root: Path
    token: Token
    anchor_pem: Path
    fleet_root: Path
    keyid: str

    def cli(self, *args: str, **kw):
        return run_cli(*args, *self.pinned(*args), cwd=self.root,
                       env={"PP": PASS, **kw.pop("env", {})}, **kw)

    def pinned(self, *args: str) -> tuple[str, ...]:
        """After genesis, plan/show/approve pin the anchor and read the genesis outputs as
        the fleet's published set."""
        if not self.keyid or args[:2] not in (("ceremony", "plan"), ("ceremony", "show"),
                                              ("ceremony", "approve")):
            return ()
        return ("--anchor", self.keyid, "--trust", str(self.root / "genesis"))


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def env(make_token, tmp_path_factory) -> Env:
    root = tmp_path_factory.mktemp("ceremony")
    token = make_token("ceremony")
    host = f"token_label: {token.spec.label}\npin: env:{token.env_var}\n"
    _write(root / "genesis-host.yaml", host)
    for cid in ("alice", "bruno", "chen"):
        proc = run_cli("custodian", "keygen", "--id", cid, "--name", cid.title(), "--fleet",
                       "testfleet", "--out", "custodians", "--passphrase", "env:PP",
                       cwd=root, env={"PP": PASS})
        assert proc.returncode == 0, proc.stderr
    _write(root / "roster.yaml", roster_yaml(("alice", "bruno", "chen")))
    _write(root / "genesis.yaml", genesis_yaml("genesis-1", after=POLICY))
    e = Env(root, token, root / "genesis" / "fleet-root.pem", Path(), "")
    assert e.cli("ceremony", "plan", "genesis.yaml").returncode == 0
    for cid in ("alice", "chen"):
        proc = e.cli("ceremony", "approve", "genesis.lock.json", "--yes", "--custodian", cid,
                     "--key", f"custodians/{cid}.key.pem", "--passphrase", "env:PP", "--out",
                     "approvals-genesis")
        assert proc.returncode == 0, proc.stderr
    proc = e.cli("ceremony", "run", "genesis.lock.json", "--approvals", "approvals-genesis",
                 "--host", "genesis-host.yaml", "--out", "genesis", "--yes",
                 "--allow-network", "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    e.keyid = summary["signer_keyid"]
    # every later ceremony's host profile pins the anchor and names the published set
    _write(root / "host.yaml", f"{host}anchor: {e.keyid}\ntrust: genesis\n")
    e.fleet_root = next((root / "genesis" / "artifacts").glob("fleet-root-*.dsse.json"))
    return e


def test_genesis_regional_root_outliving_its_fleet_root_is_refused_at_lock(env: Env) -> None:
    """Nesting holds at genesis too: the regional root may not outlive the fleet-root
    statement the same plan signs (verify would reject it: refuse before the HSM)."""
    from writroot.crypto.algorithms import ML_DSA_87

    request = env.root / "genesis-nesting-request.json"
    _write(request, key_request(raw_key(ML_DSA_87), "EUCOM").dumps().decode())
    plan = env.root / "genesis-nesting.yaml"
    regional = """  - op: sign-regional-root
    region: EUCOM
    request: genesis-nesting-request.json
    validity_days: {days}
    enclaves:
      - {{trust_domain: eucom-1.writsov.com, impact_level: IL4}}
"""
    text = genesis_yaml("genesis-nesting", after=POLICY + regional.format(days=60))
    _write(plan, text.replace("validity_days: 548", "validity_days: 30", 1))
    proc = run_cli("ceremony", "plan", str(plan))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "validity-nested" in proc.stderr and "the fleet root this plan makes" in proc.stderr
    assert "operations[2].validity_days" in proc.stderr, proc.stderr
    assert not (env.root / "genesis-nesting.lock.json").exists()
    _write(plan, text.replace("validity_days: 548", "validity_days: 60", 1))
    proc = run_cli("ceremony", "plan", str(plan))
    assert proc.returncode == 0, proc.stderr  # the same day is inside


def _fleet_plan(env: Env, name: str, ops: str) -> Path:
    d = env.root / name
    d.mkdir(exist_ok=True)
    shutil.copy(env.fleet_root, d / "fleet-root.dsse.json")
    return _write(d / "plan.yaml", f"""plan: 1
ceremony: {name}
fleet: testfleet
signer: {env.keyid}
roster: fleet-root.dsse.json
fleet_root: fleet-root.dsse.json
operations:
{ops}""")


def _regional_plan(env: Env, name: str, region: str = "EUCOM") -> Path:
    from writroot.crypto.algorithms import ML_DSA_87

    request = key_request(raw_key(ML_DSA_87), region)
    _write(env.root / name / "request.json", request.dumps().decode())
    plan = _fleet_plan(env, name, f"""  - op: sign-regional-root
    region: {region}
    request: request.json
    validity_days: 90
    enclaves:
      - {{trust_domain: {region.lower()}-1.writsov.com, impact_level: IL4}}
""")
    proc = env.cli("ceremony", "plan", str(plan))
    assert proc.returncode == 0, proc.stderr
    return env.root / name / "plan.lock.json"


def test_a_stale_key_request_is_not_certified(env: Env) -> None:
    """A key request lives 30 days: one signed 40 days ago (or dated in the future) is
    refused at lock, naming its window; nothing is written."""
    from writroot.crypto.algorithms import ML_DSA_87
    from writroot.region import request_payload

    raw = raw_key(ML_DSA_87)
    for name, when in (("stale-request", request_time() - timedelta(days=40)),
                       ("future-request", request_time() + timedelta(days=2))):
        payload = request_payload(raw.key, "EUCOM", "testfleet", "wrapped", "test-token", when)
        _write(env.root / name / "request.json", sign_raw(raw, payload).dumps().decode())
        plan = _fleet_plan(env, name, """  - op: sign-regional-root
    region: EUCOM
    request: request.json
    validity_days: 90
    enclaves:
      - {trust_domain: eucom-1.writsov.com, impact_level: IL4}
""")
        proc = env.cli("ceremony", "plan", str(plan))
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "[request-window]" in proc.stderr and "operations[0].request" in proc.stderr
        assert not (env.root / name / "plan.lock.json").exists()


def _approve(env: Env, locked: Path, *who: str) -> Path:
    out = locked.parent / "approvals"
    for cid in who:
        proc = env.cli("ceremony", "approve", str(locked), "--yes", "--custodian", cid, "--key",
                       f"custodians/{cid}.key.pem", "--passphrase", "env:PP", "--out", str(out))
        assert proc.returncode == 0, proc.stderr
    return out


def _run(e: Env, locked: Path, approvals: Path, out: Path, *extra: str,
         env: dict[str, str] | None = None):
    return e.cli("ceremony", "run", str(locked), "--approvals", str(approvals), "--host",
                 "host.yaml", "--out", str(out), "--yes", *extra, env=env or {})


def test_genesis_outputs_verify_and_audit(env: Env) -> None:
    out = env.root / "genesis"
    assert {p.name for p in out.iterdir()} >= {"artifacts", "fleet-root.pem", "transcript.jsonl",
                                              "ceremony-record.dsse.json", "plan.lock.json"}
    proc = env.cli("verify", str(out / "artifacts"), "--anchor", env.keyid, "--independent")
    assert proc.returncode == 0, proc.stdout
    audit = env.cli("audit", str(out / "transcript.jsonl"), "--anchor", str(env.anchor_pem),
                    "--markdown", str(env.root / "genesis-report.md"), "--html",
                    str(env.root / "genesis-report.html"))
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "ceremony-record signature: verified" in (env.root / "genesis-report.md").read_text()
    assert (env.root / "genesis-report.html").read_text().startswith("<!doctype html>")


def test_regional_ceremony_with_quorum(env: Env) -> None:
    locked = _regional_plan(env, "regional-ok")
    approvals = _approve(env, locked, "bruno", "chen")
    out = env.root / "regional-ok" / "out"
    proc = _run(env, locked, approvals, out, "--allow-network")
    assert proc.returncode == 0, proc.stderr
    arts = [str(p) for p in (out / "artifacts").glob("*.dsse.json")] + [str(env.fleet_root)]
    verify = env.cli("verify", *arts, "--anchor", env.keyid, "--json")
    assert verify.returncode == 0, verify.stdout


def test_m_minus_one_approvals_exit_4_before_the_hsm(env: Env) -> None:
    locked = _regional_plan(env, "regional-short")
    approvals = _approve(env, locked, "alice")
    out = env.root / "regional-short" / "out"
    proc = _run(env, locked, approvals, out, "--allow-network",
                env={env.token.env_var: "wrong-pin-never-used"})
    assert proc.returncode == 4, proc.stderr
    assert "1 of 2 approvals counted" in proc.stderr
    assert not out.exists()
    assert not list(out.parent.glob(".out.staging-*"))


def test_quorum_lists_what_it_did_not_count(env: Env) -> None:
    locked = _regional_plan(env, "regional-mixed")
    approvals = _approve(env, locked, "alice")
    other = _regional_plan(env, "regional-other")
    _approve(env, other, "bruno")
    shutil.copy(other.parent / "approvals" / "regional-other.approval.bruno.dsse.json",
                approvals / "bruno-other.dsse.json")
    (approvals / "junk.dsse.json").write_text("{not json")
    proc = env.cli("ceremony", "show", str(locked), "--approvals", str(approvals), "--json")
    assert proc.returncode == 0, proc.stderr
    quorum = json.loads(proc.stdout)["quorum"]
    assert quorum["counted"] == ["alice"] and not quorum["met"]
    reasons = {Path(r["approval"]).name: r["reason"] for r in quorum["rejected"]}
    assert "another plan" in reasons["bruno-other.dsse.json"]
    assert reasons["junk.dsse.json"].startswith("malformed")


def test_air_gap_is_enforced(env: Env) -> None:
    from writroot.ceremony.host import network_interfaces_up

    if not network_interfaces_up():
        pytest.skip("no network interface is up on this machine")
    locked = _regional_plan(env, "regional-net")
    approvals = _approve(env, locked, "alice", "bruno")
    out = env.root / "regional-net" / "out"
    proc = _run(env, locked, approvals, out)
    assert proc.returncode == 1 and "air-gapped" in proc.stderr
    assert not out.exists()


def test_air_gap_unseen_is_refused_not_recorded_as_none(env: Env, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A host without /sys/class/net (a chroot) cannot see its interfaces: the run refuses
    rather than record an empty list it did not see; --allow-network records null."""
    from writroot.ceremony import host, runner
    from writroot.errors import PolicyRefused

    sys_net = tmp_path / "sys-class-net"
    assert host.network_interfaces_up(sys_net) is None  # missing: not looked at
    (sys_net / "eth9").mkdir(parents=True)  # an interface whose state cannot be read: up
    (sys_net / "lo").mkdir()
    assert host.network_interfaces_up(sys_net) == ["eth9 (state unreadable)"]
    monkeypatch.setattr(runner, "network_interfaces_up",
                        lambda: host.network_interfaces_up(tmp_path / "missing"))
    locked = _regional_plan(env, "regional-unseen")
    approvals = _approve(env, locked, "alice", "bruno")
    out = env.root / "regional-unseen" / "out"
    profile = host.load_host_profile(env.root / "host.yaml")
    with pytest.raises(PolicyRefused, match=r"cannot read /sys/class/net, so the air gap "
                                            r"cannot be checked"):
        runner.run(locked, [approvals], profile, out, confirm=lambda _p: True)
    assert not out.exists()
    monkeypatch.setenv(env.token.env_var, env.token.pin.decode())
    result = runner.run(locked, [approvals], profile, out, confirm=lambda _p: True,
                        allow_network=True)
    assert result.network is None
    start = json.loads((out / "transcript.jsonl").read_text().splitlines()[0])["facts"]
    assert start["network"] is None and start["allow_network"] is True
    audit = env.cli("audit", str(out / "transcript.jsonl"), "--anchor", str(env.anchor_pem))
    assert audit.returncode == 0, audit.stdout + audit.stderr


def test_input_changed_after_lock_is_refused(env: Env) -> None:
    locked = _regional_plan(env, "regional-changed")
    approvals = _approve(env, locked, "alice", "bruno")
    request = locked.parent / "request.json"
    request.write_text(request.read_text().replace("A", "B", 1))
    proc = _run(env, locked, approvals, locked.parent / "out", "--allow-network")
    assert proc.returncode == 1 and "request.json" in proc.stderr and "changed" in proc.stderr


@pytest.mark.parametrize("event", ["token", "sign", "outputs", "close"])
def test_sigkill_leaves_nothing_and_rerun_succeeds(env: Env, event: str) -> None:
    locked = _regional_plan(env, f"regional-kill-{event}")
    approvals = _approve(env, locked, "alice", "chen")
    out = locked.parent / "out"
    killed = _run(env, locked, approvals, out, "--allow-network",
                  env=failpoint_env(f"transcript-{event}:kill"))
    assert killed.returncode == -9
    assert not out.exists()
    again = _run(env, locked, approvals, out, "--allow-network")
    assert again.returncode == 0, again.stderr
    assert (out / "ceremony-record.dsse.json").exists()


def test_outputs_are_write_once(env: Env) -> None:
    locked = _regional_plan(env, "regional-once")
    approvals = _approve(env, locked, "alice", "chen")
    out = locked.parent / "out"
    out.mkdir()
    proc = _run(env, locked, approvals, out, "--allow-network")
    assert proc.returncode == 2 and "write-once" in proc.stderr


@pytest.mark.parametrize("change", ["edit", "delete", "reorder"])
def test_transcript_tampering_is_detected(env: Env, change: str, tmp_path: Path) -> None:
    src = env.root / "genesis"
    lines = (src / "transcript.jsonl").read_bytes().splitlines(keepends=True)
    if change == "edit":
        lines[2] = lines[2].replace(b'"event":"token"', b'"event":"tokeN"')
    elif change == "delete":
        del lines[1]
    else:
        lines[1], lines[2] = lines[2], lines[1]
    (tmp_path / "transcript.jsonl").write_bytes(b"".join(lines))
    shutil.copy(src / "ceremony-record.dsse.json", tmp_path)
    proc = env.cli("audit", str(tmp_path / "transcript.jsonl"), "--anchor", str(env.anchor_pem))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "transcript.jsonl" in proc.stderr


def test_audit_text_says_why_not_verified(env: Env, tmp_path: Path) -> None:
    """Under another anchor the record does not verify: text mode names each reason on its
    own line (and so does the Markdown report), exit 1."""
    out = env.root / "genesis"
    other = "ab" * 32
    report = tmp_path / "r.md"
    proc = env.cli("audit", str(out / "transcript.jsonl"), "--anchor", other,
                   "--markdown", str(report))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    at = lines.index("- ceremony-record signature: NOT VERIFIED")
    # the text is the Markdown report, so the rule's brackets are escaped (display.md)
    reasons = [line for line in lines[at + 1:] if line.startswith("  - \\[")]
    assert reasons and lines[at + 1] == reasons[0]
    assert all("\\] " in r and len(r) > 10 for r in reasons)
    assert "\n".join(reasons) in report.read_text()
    ok = env.cli("audit", str(out / "transcript.jsonl"), "--anchor", str(env.anchor_pem))
    assert ok.returncode == 0 and "  - [" not in ok.stdout


def test_no_pin_or_passphrase_in_any_file(env: Env) -> None:
    pin = os.environ[env.token.env_var].encode()
    for path in env.root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert pin not in data, path
            assert PASS.encode() not in data, path


PLAN_ERRORS = [
    ("unknown key", "plan: 1\nceremony: x\nfleet: f\nsigner: generate\nroster: r.yaml\n"
     "operations: []\nsurprise: 1\n", ":7: ", "unknown field 'surprise'"),
    ("duplicate key", "plan: 1\nceremony: x\nceremony: y\n", ":3: ceremony",
     "duplicate key 'ceremony'"),
    ("wrong type", "plan: 1\nceremony: x\nfleet: f\nsigner: generate\nroster: r.yaml\n"
     "operations:\n  - op: sign-fleet-root\n    validity_days: lots\n", ":8: operations[0]"
     ".validity_days", "expected an integer"),
    ("bad op", "plan: 1\nceremony: x\nfleet: f\nsigner: generate\nroster: r.yaml\n"
     "operations:\n  - op: launch-missiles\n", ":7: operations[0].op", "op must be one of"),
    ("not yaml", "plan: [1\n", ":2", "malformed YAML"),
    ("escape", "plan: 1\nceremony: x\nfleet: f\nsigner: generate\nroster: ../r.yaml\n"
     "operations:\n  - op: generate-fleet-root\n    label: a\n    algorithm: SLH-DSA-SHA2-256s\n"
     "  - op: sign-fleet-root\n    validity_days: 1\n", ":5: roster", "relative paths"),
]


@pytest.mark.parametrize(("case", "text", "where", "message"), PLAN_ERRORS,
                         ids=[p[0] for p in PLAN_ERRORS])
def test_plan_errors_name_file_line_and_field(tmp_path: Path, case, text, where,
                                              message) -> None:
    plan = _write(tmp_path / "p.yaml", text)
    proc = run_cli("ceremony", "plan", str(plan))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{plan}{where}" in proc.stderr and message in proc.stderr, proc.stderr
    assert not (tmp_path / "p.lock.json").exists()


# -- the quorum rule, table-driven (pure) ---------------------------------------------------


class _S:
    def __init__(self, i: int) -> None:
        self.key = custodians()[i].key
        self._i = i

    def sign(self, message: bytes) -> bytes:
        from writroot.crypto import engines

        alg = self.key.algorithm
        return engines.signer_for(alg).sign(alg, custodians()[self._i].private, message)


def _plan(roster: dict, name: str = "q") -> LockedPlan:
    return LockedPlan({"plan": 1, "ceremony": name, "fleet": "testfleet", "signer": "a" * 64,
                       "roster": {"path": "r", "sha256": "b" * 64, "size": 1, "roster": roster},
                       "operations": []})


def _approval(plan: LockedPlan, i: int, when=NOW, hours: int = 72) -> dict:
    return approve(plan, f"c{i}", _S(i), when, hours).to_json()


OLD = roster_json(threshold=2, n=3)


def _forged(plan: LockedPlan, i: int) -> dict:
    """An approval of this exact plan by custodian c{i}'s key, which the roster lacks."""
    from writroot.envelope import Envelope, Signature, payload_type_for
    from writroot.statements import build

    signer = _S(i)
    payload = build("approval", fleet="testfleet", issuer_role="custodian",
                    issuer_keyid=signer.key.keyid,
                    ceremony={"id": plan.ceremony, "plan_sha256": plan.sha256, "approvals": []},
                    subject={"custodian": f"c{i}", "ceremony": plan.ceremony,
                             "plan_sha256": plan.sha256},
                    issued_at=NOW, not_before=NOW, not_after=NOW + timedelta(hours=72))
    env = Envelope(payload_type_for("approval"), payload, ())
    return Envelope(env.payload_type, payload,
                    (Signature(signer.key.keyid, signer.sign(env.pae())),)).to_json()


def _case(name: str):
    plan = _plan(OLD)
    other = _plan(OLD, "other")
    approvals = {
        "M-1": [_approval(plan, 0)],
        "M, one custodian twice": [_approval(plan, 0), _approval(plan, 0)],
        "M, one approves another plan": [_approval(plan, 0), _approval(other, 1)],
        "M, one expired": [_approval(plan, 0), _approval(plan, 1, NOW - timedelta(days=4))],
        "M, one by a key not on the roster": [_approval(plan, 0), _forged(plan, 4)],
        "M valid": [_approval(plan, 0), _approval(plan, 2)],
    }[name]
    return plan, approvals


QUORUM_CASES = [("M-1", False, ""), ("M, one custodian twice", False, "counted already"),
                ("M, one approves another plan", False, "another"),
                ("M, one expired", False, "expired"),
                ("M, one by a key not on the roster", False, "not on roster"),
                ("M valid", True, "")]


@pytest.mark.parametrize(("name", "met", "reason"), QUORUM_CASES, ids=[c[0] for c in QUORUM_CASES])
def test_quorum_table(name: str, met: bool, reason: str) -> None:
    plan, approvals = _case(name)
    tally = count([(f"a{i}", a) for i, a in enumerate(approvals)],
                  Roster.from_checked(roster_check(OLD, "r")), plan.ceremony, plan.sha256,
                  NOW + timedelta(hours=1))
    assert tally.met is met
    if reason:
        assert any(reason in r for _, r in tally.rejected), tally.rejected


NEW = {"version": 2, "threshold": 2, "custodians": roster_json(threshold=2, n=5)["custodians"][2:]}
ROSTER_CHANGE = [("old custodians only", (0, 1), False), ("new custodians only", (3, 4), False),
                 ("old and new", (0, 2, 3), True)]


@pytest.mark.parametrize(("case", "who", "met"), ROSTER_CHANGE, ids=[c[0] for c in ROSTER_CHANGE])
def test_roster_change_needs_old_and_new_thresholds(case: str, who, met: bool) -> None:
    both = roster_json(threshold=2, n=5)
    plan = _plan(both, "roster-change")
    approvals = [(f"a{i}", _approval(plan, i)) for i in who]
    old_t, new_t = roster_change(approvals, Roster.from_checked(roster_check(OLD, "o")),
                                 Roster.from_checked(roster_check(NEW, "n")), plan.ceremony,
                                 plan.sha256, NOW + timedelta(hours=1))
    assert (old_t.met and new_t.met) is met


def test_split_pin_run(env: Env, make_token) -> None:
    """A token whose PIN only M shares rebuild: too few or wrong shares change nothing."""
    token = make_token("split")
    # the fleet key lives on env.token; this token gets its own fleet root via a genesis plan
    proc = run_cli("hsm", "split-pin", *token.cli_args(), "--threshold", "2", "--shares", "3",
                   "--yes", "--shares-out", str(env.root / "split-shares"), "--json")
    assert proc.returncode == 0, proc.stderr
    shares = [Path(p).read_text().strip() for p in json.loads(proc.stdout)["share_files"]]
    assert len(shares) == 3
    share_env = {f"SHARE_{i}": s for i, s in enumerate(shares)}
    _write(env.root / "split-host.yaml",
           f"token_label: {token.spec.label}\npin_shares: [env:SHARE_0, env:SHARE_2]\n")
    _write(env.root / "split-host-short.yaml",
           f"token_label: {token.spec.label}\npin_shares: [env:SHARE_1]\n")
    old_pin = run_cli("hsm", "info", *token.cli_args(), "--login")
    assert old_pin.returncode == 3 and "PIN incorrect" in old_pin.stderr
    locked = env.root / "genesis.lock.json"
    approvals = env.root / "approvals-genesis"
    short = env.cli("ceremony", "run", str(locked), "--approvals", str(approvals), "--host",
                    "split-host-short.yaml", "--out", "split-short", "--yes", "--allow-network",
                    env=share_env)
    assert short.returncode == 2 and "this split needs 2 shares, 1 given" in short.stderr
    assert all(w not in short.stderr for w in shares[1].split()[:4])
    assert not (env.root / "split-short").exists()
    ok = env.cli("ceremony", "run", str(locked), "--approvals", str(approvals), "--host",
                 "split-host.yaml", "--out", "split-genesis", "--yes", "--allow-network",
                 env=share_env)
    assert ok.returncode == 0, ok.stderr
    for path in (env.root / "split-genesis").rglob("*"):
        if path.is_file():
            data = path.read_text(errors="replace")
            assert all(s not in data for s in shares), path


def test_card_custodian(env: Env, make_token, tmp_path: Path) -> None:
    """ECDSA P-384 approval key on a PKCS#11 smartcard (a second SoftHSM2 token)."""
    card = make_token("card")
    proc = run_cli("custodian", "keygen", "--id", "dana", "--name", "Dana", "--fleet",
                   "testfleet", "--out", str(tmp_path), "--card-label", str(card.spec.label),
                   "--card-pin", f"env:{card.env_var}")
    assert proc.returncode == 0, proc.stderr
    assert "ECDSA-P384-SHA384" in proc.stdout
    from writroot.envelope import Envelope
    from writroot.quorum.enrol import check_enrolment

    enrolment = tmp_path / "dana.enrolment.dsse.json"
    custodian = check_enrolment(Envelope.parse(enrolment.read_bytes(), "e"), "e")
    roster = {"version": 1, "threshold": 1, "custodians": [
        {"id": "dana", "name": "Dana", "key": custodian["key"].to_json()},
        {"id": "c0", "name": "Custodian 0", "key": custodians()[0].key.to_json()}]}
    plan = _plan(roster, "card-plan")
    # The signature on the card, through the same calls `ceremony approve --card-label` makes
    # (the CLI only approves real locks, re-checked from their inputs: see the genesis tests).
    from writroot.quorum.custodian import load_card_key

    with card.session() as session:
        approval = approve(plan, "dana", load_card_key(session, "dana"), NOW.now(NOW.tzinfo))
    approvals = [("dana", approval.to_json())]
    tally = count(approvals, Roster.from_checked(roster_check(roster, "r")), plan.ceremony,
                  plan.sha256, NOW.now(NOW.tzinfo))
    assert tally.counted == ["dana"] and tally.met


def test_roster_change_ceremony(env: Env, tmp_path: Path) -> None:
    """Rotate the roster (alice, bruno, chen -> chen, dana, erin): old and new thresholds."""
    for cid in ("dana", "erin"):
        proc = env.cli("custodian", "keygen", "--id", cid, "--name", cid.title(), "--fleet",
                       "testfleet", "--out", "custodians", "--passphrase", "env:PP")
        assert proc.returncode == 0, proc.stderr
    d = env.root / "roster-change"
    _write(d / "new-roster.yaml", "threshold: 2\ncustodians:\n" + "".join(
        f"  - id: {c}\n    name: {c.title()}\n"
        f"    enrolment: ../custodians/{c}.enrolment.dsse.json\n"
        for c in ("chen", "dana", "erin")))
    _fleet_plan(env, "roster-change", """  - op: sign-roster
    roster: new-roster.yaml
    validity_days: 548
""")
    proc = env.cli("ceremony", "plan", str(d / "plan.yaml"))
    assert proc.returncode == 2 and "relative paths" in proc.stderr  # '..' is refused
    shutil.copytree(env.root / "custodians", d / "custodians")
    (d / "new-roster.yaml").write_text((d / "new-roster.yaml").read_text().replace("../", ""))
    assert env.cli("ceremony", "plan", str(d / "plan.yaml")).returncode == 0
    locked = d / "plan.lock.json"
    old_only = _approve(env, locked, "alice", "bruno")
    short = _run(env, locked, old_only, d / "out-old-only", "--allow-network")
    assert short.returncode == 4 and "new roster" in short.stderr
    _approve(env, locked, "chen", "dana")  # chen is on both rosters, dana only on the new
    both = _run(env, locked, old_only, d / "out", "--allow-network")
    assert both.returncode == 0, both.stderr
    roster_env = next((d / "out" / "artifacts").glob("roster-*.dsse.json"))
    verify = env.cli("verify", str(env.fleet_root), str(roster_env), "--anchor", env.keyid)
    assert verify.returncode == 0, verify.stdout


@pytest.mark.parametrize("name", ["genesis", "regional-issuance", "roster-change",
                                  "fleet-rotation", "emergency-revocation", "enclave-bundles",
                                  "oscal-baseline", "oscal-overlay"])
def test_standard_plans_pass_the_plan_rules(name: str) -> None:
    from writroot.ceremony import strictyaml
    from writroot.ceremony.plan import check_plan

    path = Path(__file__).parent.parent / "ceremonies" / f"{name}.yaml"
    plan = check_plan(strictyaml.load_file(path))
    assert plan["plan"] == 1 and plan["operations"]


def test_host_profile_template_and_errors(tmp_path: Path) -> None:
    from writroot.ceremony.host import load_host_profile
    from writroot.errors import BadInput

    template = Path(__file__).parent.parent / "templates" / "host-profile.yaml"
    host = load_host_profile(template)
    assert host.token_label == "writroot-fleet" and host.pin_source == "prompt"
    bad = _write(tmp_path / "h.yaml", "token_label: t\npin: prompt\npin_shares: [prompt]\n")
    with pytest.raises(BadInput, match=r"h\.yaml:3: pin_shares"):
        load_host_profile(bad)
    unknown = _write(tmp_path / "u.yaml", "token_label: t\nso_pin: 1234\n")
    with pytest.raises(BadInput, match=r"u\.yaml:2: so_pin: unknown field"):
        load_host_profile(unknown)
    # the template's commented anchor:/trust: lines, as a profile after genesis uses them
    (tmp_path / "published").mkdir()
    text = template.read_text().replace("# anchor:", "anchor:").replace("# trust:", "trust:")
    pinned = load_host_profile(_write(tmp_path / "pinned.yaml", text)).pinned()
    assert pinned is not None and pinned.trust_dir == tmp_path / "published"
    assert pinned.anchor.keyid.startswith("33867e06f3f8d082")
    loose = _write(tmp_path / "t.yaml", "token_label: t\ntrust: published\n")
    with pytest.raises(BadInput, match=r"t\.yaml:2: trust: .*add anchor:"):
        load_host_profile(loose)


ROTATE_SCRIPT = Path(__file__).parent.parent / "scripts" / "ci-rotate-regional.sh"


def _rotation_env(env: Env, region_token: Token, work: Path, **over: str) -> dict[str, str]:
    import os

    c = env.root / "custodians"
    variables = {
        "WRITROOT": f"{sys.executable} -m writroot", "WRITROOT_REGION": "EUCOM",
        "WRITROOT_VERSION": "2", "WRITROOT_FLEET": "testfleet",
        "WRITROOT_FLEET_KEYID": env.keyid, "WRITROOT_FLEET_ROOT": str(env.fleet_root),
        "WRITROOT_ROSTER": str(env.fleet_root), "WRITROOT_ANCHOR": str(env.anchor_pem),
        "WRITROOT_TRUST": str(env.root / "genesis"),
        "WRITROOT_REGION_TOKEN": str(region_token.spec.label),
        "WRITROOT_REGION_PIN": f"env:{region_token.env_var}",
        "WRITROOT_FLEET_HOST": str(env.root / "host.yaml"),
        "WRITROOT_APPROVERS": f"alice={c}/alice.key.pem=PP bruno={c}/bruno.key.pem=PP",
        "WRITROOT_WORK": str(work), "WRITROOT_ALGORITHM": "SLH-DSA-SHA2-256f",
        "WRITROOT_ALLOW_NETWORK": "1", "PP": PASS,
        "WRITROOT_ENCLAVES": "[{trust_domain: eucom-1.writsov.com, impact_level: IL4}]",
    }
    return {**os.environ, **variables, **over}


def test_ci_rotation_script_rotates_a_region_unattended(env: Env, make_token) -> None:
    """The documented CI script: keygen on the region's SoftHSM2 token, transfer bundle,
    plan, two approvals, run --yes, verify, status: exit 0 and a verified v2 regional root."""
    region_token = make_token("eucom")
    work = env.root / "ci-rotation"
    proc = subprocess.run(["bash", str(ROTATE_SCRIPT)], env=_rotation_env(env, region_token, work),
                          capture_output=True, text=True, timeout=600, check=False, cwd=env.root)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((work / "verify.json").read_text())
    assert report["ok"]
    [regional] = [a for a in report["artifacts"] if a["type"] == "regional-root"]
    assert "EUCOM" in regional["artifact"]
    rows = json.loads((work / "status.json").read_text())["rows"]
    assert [(r["name"], r["version"]) for r in rows if r["kind"] == "regional-root"] == \
        [("EUCOM", "v2")]
    assert PASS not in proc.stderr and PASS not in (work / "run.json").read_text()


def test_ci_rotation_script_stops_without_quorum(env: Env, make_token) -> None:
    region_token = make_token("eucom")
    work = env.root / "ci-rotation-short"
    c = env.root / "custodians"
    proc = subprocess.run(["bash", str(ROTATE_SCRIPT)],
                          env=_rotation_env(env, region_token, work,
                                            WRITROOT_APPROVERS=f"alice={c}/alice.key.pem=PP"),
                          capture_output=True, text=True, timeout=600, check=False, cwd=env.root)
    assert proc.returncode == 4, proc.stderr
    assert not (work / "out").exists()


# -- OSCAL baselines, overlays and release provenance in ceremonies ---------------------------

OSCAL_DATA = Path(__file__).parent / "data" / "oscal"
CATALOG = "NIST_SP-800-53_rev5_MODERATE-baseline-resolved-profile_catalog-min.json"


def _oscal_inputs(d: Path, baseline: dict | None = None) -> None:
    shutil.copy(OSCAL_DATA / CATALOG, d / CATALOG)
    doc = baseline or json.loads((OSCAL_DATA / "baseline-component-definition.json").read_text())
    (d / "baseline.json").write_text(json.dumps(doc, indent=2))


def _baseline_doc() -> dict:
    return json.loads((OSCAL_DATA / "baseline-component-definition.json").read_text())


def _reqs(doc: dict) -> list:
    return doc["component-definition"]["components"][0]["control-implementations"][0][
        "implemented-requirements"]


def _dup(doc: dict) -> None:
    _reqs(doc).append(dict(_reqs(doc)[0], uuid="8f2b5c1e-6d4a-4b7e-9c3f-2a1d0e9b8c7d"))


def _missing(doc: dict) -> None:
    _reqs(doc)[2]["control-id"] = "zz-99"


def _remote(doc: dict) -> None:
    doc["component-definition"]["metadata"]["links"] = [{"href": "https://example.com/x",
                                                          "rel": "reference"}]


def _naive(doc: dict) -> None:
    doc["component-definition"]["metadata"]["last-modified"] = "2026-01-01T00:00:00"


def _v1_uuid(doc: dict) -> None:
    doc["component-definition"]["uuid"] = "a3bb189e-8bf9-11ee-b9d1-0242ac120002"


def _unknown(doc: dict) -> None:
    doc["component-definition"]["metadata"]["colour"] = "blue"


@pytest.mark.parametrize("mutate, where, says", [
    (_dup, "implemented-requirements[", "duplicate"),
    (_missing, "control-id", "zz-99"),
    (_remote, "metadata.links[0].href", "https"),
    (_naive, "metadata.last-modified", "timezone"),
    (_v1_uuid, "component-definition.uuid", "version 4"),
    (_unknown, "metadata", "colour"),
])
def test_bad_baseline_is_refused_before_anything_is_signed(env: Env, mutate, where: str,
                                                           says: str) -> None:
    name = f"bad-baseline-{mutate.__name__.strip('_')}"
    plan = _fleet_plan(env, name, "  - op: sign-oscal-baseline\n    document: baseline.json\n"
                                  "    validity_days: 365\n")
    doc = _baseline_doc()
    mutate(doc)
    _oscal_inputs(plan.parent, doc)
    proc = env.cli("ceremony", "plan", str(plan))
    assert proc.returncode == 2, proc.stderr
    assert "baseline.json" in proc.stderr and where in proc.stderr, proc.stderr
    assert says in proc.stderr.lower(), proc.stderr
    assert not (plan.parent / "plan.lock.json").exists()


@pytest.fixture(scope="module")
def signed_baseline(env: Env) -> Path:
    """A baseline signed in a fleet ceremony (real signature, real quorum)."""
    plan = _fleet_plan(env, "oscal-baseline", "  - op: sign-oscal-baseline\n"
                                              "    document: baseline.json\n"
                                              "    validity_days: 365\n")
    _oscal_inputs(plan.parent)
    assert env.cli("ceremony", "plan", str(plan)).returncode == 0
    locked = plan.parent / "plan.lock.json"
    approvals = _approve(env, locked, "alice", "chen")
    proc = _run(env, locked, approvals, plan.parent / "out", "--allow-network")
    assert proc.returncode == 0, proc.stderr
    return next((plan.parent / "out" / "artifacts").glob("oscal-baseline-*.dsse.json"))


def test_signed_baseline_is_trestle_layout_and_verifies(env: Env, signed_baseline: Path) -> None:
    env_json = json.loads(signed_baseline.read_text())
    assert env_json["payloadType"] == "application/vnd.in-toto+json"
    import base64

    statement = json.loads(base64.b64decode(env_json["payload"]))
    assert statement["predicateType"].startswith("https://oscal-compass.github.io/")
    assert statement["subject"][0]["name"].startswith("component-definition/")
    shipped = next((signed_baseline.parent.parent / "oscal").glob("*.json"))
    proc = env.cli("verify", str(env.fleet_root), str(signed_baseline), "--anchor", env.keyid,
                   "--subject", str(shipped), "--json")
    assert proc.returncode == 0, proc.stdout


@pytest.fixture(scope="module")
def eucom_authority(env: Env) -> tuple[str, Path]:
    """A EUCOM regional root certified in a fleet ceremony: (its keyid, its envelope)."""
    locked = _regional_plan(env, "overlay-authority")
    proc = _run(env, locked, _approve(env, locked, "alice", "bruno"), locked.parent / "out",
                "--allow-network")
    assert proc.returncode == 0, proc.stderr
    envelope = next((locked.parent / "out" / "artifacts").glob("regional-root-*.dsse.json"))
    keyid = json.loads(locked.read_text())["operations"][0]["key"]["keyid"]
    return keyid, envelope


def _overlay_plan(env: Env, name: str, authority: tuple[str, Path], baseline: Path) -> Path:
    d = env.root / name
    d.mkdir()
    _oscal_inputs(d)
    shutil.copy(OSCAL_DATA / "overlay-conus.json", d / "overlay.json")
    shutil.copy(d / "baseline.json", d / "baseline-component-definition.json")
    shutil.copy(env.fleet_root, d / "fleet-root.dsse.json")
    shutil.copy(authority[1], d / "authority.dsse.json")
    shutil.copy(baseline, d / "baseline.dsse.json")
    return _write(d / "plan.yaml", f"""plan: 1
ceremony: {name}
fleet: testfleet
signer: "{authority[0]}"
roster: fleet-root.dsse.json
fleet_root: fleet-root.dsse.json
authority: authority.dsse.json
operations:
  - op: sign-oscal-overlay
    region: EUCOM
    profile: overlay.json
    baseline: baseline.dsse.json
    baseline_document: baseline-component-definition.json
    validity_days: 30
""")


def test_overlay_locks_against_the_signed_baseline(env: Env, eucom_authority,
                                                   signed_baseline: Path) -> None:
    plan = _overlay_plan(env, "overlay-ok", eucom_authority, signed_baseline)
    proc = env.cli("ceremony", "plan", str(plan), "--json")
    assert proc.returncode == 0, proc.stderr


def test_overlay_naming_an_unsigned_baseline_is_refused(env: Env, eucom_authority) -> None:
    """The 'baseline' named here is the fleet-root statement: not a signed baseline."""
    plan = _overlay_plan(env, "overlay-unsigned", eucom_authority, env.fleet_root)
    proc = env.cli("ceremony", "plan", str(plan))
    assert proc.returncode == 2, proc.stderr
    assert "plan.yaml" in proc.stderr and "operations[0].baseline" in proc.stderr
    assert "oscal-baseline" in proc.stderr
    assert not (plan.parent / "plan.lock.json").exists()


def test_overlay_pinning_the_wrong_hash_is_refused(env: Env, eucom_authority,
                                                   signed_baseline: Path) -> None:
    plan = _overlay_plan(env, "overlay-wrong-hash", eucom_authority, signed_baseline)
    overlay = plan.parent / "overlay.json"
    text = overlay.read_text()
    good = json.loads(text)
    pinned = good["profile"]["back-matter"]["resources"][0]["rlinks"][0]["hashes"][0]["value"]
    overlay.write_text(text.replace(pinned, "0" * 64))
    proc = env.cli("ceremony", "plan", str(plan))
    assert proc.returncode == 2, proc.stderr
    assert "overlay.json" in proc.stderr and "back-matter" in proc.stderr
    assert not (plan.parent / "plan.lock.json").exists()


def test_release_provenance_ceremony_and_subject_files(env: Env) -> None:
    plan = _fleet_plan(env, "release-1", """  - op: sign-release-provenance
    artifacts:
      - writroot-1.0.tar.gz
      - writroot-1.0-py3-none-any.whl
      - "sbom.spdx.json=sha256:""" + "ab" * 32 + """"
    validity_days: 365
""")
    (plan.parent / "writroot-1.0.tar.gz").write_bytes(b"source release\n")
    (plan.parent / "writroot-1.0-py3-none-any.whl").write_bytes(b"wheel\n")
    assert env.cli("ceremony", "plan", str(plan)).returncode == 0
    locked = plan.parent / "plan.lock.json"
    proc = _run(env, locked, _approve(env, locked, "bruno", "chen"), plan.parent / "out",
                "--allow-network")
    assert proc.returncode == 0, proc.stderr
    [prov] = (plan.parent / "out" / "artifacts").glob("release-provenance-*.dsse.json")
    files = [str(plan.parent / "writroot-1.0.tar.gz"),
             str(plan.parent / "writroot-1.0-py3-none-any.whl")]
    good = env.cli("verify", str(env.fleet_root), str(prov), "--anchor", env.keyid,
                   *[a for f in files for a in ("--subject", f)], "--json")
    assert good.returncode == 0, good.stdout
    (plan.parent / "writroot-1.0.tar.gz").write_bytes(b"trojaned release\n")
    bad = env.cli("verify", str(env.fleet_root), str(prov), "--anchor", env.keyid,
                  "--subject", files[0], "--json")
    assert bad.returncode == 1
    assert [f["check"] for f in json.loads(bad.stdout)["findings"]] == ["subject-digest"]
    stranger = plan.parent / "unrelated.bin"
    stranger.write_bytes(b"x")
    odd = env.cli("verify", str(env.fleet_root), str(prov), "--anchor", env.keyid,
                  "--subject", str(stranger), "--json")
    assert odd.returncode == 1 and "subject-unmatched" in odd.stdout


def test_ci_rotation_script_names_a_missing_variable(env: Env, make_token, tmp_path) -> None:
    import os

    variables = {k: v for k, v in os.environ.items() if not k.startswith("WRITROOT_")}
    proc = subprocess.run(["bash", str(ROTATE_SCRIPT)], env=variables, capture_output=True,
                          text=True, timeout=60, check=False, cwd=tmp_path)
    assert proc.returncode == 2 and "WRITROOT_REGION is not set" in proc.stderr


# -- issue 9: a hand-edited lock skips no rule (re-checked at show, approve and run) ---------

def _edit_op(key: str, value: Any, source_too: bool = False) -> Any:
    def edit(doc: dict) -> None:
        doc["operations"][0][key] = value
        if source_too:
            doc["source"]["operations"][0][key] = value
    return edit


def _other_key(doc: dict) -> None:
    """A key that never made a key request (no proof of possession)."""
    from writroot.crypto.algorithms import ML_DSA_87

    doc["operations"][0]["key"].update(raw_key(ML_DSA_87).key.to_json())


def _plan_true(doc: dict) -> None:
    doc["plan"] = True


def _enclaves_added(doc: dict) -> None:
    doc["operations"][0]["enclaves"].append(
        {"trust_domain": "conus-1.writsov.com", "impact_level": "IL4",
         "may_sign": ["enclave-bundle", "federation-key"]})


def _source_region(doc: dict) -> None:
    doc["source"]["operations"][0]["region"] = "CONUS"
    doc["operations"][0]["region"] = "CONUS"


def _signer(doc: dict) -> None:
    doc["signer"] = "ab" * 32


LOCK_EDITS = [
    ("validity above policy, lock only", _edit_op("validity_days", 3650), 1, "plan-relock"),
    ("validity above policy, source too", _edit_op("validity_days", 200, True), 1,
     "policy-validity"),
    ("validity past the fleet root, source too", _edit_op("validity_days", 3650, True), 1,
     "validity-nested"),
    ("a key that made no key request", _other_key, 1, "plan-relock"),
    ("true where 1 is required", _plan_true, 2, "plan-well-formed"),
    ("an enclave the region was not given", _enclaves_added, 1, "plan-relock"),
    ("the request's region changed in source and lock", _source_region, 1, "region"),
    ("another signer", _signer, 1, "signer"),
]


@pytest.mark.parametrize("name, edit, code, says", LOCK_EDITS,
                         ids=[row[0] for row in LOCK_EDITS])
def test_hand_edited_lock_is_refused_at_show_approve_and_run(env: Env, name: str, edit: Any,
                                                             code: int, says: str) -> None:
    """Custodians hoodwinked into approving an edited lock (their approvals signed through
    the library, as a tampered tool would) still sign nothing: show, approve and run each
    lock the source again and apply every rule."""
    from writroot.ceremony.plan import LockedPlan
    from writroot.quorum.custodian import load_file_key

    slug = "edit-" + "".join(c if c.isalnum() else "-" for c in name.lower())[:40]
    locked = _regional_plan(env, slug)
    doc = json.loads(locked.read_text())
    edit(doc)
    edited = LockedPlan(doc)
    locked.write_bytes(edited.dumps())
    out_approvals = locked.parent / "approvals"
    out_approvals.mkdir()
    for cid in ("alice", "bruno"):
        signer = load_file_key(env.root / "custodians" / f"{cid}.key.pem",
                               bytearray(PASS.encode()))
        envelope = approve(edited, cid, signer, NOW.now(NOW.tzinfo) - timedelta(minutes=5), 24)
        (out_approvals / f"{cid}.dsse.json").write_bytes(envelope.dumps())
    shown = env.cli("ceremony", "show", str(locked))
    approved = env.cli("ceremony", "approve", str(locked), "--yes", "--custodian", "chen",
                       "--key", "custodians/chen.key.pem", "--passphrase", "env:PP", "--out",
                       str(locked.parent / "more"))
    ran = _run(env, locked, out_approvals, locked.parent / "out", "--allow-network")
    for proc in (shown, approved, ran):
        assert proc.returncode == code, proc.stderr
        assert says in proc.stderr and "Traceback" not in proc.stderr + proc.stdout
    assert not (locked.parent / "out").exists() and not (locked.parent / "more").exists()


def test_bundle_for_another_regions_enclave_is_refused_at_lock(
        env: Env, eucom_authority: tuple[str, Path]) -> None:
    """EUCOM's root was given eucom-1 only: a plan for conus-1's bundle does not lock."""
    d = env.root / "eucom-forges-conus"
    d.mkdir()
    shutil.copy(env.fleet_root, d / "fleet-root.dsse.json")
    shutil.copy(eucom_authority[1], d / "authority.dsse.json")
    _write(d / "bundle.json", json.dumps(jwt_bundle(1)))
    _write(d / "plan.yaml", f"""plan: 1
ceremony: eucom-forges-conus
fleet: testfleet
signer: "{eucom_authority[0]}"
roster: fleet-root.dsse.json
fleet_root: fleet-root.dsse.json
authority: authority.dsse.json
operations:
  - op: sign-enclave-bundle
    region: EUCOM
    trust_domain: conus-1.writsov.com
    impact_level: IL4
    bundle: bundle.json
    validity_days: 30
""")
    proc = env.cli("ceremony", "plan", str(d / "plan.yaml"))
    assert proc.returncode == 1 and "enclave-assigned" in proc.stderr, proc.stderr
    assert "plan.yaml:" in proc.stderr and not (d / "plan.lock.json").exists()


def test_approval_may_not_outlive_the_policy(env: Env) -> None:
    locked = _regional_plan(env, "long-approval")
    proc = env.cli("ceremony", "approve", str(locked), "--yes", "--custodian", "alice",
                   "--key", "custodians/alice.key.pem", "--passphrase", "env:PP",
                   "--hours", "1000", "--out", str(locked.parent / "approvals"))
    assert proc.returncode == 1 and "approval_expiry_hours" in proc.stderr, proc.stderr
    assert not (locked.parent / "approvals").exists()


def test_approve_shows_the_review_and_wants_the_typed_id(env: Env) -> None:
    locked = _regional_plan(env, "typed-approval")
    base = ["ceremony", "approve", str(locked), "--custodian", "alice", "--key",
            "custodians/alice.key.pem", "--passphrase", "env:PP", "--out"]
    wrong = run_cli(*base, str(locked.parent / "a1"), *env.pinned(*base), cwd=env.root,
                    env={"PP": PASS}, input_text="not-the-id\n")
    assert wrong.returncode == 1 and "plan digest" in wrong.stderr
    assert not (locked.parent / "a1").exists()
    right = run_cli(*base, str(locked.parent / "a2"), *env.pinned(*base), cwd=env.root,
                    env={"PP": PASS}, input_text="typed-approval\n")
    assert right.returncode == 0, right.stderr
