"""The `slh-dsa` package: an independent FIPS 205 implementation, used to cross-check.

It shares no code with pqcrypto or liboqs, so `verify --independent` and the post-sign check
catch a bug in either signing engine.
"""

from __future__ import annotations

from typing import Any

from writroot.crypto.algorithms import Algorithm
from writroot.crypto.engines.base import Engine
from writroot.errors import EngineFault


def _params(alg: Algorithm) -> Any:
    from slhdsa.lowlevel import parameters

    return {"SLH-DSA-SHA2-256s": parameters.sha2_256s,
            "SLH-DSA-SHA2-256f": parameters.sha2_256f}[alg.name]


class SlhDsaPyEngine(Engine):
    name = "slh-dsa-py"
    independent = True

    def can_sign(self, alg: Algorithm) -> bool:
        return alg.family == "slh-dsa"

    def can_verify(self, alg: Algorithm) -> bool:
        return alg.family == "slh-dsa"

    def keygen(self, alg: Algorithm) -> tuple[bytes, bytearray]:
        import slhdsa

        kp = slhdsa.KeyPair.gen(_params(alg))
        return bytes(kp.pub.digest()), bytearray(kp.sec.digest())

    def keygen_from_seeds(self, alg: Algorithm, sk_seed: bytes, sk_prf: bytes,
                          pk_seed: bytes) -> tuple[bytes, bytes]:
        """FIPS 205 slh_keygen_internal, for known-answer tests."""
        from slhdsa.lowlevel.addresses import Address
        from slhdsa.lowlevel.xmss import XMSS

        par = _params(alg)
        root = XMSS(par).node(sk_seed, 0, par.h_m, pk_seed, Address(par.d - 1, 0))
        return pk_seed + root, sk_seed + sk_prf + pk_seed + root

    def sign(self, alg: Algorithm, private_key: bytes | bytearray, message: bytes) -> bytes:
        return self.sign_with_context(alg, private_key, message, b"", randomize=True)

    def sign_with_context(self, alg: Algorithm, private_key: bytes | bytearray, message: bytes,
                          context: bytes, randomize: bool) -> bytes:
        import slhdsa

        sec = slhdsa.SecretKey.from_digest(bytes(private_key), _params(alg))
        return bytes(sec.sign_pure(message, randomize=randomize, ctx=context))

    def verify(self, alg: Algorithm, public_key: bytes, message: bytes, signature: bytes) -> bool:
        return self.verify_with_context(alg, public_key, message, signature, b"")

    def verify_with_context(self, alg: Algorithm, public_key: bytes, message: bytes,
                            signature: bytes, context: bytes) -> bool:
        import slhdsa

        if len(signature) != alg.signature_size or len(public_key) != alg.public_key_size:
            return False
        pub = slhdsa.PublicKey.from_digest(public_key, _params(alg))
        try:
            return bool(pub.verify_pure(message, signature, ctx=context))
        except Exception as exc:  # sizes are checked above: this is the engine failing
            raise EngineFault(f"slh-dsa-py failed verifying {alg.name}: {exc}") from None
