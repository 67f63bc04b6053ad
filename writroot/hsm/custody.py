"""Key custody on a PKCS#11 token: native where the token does PQC, wrapped otherwise.

Wrapped custody (SoftHSM2 and most deployed HSMs, which lack PKCS#11 3.2 PQC): a
non-extractable AES-256 key-encryption key (KEK) lives on the token; the PQ private key is
generated in host memory, sealed with AES-GCM on the token (AAD binds format, keyid,
algorithm and role), stored as a private data object (and a sealed backup file), and
unsealed only inside a signing step, then wiped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from writroot.crypto import engines
from writroot.crypto.algorithms import Algorithm
from writroot.crypto.engines.base import Engine
from writroot.crypto.keys import PublicKey, wipe
from writroot.errors import BadInput, HSMError, VerificationFailed
from writroot.hsm.p11raw import (
    CKM_ML_DSA,
    CKM_ML_DSA_KEY_PAIR_GEN,
    CKM_SLH_DSA,
    CKM_SLH_DSA_KEY_PAIR_GEN,
    RawPQC,
)
from writroot.jsonio import b64decode, b64encode, canonical, format_time, loads_strict
from writroot.outputs import write_once

FORMAT = "writroot-key/1"
APPLICATION = "writroot"
KEK_LABEL = "writroot-kek"
SEALED_SUFFIX = "#sealed"
ROLES = ("fleet-root", "regional-root", "custodian", "test")
PQC_MECHANISMS = {
    "slh-dsa": (CKM_SLH_DSA_KEY_PAIR_GEN, CKM_SLH_DSA),
    "ml-dsa": (CKM_ML_DSA_KEY_PAIR_GEN, CKM_ML_DSA),
}
_CONSISTENCY_MESSAGE = b"writroot pairwise consistency test"


@dataclass(frozen=True)
class KeyRecord:
    """What writroot keeps about one key on a token (never the private key in clear)."""

    label: str
    role: str
    key: PublicKey
    custody: str  # "wrapped" or "native"
    created_at: str
    nonce: bytes = b""
    ciphertext: bytes = b""
    token_id: bytes = b""  # CKA_ID of a native key pair

    @property
    def keyid(self) -> str:
        return self.key.keyid

    def public_json(self) -> dict[str, Any]:
        out = {"format": FORMAT, "label": self.label, "role": self.role,
               "custody": self.custody, "created_at": self.created_at,
               "key": self.key.to_json()}
        if self.token_id:
            out["token_id"] = self.token_id.hex()
        return out

    def sealed_json(self) -> dict[str, Any]:
        out = self.public_json()
        out["sealed"] = {"kek": KEK_LABEL, "aead": "AES-256-GCM",
                         "nonce": b64encode(self.nonce), "ciphertext": b64encode(self.ciphertext)}
        return out

    @classmethod
    def from_json(cls, obj: Any, where: str) -> KeyRecord:
        if not isinstance(obj, dict):
            raise BadInput("expected an object", where)
        fields = {"format", "label", "role", "custody", "created_at", "key", "sealed", "token_id"}
        extra = set(obj) - fields
        if extra:
            raise BadInput(f"unknown field {sorted(extra)[0]!r}", where)
        if obj.get("format") != FORMAT:
            raise BadInput(f"format must be {FORMAT!r}", f"{where}.format")
        for name in ("label", "role", "custody", "created_at"):
            if not isinstance(obj.get(name), str):
                raise BadInput("expected a string", f"{where}.{name}")
        if obj["custody"] not in ("wrapped", "native"):
            raise BadInput("custody must be wrapped or native", f"{where}.custody")
        token_id = b""
        if "token_id" in obj:
            try:
                token_id = bytes.fromhex(obj["token_id"])
            except (TypeError, ValueError):
                raise BadInput("expected hex", f"{where}.token_id") from None
        if obj["role"] not in ROLES:
            raise BadInput(f"unknown role {obj['role']!r}", f"{where}.role")
        key = PublicKey.from_json(obj.get("key"), f"{where}.key")
        nonce = ciphertext = b""
        if "sealed" in obj:
            sealed = obj["sealed"]
            if not isinstance(sealed, dict) or set(sealed) != {"kek", "aead", "nonce",
                                                               "ciphertext"}:
                raise BadInput("expected {kek, aead, nonce, ciphertext}", f"{where}.sealed")
            if sealed["aead"] != "AES-256-GCM" or sealed["kek"] != KEK_LABEL:
                raise BadInput("unsupported sealing", f"{where}.sealed")
            nonce = b64decode(sealed["nonce"], f"{where}.sealed.nonce", 64)
            ciphertext = b64decode(sealed["ciphertext"], f"{where}.sealed.ciphertext", 4096)
            if len(nonce) != 12:
                raise BadInput("nonce must be 12 bytes", f"{where}.sealed.nonce")
        return cls(obj["label"], obj["role"], key, obj["custody"], obj["created_at"], nonce,
                   ciphertext, token_id)


def aad_for(role: str, key: PublicKey) -> bytes:
    """The AES-GCM associated data: a sealed key opens only as the key and role it was sealed as."""
    return canonical({"format": FORMAT, "keyid": key.keyid, "algorithm": key.algorithm.name,
                      "role": role})


@dataclass(frozen=True)
class SignResult:
    signature: bytes
    engine: str
    checked_by: str
    custody: str


class Custody:
    """Keys on one logged-in, read-write session."""

    def __init__(self, session: Any, module: str) -> None:
        self.session = session
        self.module = module

    # -- token capabilities -------------------------------------------------------------

    def mechanisms(self) -> set[int]:
        return {int(m) for m in self.session.token.slot.get_mechanisms()}

    def native_supported(self, alg: Algorithm) -> bool:
        return set(PQC_MECHANISMS[alg.family]) <= self.mechanisms()

    def mode_for(self, alg: Algorithm, requested: str = "auto") -> str:
        native = self.native_supported(alg)
        if requested == "auto":
            return "native" if native else "wrapped"
        if requested == "native" and not native:
            raise HSMError(f"token does not advertise PKCS#11 3.2 mechanisms for {alg.name}; "
                           "native custody is impossible here")
        if requested not in ("native", "wrapped"):
            raise BadInput(f"custody must be auto, native or wrapped, not {requested!r}",
                           "custody")
        return requested

    # -- the key-encryption key ---------------------------------------------------------

    def _kek(self, create: bool) -> Any:
        import pkcs11
        from pkcs11 import Attribute, KeyType, MechanismFlag, ObjectClass

        found = list(self.session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY,
                                               Attribute.LABEL: KEK_LABEL}))
        if len(found) > 1:
            raise HSMError(f"more than one {KEK_LABEL!r} on the token")
        if found:
            kek = found[0]
        elif create:
            try:
                kek = self.session.generate_key(
                    KeyType.AES, 256, label=KEK_LABEL, store=True,
                    capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT,
                    template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
                              Attribute.PRIVATE: True, Attribute.WRAP: False,
                              Attribute.UNWRAP: False, Attribute.MODIFIABLE: False})
            except pkcs11.PKCS11Error as exc:
                raise HSMError(f"cannot generate the key-encryption key: "
                               f"{type(exc).__name__}") from None
        else:
            raise HSMError(f"no key-encryption key {KEK_LABEL!r} on this token")
        self.require_kek_never_extractable(kek)
        return kek

    def kek_attributes(self) -> dict[str, bool]:
        from pkcs11 import Attribute

        kek = self._kek(create=False)
        names = {"sensitive": Attribute.SENSITIVE, "extractable": Attribute.EXTRACTABLE,
                 "always_sensitive": Attribute.ALWAYS_SENSITIVE,
                 "never_extractable": Attribute.NEVER_EXTRACTABLE, "token": Attribute.TOKEN,
                 "private": Attribute.PRIVATE}
        return {name: bool(kek[attr]) for name, attr in names.items()}

    @staticmethod
    def require_kek_never_extractable(kek: Any) -> None:
        from pkcs11 import Attribute

        if not kek[Attribute.SENSITIVE] or kek[Attribute.EXTRACTABLE] \
                or not kek[Attribute.NEVER_EXTRACTABLE] or not kek[Attribute.ALWAYS_SENSITIVE]:
            raise HSMError(f"{KEK_LABEL!r} is extractable or not sensitive; refusing to use it")

    def _seal(self, role: str, key: PublicKey, private: bytearray) -> tuple[bytes, bytes]:
        from pkcs11 import Mechanism
        from pkcs11.mechanisms import GCMParams

        kek = self._kek(create=True)
        nonce = bytes(self.session.generate_random(96))
        try:
            ct = kek.encrypt(bytes(private), mechanism=Mechanism.AES_GCM,
                             mechanism_param=GCMParams(nonce, aad_for(role, key), 128))
        except Exception as exc:
            raise HSMError(f"sealing failed: {type(exc).__name__}") from None
        return nonce, bytes(ct)

    def unseal(self, record: KeyRecord) -> bytearray:
        """Open a sealed key on this token. Callers wipe the result as soon as it is used."""
        from pkcs11 import Mechanism
        from pkcs11.mechanisms import GCMParams

        if record.custody != "wrapped" or not record.ciphertext:
            raise HSMError(f"key {record.label!r} is not in wrapped custody")
        kek = self._kek(create=False)
        try:
            clear = kek.decrypt(record.ciphertext, mechanism=Mechanism.AES_GCM,
                                mechanism_param=GCMParams(record.nonce,
                                                          aad_for(record.role, record.key), 128))
        except Exception:
            raise HSMError(f"sealed key {record.label!r} did not open: wrong token, wrong "
                           "keyid/role binding, or tampered ciphertext") from None
        private = bytearray(clear)
        wipe(clear)
        signer = engines.signer_for(record.key.algorithm)
        if signer.public_from_private(record.key.algorithm, private) != record.key.raw:
            wipe(private)
            raise HSMError(f"unsealed key {record.label!r} does not match its public key")
        return private

    # -- key records ----------------------------------------------------------------------

    def _data_objects(self, label: str | None = None) -> list[Any]:
        from pkcs11 import Attribute, ObjectClass

        attrs: dict[Any, Any] = {Attribute.CLASS: ObjectClass.DATA,
                                 Attribute.APPLICATION: APPLICATION}
        if label is not None:
            attrs[Attribute.LABEL] = label
        return list(self.session.get_objects(attrs))

    def keys(self) -> list[KeyRecord]:
        """Every writroot key on the token, from its public record objects."""
        from pkcs11 import Attribute

        out = []
        for obj in self._data_objects():
            label = obj[Attribute.LABEL]
            if label.endswith(SEALED_SUFFIX):
                continue
            out.append(KeyRecord.from_json(
                loads_strict(bytes(obj[Attribute.VALUE]), f"token object {label!r}"),
                f"token object {label!r}"))
        return sorted(out, key=lambda r: (r.created_at, r.label))

    def find(self, keyid: str) -> KeyRecord:
        """The key with this keyid (pinning: the caller names the keyid it expects)."""
        from pkcs11 import Attribute

        matches = [r for r in self.keys() if r.keyid == keyid]
        if not matches:
            raise HSMError(f"no writroot key with keyid {keyid} on this token")
        record = matches[0]
        if record.custody == "wrapped":
            sealed = self._data_objects(record.label + SEALED_SUFFIX)
            if len(sealed) != 1:
                raise HSMError(f"sealed object for {record.label!r} is missing")
            where = f"token object {record.label + SEALED_SUFFIX!r}"
            record = KeyRecord.from_json(loads_strict(bytes(sealed[0][Attribute.VALUE]), where),
                                         where)
            if record.keyid != keyid:
                raise HSMError(f"sealed object for {record.label!r} holds another key")
        return record

    def _store(self, record: KeyRecord) -> None:
        from pkcs11 import Attribute, ObjectClass

        base = {Attribute.CLASS: ObjectClass.DATA, Attribute.TOKEN: True,
                Attribute.APPLICATION: APPLICATION, Attribute.MODIFIABLE: False}
        self.session.create_object({**base, Attribute.LABEL: record.label,
                                    Attribute.PRIVATE: False,
                                    Attribute.VALUE: canonical(record.public_json())})
        if record.custody == "wrapped":
            self.session.create_object({**base, Attribute.LABEL: record.label + SEALED_SUFFIX,
                                        Attribute.PRIVATE: True,
                                        Attribute.VALUE: canonical(record.sealed_json())})

    def generate(self, alg: Algorithm, role: str, label: str, custody: str = "auto",
                 backup_dir: Path | None = None) -> KeyRecord:
        """Generate a key; refuse an existing label; self-test it before storing anything."""
        if role not in ROLES:
            raise BadInput(f"unknown role {role!r}", "role")
        if not label or len(label) > 64 or SEALED_SUFFIX in label:
            raise BadInput("label must be 1-64 characters without '#sealed'", "label")
        if self._data_objects(label) or self._data_objects(label + SEALED_SUFFIX):
            raise HSMError(f"a key labelled {label!r} already exists on this token")
        mode = self.mode_for(alg, custody)
        backup = None
        if backup_dir is not None:
            backup = backup_dir / f"{label}.sealed.json"
            if backup.exists():
                raise BadInput("backup file exists already (outputs are write-once)", str(backup))
        created = format_time(datetime.now(UTC))
        if mode == "native":
            record = self._generate_native(alg, role, label, created)
        else:
            signer = engines.signer_for(alg)
            raw, private = signer.keygen(alg)
            try:
                key = PublicKey(alg, raw)
                self._self_test(key, signer.sign(alg, private, _CONSISTENCY_MESSAGE), signer)
                nonce, ct = self._seal(role, key, private)
            finally:
                wipe(private)
            record = KeyRecord(label, role, key, "wrapped", created, nonce, ct)
            if backup is not None:
                write_once(backup, canonical(record.sealed_json()) + b"\n", 0o600)
        self._store(record)
        return record

    def _generate_native(self, alg: Algorithm, role: str, label: str,
                         created: str) -> KeyRecord:
        raw_pqc = RawPQC(self.module, self.session.handle)
        # CKA_ID is unknown until the key exists; use a random id, then record the keyid.
        key_id = os.urandom(16)
        raw = raw_pqc.generate(alg.family, alg.pkcs11_parameter_set, label, key_id)
        key = PublicKey(alg, raw)
        self._self_test(key, raw_pqc.sign(alg.family, key_id, _CONSISTENCY_MESSAGE), None)
        return KeyRecord(label, role, key, "native", created, token_id=key_id)

    @staticmethod
    def _self_test(key: PublicKey, signature: bytes, signer: Engine | None) -> None:
        """Pairwise consistency: an engine other than the signer (None: the token) verifies."""
        checker = _independent_checker(key.algorithm, signer)
        if not checker.verify(key.algorithm, key.raw, _CONSISTENCY_MESSAGE, signature):
            raise HSMError(f"pairwise consistency test failed for {key.keyid}")

    def sign(self, keyid: str, message: bytes) -> SignResult:
        """Sign with the key pinned by `keyid`, then check the signature independently."""
        record = self.find(keyid)
        alg = record.key.algorithm
        if record.custody == "native":
            signature = RawPQC(self.module, self.session.handle).sign(alg.family, record.token_id,
                                                                      message)
            engine_name = "token"
            checker = _independent_checker(alg, None)
        else:
            signer = engines.signer_for(alg)
            private = self.unseal(record)
            try:
                signature = signer.sign(alg, private, message)
            finally:
                wipe(private)
            engine_name = signer.name
            checker = _independent_checker(alg, signer)
        if not checker.verify(alg, record.key.raw, message, signature):
            raise VerificationFailed(f"fresh signature by {keyid} failed the independent check "
                                     f"({checker.name}); nothing written")
        return SignResult(signature, engine_name, checker.name, record.custody)

    def restore_backup(self, path: Path) -> KeyRecord:
        """Put a sealed backup file back on the token that sealed it (it opens nowhere else)."""
        from writroot.jsonio import read_json_file

        record = KeyRecord.from_json(read_json_file(path), str(path))
        if any(r.keyid == record.keyid for r in self.keys()):
            raise HSMError(f"key {record.keyid} is on this token already")
        if self._data_objects(record.label):
            raise HSMError(f"a key labelled {record.label!r} already exists on this token")
        private = self.unseal(record)
        wipe(private)
        self._store(record)
        return record


def _independent_checker(alg: Algorithm, signer: Engine | None) -> Engine:
    """The engine that re-checks a signature: independent of the host signer, or of the
    usual verifier when the token signed."""
    return engines.independent_for(alg, signer or engines.verifier_for(alg))
