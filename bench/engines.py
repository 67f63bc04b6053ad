"""Section 1: sign and verify time per engine for SLH-DSA-SHA2-256s and ML-DSA-87."""

from __future__ import annotations

import os
from functools import partial

from bench import Row
from bench.timing import median_ms
from writroot.crypto import engines
from writroot.crypto.algorithms import ML_DSA_87, SLH_DSA_SHA2_256S, Algorithm
from writroot.crypto.engines.base import Engine
from writroot.crypto.keys import wipe
from writroot.errors import EngineUnavailable

SECTION = "engines"
ENGINE_NAMES = ("pqcrypto", "cryptography", "slh-dsa-py", "liboqs")
#: (signs, verifies) per algorithm family: an SLH-DSA-SHA2-256s signature costs ~0.65 s.
REPS = {"slh-dsa": (3, 50), "ml-dsa": (200, 500)}
DISPATCH_REPS = 20
MESSAGE = os.urandom(1024)


def _load(name: str) -> Engine | str:
    try:
        return engines.load(name)
    except EngineUnavailable as exc:
        return str(exc)


def _rows_for(alg: Algorithm, loaded: dict[str, Engine]) -> list[Row]:
    signs, verifies = REPS[alg.family]
    reference = engines.signer_for(alg)
    public, private = reference.keygen(alg)
    rows = []
    try:
        for name, engine in loaded.items():
            if not (engine.can_sign(alg) or engine.can_verify(alg)):
                continue
            if engine.can_sign(alg):
                ms, sig = median_ms(partial(engine.sign, alg, private, MESSAGE), signs)
                rows.append(Row(SECTION, f"{alg.name} sign [{name}]", ms, "ms",
                                note=f"median of {signs}"))
                made_by = ""
            else:  # a verify-only engine checks another engine's signature
                sig = reference.sign(alg, private, MESSAGE)
                made_by = f", signed by {reference.name}"
            if engine.can_verify(alg):
                if not engine.verify(alg, public, MESSAGE, sig):
                    raise RuntimeError(f"{name} rejects a good {alg.name} signature")
                ms, _ = median_ms(partial(engine.verify, alg, public, MESSAGE, sig), verifies)
                rows.append(Row(SECTION, f"{alg.name} verify [{name}]", ms, "ms",
                                note=f"median of {verifies}{made_by}"))
    finally:
        wipe(private)
    return rows


def run() -> list[Row]:
    loaded: dict[str, Engine] = {}
    rows: list[Row] = []
    for name in ENGINE_NAMES:
        engine = _load(name)
        if isinstance(engine, str):
            rows.append(Row(SECTION, f"engine {name}", None, "", note=engine))
        else:
            loaded[name] = engine
    for alg in (SLH_DSA_SHA2_256S, ML_DSA_87):
        rows += _rows_for(alg, loaded)
    # What Custody.sign and the verify core pay per call to pick an engine.
    ms, chosen = median_ms(partial(engines.verifier_for, SLH_DSA_SHA2_256S), DISPATCH_REPS)
    rows.append(Row(SECTION, "engine dispatch: verifier_for()", ms, "ms",
                    note=f"median of {DISPATCH_REPS}, picks {chosen.name}"))
    return rows
