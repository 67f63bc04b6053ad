"""Key custody on a PKCS#11 token: native where the token does PQC, wrapped otherwise.

Wrapped custody (SoftHSM2 and most deployed HSMs, which lack PKCS#11 3.2 PQC): a
non-extractable AES-256 key-encryption key (KEK) lives on the token; the PQ private key is
generated in host memory, sealed with AES-GCM on the token (AAD binds format, keyid,
algorithm and role), stored as a private data object (and a sealed backup file), and
unsealed only inside a signing step, then wiped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from writroot import failpoint
from writroot.crypto import engines
from writroot.crypto.algorithms import Algorithm
from writroot.crypto.engines.base import Engine
from writroot.crypto.keys import PublicKey, wipe
from writroot.errors import BadInput, HSMError, PolicyRefused, VerificationFailed
from writroot.hsm.p11raw import (
    CKM_ML_DSA,
    CKM_ML_DSA_KEY_PAIR_GEN,
    CKM_SLH_DSA,
    CKM_SLH_DSA_KEY_PAIR_GEN,
    RawPQC,
)
from writroot.jsonio import (
    b64decode,
    b64encode,
    canonical,
    format_time,
    is_hex_digest,
    loads_strict,
)
from writroot.outputs import write_once

FORMAT = "writroot-key/1"
#: Given the new public key and private key in memory during generation (recovery escrow).
Escrow = Callable[[PublicKey, bytearray], None]
APPLICATION = "writroot"
SPENT_APPLICATION = "writroot-spent-plan"
RETIRED_APPLICATION = "writroot-retired-key"
KEK_LABEL = "writroot-kek"
SPENT_LABEL = "writroot-spent-plan"
RETIRED_LABEL = "writroot-retired-key"
RESERVED_LABELS = (KEK_LABEL, SPENT_LABEL, RETIRED_LABEL)
ROLES = ("fleet-root", "regional-root", "custodian", "test", "fleet-log", "regional-log")
PQC_MECHANISMS = {
    "slh-dsa": (CKM_SLH_DSA_KEY_PAIR_GEN, CKM_SLH_DSA),
    "ml-dsa": (CKM_ML_DSA_KEY_PAIR_GEN, CKM_ML_DSA),
}
_CONSISTENCY_MESSAGE = b"writroot pairwise consistency test"
# The KEK's check value: an AES-GCM tag over nothing, under a nonce no sealing uses (sealing
# nonces are random and compared against it). Unlike AES-ECB(0), it does not reveal GHASH's H.
_KCV_NONCE = b"writroot-kcv"
_KCV_AAD = b"writroot key-encryption key check value v1"


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
    kek_check: str = ""  # check value of the KEK a wrapped key is sealed under
    plan_sha256: str = ""  # the ceremony plan whose run generated it ("" outside ceremonies)
    supersedes: str = ""  # keyid of the fleet root this one replaced (rotation)
    recovery_split: str = ""  # the recovery split made when the key was born or restored

    @property
    def keyid(self) -> str:
        return self.key.keyid

    def public_json(self) -> dict[str, Any]:
        out = {"format": FORMAT, "label": self.label, "role": self.role,
               "custody": self.custody, "created_at": self.created_at,
               "key": self.key.to_json()}
        if self.token_id:
            out["token_id"] = self.token_id.hex()
        if self.plan_sha256:
            out["plan_sha256"] = self.plan_sha256
        if self.supersedes:
            out["supersedes"] = self.supersedes
        if self.recovery_split:
            out["recovery_split"] = self.recovery_split
        return out

    def sealed_json(self) -> dict[str, Any]:
        out = self.public_json()
        out["sealed"] = {"kek": KEK_LABEL, "kek_check": self.kek_check, "aead": "AES-256-GCM",
                         "nonce": b64encode(self.nonce), "ciphertext": b64encode(self.ciphertext)}
        return out

    def token_json(self) -> dict[str, Any]:
        """What the token's (private) record object holds."""
        return self.sealed_json() if self.custody == "wrapped" else self.public_json()

    @classmethod
    def from_json(cls, obj: Any, where: str) -> KeyRecord:
        if not isinstance(obj, dict):
            raise BadInput("expected an object", where)
        fields = {"format", "label", "role", "custody", "created_at", "key", "sealed", "token_id",
                  "plan_sha256", "supersedes", "recovery_split"}
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
        for name in ("plan_sha256", "supersedes"):
            if name in obj and not is_hex_digest(obj[name]):
                raise BadInput("expected a lowercase hex SHA-256", f"{where}.{name}")
        if obj["role"] not in ROLES:
            raise BadInput(f"unknown role {obj['role']!r}", f"{where}.role")
        key = PublicKey.from_json(obj.get("key"), f"{where}.key")
        nonce = ciphertext = b""
        kek_check = ""
        if "sealed" in obj:
            sealed = obj["sealed"]
            if not isinstance(sealed, dict) or set(sealed) != {"kek", "kek_check", "aead",
                                                               "nonce", "ciphertext"}:
                raise BadInput("expected {kek, kek_check, aead, nonce, ciphertext}",
                               f"{where}.sealed")
            if sealed["aead"] != "AES-256-GCM" or sealed["kek"] != KEK_LABEL:
                raise BadInput("unsupported sealing", f"{where}.sealed")
            kek_check = sealed["kek_check"]
            if not isinstance(kek_check, str) or len(kek_check) != 32 or \
                    any(c not in "0123456789abcdef" for c in kek_check):
                raise BadInput("expected 32 lowercase hex digits", f"{where}.sealed.kek_check")
            nonce = b64decode(sealed["nonce"], f"{where}.sealed.nonce", 64)
            ciphertext = b64decode(sealed["ciphertext"], f"{where}.sealed.ciphertext", 4096)
            if len(nonce) != 12:
                raise BadInput("nonce must be 12 bytes", f"{where}.sealed.nonce")
        elif obj["custody"] == "wrapped":
            raise BadInput("a wrapped key's record must hold its sealed key", f"{where}.sealed")
        split = obj.get("recovery_split", "")
        if not isinstance(split, str) or len(split) > 64:
            raise BadInput("expected a split id", f"{where}.recovery_split")
        return cls(obj["label"], obj["role"], key, obj["custody"], obj["created_at"], nonce,
                   ciphertext, token_id, kek_check, obj.get("plan_sha256", ""),
                   obj.get("supersedes", ""), split)


def aad_for(role: str, key: PublicKey, kek_check: str) -> bytes:
    """The AES-GCM associated data: a sealed key opens only as the key and role it was sealed
    as, and only under the KEK (identified by its check value) it was sealed under."""
    return canonical({"format": FORMAT, "keyid": key.keyid, "algorithm": key.algorithm.name,
                      "role": role, "kek": kek_check})


@dataclass(frozen=True)
class SignResult:
    signature: bytes
    engine: str
    checked_by: str
    custody: str


@dataclass(frozen=True)
class Planted:
    """A public token object carrying one of writroot's names: someone without the PIN made it."""

    label: str
    kind: str


@dataclass(frozen=True)
class SpentPlan:
    plan_sha256: str
    state: str  # "pending" (outputs being published) or "published"
    out: str
    at: str


#: (attribute name, required value, words for the refusal, must the token report it)
def _kek_requirements() -> list[tuple[Any, Any, str, bool]]:
    from pkcs11 import Attribute, KeyType

    return [(Attribute.PRIVATE, True, "private", True),
            (Attribute.LOCAL, True, "local (generated on the token)", True),
            (Attribute.KEY_TYPE, KeyType.AES, "an AES key", True),
            (Attribute.VALUE_LEN, 32, "32 bytes long", True),
            (Attribute.SENSITIVE, True, "sensitive", True),
            (Attribute.ALWAYS_SENSITIVE, True, "always sensitive", True),
            (Attribute.NEVER_EXTRACTABLE, True, "never extractable", True),
            (Attribute.EXTRACTABLE, False, "not extractable", True),
            (Attribute.MODIFIABLE, False, "not modifiable", False),
            (Attribute.COPYABLE, False, "not copyable", False)]


#: A deviation from PKCS#11 3.2 (hsm info shows it): the search template is not all honoured.
FIND_IGNORES = ("C_FindObjects ignores part of the search template (e.g. CKA_PRIVATE, "
                "CKA_APPLICATION); writroot re-reads every object it finds")


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, bool) or got is None:
        return got is want or got == want
    if isinstance(got, bytes | bytearray) and isinstance(want, str):
        return bytes(got) == want.encode()
    return bool(got == want)


def _read(obj: Any, attr: Any) -> Any:
    """An attribute, or None when the token does not have or show it."""
    import pkcs11

    try:
        return obj[attr]
    except (pkcs11.AttributeTypeInvalid, pkcs11.AttributeSensitive, KeyError):
        return None
    except pkcs11.PKCS11Error:
        return None


class Custody:
    """Keys on one logged-in, read-write session."""

    def __init__(self, session: Any, module: str) -> None:
        self.session = session
        self.module = module
        #: records on the token that did not parse: (label, reason); reported, never fatal
        self.problems: list[tuple[str, str]] = []
        #: deviations from PKCS#11 3.2 seen on this token (writroot/hsm/native.py)
        self.deviations: list[str] = []

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
        """The KEK, found only among private objects (nobody without the PIN can plant one)."""
        import pkcs11
        from pkcs11 import Attribute, KeyType, MechanismFlag, ObjectClass

        found = self._matching({Attribute.CLASS: ObjectClass.SECRET_KEY,
                                Attribute.LABEL: KEK_LABEL, Attribute.PRIVATE: True})
        if len(found) > 1:
            ids = ", ".join(f"CKA_ID {bytes(_read(k, Attribute.ID) or b'').hex() or '(none)'}"
                            f" / handle {k.handle}" for k in found)
            raise HSMError(f"{len(found)} private keys labelled {KEK_LABEL!r} on the token "
                           f"({ids}); refusing to choose one")
        if found:
            kek = found[0]
        elif create:
            template = {Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
                        Attribute.PRIVATE: True, Attribute.WRAP: False,
                        Attribute.UNWRAP: False, Attribute.MODIFIABLE: False,
                        Attribute.COPYABLE: False, Attribute.ID: os.urandom(16)}
            try:
                kek = self.session.generate_key(
                    KeyType.AES, 256, label=KEK_LABEL, store=True,
                    capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT,
                    template=template)
            except pkcs11.AttributeTypeInvalid:  # a token without CKA_COPYABLE
                del template[Attribute.COPYABLE]
                kek = self.session.generate_key(
                    KeyType.AES, 256, label=KEK_LABEL, store=True,
                    capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT,
                    template=template)
            except pkcs11.PKCS11Error as exc:
                raise HSMError(f"cannot generate the key-encryption key: "
                               f"{type(exc).__name__}") from None
        else:
            raise HSMError(f"no key-encryption key {KEK_LABEL!r} on this token")
        self.require_kek(kek)
        return kek

    @staticmethod
    def require_kek(kek: Any) -> None:
        """The KEK must read back private, local, AES-256, sensitive and never extractable."""
        wrong = []
        for attr, want, words, required in _kek_requirements():
            value = _read(kek, attr)
            if value is None:
                if required:
                    wrong.append(f"{words} (the token does not say)")
            elif value != want:
                wrong.append(words)
        if wrong:
            raise HSMError(f"the key-encryption key {KEK_LABEL!r} is not {', '.join(wrong)}; "
                           "refusing to use it")

    # kept for callers of the earlier name
    require_kek_never_extractable = require_kek

    def kek_check_value(self, kek: Any | None = None) -> str:
        """The KEK's identity: 128 bits computed on the token, bound into every seal."""
        from pkcs11 import Mechanism
        from pkcs11.mechanisms import GCMParams

        kek = kek if kek is not None else self._kek(create=False)
        try:
            tag = kek.encrypt(b"\x00" * 16, mechanism=Mechanism.AES_GCM,
                              mechanism_param=GCMParams(_KCV_NONCE, _KCV_AAD, 128))
        except Exception as exc:
            raise HSMError(f"cannot compute the KEK check value: {type(exc).__name__}") from None
        return hashlib.sha256(bytes(tag)).hexdigest()[:32]

    def kek_attributes(self) -> dict[str, Any]:
        from pkcs11 import Attribute

        kek = self._kek(create=False)
        names = {"sensitive": Attribute.SENSITIVE, "extractable": Attribute.EXTRACTABLE,
                 "always_sensitive": Attribute.ALWAYS_SENSITIVE,
                 "never_extractable": Attribute.NEVER_EXTRACTABLE, "token": Attribute.TOKEN,
                 "private": Attribute.PRIVATE, "local": Attribute.LOCAL,
                 "modifiable": Attribute.MODIFIABLE}
        out: dict[str, Any] = {name: bool(kek[attr]) for name, attr in names.items()}
        out["bytes"] = int(kek[Attribute.VALUE_LEN])
        out["check_value"] = self.kek_check_value(kek)
        return out

    def _seal(self, role: str, key: PublicKey, private: bytearray) -> tuple[bytes, bytes, str]:
        from pkcs11 import Mechanism
        from pkcs11.mechanisms import GCMParams

        kek = self._kek(create=True)
        kcv = self.kek_check_value(kek)
        nonce = _KCV_NONCE
        while nonce == _KCV_NONCE:
            nonce = bytes(self.session.generate_random(96))
        try:
            ct = kek.encrypt(bytes(private), mechanism=Mechanism.AES_GCM,
                             mechanism_param=GCMParams(nonce, aad_for(role, key, kcv), 128))
        except Exception as exc:
            raise HSMError(f"sealing failed: {type(exc).__name__}") from None
        return nonce, bytes(ct), kcv

    def unseal(self, record: KeyRecord) -> bytearray:
        """Open a sealed key on this token. Callers wipe the result as soon as it is used."""
        from pkcs11 import Mechanism
        from pkcs11.mechanisms import GCMParams

        if record.custody != "wrapped" or not record.ciphertext:
            raise HSMError(f"key {record.label!r} is not in wrapped custody")
        kek = self._kek(create=False)
        kcv = self.kek_check_value(kek)
        if record.kek_check != kcv:
            raise HSMError(f"sealed key {record.label!r} did not open: it was sealed under "
                           f"another key-encryption key (check value {record.kek_check}; this "
                           f"token's is {kcv})")
        try:
            clear = kek.decrypt(record.ciphertext, mechanism=Mechanism.AES_GCM,
                                mechanism_param=GCMParams(record.nonce,
                                                          aad_for(record.role, record.key, kcv),
                                                          128))
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

    # -- token objects ------------------------------------------------------------------

    def _private_data(self, application: str, label: str | None = None) -> list[Any]:
        from pkcs11 import Attribute, ObjectClass

        attrs: dict[Any, Any] = {Attribute.CLASS: ObjectClass.DATA, Attribute.PRIVATE: True,
                                 Attribute.APPLICATION: application}
        if label is not None:
            attrs[Attribute.LABEL] = label
        return self._matching(attrs)

    def _matching(self, attrs: dict[Any, Any]) -> list[Any]:
        """Objects matching `attrs`, each re-read: a token may ignore part of a search template
        (freehsm-c matches only class, label and id), and writroot's records must be private
        objects of its own application, whatever the search returned."""
        found = list(self.session.get_objects(attrs))
        kept = [o for o in found if all(_same(_read(o, a), v) for a, v in attrs.items())]
        if len(kept) != len(found) and FIND_IGNORES not in self.deviations:
            self.deviations.append(FIND_IGNORES)
        return kept

    def _data_objects(self, label: str | None = None) -> list[Any]:
        """writroot's key records (private data objects)."""
        return self._private_data(APPLICATION, label)

    def _create_private(self, application: str, label: str, value: bytes) -> None:
        import pkcs11
        from pkcs11 import Attribute, ObjectClass

        try:
            self.session.create_object({Attribute.CLASS: ObjectClass.DATA, Attribute.TOKEN: True,
                                        Attribute.PRIVATE: True, Attribute.MODIFIABLE: False,
                                        Attribute.APPLICATION: application,
                                        Attribute.LABEL: label, Attribute.VALUE: value})
        except pkcs11.PKCS11Error as exc:
            raise HSMError(f"cannot store {label!r} on the token: {type(exc).__name__}") from None

    @staticmethod
    def _destroy(obj: Any, what: str) -> None:
        import pkcs11

        try:
            obj.destroy()
        except pkcs11.PKCS11Error as exc:
            raise HSMError(f"cannot destroy {what} on the token: {type(exc).__name__}") from None

    def _records(self) -> list[tuple[Any, KeyRecord]]:
        from pkcs11 import Attribute

        self.problems = []
        out = []
        for obj in self._data_objects():
            label = str(_read(obj, Attribute.LABEL) or "")
            where = f"token object {label!r}"
            try:
                record = KeyRecord.from_json(loads_strict(bytes(obj[Attribute.VALUE]), where),
                                             where)
                if record.label != label:
                    raise BadInput(f"holds the record of {record.label!r}", where)
            except (BadInput, VerificationFailed) as exc:
                self.problems.append((label, exc.message))
                continue
            out.append((obj, record))
        return sorted(out, key=lambda p: (p[1].created_at, p[1].label))

    def keys(self) -> list[KeyRecord]:
        """Every writroot key on the token; a record that does not parse is reported in
        `problems` (by label) and skipped."""
        return [r for _, r in self._records()]

    def find(self, keyid: str) -> KeyRecord:
        """The key with this keyid (pinning: the caller names the keyid it expects)."""
        if keyid in self.retired():
            raise HSMError(f"key {keyid} was retired on this token; it signs nothing")
        matches = [r for r in self.keys() if r.keyid == keyid]
        if not matches:
            raise HSMError(f"no writroot key with keyid {keyid} on this token")
        if len(matches) > 1:
            raise HSMError(f"{len(matches)} records on this token hold keyid {keyid} ("
                           f"{', '.join(repr(r.label) for r in matches)}); refusing to choose")
        return matches[0]

    def _store(self, record: KeyRecord) -> None:
        self._create_private(APPLICATION, record.label, canonical(record.token_json()))

    # -- planted objects ----------------------------------------------------------------

    def planted(self) -> list[Planted]:
        """Public objects with writroot's names: made without the PIN, ignored, reported."""
        from pkcs11 import Attribute, ObjectClass

        out = []
        for obj in self._matching({Attribute.PRIVATE: False}):
            label = str(_read(obj, Attribute.LABEL) or "")
            cls = _read(obj, Attribute.CLASS)
            app = _read(obj, Attribute.APPLICATION) if cls == ObjectClass.DATA else None
            ours = label in RESERVED_LABELS or \
                (cls == ObjectClass.DATA and (label.startswith("writroot")
                                              or str(app or "").startswith("writroot")))
            if ours:
                kind = "data object" if cls == ObjectClass.DATA else \
                    ("secret key" if cls == ObjectClass.SECRET_KEY else f"object class {cls}")
                out.append(Planted(label, kind))
        return out

    # -- key generation -----------------------------------------------------------------

    def generate(self, alg: Algorithm, role: str, label: str, custody: str = "auto",
                 backup_dir: Path | None = None, *, plan_sha256: str = "",
                 supersedes: str = "", escrow: Escrow | None = None,
                 recovery_split: str = "") -> KeyRecord:
        """Generate a key; refuse an existing label; self-test it before storing anything.

        A key under the same label left by a ceremony run that never published (its plan is
        not spent) is an orphan: it is destroyed first, so the re-run succeeds.

        `escrow` (recovery, writroot/recovery/escrow.py) is handed the new public key and
        private key in memory, after the self-test and before the private key is wiped; only
        wrapped custody can offer it (a native key never leaves the token).
        """
        if role not in ROLES:
            raise BadInput(f"unknown role {role!r}", "role")
        if not label or len(label) > 64 or "#" in label or label in RESERVED_LABELS:
            raise BadInput("label must be 1-64 characters without '#', not a reserved name",
                           "label")
        backup = None
        if backup_dir is not None:
            backup = backup_dir / f"{label}.sealed.json"
            if os.path.lexists(backup):
                raise BadInput("backup file exists already (outputs are write-once)", str(backup))
        mode = self.mode_for(alg, custody)
        if escrow is not None and mode == "native":
            raise PolicyRefused(f"{label}: a key in native custody never leaves the token, so "
                                "writroot cannot seal it under a recovery key; use the token "
                                "vendor's backup (docs/custody.md) and drop recovery_holders, "
                                "or run on a token in wrapped custody", "recovery_holders")
        self._clear_label(label)
        created = format_time(datetime.now(UTC))
        if mode == "native":
            record = self._generate_native(alg, role, label, created)
        else:
            signer = engines.signer_for(alg)
            raw, private = signer.keygen(alg)
            try:
                key = PublicKey(alg, raw)
                self._self_test(key, signer.sign(alg, private, _CONSISTENCY_MESSAGE), signer)
                if escrow is not None:
                    escrow(key, private)
                nonce, ct, kcv = self._seal(role, key, private)
            finally:
                wipe(private)
            record = KeyRecord(label, role, key, "wrapped", created, nonce, ct, kek_check=kcv)
        record = dataclasses.replace(record, plan_sha256=plan_sha256, supersedes=supersedes,
                                     recovery_split=recovery_split)
        if backup is not None and record.custody == "wrapped":
            # the backup exists before the token holds the key: never a key without its backup
            write_once(backup, canonical(record.sealed_json()) + b"\n", 0o600)
        try:
            self._store(record)
        except HSMError:
            if record.custody == "native":
                RawPQC(self.module, self.session.handle).destroy(record.token_id)
            raise
        failpoint.hit("after-keygen")
        return record

    def adopt(self, role: str, label: str, key: PublicKey, private: bytearray,
              backup_dir: Path | None = None, *, plan_sha256: str = "",
              recovery_split: str = "") -> KeyRecord:
        """Put a recovered private key into wrapped custody on this token (sealed under this
        token's KEK, made if the token is fresh). The caller has checked the key against the
        keyid it expects and wipes `private`. An orphan under the label (a restore that died
        before publishing) is destroyed first."""
        if role not in ROLES:
            raise BadInput(f"unknown role {role!r}", "role")
        if key.keyid in self.retired():
            raise HSMError(f"key {key.keyid} was retired on this token; it is not restored here")
        self._clear_label(label)
        if any(r.keyid == key.keyid for r in self.keys()):
            raise HSMError(f"key {key.keyid} is on this token already")
        signer = engines.signer_for(key.algorithm)
        self._self_test(key, signer.sign(key.algorithm, private, _CONSISTENCY_MESSAGE), signer)
        nonce, ct, kcv = self._seal(role, key, private)
        record = KeyRecord(label, role, key, "wrapped", format_time(datetime.now(UTC)), nonce,
                           ct, kek_check=kcv, plan_sha256=plan_sha256,
                           recovery_split=recovery_split)
        if backup_dir is not None:
            backup = backup_dir / f"{label}.sealed.json"
            if os.path.lexists(backup):
                raise BadInput("backup file exists already (outputs are write-once)", str(backup))
            write_once(backup, canonical(record.sealed_json()) + b"\n", 0o600)
        self._store(record)
        failpoint.hit("after-restore")
        return record

    def _clear_label(self, label: str) -> None:
        existing = self._data_objects(label)
        records = [(o, r) for o, r in self._records() if r.label == label]
        if len(existing) != len(records) or not existing:
            if existing:
                raise HSMError(f"a key labelled {label!r} already exists on this token (its "
                               "record does not parse; see `writroot hsm info`)")
            return
        for _obj, record in records:
            if not record.plan_sha256 or self.is_spent(record.plan_sha256):
                raise HSMError(f"a key labelled {label!r} already exists on this token")
        for _obj, record in records:
            self.destroy_key(record)

    def destroy_key(self, record: KeyRecord) -> None:
        """Remove a key from the token: its record and, for a native key, the key pair."""
        if record.custody == "native" and record.token_id:
            RawPQC(self.module, self.session.handle).destroy(record.token_id)
        for obj, other in self._records():
            if other.label == record.label and other.keyid == record.keyid:
                self._destroy(obj, f"the record of {record.label!r}")

    def _generate_native(self, alg: Algorithm, role: str, label: str,
                         created: str) -> KeyRecord:
        """On the token: generate, read back (writroot/hsm/native.py), then a pairwise
        self-test (the token signs, an independent engine verifies) before first use."""
        from writroot.hsm.native import NativeKeys

        keys = NativeKeys(self.session, self.module)
        # CKA_ID is unknown until the key exists; use a random id, then record the keyid.
        key_id = os.urandom(16)
        pair = keys.generate(alg, label, key_id)
        self.deviations.extend(d for d in pair.deviations if d not in self.deviations)
        try:
            key = PublicKey(alg, pair.public_key)
            self._self_test(key, keys.sign(alg, key_id, _CONSISTENCY_MESSAGE), None)
        except Exception:
            keys.destroy(key_id)
            raise
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
            from writroot.hsm.native import NativeKeys

            signature = NativeKeys(self.session, self.module).sign(alg, record.token_id, message)
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
        if record.keyid in self.retired():
            raise HSMError(f"key {record.keyid} was retired on this token; its backup is not "
                           "restored")
        if any(r.keyid == record.keyid for r in self.keys()):
            raise HSMError(f"key {record.keyid} is on this token already")
        if self._data_objects(record.label):
            raise HSMError(f"a key labelled {record.label!r} already exists on this token")
        private = self.unseal(record)
        wipe(private)
        self._store(record)
        return record

    # -- retirement ---------------------------------------------------------------------

    def retired(self) -> dict[str, dict[str, Any]]:
        """keyid -> the retirement mark (private objects; a retired key never signs again)."""
        from pkcs11 import Attribute

        out: dict[str, dict[str, Any]] = {}
        for obj in self._private_data(RETIRED_APPLICATION, RETIRED_LABEL):
            try:
                mark = loads_strict(bytes(obj[Attribute.VALUE]), RETIRED_LABEL)
                if isinstance(mark, dict) and is_hex_digest(mark.get("keyid")):
                    out[mark["keyid"]] = mark
                    continue
            except BadInput:
                pass
            self.problems.append((RETIRED_LABEL, "a retirement mark does not parse"))
        return out

    def retire(self, keyid: str, reason: str, ceremony: str = "") -> KeyRecord:
        """Destroy a key on the token for good: mark it retired first (so a crash midway leaves
        it unusable), then destroy its record and any native key pair."""
        record = self.find(keyid)
        mark = {"keyid": keyid, "label": record.label, "reason": reason, "ceremony": ceremony,
                "retired_at": format_time(datetime.now(UTC))}
        self._create_private(RETIRED_APPLICATION, RETIRED_LABEL, canonical(mark))
        self.destroy_key(record)
        return record

    # -- a plan runs once -----------------------------------------------------------------

    def spent_plans(self) -> list[SpentPlan]:
        from pkcs11 import Attribute

        out = []
        for obj in self._private_data(SPENT_APPLICATION, SPENT_LABEL):
            try:
                doc = loads_strict(bytes(obj[Attribute.VALUE]), SPENT_LABEL)
                if not isinstance(doc, dict) or not is_hex_digest(doc.get("plan_sha256")) or \
                        doc.get("state") not in ("pending", "published"):
                    raise BadInput("not a spent-plan record", SPENT_LABEL)
                out.append(SpentPlan(doc["plan_sha256"], doc["state"], str(doc.get("out", "")),
                                     str(doc.get("at", ""))))
            except BadInput:
                self.problems.append((SPENT_LABEL, "a spent-plan record does not parse"))
        return out

    def plan_state(self, plan_sha256: str) -> SpentPlan | None:
        """The strongest record for this plan: published beats pending."""
        found = [p for p in self.spent_plans() if p.plan_sha256 == plan_sha256]
        return next((p for p in found if p.state == "published"), found[0] if found else None)

    def is_spent(self, plan_sha256: str) -> bool:
        """Published, or pending with its output directory holding this very plan (a run killed
        between the rename and the "published" mark did publish)."""
        found = [p for p in self.spent_plans() if p.plan_sha256 == plan_sha256]
        if any(p.state == "published" for p in found):
            return True
        for pending in found:
            out = Path(pending.out)
            if not out.parent.is_dir():
                raise HSMError(f"plan {plan_sha256} was being published to {out} when a run "
                               f"stopped, and {out.parent} is not here to look at; mount it and "
                               "try again")
            if _holds_plan(out, plan_sha256):
                return True
        return False

    def mark_spent(self, plan_sha256: str, out: Path, state: str) -> None:
        """Record a plan's publish: "pending" just before the rename, "published" after."""
        assert state in ("pending", "published")
        doc = {"plan_sha256": plan_sha256, "state": state, "out": str(out),
               "at": format_time(datetime.now(UTC))}
        self._create_private(SPENT_APPLICATION, SPENT_LABEL, canonical(doc))
        if state == "published":
            self.forget_pending(plan_sha256)  # the published record supersedes it

    def forget_pending(self, plan_sha256: str) -> None:
        """A publish that failed before its rename: the plan may run again."""
        from pkcs11 import Attribute

        for obj in self._private_data(SPENT_APPLICATION, SPENT_LABEL):
            try:
                old = loads_strict(bytes(obj[Attribute.VALUE]), SPENT_LABEL)
            except BadInput:
                continue
            if isinstance(old, dict) and old.get("plan_sha256") == plan_sha256 and \
                    old.get("state") == "pending":
                self._destroy(obj, "a pending spent-plan record")


def _holds_plan(out: Path, plan_sha256: str) -> bool:
    from writroot.jsonio import read_json_file
    from writroot.rules.merkle import plan_digest

    try:
        document = read_json_file(out / "plan.lock.json")
    except BadInput:
        return False
    return plan_digest(document) == plan_sha256


def _independent_checker(alg: Algorithm, signer: Engine | None) -> Engine:
    """The engine that re-checks a signature: independent of the host signer, or of the
    usual verifier when the token signed."""
    return engines.independent_for(alg, signer or engines.verifier_for(alg))
