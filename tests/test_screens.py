"""What an officer reads (issue 20, items 6 and 9): `hsm info` in plain words, one keyid per
line through a pipe, retries the token reports, a hint at SOFTHSM2_CONF; the run's sealed
backup named; a wrong anchor said in one line first; PGP words as --anchor.

Real SoftHSM2 tokens (tests/conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import assert_no_traceback, run_cli


def test_hsm_info_through_a_pipe_is_plain_lines(make_token) -> None:  # type: ignore[no-untyped-def]
    from writroot.crypto.fingerprint import hex_groups

    token = make_token("info")
    made = run_cli("hsm", "keygen", *token.cli_args(), "--role", "fleet-root", "--label",
                   "pipe-root", "--algorithm", "SLH-DSA-SHA2-256f", "--json")
    assert made.returncode == 0, made.stderr
    keyid = json.loads(made.stdout)["fingerprint"]["hex"]
    info = run_cli("hsm", "info", *token.cli_args(), env={"COLUMNS": "80"})
    assert info.returncode == 0, info.stderr
    lines = info.stdout.splitlines()
    assert f"  keyid      {hex_groups(keyid)}" in lines  # whole, on one line
    assert "{'" not in info.stdout and "┃" not in info.stdout and "│" not in info.stdout
    kek = next(line for line in lines if line.startswith("KEK "))
    assert "AES-256, sensitive, never extractable, generated on the token" in kek
    assert "user PIN: no failed tries reported" in info.stdout


def test_a_wrong_pin_says_what_the_token_reports(make_token) -> None:  # type: ignore[no-untyped-def]
    token = make_token("retries")
    wrong = run_cli("hsm", "info", "--token-label", str(token.spec.label), "--pin", "env:BAD",
                    env={"BAD": "not-the-pin"})
    assert wrong.returncode == 3
    assert "PIN incorrect" in wrong.stderr and "retries are running low" in wrong.stderr
    after = run_cli("hsm", "info", "--token-label", str(token.spec.label), "--no-login")
    assert "user PIN: a wrong PIN was typed since the last login" in after.stdout


def test_pin_state_words() -> None:
    from pkcs11.constants import TokenFlag

    from writroot.hsm.token import pin_state

    assert pin_state(0) is None
    assert pin_state(int(TokenFlag.USER_PIN_FINAL_TRY)) == "ONE TRY LEFT before it locks"
    assert pin_state(int(TokenFlag.USER_PIN_LOCKED | TokenFlag.USER_PIN_COUNT_LOW)) == "LOCKED"
    assert pin_state(int(TokenFlag.SO_PIN_LOCKED)) is None
    assert pin_state(int(TokenFlag.SO_PIN_LOCKED), "so") == "LOCKED"


def test_softhsm2_conf_hint(make_token, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    token = make_token("conf")
    base = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
    args = [sys.executable, "-m", "writroot", "hsm", "info", "--token-label",
            str(token.spec.label), "--no-login"]
    unset = subprocess.run(args, env=base, capture_output=True, text=True, cwd=tmp_path)
    assert unset.returncode == 3
    assert "SOFTHSM2_CONF is not set" in unset.stderr
    missing = subprocess.run(args, env={**base, "SOFTHSM2_CONF": str(tmp_path / "nope.conf")},
                             capture_output=True, text=True, cwd=tmp_path)
    assert missing.returncode == 3 and "which is not a file" in missing.stderr
    other = run_cli("hsm", "info", "--token-label", "no-such-label", "--no-login")
    assert other.returncode == 3 and "no token with label 'no-such-label'" in other.stderr
    assert "SOFTHSM2_CONF (" in other.stderr
    assert_no_traceback(unset.stderr, missing.stderr)
