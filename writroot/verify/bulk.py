"""Verifying a large set on every core: signature results computed in bulk, in a process
pool, before the (sequential, pure) core decides anything.

1. Scan (pool): each file's SHA-256 and the public keys its statement names (`key`,
   `previous`): every key that could be an issuer.
2. Check (pool): every signature whose keyid is one of those keys (or the pinned anchor's)
   is verified by the primary engine; the result is keyed by (file SHA-256, keyid), so the
   answer does not depend on which worker did what, nor in what order.
3. The core (`verify.core.verify`) reads each file once more, one at a time, keeps only the
   parsed statement, and takes signature results from the table; it still decides every
   finding itself (an engine fault is left out of the table, so the core reports it).

Memory is bounded by the parsed statements, not by the files: no worker result holds an
envelope, and the core drops payload and signature bytes once the results are known.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from writroot.crypto.keys import PublicKey

#: Files per task: large enough to amortise the round trip, small enough to balance.
CHUNK = 64
MAX_FILE = 16 * 1024 * 1024
#: Below this many artifacts a pool costs more than it saves: checked in one process.
BULK_MIN = 16

Scan = tuple[str, str, list[tuple[str, str]]]  # path, SHA-256, [(algorithm, base64 key)]


def default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _read(path: str) -> bytes | None:
    from writroot.errors import BadInput
    from writroot.jsonio import read_capped

    try:
        return read_capped(Path(path), MAX_FILE)
    except BadInput:
        return None


def _named_keys(data: bytes) -> list[tuple[str, str]]:
    """Keys a statement names as its subject's `key` or `previous` (no checks: a key that
    is not well formed is simply not a candidate)."""
    import base64
    import json

    try:
        payload = json.loads(base64.b64decode(json.loads(data)["payload"]))
        subject = payload["subject"]
        return [(str(subject[k]["algorithm"]), str(subject[k]["public_key"]))
                for k in ("key", "previous") if isinstance(subject.get(k), dict)]
    except (ValueError, KeyError, TypeError, AttributeError):
        return []


def _scan(paths: list[str]) -> list[Scan]:
    out = []
    for path in paths:
        data = _read(path)
        if data is not None:
            out.append((path, hashlib.sha256(data).hexdigest(), _named_keys(data)))
    return out


def _check(paths: list[str], keys: Mapping[str, tuple[str, str]]) -> dict[tuple[str, str], bool]:
    """(file SHA-256, keyid) -> does some signature under that key verify?"""
    from writroot.crypto import engines
    from writroot.envelope import Envelope
    from writroot.errors import EngineFault, EngineUnavailable, WritrootError

    found: dict[tuple[str, str], bool] = {}
    public: dict[str, PublicKey] = {}
    for path in paths:
        data = _read(path)
        if data is None:
            continue
        digest = hashlib.sha256(data).hexdigest()
        try:
            envelope = Envelope.parse(data, path)
        except WritrootError:
            continue
        message = envelope.pae()
        for keyid in sorted({s.keyid for s in envelope.signatures if s.keyid in keys}):
            key = public.get(keyid) or _key(*keys[keyid])
            if key is None:
                continue
            public[keyid] = key
            try:
                verifier = engines.verifier_for(key.algorithm)
                found[(digest, keyid)] = any(
                    verifier.verify(key.algorithm, key.raw, message, s.sig)
                    for s in envelope.signatures if s.keyid == keyid)
            except (EngineFault, EngineUnavailable):
                continue  # the core checks it again and reports the engine
    return found


def _chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def precompute(paths: Sequence[Path], anchor_key: PublicKey | None,
               jobs: int) -> tuple[dict[str, str], dict[tuple[str, str], bool]]:
    """Every file's SHA-256 and every candidate signature's result, on `jobs` processes."""
    import multiprocessing

    names = [str(p) for p in paths]
    size = max(1, min(CHUNK, len(names) // (jobs * 4) or 1))
    context = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        digests: dict[str, str] = {}
        keys: dict[str, tuple[str, str]] = {}
        for scanned in pool.map(_scan, _chunks(names, size)):
            for path, digest, named in scanned:
                digests[path] = digest
                for algorithm, raw in named:
                    key = _key(algorithm, raw)
                    if key is not None:
                        keys.setdefault(key.keyid, (algorithm, raw))
        if anchor_key is not None:
            keys[anchor_key.keyid] = (anchor_key.algorithm.name,
                                      anchor_key.to_json()["public_key"])
        results: dict[tuple[str, str], bool] = {}
        for found in pool.map(_check, _chunks(names, size), _repeat(keys)):
            results.update(found)
    return digests, results


def _repeat(value: Any) -> Iterator[Any]:
    while True:
        yield value


def _key(algorithm: str, raw: str) -> PublicKey | None:
    from writroot.crypto.algorithms import by_name
    from writroot.errors import WritrootError
    from writroot.jsonio import b64decode

    try:
        return PublicKey(by_name(algorithm), b64decode(raw, "key"))
    except (WritrootError, KeyError, ValueError):
        return None
