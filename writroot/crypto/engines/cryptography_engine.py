"""`cryptography` (OpenSSL 3.5 in its wheels): ML-DSA-44, -65 and -87 (FIPS 204)."""

from __future__ import annotations

from typing import Any

from writroot.crypto.algorithms import Algorithm
from writroot.crypto.engines.base import Engine


def _classes(alg: Algorithm) -> tuple[Any, Any]:
    from cryptography.hazmat.primitives.asymmetric import mldsa

    if alg.name == "ML-DSA-44":
        return mldsa.MLDSA44PrivateKey, mldsa.MLDSA44PublicKey
    if alg.name == "ML-DSA-65":
        return mldsa.MLDSA65PrivateKey, mldsa.MLDSA65PublicKey
    return mldsa.MLDSA87PrivateKey, mldsa.MLDSA87PublicKey


class CryptographyEngine(Engine):
    name = "cryptography"

    def can_sign(self, alg: Algorithm) -> bool:
        return alg.family == "ml-dsa"

    def can_verify(self, alg: Algorithm) -> bool:
        return alg.family == "ml-dsa"

    def keygen(self, alg: Algorithm) -> tuple[bytes, bytearray]:
        priv_cls, _ = _classes(alg)
        key = priv_cls.generate()
        return bytes(key.public_key().public_bytes_raw()), bytearray(key.private_bytes_raw())

    def public_from_private(self, alg: Algorithm, private_key: bytes | bytearray) -> bytes:
        priv_cls, _ = _classes(alg)
        return bytes(priv_cls.from_seed_bytes(bytes(private_key)).public_key().public_bytes_raw())

    def sign(self, alg: Algorithm, private_key: bytes | bytearray, message: bytes) -> bytes:
        priv_cls, _ = _classes(alg)
        return bytes(priv_cls.from_seed_bytes(bytes(private_key)).sign(message))

    def verify(self, alg: Algorithm, public_key: bytes, message: bytes, signature: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature

        _, pub_cls = _classes(alg)
        try:
            pub_cls.from_public_bytes(public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


class EcdsaEngine(Engine):
    """ECDSA P-384 with SHA-384 and Ed25519 (custodian smartcards); verification only on the
    host."""

    name = "cryptography-ecdsa"

    def can_sign(self, alg: Algorithm) -> bool:
        return False

    def can_verify(self, alg: Algorithm) -> bool:
        return alg.family in ("ecdsa", "eddsa")

    def keygen(self, alg: Algorithm) -> tuple[bytes, bytearray]:
        raise NotImplementedError("ECDSA custodian keys are generated on the smartcard")

    def sign(self, alg: Algorithm, private_key: bytes | bytearray, message: bytes) -> bytes:
        raise NotImplementedError("ECDSA custodian keys sign on the smartcard")

    def verify(self, alg: Algorithm, public_key: bytes, message: bytes, signature: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519

        if alg.family == "eddsa":
            try:
                ed25519.Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
            except (InvalidSignature, ValueError):
                return False
            return True
        try:
            key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP384R1(), public_key)
            key.verify(signature, message, ec.ECDSA(hashes.SHA384()))
        except (InvalidSignature, ValueError):
            return False
        return True
