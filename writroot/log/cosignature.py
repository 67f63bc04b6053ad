"""C2SP tlog-cosignature, ML-DSA-44 (signature type 0x06): witness cosignatures and, as
tlog-checkpoint recommends, the log's own checkpoint signature.

The note signature is key ID || timestamped_signature (u64 big-endian POSIX seconds, then
the 2,420-byte ML-DSA-44 signature) over the binary `cosigned_message` with start 0 and end
the tree size; extension lines are not signed. Keys travel as vkeys:
`name+hex(key ID)+base64(0x06 || 1,312-byte public key)`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from writroot.crypto.algorithms import ML_DSA_44
from writroot.crypto.keys import PublicKey
from writroot.errors import BadInput
from writroot.log import checkpoint, note

SIG_TYPE = 0x06
LABEL = b"subtree/v1\n\x00"
MAX_TIMESTAMP = 2**63 - 1
SIGNATURE_SIZE = 8 + ML_DSA_44.signature_size
_VKEY_RE = re.compile(r"([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)")


class RawSigner(Protocol):
    """An ML-DSA-44 private key: a witness's key file, or a log key in custody."""

    key: PublicKey

    def sign(self, message: bytes) -> bytes: ...


def _opaque8(data: bytes) -> bytes:
    if not 1 <= len(data) <= 255:
        raise ValueError("opaque<1..2^8-1> holds 1 to 255 bytes")
    return bytes([len(data)]) + data


def cosigned_message(name: str, timestamp: int, origin: str, start: int, end: int,
                     root: bytes) -> bytes:
    """The signed `cosigned_message` structure (RFC 8446 presentation language)."""
    if not 0 <= timestamp <= MAX_TIMESTAMP or len(root) != 32 or not 0 <= start <= end < 2**64:
        raise ValueError("timestamp, range or hash out of bounds")
    return (LABEL + _opaque8(name.encode()) + timestamp.to_bytes(8, "big")
            + _opaque8(origin.encode()) + start.to_bytes(8, "big") + end.to_bytes(8, "big")
            + root)


def key_id(name: str, key: PublicKey) -> int:
    return note.key_id(name, SIG_TYPE, key.raw)


def _checkpoint_of(message: bytes) -> checkpoint.Checkpoint:
    try:
        text = message.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput("signed text is not UTF-8", "checkpoint") from None
    return checkpoint.parse(text, "checkpoint")


@dataclass(frozen=True)
class CosignatureVerifier:
    """A note.Verifier for one (name, ML-DSA-44 key); records the timestamps it verified."""

    name: str
    key: PublicKey

    def __post_init__(self) -> None:
        if self.key.algorithm is not ML_DSA_44:
            raise BadInput(f"{self.name}: cosigner keys are ML-DSA-44, not "
                           f"{self.key.algorithm.name}", "key")
        note.check_name(self.name, "cosigner name")

    @property
    def key_id(self) -> int:
        return key_id(self.name, self.key)

    def verify(self, message: bytes, signature: bytes) -> bool:
        from writroot.crypto.engines import verifier_for

        if len(signature) != SIGNATURE_SIZE:
            return False
        timestamp = int.from_bytes(signature[:8], "big")
        if timestamp > MAX_TIMESTAMP:
            return False
        cp = _checkpoint_of(message)
        signed = cosigned_message(self.name, timestamp, cp.origin, 0, cp.size, cp.root)
        return verifier_for(ML_DSA_44).verify(ML_DSA_44, self.key.raw, signed, signature[8:])

    @property
    def vkey(self) -> str:
        return vkey(self.name, self.key)


def timestamp_of(signature: note.Signature) -> int:
    """The cosignature's POSIX time (check the signature first)."""
    return int.from_bytes(signature.signature[:8], "big")


@dataclass
class CosignatureSigner:
    """A note.Signer: timestamps with `clock` (POSIX seconds) and signs with `raw`."""

    name: str
    raw: RawSigner
    clock: Callable[[], int]

    def __post_init__(self) -> None:
        if self.raw.key.algorithm is not ML_DSA_44:
            raise BadInput(f"cosigner keys are ML-DSA-44, not {self.raw.key.algorithm.name}",
                           "key")
        note.check_name(self.name, "cosigner name")

    @property
    def key_id(self) -> int:
        return key_id(self.name, self.raw.key)

    def sign(self, message: bytes) -> bytes:
        cp = _checkpoint_of(message)
        timestamp = self.clock()
        signed = cosigned_message(self.name, timestamp, cp.origin, 0, cp.size, cp.root)
        return timestamp.to_bytes(8, "big") + self.raw.sign(signed)


def vkey(name: str, key: PublicKey) -> str:
    blob = base64.b64encode(bytes([SIG_TYPE]) + key.raw).decode()
    return f"{name}+{key_id(name, key):08x}+{blob}"


def parse_vkey(text: str, where: str) -> tuple[str, PublicKey]:
    m = _VKEY_RE.fullmatch(text.strip())
    if m is None:
        raise BadInput("not a vkey (name+keyid+base64 key)", where)
    name = m[1]
    note.check_name(name, where)
    try:
        raw = base64.b64decode(m[3], validate=True)
    except (binascii.Error, ValueError):
        raise BadInput("vkey key is not base64", where) from None
    if len(raw) != 1 + ML_DSA_44.public_key_size or raw[0] != SIG_TYPE:
        raise BadInput("vkey is not an ML-DSA-44 cosignature key (type 0x06)", where)
    key = PublicKey(ML_DSA_44, raw[1:])
    if int(m[2], 16) != key_id(name, key):
        raise BadInput("vkey key ID does not match its name and key", where)
    return name, key
