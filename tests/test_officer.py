"""The officer's day (issue 13): the one review, prompts on stderr and in a real pseudo-terminal,
fingerprints at key birth, token set-up and the split-PIN lifecycle, Ed25519 smartcard
custodians, early checks at lock, and failed commands that leave nothing behind.

Real SoftHSM2 tokens and real signatures throughout (SLH-DSA-SHA2-256f fleet roots)."""

from __future__ import annotations

import json
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import run_cli

PASS = "officer passphrase 1"
POLICY = """    policy:
      fleet_root_algorithm: SLH-DSA-SHA2-256f
      regional_root_algorithms: [SLH-DSA-SHA2-256f, ML-DSA-87]
"""


@dataclass
class Day:
    root: Path
    token: str  # fleet token label (its PIN is split 2 of 3)
    shares: list[str]
    split: str
    card: str  # dana's smartcard label
    card_pin_var: str
    env: dict[str, str]

    def cli(self, *args: str, extra: dict[str, str] | None = None):
        return run_cli(*args, cwd=self.root, env={**self.env, **(extra or {})})

    def fresh_host(self, name: str) -> str:
        """A host profile on a new token: a genesis runs only on a token with no fleet key."""
        label = f"{name}-{secrets.token_hex(3)}"
        pin_var = f"PIN_{name.upper().replace('-', '_')}"
        self.env[pin_var] = secrets.token_hex(8)
        proc = self.cli("token", "init", "--label", label, "--so-pin", "env:SO", "--pin",
                        f"env:{pin_var}")
        assert proc.returncode == 0, proc.stderr
        (self.root / f"{name}.host.yaml").write_text(f"token_label: {label}\n"
                                                     f"pin: env:{pin_var}\n")
        return f"{name}.host.yaml"

    def genesis(self, name: str, fleet: str = "testfleet") -> Path:
        """A locked genesis plan `name`, approved by alice (file key) and dana (Ed25519
        card)."""
        (self.root / f"{name}.yaml").write_text(f"""plan: 1
ceremony: {name}
fleet: {fleet}
signer: generate
roster: roster.yaml
operations:
  - op: generate-fleet-root
    label: {name}-root
    algorithm: SLH-DSA-SHA2-256f
  - op: sign-fleet-root
    validity_days: 548
""" + POLICY)
        proc = self.cli("ceremony", "plan", f"{name}.yaml")
        assert proc.returncode == 0, proc.stderr
        approve = ("ceremony", "approve", f"{name}.lock.json", "--yes", "--out",
                   f"approvals-{name}")
        proc = self.cli(*approve, "--custodian", "alice", "--key", "custodians/alice.key.pem",
                        "--passphrase", "env:PP", "--json")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["custodian"] == "alice"
        proc = self.cli(*approve, "--custodian", "dana", "--card-label", self.card,
                        "--card-pin", f"env:{self.card_pin_var}")
        assert proc.returncode == 0, proc.stderr
        return self.root / f"{name}.lock.json"


def read_share_files(paths: list[str], base: Path | None = None) -> list[str]:
    """PIN share files: one share each, mode 600 in a new mode-700 directory."""
    shares = []
    for name in paths:
        path = (base or Path.cwd()) / name
        assert path.stat().st_mode & 0o777 == 0o600
        assert path.parent.stat().st_mode & 0o777 == 0o700
        shares.append(path.read_text().strip())
    return shares


@pytest.fixture(scope="module")
def day(tmp_path_factory) -> Day:
    root = tmp_path_factory.mktemp("officer")
    tag = secrets.token_hex(3)
    env = {"PP": PASS, "SO": "so-pin-" + tag, "CARD_PIN": "card-pin-" + tag}
    token = f"fleet-{tag}"
    proc = run_cli("token", "init", "--label", token, "--so-pin", "env:SO", "--threshold", "2",
                   "--shares", "3", "--shares-out", str(root / "pin-shares"), "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    made = json.loads(proc.stdout)
    assert made["token"] == token and made["threshold"] == 2 and len(made["share_files"]) == 3
    made["shares"] = read_share_files(made["share_files"])
    card = f"card-{tag}"
    proc = run_cli("token", "init", "--label", card, "--so-pin", "env:SO", "--pin",
                   "env:CARD_PIN", env=env)
    assert proc.returncode == 0, proc.stderr
    for cid in ("alice", "bruno"):
        proc = run_cli("custodian", "keygen", "--id", cid, "--name", cid.title(), "--fleet",
                       "testfleet", "--out", "custodians", "--passphrase", "env:PP", cwd=root,
                       env=env)
        assert proc.returncode == 0, proc.stderr
    proc = run_cli("custodian", "keygen", "--id", "dana", "--name", "Dana", "--fleet",
                   "testfleet", "--out", "custodians", "--card-label", card,
                   "--card-algorithm", "Ed25519", "--card-pin", "env:CARD_PIN", "--json",
                   cwd=root, env=env)
    assert proc.returncode == 0, proc.stderr
    dana = json.loads(proc.stdout)
    assert dana["algorithm"] == "Ed25519" and dana["custody"] == "smartcard"
    assert len(dana["keyid"]["words"].split()) == 32
    (root / "roster.yaml").write_text("threshold: 2\ncustodians:\n" + "".join(
        f"  - id: {c}\n    name: {c.title()}\n    enrolment: custodians/{c}.enrolment.dsse.json\n"
        for c in ("alice", "bruno", "dana")))
    shares = made["shares"]
    env.update({f"S{i}": s for i, s in enumerate(shares)})
    (root / "host.yaml").write_text(f"token_label: {token}\npin_shares: [env:S0, env:S2]\n")
    return Day(root, token, shares, made["split"], card, "CARD_PIN", env)


# -- token set-up and the split-PIN lifecycle ---------------------------------------------

def test_split_pin_lifecycle(day: Day) -> None:
    """token init splits at once; check-shares proves the shares; every hsm command takes
    them; resplit kills the old shares; shares of two splits are named as such."""
    token = ("--token-label", day.token)
    ok = day.cli("hsm", "check-shares", *token, "--pin-shares", "env:S0", "--pin-shares",
                 "env:S1", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["rebuild_pin"] is True
    one = day.cli("hsm", "check-shares", *token, "--pin-shares", "env:S1")
    assert one.returncode == 2 and "this split needs 2 shares, 1 given" in one.stderr
    assert all(word not in one.stderr for word in day.shares[1].split()[2:6])
    info = day.cli("hsm", "info", *token, "--pin-shares", "env:S1", "--pin-shares", "env:S2",
                   "--json")
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["logged_in"] is True
    # a throwaway token for the re-split, so the fleet token's split stays for the run tests
    spare = f"spare-{secrets.token_hex(3)}"
    made = day.cli("token", "init", "--label", spare, "--so-pin", "env:SO", "--threshold", "2",
                   "--shares", "2", "--shares-out", "spare-shares", "--json")
    assert made.returncode == 0, made.stderr
    old = json.loads(made.stdout)
    old["shares"] = read_share_files(old["share_files"], day.root)
    extra = {"O0": old["shares"][0], "O1": old["shares"][1]}
    refused = day.cli("hsm", "resplit", "--token-label", spare, "--pin-shares", "env:O0",
                      "--pin-shares", "env:O1", "--threshold", "2", "--shares", "3",
                      "--shares-out", "unused", extra=extra)  # no --yes, no typed label
    assert refused.returncode != 0 and "token label" in refused.stderr
    assert not (day.root / "unused").exists()
    new = day.cli("hsm", "resplit", "--token-label", spare, "--pin-shares", "env:O0",
                  "--pin-shares", "env:O1", "--threshold", "2", "--shares", "3", "--yes",
                  "--shares-out", "spare-reshares", "--json", extra=extra)
    assert new.returncode == 0, new.stderr
    fresh = json.loads(new.stdout)
    fresh["shares"] = read_share_files(fresh["share_files"], day.root)
    assert fresh["split"] != old["split"] and len(fresh["shares"]) == 3
    extra.update({"N0": fresh["shares"][0], "N1": fresh["shares"][1]})
    dead = day.cli("hsm", "check-shares", "--token-label", spare, "--pin-shares", "env:O0",
                   "--pin-shares", "env:O1", extra=extra)
    assert dead.returncode == 3 and "PIN incorrect" in dead.stderr
    mixed = day.cli("hsm", "check-shares", "--token-label", spare, "--pin-shares", "env:O0",
                    "--pin-shares", "env:N1", extra=extra)
    assert mixed.returncode == 2 and "different splits" in mixed.stderr
    assert old["split"] in mixed.stderr and fresh["split"] in mixed.stderr
    live = day.cli("hsm", "check-shares", "--token-label", spare, "--pin-shares", "env:N0",
                   "--pin-shares", "env:N1", extra=extra)
    assert live.returncode == 0, live.stderr


# -- the review, prompts and machine output ----------------------------------------------

def test_review_is_the_same_in_plan_show_and_json(day: Day) -> None:
    locked = day.genesis("review-1")
    plan = day.cli("ceremony", "plan", "review-1.yaml", "--out", "review-1b.lock.json",
                   "--json")
    show = day.cli("ceremony", "show", str(locked), "--approvals", "approvals-review-1",
                   "--json")
    assert plan.returncode == 0 and show.returncode == 0, plan.stderr + show.stderr
    a, b = json.loads(plan.stdout)["review"], json.loads(show.stdout)["review"]
    for r in (a, b):
        r.pop("reviewed_at")
        for op in r["operations"]:
            op.pop("validity", None)
    assert a == b
    assert [c["id"] for c in a["roster"]["custodians"]] == ["alice", "bruno", "dana"]
    assert a["roster"]["custodians"][2]["algorithm"] == "Ed25519"
    assert a["policy"]["fleet_root_algorithm"] == "SLH-DSA-SHA2-256f"
    assert [op["serial"] for op in a["operations"] if "serial" in op] == ["review-1.1"]
    text = day.cli("ceremony", "show", str(locked), "--approvals", "approvals-review-1")
    assert text.returncode == 0
    out = text.stdout
    assert "{'" not in out and "Operation 2 of 2" in out and "CDS routes" in out
    words = a["plan_sha256"]["words"].split()
    assert " ".join(words[:4]) in out and a["plan_sha256"]["groups"][:19] in out
    assert "approvals  2 of 2 counted: alice, dana" in out


def test_json_run_without_yes_keeps_stdout_one_object(day: Day) -> None:
    """The review and the typed-id prompt go to stderr; stdout is exactly one JSON object."""
    locked = day.genesis("json-run")
    proc = run_cli("ceremony", "run", str(locked), "--approvals", "approvals-json-run",
                   "--host", "host.yaml", "--out", "out-json-run", "--allow-network", "--json",
                   cwd=day.root, env=day.env, input_text="json-run\n")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)  # the whole of stdout
    assert "type the ceremony id (json-run) to sign" in proc.stderr
    assert "Plan digest" in proc.stderr and "Plan digest" not in proc.stdout
    born = summary["generated"][0]
    assert born["role"] == "fleet-root" and born["keyid"]["hex"] == summary["signer_keyid"]
    assert summary["sealed_backups"] == ["keys/json-run-root.sealed.json"]
    assert len(born["keyid"]["words"].split()) == 32


def test_interactive_run_in_a_pseudo_terminal(day: Day) -> None:
    """What the operator sees: the review, the typed id, the PIN-share prompts (no echo, no
    progress bar drawn over them), then the new fleet root's fingerprint."""
    pexpect = pytest.importorskip("pexpect")
    locked = day.genesis("pty-run")
    # a genesis runs only on a token with no fleet key: json-run's root is on day.token
    token = f"pty-{secrets.token_hex(3)}"
    made = day.cli("token", "init", "--label", token, "--so-pin", "env:SO", "--threshold", "2",
                   "--shares", "3", "--shares-out", "pty-shares", "--json")
    assert made.returncode == 0, made.stderr
    shares = read_share_files(json.loads(made.stdout)["share_files"], day.root)
    (day.root / "pty-host.yaml").write_text(f"token_label: {token}\n"
                                            "pin_shares: [prompt, prompt]\n")
    env = {**os.environ, **day.env, "PYTHONUNBUFFERED": "1", "TERM": "xterm",
           "COLUMNS": "120"}
    child = pexpect.spawn(sys.executable, ["-m", "writroot", "ceremony", "run", str(locked),
                                           "--approvals", "approvals-pty-run", "--host",
                                           "pty-host.yaml", "--out", "out-pty-run",
                                           "--allow-network"],
                          cwd=str(day.root), env=env, encoding="utf-8", timeout=120,
                          dimensions=(50, 120))
    child.expect("Ceremony pty-run")
    child.expect("Plan digest")
    review = child.before
    assert "alice" in review and "dana" in review and "Ed25519" in review
    assert "Operation 2 of 2" in review and "policy" in review
    child.expect(r"type the ceremony id \(pty-run\) to sign")
    child.sendline("pty-run")
    child.expect("PIN share 1: ")
    assert "━" not in child.before  # no progress bar before the PIN is in
    child.sendline(shares[0])
    child.expect("PIN share 2: ")
    assert "━" not in child.before and shares[0].split()[3] not in child.before
    child.sendline(shares[2])
    child.expect("new fleet-root pty-run-root")
    child.expect("PGP words")
    child.expect(pexpect.EOF)
    tail = child.before
    child.close()
    assert child.exitstatus == 0, tail
    assert shares[2].split()[3] not in tail
    assert "wrote" in tail and (day.root / "out-pty-run" / "fleet-root.pem").exists()


def test_run_output_names_the_sealed_backup(day: Day) -> None:
    """The sealed backup is named with what to do with it (issue 20, item 6)."""
    locked = day.genesis("sealed-run")
    proc = day.cli("ceremony", "run", str(locked), "--approvals", "approvals-sealed-run",
                   "--host", day.fresh_host("sealed-run"), "--out", "out-sealed-run", "--yes",
                   "--allow-network")
    assert proc.returncode == 0, proc.stderr
    backup = day.root / "out-sealed-run" / "keys" / "sealed-run-root.sealed.json"
    line = next(x for x in proc.stdout.splitlines() if "sealed.json" in x)
    assert "out-sealed-run/keys/sealed-run-root.sealed.json" in line and "SEALED BACKUP" in line
    assert "keep it with the token, never publish it" in line
    assert backup.stat().st_mode & 0o777 == 0o600


def test_verify_anchor_in_pgp_words_and_a_wrong_anchor_first(day: Day) -> None:
    """--anchor takes the PGP words; a wrong anchor is said in one line before any FAIL;
    words that are not a fingerprint are named as such, never `File name too long`."""
    from writroot.crypto.fingerprint import pgp_words

    locked = day.genesis("anchor-run")
    run = day.cli("ceremony", "run", str(locked), "--approvals", "approvals-anchor-run",
                  "--host", day.fresh_host("anchor-run"), "--out", "out-anchor-run", "--yes",
                  "--allow-network",
                  "--json")
    assert run.returncode == 0, run.stderr
    keyid = json.loads(run.stdout)["signer_keyid"]
    words = pgp_words(bytes.fromhex(keyid))
    good = day.cli("verify", "out-anchor-run", "--anchor", words)
    assert good.returncode == 0, good.stdout + good.stderr
    wrong = day.cli("verify", "out-anchor-run", "--anchor", secrets.token_hex(32))
    assert wrong.returncode == 1
    lines = wrong.stdout.splitlines()
    assert lines[0].startswith("WRONG ANCHOR: ") and "is not this fleet's root" in lines[0]
    assert "FAIL" not in lines[0] and any(line.startswith("FAIL") for line in lines[1:])
    assert sum("WRONG ANCHOR" in line for line in lines) == 1
    short = day.cli("verify", "out-anchor-run", "--anchor", " ".join(words.split()[:31]))
    assert short.returncode == 2 and "31 words; a fingerprint has 32" in short.stderr
    typo = words.split()
    typo[4] = "notaword"
    bad = day.cli("verify", "out-anchor-run", "--anchor", " ".join(typo))
    assert bad.returncode == 2
    assert "word 5 'notaword' is not in the PGP word list" in bad.stderr
    long = day.cli("verify", "out-anchor-run", "--anchor", "a" * 300)
    assert long.returncode == 2
    assert "--anchor: neither a fingerprint" in long.stderr
    assert "File name too long" not in long.stderr


def test_typed_id_mismatch_signs_nothing(day: Day) -> None:
    locked = day.genesis("wrong-id")
    proc = run_cli("ceremony", "run", str(locked), "--approvals", "approvals-wrong-id",
                   "--host", "host.yaml", "--out", "out-wrong-id", "--allow-network",
                   cwd=day.root, env=day.env, input_text="wrong-i\n")
    assert proc.returncode == 1 and "not confirmed" in proc.stderr
    assert not (day.root / "out-wrong-id").exists()


# -- early checks at lock ------------------------------------------------------------------

def test_lock_refuses_an_enrolment_of_another_fleet(day: Day) -> None:
    (day.root / "eu-fleet.yaml").write_text("""plan: 1
ceremony: eu-fleet-1
fleet: eu-fleet
signer: generate
roster: roster.yaml
operations:
  - op: generate-fleet-root
    label: eu-root
    algorithm: SLH-DSA-SHA2-256f
  - op: sign-fleet-root
    validity_days: 548
""" + POLICY)
    proc = day.cli("ceremony", "plan", "eu-fleet.yaml")
    assert proc.returncode == 2, proc.stderr
    assert "alice.enrolment.dsse.json: fleet" in proc.stderr
    assert "is for fleet 'testfleet', the plan's is 'eu-fleet'" in proc.stderr
    assert not (day.root / "eu-fleet.lock.json").exists()


# -- commands that fail leave nothing behind; keyids in every form -------------------------

def test_failed_custodian_keygen_leaves_no_directory(day: Day) -> None:
    proc = day.cli("custodian", "keygen", "--id", "erin", "--name", "Erin", "--fleet",
                   "testfleet", "--out", "erin-dir", "--passphrase", "env:SHORT",
                   extra={"SHORT": "short"})
    assert proc.returncode == 2 and "at least 12 characters" in proc.stderr
    assert not (day.root / "erin-dir").exists()


def test_keyid_input_accepts_groups_and_pgp_words() -> None:
    from writroot.crypto.fingerprint import hex_groups, normalise, pgp_words

    keyid = secrets.token_hex(32)
    assert normalise(hex_groups(keyid)) == keyid
    assert normalise(pgp_words(bytes.fromhex(keyid))) == keyid
    assert normalise(pgp_words(bytes.fromhex(keyid)).upper()) == keyid
    assert normalise("not pgp words at all") == "notpgpwordsatall"  # refused by the caller


def test_messages_name_what_was_wrong(day: Day) -> None:
    locked = day.root / "review-1.lock.json"
    if not locked.exists():
        day.genesis("review-1")
    missing = day.cli("ceremony", "show", str(locked), "--approvals", "nonexist")
    assert missing.returncode == 2 and "--approvals nonexist: no such file" in missing.stderr
    yaml = day.cli("ceremony", "approve", "review-1.yaml", "--yes", "--custodian", "alice",
                   "--key", "custodians/alice.key.pem", "--passphrase", "env:PP", "--out", "x")
    assert yaml.returncode == 2 and "this is the YAML plan" in yaml.stderr
    nopass = day.cli("ceremony", "approve", str(locked), "--yes", "--custodian", "alice",
                     "--key", "custodians/alice.key.pem", "--passphrase", "env:NOPE",
                     "--out", "x")
    assert nopass.returncode == 2 and "key passphrase source" in nopass.stderr
    assert "PIN" not in nopass.stderr and not (day.root / "x").exists()
