"""Custodian approval keys: ML-DSA-65 in a passphrase-encrypted file, or ECDSA P-384 or
Ed25519 on a PKCS#11 smartcard. Witness keys (ML-DSA-44) use the same file format."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from writroot.crypto.algorithms import ECDSA_P384, ED25519, ML_DSA_44, ML_DSA_65, Algorithm
from writroot.crypto.keys import PublicKey, wipe
from writroot.errors import BadInput, HSMError

KDF_ROUNDS = 600_000  # PBKDF2-SHA256 rounds for the PKCS#8 file (OWASP 2023 guidance)
CARD_LABEL_PREFIX = "writroot-custodian-"


class ApprovalSigner(Protocol):
    key: PublicKey

    def sign(self, message: bytes) -> bytes: ...


@dataclass
class FileKey:
    """An ML-DSA key loaded from its encrypted PKCS#8 file (the seed stays in memory)."""

    key: PublicKey
    _private: Any

    def sign(self, message: bytes) -> bytes:
        return bytes(self._private.sign(message))


def _pkcs8_encrypt(inner_der: bytes, passphrase: bytes) -> bytes:
    """PKCS#8 EncryptedPrivateKeyInfo, PBES2 (PBKDF2-SHA256, AES-256-CBC).

    Built here because cryptography's PKCS#8 writer fixes PBKDF2 at 2,048 rounds.
    """
    from asn1crypto import core, keys
    from cryptography.hazmat.primitives import hashes, padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

    salt, iv = os.urandom(16), os.urandom(16)
    kek = bytearray(PBKDF2HMAC(hashes.SHA256(), 32, salt, KDF_ROUNDS).derive(passphrase))
    padder = padding.PKCS7(128).padder()
    padded = bytearray(padder.update(inner_der) + padder.finalize())
    encryptor = Cipher(algorithms.AES(bytes(kek)), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(bytes(padded)) + encryptor.finalize()
    wipe(kek)
    wipe(padded)
    info = keys.EncryptedPrivateKeyInfo({
        "encryption_algorithm": {"algorithm": "pbes2", "parameters": {
            "key_derivation_func": {"algorithm": "pbkdf2", "parameters": {
                "salt": core.OctetString(salt), "iteration_count": KDF_ROUNDS,
                "prf": {"algorithm": "sha256"}}},
            "encryption_scheme": {"algorithm": "aes256_cbc", "parameters": iv}}},
        "encrypted_data": ciphertext})
    return bytes(info.dump())


def _mldsa_class(alg: Algorithm) -> Any:
    from cryptography.hazmat.primitives.asymmetric import mldsa

    if alg is ML_DSA_44:
        return mldsa.MLDSA44PrivateKey
    if alg is ML_DSA_65:
        return mldsa.MLDSA65PrivateKey
    raise BadInput(f"key files hold ML-DSA-44 or ML-DSA-65 keys, not {alg.name}")


def create_file_key(path: Path, passphrase: bytearray, alg: Algorithm = ML_DSA_65) -> PublicKey:
    """Generate an ML-DSA key (ML-DSA-65 for custodians, ML-DSA-44 for witnesses) and write it
    as encrypted PKCS#8 PEM (mode 600, write-once)."""
    import base64

    from cryptography.hazmat.primitives import serialization

    if len(passphrase) < 12:
        raise BadInput("the passphrase must be at least 12 characters", "passphrase")
    if path.exists():
        raise BadInput("key file exists already (write-once)", str(path))
    private = _mldsa_class(alg).generate()
    inner = private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    body = base64.b64encode(_pkcs8_encrypt(inner, bytes(passphrase))).decode()
    wipe(inner)
    pem = ("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
           + "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
           + "\n-----END ENCRYPTED PRIVATE KEY-----\n").encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise BadInput("key file exists already (write-once)", str(path)) from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return PublicKey(alg, private.public_key().public_bytes_raw())


def load_file_key(path: Path, passphrase: bytearray, alg: Algorithm = ML_DSA_65) -> FileKey:
    from cryptography.hazmat.primitives import serialization

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read key file: {exc.strerror}", str(path)) from None
    if b"ENCRYPTED PRIVATE KEY" not in data:
        raise BadInput("custodian key files must be encrypted PKCS#8", str(path))
    try:
        private = serialization.load_pem_private_key(data, bytes(passphrase))
    except (ValueError, TypeError):
        raise BadInput("wrong passphrase or damaged key file", str(path)) from None
    finally:
        wipe(passphrase)
    if not isinstance(private, _mldsa_class(alg)):
        raise BadInput(f"not an {alg.name} key", str(path))
    return FileKey(PublicKey(alg, private.public_key().public_bytes_raw()), private)


@dataclass
class CardKey:
    """A custodian key on a PKCS#11 smartcard. ECDSA P-384: SHA-384 on the host, CKM_ECDSA on
    the card (the combined CKM_ECDSA_SHA384 is missing from many cards and from SoftHSM2),
    the signature DER-encoded. Ed25519: CKM_EDDSA over the message (pure EdDSA)."""

    key: PublicKey
    session: Any
    label: str

    def sign(self, message: bytes) -> bytes:
        import pkcs11
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
        from pkcs11 import KeyType, Mechanism, ObjectClass

        eddsa = self.key.algorithm is ED25519
        try:
            private = self.session.get_key(ObjectClass.PRIVATE_KEY,
                                           KeyType.EC_EDWARDS if eddsa else KeyType.EC,
                                           label=self.label)
            if eddsa:
                return bytes(private.sign(message, mechanism=Mechanism.EDDSA))
            raw = bytes(private.sign(hashlib.sha384(message).digest(), mechanism=Mechanism.ECDSA))
        except pkcs11.PKCS11Error as exc:
            raise HSMError(f"card signing failed: {type(exc).__name__}") from None
        half = len(raw) // 2
        return bytes(encode_dss_signature(int.from_bytes(raw[:half], "big"),
                                          int.from_bytes(raw[half:], "big")))


#: Card key algorithms: name -> (curve OID, PKCS#11 key type name, key-pair mechanism name).
CARD_ALGORITHMS = {ECDSA_P384.name: ("secp384r1", "EC", "EC_KEY_PAIR_GEN"),
                   ED25519.name: ("1.3.101.112", "EC_EDWARDS", "EC_EDWARDS_KEY_PAIR_GEN")}


def _card_public(public: Any, key_type: str) -> PublicKey:
    from asn1crypto.core import OctetString
    from pkcs11 import Attribute

    alg = ED25519 if key_type == "EC_EDWARDS" else ECDSA_P384
    point = bytes(public[Attribute.EC_POINT])
    if len(point) == alg.public_key_size + 2 and point[:1] == b"\x04":
        point = OctetString.load(point).native  # DER-wrapped CKA_EC_POINT (PKCS#11 2.x style)
    if len(point) != alg.public_key_size:
        raise HSMError(f"the card returned a {len(point)}-byte {alg.name} public key")
    return PublicKey(alg, bytes(point))


def _curve_params(alg_name: str) -> bytes:
    from asn1crypto.core import ObjectIdentifier
    from pkcs11.util.ec import encode_named_curve_parameters

    curve = CARD_ALGORITHMS[alg_name][0]
    if alg_name == ED25519.name:  # RFC 8410 id-Ed25519 as the named curve (PKCS#11 3.0)
        return bytes(ObjectIdentifier(curve).dump())
    return bytes(encode_named_curve_parameters(curve))


def create_card_key(session: Any, custodian_id: str,
                    algorithm: str = ECDSA_P384.name) -> CardKey:
    """Generate a non-extractable pair on the card (ECDSA P-384 or Ed25519), labelled for
    the custodian."""
    import pkcs11
    from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass

    if algorithm not in CARD_ALGORITHMS:
        raise BadInput(f"card keys are {' or '.join(CARD_ALGORITHMS)}", "--card-algorithm")
    _curve, key_type, mechanism = CARD_ALGORITHMS[algorithm]
    label = CARD_LABEL_PREFIX + custodian_id
    existing = session.get_objects({Attribute.LABEL: label,
                                    Attribute.CLASS: ObjectClass.PRIVATE_KEY})
    if list(existing):
        raise HSMError(f"the card already holds a key labelled {label!r}")
    try:
        params = session.create_domain_parameters(
            getattr(KeyType, key_type), {Attribute.EC_PARAMS: _curve_params(algorithm)},
            local=True)
        public, _ = params.generate_keypair(
            store=True, label=label, mechanism=getattr(Mechanism, mechanism),
            private_template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False})
    except pkcs11.PKCS11Error as exc:
        raise HSMError(f"card key generation failed ({algorithm}): "
                       f"{type(exc).__name__}") from None
    return CardKey(_card_public(public, key_type), session, label)


def load_card_key(session: Any, custodian_id: str) -> CardKey:
    import pkcs11
    from pkcs11 import KeyType, ObjectClass

    label = CARD_LABEL_PREFIX + custodian_id
    for key_type in ("EC", "EC_EDWARDS"):
        try:
            public = session.get_key(ObjectClass.PUBLIC_KEY, getattr(KeyType, key_type),
                                     label=label)
        except pkcs11.NoSuchKey:
            continue
        return CardKey(_card_public(public, key_type), session, label)
    raise HSMError(f"no custodian key {label!r} on the card")
