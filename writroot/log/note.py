"""C2SP signed-note: parse and format strictly, with caps; open against known keys.

As x/mod's sumdb/note: a signature whose (name, key ID) matches a known verifier must verify
(else `InvalidSignature`); signatures by unknown keys are kept, unverified; a note with no
verified signature is refused (`UnverifiedNote`). Malformed notes are `BadInput`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from writroot.errors import BadInput, VerificationFailed

MAX_NOTE_BYTES = 256 * 1024  # 16 ML-DSA-87 signatures fit with room to spare
MAX_SIGNATURES = 64
MAX_TEXT_BYTES = 16 * 1024
MAX_NAME_BYTES = 255
_DASH = "\u2014 "


@dataclass(frozen=True, slots=True)
class Signature:
    name: str
    key_id: int
    signature: bytes  # without the key ID

    def line(self) -> str:
        blob = self.key_id.to_bytes(4, "big") + self.signature
        return f"{_DASH}{self.name} {base64.b64encode(blob).decode()}\n"


@dataclass(frozen=True, slots=True)
class Note:
    text: str  # ends in a newline
    verified: tuple[Signature, ...]
    unverified: tuple[Signature, ...]


class Verifier(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> int: ...

    def verify(self, message: bytes, signature: bytes) -> bool: ...


class Signer(Protocol):
    """A note signer (x/mod's note.Signer): backed by a file key or by custody, so log/ never
    imports hsm/."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> int: ...

    def sign(self, message: bytes) -> bytes: ...


class InvalidSignature(VerificationFailed):
    """A known key's signature does not verify."""


class UnverifiedNote(VerificationFailed):
    """No known key signed the note."""


def key_id(name: str, sig_type: int, public_key: bytes) -> int:
    """SHA-256(name || 0x0A || type || key)[:4], big-endian (signed-note's recommendation)."""
    data = name.encode() + b"\n" + bytes([sig_type]) + public_key
    return int.from_bytes(hashlib.sha256(data).digest()[:4], "big")


def check_name(name: str, where: str) -> None:
    if not name or len(name.encode()) > MAX_NAME_BYTES:
        raise BadInput(f"key name must be 1 to {MAX_NAME_BYTES} bytes", where)
    if "+" in name or not name.isprintable() or any(c.isspace() for c in name):
        raise BadInput("key name must not contain spaces, '+' or unprintable characters", where)


def b64_strict(text: str, where: str) -> bytes:
    """Standard base64, canonical only (one encoding per value), or a one-line error."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadInput("malformed base64", where) from None
    if base64.b64encode(raw).decode() != text:
        raise BadInput("base64 is not canonical", where)
    return raw


def split(data: bytes, where: str) -> tuple[str, list[Signature]]:
    """(text, signatures) of a signed note; strict: UTF-8, no controls, caps, canonical base64."""
    if len(data) > MAX_NOTE_BYTES:
        raise BadInput(f"note is larger than {MAX_NOTE_BYTES} bytes", where)
    try:
        note = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput("note is not UTF-8", where) from None
    if any(ord(c) < 0x20 and c != "\n" for c in note) or "\x7f" in note:
        raise BadInput("note contains control characters", where)
    if not note.endswith("\n"):
        raise BadInput("note does not end in a newline", where)
    cut = note.rfind("\n\n")
    if cut < 0:
        raise BadInput("note has no signature block (a blank line, then signatures)", where)
    text, block = note[:cut + 1], note[cut + 2:]
    if len(text.encode()) > MAX_TEXT_BYTES:
        raise BadInput(f"note text is larger than {MAX_TEXT_BYTES} bytes", where)
    lines = block.split("\n")[:-1]
    if not lines:
        raise BadInput("note has no signatures", where)
    if len(lines) > MAX_SIGNATURES:
        raise BadInput(f"note has more than {MAX_SIGNATURES} signatures", where)
    sigs = []
    for n, line in enumerate(lines, 1):
        at = f"{where}: signature {n}"
        if not line.startswith(_DASH):
            raise BadInput("signature line must start with an em dash and a space", at)
        name, sep, blob = line[len(_DASH):].partition(" ")
        if not sep:
            raise BadInput("signature line has no signature", at)
        check_name(name, at)
        raw = b64_strict(blob, at)
        if len(raw) < 5:
            raise BadInput("signature is shorter than a key ID and one byte", at)
        sigs.append(Signature(name, int.from_bytes(raw[:4], "big"), raw[4:]))
    return text, sigs


def open_note(data: bytes, verifiers: Sequence[Verifier], where: str) -> Note:
    text, sigs = split(data, where)
    known = {(v.name, v.key_id): v for v in verifiers}
    verified: list[Signature] = []
    unverified: list[Signature] = []
    seen: set[tuple[str, int]] = set()
    for sig in sigs:
        ident = (sig.name, sig.key_id)
        if ident in seen:
            raise BadInput(f"two signatures by the same key {sig.name!r}", where)
        seen.add(ident)
        verifier = known.get(ident)
        if verifier is None:
            unverified.append(sig)
        elif verifier.verify(text.encode(), sig.signature):
            verified.append(sig)
        else:
            raise InvalidSignature(f"signature by {sig.name!r} does not verify", where)
    if not verified:
        raise UnverifiedNote("not signed by a known key", where)
    return Note(text, tuple(verified), tuple(unverified))


def sign(text: str, signers: Sequence[Signer], existing: Sequence[Signature] = ()) -> bytes:
    """The signed note: text, a blank line, existing signature lines, then new ones."""
    if not text.endswith("\n") or "\n\n" in text:
        raise ValueError("note text ends in one newline and has no blank line")
    sigs = list(existing)
    for s in signers:
        sigs.append(Signature(s.name, s.key_id, s.sign(text.encode())))
    return (text + "\n" + "".join(sig.line() for sig in sigs)).encode()
