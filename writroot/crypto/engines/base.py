"""The small interface every signing engine implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

from writroot.crypto.algorithms import Algorithm


class Engine(ABC):
    """One implementation of some algorithms. Pure signatures, empty context (DESIGN §3)."""

    name: str = ""
    #: True for an implementation that shares no code with the signing engines.
    independent: bool = False

    @abstractmethod
    def can_sign(self, alg: Algorithm) -> bool: ...

    @abstractmethod
    def can_verify(self, alg: Algorithm) -> bool: ...

    @abstractmethod
    def keygen(self, alg: Algorithm) -> tuple[bytes, bytearray]:
        """Return (public key, private key); the caller wipes the private key."""

    @abstractmethod
    def sign(self, alg: Algorithm, private_key: bytes | bytearray, message: bytes) -> bytes: ...

    @abstractmethod
    def verify(self, alg: Algorithm, public_key: bytes, message: bytes, signature: bytes) -> bool:
        """False for a signature that does not verify; raises EngineFault when the engine
        itself fails (a verifier failure is not a bad signature)."""

    def public_from_private(self, alg: Algorithm, private_key: bytes | bytearray) -> bytes:
        """The public key embedded in or derived from a private key."""
        if alg.family == "slh-dsa":
            return bytes(private_key[alg.private_key_size // 2 :])
        raise NotImplementedError(f"{self.name} cannot derive {alg.name} public keys")
