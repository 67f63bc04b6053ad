"""PINs within the token's range (C_GetTokenInfo ulMinPinLen/ulMaxPinLen), and a split PIN
that never carries less than 128 bits, on real SoftHSM2 tokens (the native tokens:
tests/test_native.py)."""

from __future__ import annotations

import pytest

from tests.conftest import Token, run_cli
from writroot.errors import HSMError
from writroot.hsm import softhsm
from writroot.quorum.splitpin import PIN_BYTES, PIN_CHARS, check_token_takes_split_pin


def _token(min_pin: int, max_pin: int) -> softhsm.SlotToken:
    return softhsm.SlotToken(3, "writroot-native", "S3", True, min_pin, max_pin)


def test_split_pin_is_128_bits_and_refused_where_it_does_not_fit() -> None:
    assert PIN_BYTES * 8 == 128 and PIN_CHARS == 32
    check_token_takes_split_pin(_token(4, 64), "fleet")
    check_token_takes_split_pin(_token(4, 0), "fleet")  # 0: no limit stated
    check_token_takes_split_pin(_token(32, 32), "fleet")
    for low, high, said in ((4, 8, "4 to 8 characters"), (4, 31, "4 to 31 characters"),
                            (33, 64, "33 to 64 characters")):
        with pytest.raises(HSMError, match=f"takes PINs of {said}; a split PIN is 32 "
                                           r"characters \(128 random bits\) and is never "
                                           "made shorter: not split") as caught:
            check_token_takes_split_pin(_token(low, high), "fleet")
        assert caught.value.exit_code == 3


def test_softhsm_reports_its_pin_range(module: str, make_token) -> None:
    token: Token = make_token("range")
    (found,) = [t for t in softhsm.tokens(module) if t.label == token.spec.label]
    assert found.initialised and found.serial and found.min_pin == 4 and found.max_pin >= 32
    assert softhsm.token_named(module, token.spec.label, None) == found
    with pytest.raises(HSMError, match="no token with label 'no-such-token'"):
        softhsm.token_named(module, "no-such-token", None)


def test_token_init_refuses_a_pin_outside_the_range_before_touching_the_token(
        module: str) -> None:
    env = {"SO": "so-pin-for-range", "SHORT": "abc"}
    proc = run_cli("token", "init", "--module", module, "--label", "range-short", "--so-pin",
                   "env:SO", "--pin", "env:SHORT", env=env)
    assert proc.returncode == 3, proc.stderr
    assert "the new user PIN has 3 characters; the token in slot" in proc.stderr
    assert "takes 4 to 255 characters" in proc.stderr and "Traceback" not in proc.stderr
    assert not [t for t in softhsm.tokens(module) if t.label == "range-short"]
    taken = run_cli("hsm", "info", "--module", module, "--token-label", "range-short",
                    "--pin", "env:SO", env=env)
    assert taken.returncode == 3  # nothing was initialised
