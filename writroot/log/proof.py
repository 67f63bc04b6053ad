"""C2SP tlog-proof: an entry's index, its inclusion path and the (cosigned) checkpoint.

    c2sp.org/tlog-proof@v1
    [extra <base64>]
    index <decimal>
    <base64 hash>...          (from the leaf's sibling up)
    <blank line>
    <the checkpoint's signed note, verbatim>
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from writroot.errors import BadInput
from writroot.log import note
from writroot.log.tree import HASH_SIZE, MAX_SIZE

HEADER = "c2sp.org/tlog-proof@v1"
MAX_PATH = 63
MAX_EXTRA_BYTES = 4096


@dataclass(frozen=True, slots=True)
class Proof:
    index: int
    path: tuple[bytes, ...]
    checkpoint: bytes  # the signed note, verbatim
    extra: bytes | None = None

    def format(self) -> bytes:
        lines = [HEADER]
        if self.extra is not None:
            lines.append("extra " + base64.b64encode(self.extra).decode())
        lines.append(f"index {self.index}")
        lines += [base64.b64encode(h).decode() for h in self.path]
        return ("\n".join(lines) + "\n\n").encode() + self.checkpoint




def parse(data: bytes, where: str) -> Proof:
    if len(data) > note.MAX_NOTE_BYTES + 8192:
        raise BadInput("proof is too large", where)
    head, sep, signed = data.partition(b"\n\n")
    if not sep:
        raise BadInput("proof has no blank line before its checkpoint", where)
    try:
        lines = head.decode("ascii").split("\n")
    except UnicodeDecodeError:
        raise BadInput("proof header is not ASCII", where) from None
    if lines[0] != HEADER:
        raise BadInput(f"proof must start with {HEADER}", where)
    at, extra = 1, None
    if len(lines) > at and lines[at].startswith("extra "):
        extra = note.b64_strict(lines[at][6:], f"{where}: extra")
        if len(extra) > MAX_EXTRA_BYTES:
            raise BadInput("extra data is too large", where)
        at += 1
    if len(lines) <= at or not lines[at].startswith("index "):
        raise BadInput("proof has no index line", where)
    text = lines[at][6:]
    if not text.isdigit() or len(text) > 19 or (text != "0" and text.startswith("0")):
        raise BadInput("index must be a decimal number with no leading zero", where)
    index = int(text)
    if index >= MAX_SIZE:
        raise BadInput("index is out of range", where)
    hashes = lines[at + 1:]
    if len(hashes) > MAX_PATH:
        raise BadInput(f"inclusion path is longer than {MAX_PATH} hashes", where)
    path = []
    for n, line in enumerate(hashes, 1):
        h = note.b64_strict(line, f"{where}: path hash {n}")
        if len(h) != HASH_SIZE:
            raise BadInput("path hashes are 32 bytes", f"{where}: path hash {n}")
        path.append(h)
    note.split(signed, f"{where}: checkpoint")  # well-formed; the caller opens it with keys
    return Proof(index, tuple(path), signed, extra)
