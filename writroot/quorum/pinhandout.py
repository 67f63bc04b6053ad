"""PIN shares to their holders, one holder at a time (`token init --threshold`, `hsm split-pin`,
`hsm resplit`).

On a terminal each share gets its own cleared screen and a transcription check
(`recovery.handout.show_once`, the recovery shares' screen): never two shares on one screen or
in one scrollback. Unattended (`--json`, no terminal, CI) each share goes to its own mode-600
file in a new directory (`--shares-out DIR`), read back later as `--pin-shares file:PATH`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from writroot.errors import BadInput

SHARES_OUT_HELP = ("New directory for the PIN share files, one per share, mode 600 (needed "
                   "with --json or without a terminal; default: each share on its own cleared "
                   "screen, one holder at a time).")


def share_file_name(split: str, number: int) -> str:
    return f"pin-share-{split}-{number}.txt"


def check_out(shares_out: Path | None, as_json: bool) -> None:
    """Before the token is touched: the shares have somewhere to go."""
    if shares_out is not None:
        from writroot.outputs import check_destination

        check_destination(shares_out, "--shares-out")
        return
    if as_json or not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise BadInput("PIN shares are shown only on a terminal, one holder at a time; give "
                       "--shares-out DIR to write each share to its own file", "--shares-out")


def show(mnemonics: list[str], split: str, threshold: int, token: str, out: Any) -> None:
    """Each share on its own screen, to its holder, with a transcription check."""
    from writroot.recovery.handout import show_once

    total = len(mnemonics)
    for number, mnemonic in enumerate(mnemonics, 1):
        words = mnemonic.split()
        try:
            show_once(out, f"hand the console to the holder of PIN share {number} of {total}",
                      None, f"PIN share {number} of {total} of token {token} (split {split}; "
                      f"any {threshold} rebuild the PIN). Write every word down, in order, "
                      "with the split id, now: it is shown once.", words)
        finally:
            words.clear()


@contextmanager
def staged(mnemonics: list[str], split: str, shares_out: Path) -> Iterator[list[str]]:
    """One mode-600 file per share, staged; yields the paths they will have. They appear
    together when the block ends cleanly, and not at all after an error in it."""
    from writroot.outputs import Staging

    names = [share_file_name(split, n) for n in range(1, len(mnemonics) + 1)]
    with Staging(shares_out) as staging:
        for name, mnemonic in zip(names, mnemonics, strict=True):
            staging.write(name, (mnemonic + "\n").encode(), mode=0o600)
        yield [str(shares_out / name) for name in names]
