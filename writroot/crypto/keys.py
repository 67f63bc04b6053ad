"""Public keys as statements carry them, and best-effort wiping of secrets in memory."""

from __future__ import annotations

import ctypes
import sys
from dataclasses import dataclass
from typing import Any

from writroot.crypto import spki
from writroot.crypto.algorithms import Algorithm, by_name
from writroot.errors import BadInput, excerpt
from writroot.jsonio import b64decode, b64encode


@dataclass(frozen=True)
class PublicKey:
    algorithm: Algorithm
    raw: bytes

    @property
    def keyid(self) -> str:
        return spki.keyid(self.algorithm, self.raw)

    @property
    def der(self) -> bytes:
        return spki.encode_der(self.algorithm, self.raw)

    @property
    def pem(self) -> str:
        return spki.encode_pem(self.algorithm, self.raw)

    def to_json(self) -> dict[str, str]:
        """The statement form {algorithm, public_key, keyid} (DESIGN §5)."""
        return {"algorithm": self.algorithm.name, "public_key": b64encode(self.raw),
                "keyid": self.keyid}

    @classmethod
    def from_json(cls, obj: Any, where: str) -> PublicKey:
        """Parse a statement key; the keyid is recomputed, never trusted."""
        if not isinstance(obj, dict):
            raise BadInput("expected an object", where)
        extra = set(obj) - {"algorithm", "public_key", "keyid"}
        if extra:
            raise BadInput(f"unknown field {excerpt(sorted(extra)[0], 24)}", where)
        for name in ("algorithm", "public_key", "keyid"):
            if name not in obj:
                raise BadInput(f"missing field {name!r}", where)
        alg = by_name(obj["algorithm"], f"{where}.algorithm")
        raw = b64decode(obj["public_key"], f"{where}.public_key", max_bytes=8192)
        if len(raw) != alg.public_key_size:
            raise BadInput(f"{alg.name} public key must be {alg.public_key_size} bytes",
                           f"{where}.public_key")
        key = cls(alg, raw)
        if obj["keyid"] != key.keyid:
            raise BadInput("keyid does not match the SHA-256 of the key's SPKI", f"{where}.keyid")
        return key

    @classmethod
    def from_pem(cls, pem: bytes, where: str) -> PublicKey:
        alg, raw = spki.decode_pem(pem, where)
        return cls(alg, raw)


def wipe(buf: bytearray | bytes | None) -> None:
    """Zero a secret in place. For `bytes` this writes into the object's buffer (CPython),
    which is best effort: the interpreter may hold other copies."""
    if buf is None or len(buf) == 0:
        return
    if isinstance(buf, bytearray):
        buf[:] = b"\x00" * len(buf)
        return
    if len(buf) > 1 and sys.implementation.name == "cpython":
        offset = sys.getsizeof(buf) - len(buf) - 1
        ctypes.memset(id(buf) + offset, 0, len(buf))
