"""A share file: one holder's SLIP-39 mnemonic encrypted under the holder's passphrase.

scrypt (N = 2^17, r = 8, p = 1; 128 MiB, a fraction of a second) derives an AES-256-GCM key
from the passphrase and a random salt; the file's public fields (split id, holder, member
index) are the associated data. SLIP-39's own passphrase is not used: it would encrypt the
master secret for every holder under one passphrase, and a wrong one yields a wrong secret
silently.
"""

from __future__ import annotations

import os
from typing import Any

from writroot.errors import BadInput
from writroot.jsonio import b64decode, b64encode, canonical
from writroot.statements import schema as s

FORMAT = "writroot-recovery-share/1"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**17, 8, 1


def _kdf(passphrase: bytearray, salt: bytes, n: int) -> bytearray:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return bytearray(Scrypt(salt=salt, length=32, n=n, r=SCRYPT_R, p=SCRYPT_P)
                     .derive(bytes(passphrase)))


def _aad(public: dict[str, Any]) -> bytes:
    return canonical(public)


def encrypt(split_id: str, holder: str, member_index: int, mnemonic: str,
            passphrase: bytearray) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from writroot.crypto.keys import wipe

    if len(passphrase) < 8:
        raise BadInput(f"the passphrase for {holder}'s share is shorter than 8 characters",
                       f"passphrase for {holder}")
    salt, nonce = os.urandom(16), os.urandom(12)
    public = {"format": FORMAT, "split": split_id, "holder": holder,
              "member_index": member_index,
              "kdf": {"name": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P,
                      "salt": b64encode(salt)}}
    key = _kdf(passphrase, salt, SCRYPT_N)
    try:
        ct = AESGCM(bytes(key)).encrypt(nonce, mnemonic.encode(), _aad(public))
    finally:
        wipe(key)
    return canonical({**public, "aead": "AES-256-GCM", "nonce": b64encode(nonce),
                      "ciphertext": b64encode(ct)}) + b"\n"


def public_fields(obj: Any, where: str) -> dict[str, Any]:
    kdf = lambda v, w: s.record(v, w, {"name": s.one_of("scrypt"),  # noqa: E731
                                       "n": s.integer(2**14, 2**20), "r": s.integer(8, 8),
                                       "p": s.integer(1, 1), "salt": s.string})
    return s.record(obj, where, {"format": s.one_of(FORMAT), "split": s.string,
                                 "holder": s.name, "member_index": s.integer(0, 15),
                                 "kdf": kdf, "aead": s.one_of("AES-256-GCM"),
                                 "nonce": s.string, "ciphertext": s.string})


def decrypt(obj: Any, passphrase: bytearray, where: str) -> str:
    """The mnemonic (the caller drops it as soon as it is combined)."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from writroot.crypto.keys import wipe

    doc = public_fields(obj, where)
    public = {k: obj[k] for k in ("format", "split", "holder", "member_index", "kdf")}
    salt = b64decode(doc["kdf"]["salt"], f"{where}.kdf.salt", 64)
    nonce = b64decode(doc["nonce"], f"{where}.nonce", 64)
    ct = b64decode(doc["ciphertext"], f"{where}.ciphertext", 4096)
    key = _kdf(passphrase, salt, doc["kdf"]["n"])
    try:
        clear = AESGCM(bytes(key)).decrypt(nonce, ct, _aad(public))
    except InvalidTag:
        raise BadInput(f"the share file of {doc['holder']} did not open: wrong passphrase, "
                       "or the file was changed", where) from None
    except ValueError:
        raise BadInput("malformed share file", where) from None
    finally:
        wipe(key)
    return clear.decode("utf-8", "replace")
