"""Engine dispatch: chosen automatically, overridable, optional back ends imported on use.

WRITROOT_ENGINE names the engine to sign and verify with (when it supports the algorithm).
WRITROOT_LIBOQS is `auto` (use liboqs when its library loads), `force` (fail without it)
or `never`.
"""

from __future__ import annotations

import os
from functools import cache

from writroot.crypto.algorithms import Algorithm
from writroot.crypto.engines.base import Engine
from writroot.errors import BadInput, EngineUnavailable

ENGINE_NAMES = ("liboqs", "pqcrypto", "cryptography", "slh-dsa-py")


def load(name: str) -> Engine:
    """The engine called `name`; a failure to load is remembered too (probing costs ms)."""
    result = _load(name)
    if isinstance(result, EngineUnavailable):
        # A fresh exception each time: re-raising the remembered one would chain every
        # caller's frames onto its traceback and keep them (and all they hold) alive.
        raise EngineUnavailable(result.message, result.where)
    return result


@cache
def _load(name: str) -> Engine | EngineUnavailable:
    try:
        return _construct(name)
    except EngineUnavailable as exc:
        return EngineUnavailable(exc.message, exc.where)  # without the traceback


def _construct(name: str) -> Engine:
    if name == "pqcrypto":
        from writroot.crypto.engines.pqcrypto_engine import PqcryptoEngine

        return PqcryptoEngine()
    if name == "cryptography":
        from writroot.crypto.engines.cryptography_engine import CryptographyEngine

        return CryptographyEngine()
    if name == "cryptography-ecdsa":
        from writroot.crypto.engines.cryptography_engine import EcdsaEngine

        return EcdsaEngine()
    if name == "slh-dsa-py":
        from writroot.crypto.engines.slhdsa_engine import SlhDsaPyEngine

        return SlhDsaPyEngine()
    if name == "liboqs":
        from writroot.crypto.engines.liboqs_engine import LiboqsEngine

        return LiboqsEngine()
    raise BadInput(f"unknown engine {name!r} (known: {', '.join(ENGINE_NAMES)})", "WRITROOT_ENGINE")


def available() -> list[Engine]:
    """Every engine that loads on this machine."""
    out = []
    for name in ENGINE_NAMES:
        if name == "liboqs" and _liboqs_mode() == "never":
            continue
        try:
            out.append(load(name))
        except EngineUnavailable:
            continue
    return out


def _liboqs_mode() -> str:
    mode = os.environ.get("WRITROOT_LIBOQS", "auto")
    if mode not in ("auto", "force", "never"):
        raise BadInput(f"must be auto, force or never, not {mode!r}", "WRITROOT_LIBOQS")
    return mode


def _preferred(alg: Algorithm) -> list[Engine]:
    forced = os.environ.get("WRITROOT_ENGINE")
    if forced:
        return [load(forced)]
    mode = _liboqs_mode()
    order: list[Engine] = []
    if mode != "never":
        try:
            order.append(load("liboqs"))
        except EngineUnavailable:
            if mode == "force":
                raise
    order += [load({"slh-dsa": "pqcrypto", "ml-dsa": "cryptography",
                    "ecdsa": "cryptography-ecdsa", "eddsa": "cryptography-ecdsa"}[alg.family])]
    return order


def signer_for(alg: Algorithm) -> Engine:
    for engine in _preferred(alg):
        if engine.can_sign(alg):
            return engine
    raise EngineUnavailable(f"no engine can sign {alg.name}")


def verifier_for(alg: Algorithm) -> Engine:
    for engine in _preferred(alg):
        if engine.can_verify(alg):
            return engine
    raise EngineUnavailable(f"no engine can verify {alg.name}")


def independent_for(alg: Algorithm, other: Engine) -> Engine:
    """A verifier that shares no code with `other`: slh-dsa-py for SLH-DSA, pqcrypto for ML-DSA."""
    if alg.family in ("ecdsa", "eddsa"):
        return load("cryptography-ecdsa")  # classical custodian keys: one implementation
    name = "slh-dsa-py" if alg.family == "slh-dsa" else "pqcrypto"
    if name == other.name:
        name = "pqcrypto" if alg.family == "slh-dsa" else "cryptography"
    engine = load(name)
    if not engine.can_verify(alg):
        raise EngineUnavailable(f"no independent verifier for {alg.name}")
    return engine
