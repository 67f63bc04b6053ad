"""Secrets to people one holder at a time (issue 20, items 1, 2 and 9): PIN shares on their own
cleared screen with a transcription check, or in their own mode-600 files; new PINs typed
twice; share errors that name the share; secret files mode 600 whatever the umask.

Real SoftHSM2 tokens; the screens in a real pseudo-terminal (pexpect)."""

from __future__ import annotations

import json
import os
import re
import secrets
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli

CLEAR = "\x1b[H\x1b[2J\x1b[3J"
CHECK = r"transcription check: type word (\d+) from your paper"


def _spawn(*args: str, cwd: Path, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    pexpect = pytest.importorskip("pexpect")
    full = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1", "TERM": "xterm",
            "COLUMNS": "120"}
    return pexpect.spawn(sys.executable, ["-m", "writroot", *args], cwd=str(cwd), env=full,
                         encoding="utf-8", timeout=60, dimensions=(50, 120))


def _words(screen: str) -> list[str]:
    """The numbered words of the one share on a screen."""
    found = re.findall(r"(\d+)\. ([a-z]+)", screen)
    words = [w for _, w in sorted(found, key=lambda nw: int(nw[0]))]
    assert [int(n) for n, _ in sorted(found, key=lambda nw: int(nw[0]))] == \
        list(range(1, len(words) + 1))
    return words


def test_token_init_shows_each_share_on_its_own_screen(tmp_path: Path) -> None:
    """2 of 3: the SO PIN is typed twice; each holder is called, sees only their share on a
    cleared screen (scrollback too), and types back two words chosen at random before the
    next is called; a wrong word is asked again. The shares then rebuild the PIN."""
    label = f"pty-{secrets.token_hex(3)}"
    child = _spawn("token", "init", "--label", label, "--so-pin", "prompt", "--threshold", "2",
                   "--shares", "3", cwd=tmp_path)
    so_pin = "so-" + secrets.token_hex(4)
    child.expect("new SO PIN: ")
    child.sendline(so_pin)
    child.expect("new SO PIN, again: ")
    child.sendline(so_pin)
    shares: list[list[str]] = []
    asked: list[tuple[int, int]] = []
    for number in (1, 2, 3):
        child.expect(f"hand the console to the holder of PIN share {number} of 3; when only "
                     "they can see the screen, press Enter")
        child.sendline("")
        child.expect(re.escape(CLEAR))
        child.expect(CHECK)
        screen = child.before
        assert f"PIN share {number} of 3 of token {label}" in screen
        assert "PIN share" not in screen.replace(f"PIN share {number} of 3", "", 1)
        words = _words(screen)
        assert len(words) == 20
        first = int(child.match.group(1))
        if number == 2:  # a wrong word: the share stays on screen and the word is asked again
            child.sendline("notaword")
            child.expect(f"word {first} does not match")
            child.expect(CHECK)
            assert int(child.match.group(1)) == first
        child.sendline(words[first - 1])
        child.expect(CHECK)
        second = int(child.match.group(1))
        assert second > first
        asked.append((first, second))
        child.sendline(words[second - 1].upper())  # case does not matter
        child.expect("press Enter to clear the screen for the next holder")
        child.sendline("")
        child.expect(re.escape(CLEAR))
        for earlier in shares:  # nothing of an earlier share on this screen
            assert " ".join(earlier[2:6]) not in screen
        shares.append(words)
    child.expect(f"all 3 PIN shares of token {label} handed out")
    child.expect(__import__("pexpect").EOF)
    child.close()
    assert child.exitstatus == 0
    assert len({tuple(s) for s in shares}) == 3
    env = {"S1": " ".join(shares[0]), "S3": " ".join(shares[2])}
    ok = run_cli("hsm", "check-shares", "--token-label", label, "--pin-shares", "env:S1",
                 "--pin-shares", "env:S3", "--json", env=env)
    assert ok.returncode == 0, ok.stderr


def test_a_failed_check_stops_the_handout(tmp_path: Path) -> None:
    """Three wrong words: the handout stops (exit 1), the screen is cleared, and the message
    says the token must be initialised again."""
    label = f"pty-{secrets.token_hex(3)}"
    child = _spawn("token", "init", "--label", label, "--so-pin", "env:SO", "--threshold", "2",
                   "--shares", "2", cwd=tmp_path, env={"SO": "so-pin-1234"})
    child.expect("press Enter")
    child.sendline("")
    for _ in range(3):
        child.expect(CHECK)
        child.sendline("wrong")
    child.expect(re.escape(CLEAR))
    child.expect(__import__("pexpect").EOF)
    tail = child.before
    child.close()
    assert child.exitstatus == 1
    assert "transcription check failed 3 times" in tail and "initialise it again" in tail
    assert "Traceback" not in tail


def test_new_pins_are_typed_twice(tmp_path: Path) -> None:
    label = f"pty-{secrets.token_hex(3)}"
    child = _spawn("token", "init", "--label", label, "--so-pin", "env:SO", "--pin", "prompt",
                   cwd=tmp_path, env={"SO": "so-pin-1234"})
    child.expect("new user PIN: ")
    child.sendline("user-pin-1")
    child.expect("new user PIN, again: ")
    child.sendline("user-pin-2")
    child.expect(__import__("pexpect").EOF)
    tail = child.before
    child.close()
    assert child.exitstatus == 2 and "the two new user PINs typed differ" in tail
    info = run_cli("hsm", "info", "--token-label", label, "--no-login")
    assert info.returncode == 3  # no token was made


def test_unattended_shares_need_a_directory_and_get_one_file_each(tmp_path: Path) -> None:
    label = f"files-{secrets.token_hex(3)}"
    env = {"SO": "so-pin-1234"}
    refused = run_cli("token", "init", "--label", label, "--so-pin", "env:SO", "--threshold",
                      "2", "--shares", "3", "--json", env=env)
    assert refused.returncode == 2 and "give --shares-out DIR" in refused.stderr
    assert refused.stdout == ""
    os.umask(0)
    try:
        made = run_cli("token", "init", "--label", label, "--so-pin", "env:SO", "--threshold",
                       "2", "--shares", "3", "--shares-out", "pin-shares", "--json", env=env,
                       cwd=tmp_path)
    finally:
        os.umask(0o022)
    assert made.returncode == 0, made.stderr
    out = json.loads(made.stdout)
    assert "shares" not in out and len(out["share_files"]) == 3
    words = []
    for name in out["share_files"]:
        path = tmp_path / name
        assert path.stat().st_mode & 0o777 == 0o600
        words.append(path.read_text().split())
        assert len(words[-1]) == 20
    assert (tmp_path / "pin-shares").stat().st_mode & 0o777 == 0o700
    for text in (made.stdout, made.stderr):
        assert all(" ".join(w[3:7]) not in text for w in words)
    paths = [f"file:{tmp_path / name}" for name in out["share_files"]]
    ok = run_cli("hsm", "check-shares", "--token-label", label, "--pin-shares", paths[0],
                 "--pin-shares", paths[1])
    assert ok.returncode == 0, ok.stderr


# -- share errors name the share ------------------------------------------------------------

@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[str], list[str]]:
    """A token whose PIN is split 2 of 3, and the shares of another split."""
    root = tmp_path_factory.mktemp("shares")
    label = f"errs-{secrets.token_hex(3)}"
    made = run_cli("token", "init", "--label", label, "--so-pin", "env:SO", "--threshold", "2",
                   "--shares", "3", "--shares-out", str(root / "a"), "--json",
                   env={"SO": "so-pin-1234"})
    assert made.returncode == 0, made.stderr
    other = run_cli("token", "init", "--label", label + "-b", "--so-pin", "env:SO",
                    "--threshold", "2", "--shares", "3", "--shares-out", str(root / "b"),
                    "--json", env={"SO": "so-pin-1234"})
    assert other.returncode == 0, other.stderr
    read = lambda out: [Path(p).read_text().strip()  # noqa: E731
                        for p in json.loads(out)["share_files"]]
    return label, read(made.stdout), read(other.stdout)


def _check(label: str, *shares: str) -> tuple[int, str]:
    env = {f"S{i}": s for i, s in enumerate(shares)}
    args = [a for i in range(len(shares)) for a in ("--pin-shares", f"env:S{i}")]
    proc = run_cli("hsm", "check-shares", "--token-label", label, *args, env=env)
    return proc.returncode, proc.stderr


def test_unknown_word_is_named_by_share_and_position(split) -> None:  # type: ignore[no-untyped-def]
    label, shares, _ = split
    words = shares[1].split()
    words[4] = "tonic"
    code, err = _check(label, shares[0], " ".join(words))
    assert code == 2
    assert "share 2: word 5 'tonic' is not in the word list" in err
    assert shares[1].split()[6] not in err.split()


def test_checksum_failure_names_the_share(split) -> None:  # type: ignore[no-untyped-def]
    label, shares, _ = split
    words = shares[1].split()
    words[7], words[8] = words[8], words[7]
    if words == shares[1].split():
        words[7] = "academic" if words[7] != "academic" else "acid"
    code, err = _check(label, shares[0], " ".join(words))
    assert code == 2 and "share 2 fails its checksum" in err


def test_missing_word_names_the_share(split) -> None:  # type: ignore[no-untyped-def]
    label, shares, _ = split
    code, err = _check(label, " ".join(shares[0].split()[:-1]), shares[1])
    assert code == 2 and "share 1 has 19 words" in err


def test_the_same_share_twice(split) -> None:  # type: ignore[no-untyped-def]
    label, shares, _ = split
    code, err = _check(label, shares[2], shares[2])
    assert code == 2 and "shares 1 and 2 are the same share" in err


def test_too_few_shares(split) -> None:  # type: ignore[no-untyped-def]
    label, shares, _ = split
    code, err = _check(label, shares[0])
    assert code == 2 and "this split needs 2 shares, 1 given" in err


def test_shares_of_different_splits_are_named_by_split(split) -> None:  # type: ignore[no-untyped-def]
    from writroot.quorum.splitpin import split_id

    label, shares, others = split
    code, err = _check(label, shares[0], shares[1], others[0])
    assert code == 2
    assert (f"shares 1 and 3 come from different splits ({split_id(shares[0])}, "
            f"{split_id(others[0])})") in err


def test_hostile_word_is_quoted_short_and_escaped(split) -> None:  # type: ignore[no-untyped-def]
    label, shares, _ = split
    words = shares[0].split()
    words[2] = "evil\u202e\x1b[2J" + "x" * 200
    code, err = _check(label, " ".join(words), shares[1])
    assert code == 2 and "share 1: word 3 " in err
    assert "\u202e" not in err and "\x1b" not in err and "x" * 40 not in err


def test_recovery_share_errors_name_the_share() -> None:
    from writroot.errors import BadInput
    from writroot.recovery.split import new_split, share_facts

    made = new_split(2, ["ana", "ben", "cy"], "00" * 32)
    words = made.shares["ben"].split()
    words[5] = "tonic"
    with pytest.raises(BadInput, match=r"share 2: word 6 'tonic' is not in the word list"):
        share_facts(" ".join(words), "ben.share.json", "share 2")
    made.wipe()


# -- files holding a secret or a share are mode 600 whatever the umask and directory -------

def test_recovery_share_files_are_mode_600_in_a_0755_directory(tmp_path: Path) -> None:
    from writroot.recovery.handout import FileHandout
    from writroot.recovery.split import new_split

    made = new_split(2, ["ana", "ben"], "00" * 32)
    for directory in (tmp_path / "existing", tmp_path / "new"):
        if directory.name == "existing":
            directory.mkdir()
            directory.chmod(0o755)
        handout = FileHandout(directory, {h: bytearray(b"passphrase-" + h.encode())
                                          for h in made.holders})
        old = os.umask(0)
        try:
            handout.give(made)
            handout.publish()
        finally:
            os.umask(old)
        files = sorted(directory.glob("*.share.json"))
        assert len(files) == 2
        assert all(f.stat().st_mode & 0o777 == 0o600 for f in files)
    made.wipe()


def test_staged_pin_share_files_are_mode_600_in_a_0755_directory(tmp_path: Path) -> None:
    from writroot.quorum.pinhandout import staged

    directory = tmp_path / "open"
    directory.mkdir()
    directory.chmod(0o755)
    old = os.umask(0)
    try:
        with staged(["alpha beta", "gamma delta"], "abcd", directory) as paths:
            pass
    finally:
        os.umask(old)
    assert [Path(p).stat().st_mode & 0o777 for p in paths] == [0o600, 0o600]


def _hand_out(child, count: int, holders: int = 0) -> list[str]:  # type: ignore[no-untyped-def]
    """Play each holder in turn (the first `holders`, default all); the shares as read off
    their screens."""
    shares = []
    for number in range(1, (holders or count) + 1):
        child.expect(f"holder of PIN share {number} of {count}")
        child.sendline("")
        child.expect(CHECK)
        words = _words(child.before)
        child.sendline(words[int(child.match.group(1)) - 1])
        child.expect(CHECK)
        child.sendline(words[int(child.match.group(1)) - 1])
        child.expect("press Enter to clear the screen")
        child.sendline("")
        shares.append(" ".join(words))
    return shares


def test_split_pin_changes_the_pin_only_after_every_holder_has_a_share(make_token,  # type: ignore[no-untyped-def]
                                                                        tmp_path: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    token = make_token("handout")
    child = _spawn("hsm", "split-pin", *token.cli_args(), "--threshold", "2", "--shares", "2",
                   "--yes", cwd=tmp_path)
    shares = _hand_out(child, 2)
    child.expect(f"The PIN of token {token.spec.label} is now split 2 of 2")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    env = {"S1": shares[0], "S2": shares[1]}
    ok = run_cli("hsm", "check-shares", "--token-label", str(token.spec.label), "--pin-shares",
                 "env:S1", "--pin-shares", "env:S2", env=env)
    assert ok.returncode == 0, ok.stderr
    old = run_cli("hsm", "info", *token.cli_args(), "--no-probe")
    assert old.returncode == 3 and "PIN incorrect" in old.stderr


def test_a_stopped_split_pin_handout_keeps_the_old_pin(make_token, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pexpect = pytest.importorskip("pexpect")
    token = make_token("stopped")
    child = _spawn("hsm", "split-pin", *token.cli_args(), "--threshold", "2", "--shares", "3",
                   "--yes", cwd=tmp_path)
    _hand_out(child, 3, holders=1)
    child.expect("holder of PIN share 2 of 3")
    child.sendline("")
    for _ in range(3):
        child.expect(CHECK)
        child.sendline("wrong")
    child.expect(pexpect.EOF)
    tail = child.before
    child.close()
    assert child.exitstatus == 1 and "transcription check failed" in tail
    still = run_cli("hsm", "info", *token.cli_args(), "--no-probe")
    assert still.returncode == 0, still.stderr
