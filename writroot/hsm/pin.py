"""PIN sources: a prompt, an environment variable or a file. Never argv, never logged."""

from __future__ import annotations

import getpass
import os
import stat
from pathlib import Path

from writroot.errors import BadInput

PIN_SOURCE_HELP = "prompt | env:VARIABLE | file:PATH"


def read_pin(source: str, what: str = "token PIN") -> bytearray:
    """Resolve a PIN source to the PIN bytes (the caller wipes them)."""
    kind, _, arg = source.partition(":")
    if kind == "prompt" and not arg:
        value = getpass.getpass(f"{what}: ")
    elif kind == "env" and arg:
        if arg not in os.environ:
            raise BadInput(f"environment variable {arg} is not set", "PIN source")
        value = os.environ[arg]
    elif kind == "file" and arg:
        path = Path(arg)
        try:
            mode = path.stat().st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise BadInput("PIN file must not be readable by group or others (chmod 600)",
                               str(path))
            value = path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise BadInput(f"cannot read PIN file: {exc.strerror}", str(path)) from None
    else:
        raise BadInput(f"unknown PIN source {source.split(':')[0]!r}; use {PIN_SOURCE_HELP}",
                       "PIN source")
    if not value:
        raise BadInput("the PIN is empty", "PIN source")
    return bytearray(value.encode("utf-8"))
