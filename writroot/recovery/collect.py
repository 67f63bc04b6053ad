"""Reading recovery shares back: share files (with their holder's passphrase), typed
mnemonics, or (CI) mnemonics in environment variables. Nothing read is ever echoed."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from writroot.crypto.keys import wipe
from writroot.errors import BadInput

SHARE_SOURCE_HELP = "file:PATH (a share file) | prompt (type the words) | env:VARIABLE"
PASSPHRASE_ENV = "WRITROOT_SHARE_PASSPHRASE_"  # noqa: S105 (a variable name)


def passphrase_variable(holder: str) -> str:
    """The environment variable a holder's passphrase may come from (CI and demos)."""
    return PASSPHRASE_ENV + re.sub(r"[^A-Z0-9]", "_", holder.upper())


def holder_passphrase(holder: str, confirm: bool = False) -> bytearray:
    """A holder's passphrase: from WRITROOT_SHARE_PASSPHRASE_<HOLDER>, or asked for."""
    import getpass

    var = passphrase_variable(holder)
    if var in os.environ:
        value = os.environ[var]
    else:
        if not _interactive():
            raise BadInput(f"no passphrase for {holder}'s share: set {var} or run on a "
                           "terminal", f"passphrase for {holder}")
        value = getpass.getpass(f"{holder}, your share passphrase: ")
        if confirm and getpass.getpass(f"{holder}, the same passphrase again: ") != value:
            raise BadInput(f"the two passphrases {holder} typed differ",
                           f"passphrase for {holder}")
    if not value:
        raise BadInput(f"the passphrase for {holder}'s share is empty", f"passphrase for {holder}")
    return bytearray(value.encode("utf-8"))


def _interactive() -> bool:
    import sys

    return sys.stdin.isatty()


@dataclass
class ShareInput:
    """One share to read: `source` as SHARE_SOURCE_HELP; `passphrase` given in memory (the
    demo's), otherwise asked for when the share is a file."""

    source: str
    passphrase: bytearray | None = field(default=None, repr=False)

    @property
    def where(self) -> str:
        kind, _, arg = self.source.partition(":")
        return arg if kind == "file" else self.source

    def check(self) -> None:
        """What can be known before the HSM opens: the source is well formed and readable."""
        kind, _, arg = self.source.partition(":")
        if kind == "file" and arg:
            path = Path(arg)
            if path.is_symlink() or not path.is_file():
                raise BadInput("no such share file", arg)
        elif kind == "env" and arg:
            if arg not in os.environ:
                raise BadInput(f"environment variable {arg} is not set", "share source")
        elif self.source != "prompt":
            raise BadInput(f"unknown share source {self.source!r}; use {SHARE_SOURCE_HELP}",
                           "share source")

    def read(self, number: int) -> str:
        """The mnemonic (the caller drops it once combined)."""
        import getpass

        self.check()
        kind, _, arg = self.source.partition(":")
        if kind == "env":
            return os.environ[arg]
        if kind == "prompt":
            if not _interactive():
                raise BadInput("share source prompt needs a terminal", "share source")
            return getpass.getpass(f"share {number}: type its words (not shown): ")
        from writroot.jsonio import read_json_file
        from writroot.recovery.sharefile import decrypt, public_fields

        obj = read_json_file(Path(arg))
        holder = public_fields(obj, arg)["holder"]
        passphrase = self.passphrase if self.passphrase is not None else \
            holder_passphrase(holder)
        try:
            return decrypt(obj, passphrase, arg)
        finally:
            if self.passphrase is None:
                wipe(passphrase)


def read_shares(inputs: list[ShareInput]) -> list[tuple[str, str]]:
    """(where, mnemonic) for each share given, in order."""
    return [(i.where, i.read(n)) for n, i in enumerate(inputs, 1)]
