"""C2SP tlog-checkpoint: origin, tree size, root hash and extension lines (the note text).

Parsing is strict (torchwood's ParseCheckpoint): a canonical decimal size with no leading
zero, a 32-byte root in canonical base64, non-empty lines, caps; `format` round-trips.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from writroot.errors import BadInput
from writroot.log.tree import HASH_SIZE, MAX_SIZE

MAX_ORIGIN_BYTES = 255  # the ML-DSA-44 cosigned message carries it with a one-byte length
MAX_EXTENSIONS = 16
MAX_LINE_BYTES = 1024


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def format(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(),
                 *self.extensions]
        return "".join(line + "\n" for line in lines)


def check_origin(origin: str, where: str) -> None:
    if not origin or len(origin.encode()) > MAX_ORIGIN_BYTES:
        raise BadInput(f"origin must be 1 to {MAX_ORIGIN_BYTES} bytes", where)
    # stricter than C2SP (a SHOULD there): origins are shown on terminals and in reports
    if "+" in origin or not origin.isprintable() or any(c.isspace() for c in origin):
        raise BadInput("origin must not contain spaces, '+' or unprintable characters", where)


def parse(text: str, where: str) -> Checkpoint:
    if not text.endswith("\n"):
        raise BadInput("checkpoint does not end in a newline", where)
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise BadInput("checkpoint needs an origin, a size and a root hash line", where)
    if len(lines) > 3 + MAX_EXTENSIONS:
        raise BadInput(f"checkpoint has more than {MAX_EXTENSIONS} extension lines", where)
    for n, line in enumerate(lines, 1):
        if not line:
            raise BadInput(f"checkpoint line {n} is empty", where)
        if len(line.encode()) > MAX_LINE_BYTES:
            raise BadInput(f"checkpoint line {n} is longer than {MAX_LINE_BYTES} bytes", where)
    origin, size_text, root_text = lines[:3]
    check_origin(origin, f"{where}: origin")
    if not size_text.isascii() or not size_text.isdigit() or len(size_text) > 19 \
            or (size_text != "0" and size_text.startswith("0")):
        raise BadInput(f"tree size must be a decimal number from 0 to {MAX_SIZE} with no "
                       "leading zero", where)
    size = int(size_text)
    if size > MAX_SIZE:
        raise BadInput(f"tree size is above {MAX_SIZE}", where)
    try:
        root = base64.b64decode(root_text, validate=True)
    except (binascii.Error, ValueError):
        raise BadInput("root hash is not base64", where) from None
    if len(root) != HASH_SIZE or base64.b64encode(root).decode() != root_text:
        raise BadInput("root hash must be 32 bytes in canonical base64", where)
    return Checkpoint(origin, size, root, tuple(lines[3:]))
