"""securesystemslib Key and Signer for writroot's post-quantum keys.

Registered (by an explicit `register()`), securesystemslib's DSSE `Envelope.verify` and
trestle's `verify_oscal_provenance_envelope` / `verify_dsse_payload` check writroot
signatures through writroot's own engines.

| algorithm          | keytype       | scheme             |
|--------------------|---------------|--------------------|
| SLH-DSA-SHA2-256s  | `slh-dsa`     | `slh-dsa-sha2-256s`|
| SLH-DSA-SHA2-256f  | `slh-dsa`     | `slh-dsa-sha2-256f`|
| ML-DSA-65 / -87    | `ml-dsa-pure` | `ml-dsa-65-pure` / `ml-dsa-87-pure` |

securesystemslib's own `ml-dsa` keytype (TAP 21, `ml-dsa-87/1`) signs
`"tuf" || 0x01 || SHA-512(data)`; writroot signs the DSSE PAE itself (pure mode, empty
context, DESIGN §3), hence a keytype of its own. keyval is {"public": SPKI PEM}; the keyid
is writroot's (SHA-256 of the SPKI DER), recomputed whenever a key is read, never trusted.

securesystemslib is imported only when these classes are first used (`WritrootKey`,
`WritrootSigner` resolve lazily), never when writroot starts.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

from writroot.crypto.algorithms import ALGORITHMS, Algorithm
from writroot.crypto.keys import PublicKey

# securesystemslib.signer re-exports these without `__all__`, which mypy --strict flags.
if TYPE_CHECKING:
    from securesystemslib.signer import Key, Signer  # type: ignore[attr-defined]

#: writroot algorithm name -> (keytype, scheme)
SCHEMES: dict[str, tuple[str, str]] = {
    "SLH-DSA-SHA2-256s": ("slh-dsa", "slh-dsa-sha2-256s"),
    "SLH-DSA-SHA2-256f": ("slh-dsa", "slh-dsa-sha2-256f"),
    "ML-DSA-65": ("ml-dsa-pure", "ml-dsa-65-pure"),
    "ML-DSA-87": ("ml-dsa-pure", "ml-dsa-87-pure"),
}
_ALGORITHM_FOR = {pair: ALGORITHMS[name] for name, pair in SCHEMES.items()}


def _algorithm(keytype: str, scheme: str) -> Algorithm:
    try:
        return _ALGORITHM_FOR[(keytype, scheme)]
    except KeyError:
        raise ValueError(f"not a writroot key type and scheme: {keytype}/{scheme}") from None


@cache
def key_class() -> type[Key]:
    """The securesystemslib Key subclass for writroot keys (built on first use)."""
    from securesystemslib.exceptions import UnverifiedSignatureError, VerificationError
    from securesystemslib.signer import Key, Signature  # type: ignore[attr-defined]

    from writroot.crypto import engines
    from writroot.errors import WritrootError

    class WritrootKey(Key):
        """A writroot public key; verifies with writroot's engine for its algorithm."""

        def __init__(self, keyid: str, keytype: str, scheme: str, keyval: dict[str, Any],
                     unrecognized_fields: dict[str, Any] | None = None) -> None:
            algorithm = _algorithm(keytype, scheme)
            pem = keyval.get("public") if isinstance(keyval, dict) else None
            if not isinstance(pem, str) or set(keyval) != {"public"}:
                raise ValueError("keyval must be exactly {public: SPKI PEM}")
            try:
                public = PublicKey.from_pem(pem.encode("ascii"), "keyval.public")
            except (WritrootError, UnicodeEncodeError) as exc:
                raise ValueError(f"keyval.public: {exc}") from None
            if public.algorithm != algorithm:
                raise ValueError(f"keyval.public is {public.algorithm.name}, the scheme says "
                                 f"{algorithm.name}")
            if keyid != public.keyid:
                raise ValueError("keyid is not the SHA-256 of the key's SPKI DER")
            super().__init__(keyid, keytype, scheme, keyval, unrecognized_fields)
            self.public = public

        @classmethod
        def from_public_key(cls, public: PublicKey) -> WritrootKey:
            keytype, scheme = SCHEMES[public.algorithm.name]
            return cls(public.keyid, keytype, scheme, {"public": public.pem})

        @classmethod
        def from_dict(cls, keyid: str, key_dict: dict[str, Any]) -> WritrootKey:
            keytype, scheme, keyval = cls._from_dict(key_dict)  # pops them, as SSlibKey does
            return cls(keyid, keytype, scheme, keyval, key_dict)

        def to_dict(self) -> dict[str, Any]:
            return self._to_dict()

        def verify_signature(self, signature: Signature, data: bytes) -> None:
            try:
                sig = bytes.fromhex(signature.signature)
                alg = self.public.algorithm
                ok = engines.verifier_for(alg).verify(alg, self.public.raw, data, sig)
            except (ValueError, WritrootError) as exc:
                raise VerificationError(f"cannot verify with {self.keyid}: {exc}") from exc
            if not ok:
                raise UnverifiedSignatureError(f"bad {self.public.algorithm.name} signature "
                                               f"by {self.keyid}")

    WritrootKey.__qualname__ = "WritrootKey"
    return WritrootKey


@cache
def signer_class() -> type[Signer]:
    """The securesystemslib Signer subclass over a signing callable (built on first use)."""
    from securesystemslib.signer import (  # type: ignore[attr-defined]
        SecretsHandler,
        Signature,
        Signer,
    )

    class WritrootSigner(Signer):
        """Signs through a callable: an HSM session, a custody unseal, a test key."""

        def __init__(self, public: PublicKey, sign: Callable[[bytes], bytes]) -> None:
            self._key = key_for(public)
            self._sign = sign

        @property
        def public_key(self) -> Key:
            return self._key

        def sign(self, payload: bytes) -> Signature:
            return Signature(self._key.keyid, self._sign(payload).hex())

        @classmethod
        def from_priv_key_uri(cls, priv_key_uri: str, public_key: Key,
                              secrets_handler: SecretsHandler | None = None) -> WritrootSigner:
            raise ValueError("writroot signers are built from a signing callable, not a URI")

    WritrootSigner.__qualname__ = "WritrootSigner"
    return WritrootSigner


def key_for(public: PublicKey) -> Key:
    """A writroot public key as a securesystemslib Key."""
    cls: Any = key_class()
    key: Key = cls.from_public_key(public)
    return key


def signer_for(public: PublicKey, sign: Callable[[bytes], bytes]) -> Signer:
    """A securesystemslib Signer whose `sign(data)` returns `sign(data)` as the signature."""
    cls: Any = signer_class()
    signer: Signer = cls(public, sign)
    return signer


def register() -> None:
    """Add writroot's keytype/scheme pairs to securesystemslib's `Key.from_dict` dispatch."""
    from securesystemslib.signer import KEY_FOR_TYPE_AND_SCHEME  # type: ignore[attr-defined]

    KEY_FOR_TYPE_AND_SCHEME.update(dict.fromkeys(_ALGORITHM_FOR, key_class()))


def __getattr__(name: str) -> Any:
    # `from writroot.oscal.sslib import WritrootKey` works, importing securesystemslib then.
    if name == "WritrootKey":
        return key_class()
    if name == "WritrootSigner":
        return signer_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
