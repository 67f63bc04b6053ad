"""liboqs-python, used when the liboqs shared library is present.

liboqs-python tries to download and build liboqs when it cannot find it; an air-gapped
ceremony laptop must never do that, so the library is located first and `oqs` is imported
only when it is there.
"""

from __future__ import annotations

import ctypes.util
import os
from functools import cache
from pathlib import Path
from typing import Any

from writroot.crypto.algorithms import Algorithm
from writroot.crypto.engines.base import Engine
from writroot.errors import EngineFault, EngineUnavailable

_OQS_NAMES = {
    "SLH-DSA-SHA2-256s": "SLH_DSA_PURE_SHA2_256S",
    "SLH-DSA-SHA2-256f": "SLH_DSA_PURE_SHA2_256F",
    "ML-DSA-44": "ML-DSA-44",
    "ML-DSA-65": "ML-DSA-65",
    "ML-DSA-87": "ML-DSA-87",
}


@cache
def library_path() -> str | None:
    """Where liboqs is, without triggering liboqs-python's auto-install."""
    base = os.environ.get("OQS_INSTALL_PATH")
    if base:
        for sub in ("lib", "lib64"):
            for name in ("liboqs.so", "liboqs.dylib"):
                candidate = Path(base) / sub / name
                if candidate.exists():
                    return str(candidate)
    return ctypes.util.find_library("oqs")


def _oqs() -> Any:
    if library_path() is None:
        raise EngineUnavailable("liboqs shared library not found (set OQS_INSTALL_PATH)")
    from writroot.crypto.engines.quiet import quiet_import

    try:  # liboqs-python prints a banner on stdout at import: keep --json output clean
        return quiet_import("oqs")
    except Exception as exc:  # ImportError, or liboqs-python's own load failures
        raise EngineUnavailable(f"liboqs-python cannot load liboqs: {exc}") from None


class LiboqsEngine(Engine):
    name = "liboqs"

    def __init__(self) -> None:
        self._oqs = _oqs()
        enabled = set(self._oqs.get_enabled_sig_mechanisms())
        self._names = {k: v for k, v in _OQS_NAMES.items() if v in enabled}

    def can_sign(self, alg: Algorithm) -> bool:
        return alg.family == "slh-dsa" and alg.name in self._names

    def can_verify(self, alg: Algorithm) -> bool:
        return alg.name in self._names

    def keygen(self, alg: Algorithm) -> tuple[bytes, bytearray]:
        with self._oqs.Signature(self._names[alg.name]) as sig:
            pk = sig.generate_keypair()
            sk = bytearray(sig.export_secret_key())
        return bytes(pk), sk

    def sign(self, alg: Algorithm, private_key: bytes | bytearray, message: bytes) -> bytes:
        with self._oqs.Signature(self._names[alg.name], bytes(private_key)) as sig:
            return bytes(sig.sign(message))

    def verify(self, alg: Algorithm, public_key: bytes, message: bytes, signature: bytes) -> bool:
        with self._oqs.Signature(self._names[alg.name]) as sig:
            try:
                return bool(sig.verify(message, signature, public_key))
            except Exception as exc:  # liboqs answers False for a bad signature
                raise EngineFault(f"liboqs failed verifying {alg.name}: {exc}") from None
