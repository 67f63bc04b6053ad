"""The recovery blob: a private key sealed under a recovery key (AES-256-GCM).

The associated data binds the fleet, keyid, algorithm, role and split id, so a blob opens
only as the key of the fleet and split it was made for. The blob file also carries the split's
public description; it holds nothing secret without M shares.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from writroot.crypto import engines
from writroot.crypto.keys import PublicKey, wipe
from writroot.errors import BadInput, VerificationFailed
from writroot.jsonio import b64decode, b64encode, canonical
from writroot.recovery.split import description_check
from writroot.statements import schema as s

FORMAT = "writroot-recovery/1"
ROLES = ("fleet-root", "regional-root")


def aad(fleet: str, key: PublicKey, role: str, split_id: str) -> bytes:
    return canonical({"format": FORMAT, "fleet": fleet, "keyid": key.keyid,
                      "algorithm": key.algorithm.name, "role": role, "split": split_id})


def seal(recovery_key: bytearray, private: bytearray, key: PublicKey, fleet: str, role: str,
         description: dict[str, Any]) -> dict[str, Any]:
    """The recovery file: the split's description and the sealed private key."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(12)
    ct = AESGCM(bytes(recovery_key)).encrypt(
        nonce, bytes(private), aad(fleet, key, role, description["split"]))
    return {"format": FORMAT, "fleet": fleet, "role": role, "key": key.to_json(),
            "split": description, "aead": "AES-256-GCM", "nonce": b64encode(nonce),
            "ciphertext": b64encode(ct)}


@dataclass(frozen=True)
class RecoveryFile:
    fleet: str
    role: str
    key: PublicKey
    split: dict[str, Any]
    nonce: bytes
    ciphertext: bytes

    @property
    def keyid(self) -> str:
        return self.key.keyid

    @property
    def split_id(self) -> str:
        return str(self.split["split"])


def recovery_check(obj: Any, where: str) -> RecoveryFile:
    doc = s.record(obj, where, {"format": s.one_of(FORMAT), "fleet": s.name,
                                "role": s.one_of(*ROLES), "key": s.key,
                                "split": description_check, "aead": s.one_of("AES-256-GCM"),
                                "nonce": s.string, "ciphertext": s.string})
    if doc["split"]["keyid"] != doc["key"].keyid:
        raise BadInput("the split restores another keyid than the blob holds",
                       f"{where}.split.keyid")
    nonce = b64decode(doc["nonce"], f"{where}.nonce", 64)
    if len(nonce) != 12:
        raise BadInput("nonce must be 12 bytes", f"{where}.nonce")
    ct = b64decode(doc["ciphertext"], f"{where}.ciphertext", 16384)
    return RecoveryFile(doc["fleet"], doc["role"], doc["key"], doc["split"], nonce, ct)


def read_recovery(path: Any) -> RecoveryFile:
    from writroot.jsonio import read_json_file

    return recovery_check(read_json_file(path), str(path))


def open_blob(blob: RecoveryFile, recovery_key: bytearray, where: str,
              expected_keyid: str | None = None, fleet: str | None = None) -> bytearray:
    """The private key, checked against the blob's public key (and the keyid and fleet the
    caller expects) before anyone uses it. The caller wipes it."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if expected_keyid is not None and blob.keyid != expected_keyid:
        raise VerificationFailed(f"the recovery blob holds key {blob.keyid}, not the expected "
                                 f"{expected_keyid}", where)
    if fleet is not None and blob.fleet != fleet:
        raise VerificationFailed(f"the recovery blob is of fleet {blob.fleet!r}, not "
                                 f"{fleet!r}", where)
    try:
        clear = AESGCM(bytes(recovery_key)).decrypt(
            blob.nonce, blob.ciphertext, aad(blob.fleet, blob.key, blob.role, blob.split_id))
    except InvalidTag:
        raise VerificationFailed("the recovery blob did not open: tampered, or its fleet, "
                                 "keyid, role or split were changed", where) from None
    private = bytearray(clear)
    wipe(clear)
    alg = blob.key.algorithm
    try:
        matches = engines.signer_for(alg).public_from_private(alg, private) == blob.key.raw
    except Exception:
        matches = False
    if not matches:
        wipe(private)
        raise VerificationFailed(f"the key in the recovery blob does not match {blob.keyid}",
                                 where)
    return private
