"""The CLI shell: fast start (no heavy imports), help, exit codes for usage errors."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import run_cli
from writroot import __version__

HEAVY = ("pkcs11", "pqcrypto", "slhdsa", "cryptography", "rich", "yaml", "rfc8785", "asn1crypto",
         "trestle", "pydantic", "oqs")


def _modules_after(args: list[str]) -> set[str]:
    code = ("import sys\nfrom writroot.cli import main\n"
            f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
            "print(' '.join(sorted(m.split('.')[0] for m in sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    return set(proc.stdout.strip().splitlines()[-1].split())


def test_version_and_help_import_nothing_heavy() -> None:
    for args in (["--version"], ["--help"], ["verify", "--help"], ["hsm", "--help"]):
        loaded = _modules_after(args)
        assert not loaded & set(HEAVY), (args, loaded & set(HEAVY))


def test_version() -> None:
    proc = run_cli("--version")
    assert proc.returncode == 0 and __version__ in proc.stdout


def test_help_lists_commands() -> None:
    proc = run_cli("--help")
    assert proc.returncode == 0
    for name in ("demo", "verify", "hsm"):
        assert name in proc.stdout


def test_usage_errors_exit_2() -> None:
    assert run_cli("no-such-command").returncode == 2
    assert run_cli("verify").returncode == 2
    proc = run_cli("verify", "x.dsse.json")
    assert proc.returncode == 2 and "--anchor" in proc.stderr
