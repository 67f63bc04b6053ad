"""PIN sources: a prompt, an environment variable or a file. Never argv, never logged."""

from __future__ import annotations

import getpass
import os
import stat
from pathlib import Path

from writroot.errors import BadInput

PIN_SOURCE_HELP = "prompt | env:VARIABLE | file:PATH"


MAX_SECRET_FILE = 4096


def _read_secret_file(path: Path) -> str:
    """A secret file: not a symlink, owned by us, mode 600 or stricter, small."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise BadInput(f"cannot read secret file: {exc.strerror}", str(path)) from None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_SECRET_FILE:
            raise BadInput("secret file must be a small regular file", str(path))
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise BadInput("secret file must not be readable by group or others (chmod 600)",
                           str(path))
        if info.st_uid != os.getuid():
            raise BadInput("secret file must belong to the user running writroot", str(path))
        try:
            return fh.read().decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            raise BadInput("secret file is not UTF-8", str(path)) from None


def read_pin(source: str, what: str = "token PIN", confirm: bool = False) -> bytearray:
    """Resolve a PIN source to the PIN bytes (the caller wipes them). `confirm`: a new PIN or
    passphrase, typed twice at a prompt; the two must match."""
    kind, _, arg = source.partition(":")
    if kind == "prompt" and not arg:
        value = getpass.getpass(f"{what}: ")
        if confirm and value and getpass.getpass(f"{what}, again: ") != value:
            raise BadInput(f"the two {what}s typed differ; nothing was changed",
                           f"{what} source")
    elif kind == "env" and arg:
        if arg not in os.environ:
            raise BadInput(f"environment variable {arg} is not set", f"{what} source")
        value = os.environ[arg]
    elif kind == "file" and arg:
        value = _read_secret_file(Path(arg))
    else:
        raise BadInput(f"unknown {what} source {source.split(':')[0]!r}; use {PIN_SOURCE_HELP}",
                       f"{what} source")
    if not value:
        raise BadInput(f"the {what} is empty", f"{what} source")
    return bytearray(value.encode("utf-8"))
