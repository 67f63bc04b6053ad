"""pqcrypto: the PyPI-installable FIPS 205 / FIPS 204 engine (PQClean-derived Rust)."""

from __future__ import annotations

from types import ModuleType

from writroot.crypto.algorithms import Algorithm
from writroot.crypto.engines.base import Engine
from writroot.errors import EngineFault

_MODULES = {
    "SLH-DSA-SHA2-256s": "slh_dsa_sha2_256s",
    "SLH-DSA-SHA2-256f": "slh_dsa_sha2_256f",
    "ML-DSA-44": "ml_dsa_44",
    "ML-DSA-65": "ml_dsa_65",
    "ML-DSA-87": "ml_dsa_87",
}


def _module(alg: Algorithm) -> ModuleType:
    import importlib

    import pqcrypto.sign  # noqa: F401  (registers the per-algorithm submodules)

    return importlib.import_module(f"pqcrypto.sign.{_MODULES[alg.name]}")


class PqcryptoEngine(Engine):
    name = "pqcrypto"

    def can_sign(self, alg: Algorithm) -> bool:
        # pqcrypto's ML-DSA secret keys are the expanded form; writroot keeps ML-DSA seeds.
        return alg.family == "slh-dsa"

    def can_verify(self, alg: Algorithm) -> bool:
        return alg.name in _MODULES

    def keygen(self, alg: Algorithm) -> tuple[bytes, bytearray]:
        pk, sk = _module(alg).keygen()
        return bytes(pk), bytearray(sk)

    def sign(self, alg: Algorithm, private_key: bytes | bytearray, message: bytes) -> bytes:
        return bytes(_module(alg).sign(bytes(private_key), message))

    def verify(self, alg: Algorithm, public_key: bytes, message: bytes, signature: bytes) -> bool:
        mod = _module(alg)
        if len(signature) != alg.signature_size or len(public_key) != alg.public_key_size:
            return False
        from pqcrypto import InvalidSignatureError

        try:
            mod.verify(public_key, message, signature)
        except InvalidSignatureError:
            return False
        except Exception as exc:  # anything else is the engine failing, not a bad signature
            raise EngineFault(f"pqcrypto failed verifying {alg.name}: {exc}") from None
        return True
