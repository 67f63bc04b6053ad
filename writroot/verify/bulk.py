"""Verifying a large set on every core: each artifact read once, parsed and its signatures
checked in a process pool, before the (sequential, pure) core decides anything.

1. Parse (pool): each worker reads a file once, parses it strictly with the core's own
   `parse_artifact`, and verifies every signature whose keyid is a candidate: the pinned
   anchor's key, or a key (`key`, `previous`) named by a statement in the same chunk or in
   any chunk parsed before this one was handed out. It returns the parsed form (picklable),
   with the envelope cut down to its keyids once every signature has a result.
2. Rest (pool): files whose signatures by a candidate key (now knowing every key named in
   the set) have no result yet are read again and checked; in a set whose key-naming
   statements sort first (the usual case) that is the first few chunks only.
3. The core (`verify.core.verify_parsed`) takes the parsed items and the results table,
   keyed by (file SHA-256, keyid), so the answer does not depend on which worker did what;
   it decides every finding itself (an engine fault is left out of the table and the core
   reports it).

Memory is bounded by the parsed statements: a worker result keeps an envelope's payload and
signature bytes only when some signature is by a key no statement names (the core may still
need them), and at most `IN_FLIGHT` chunks per worker are outstanding.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

from writroot.crypto.keys import PublicKey
from writroot.envelope import Envelope
from writroot.verify.core import Parsed

#: Files per task: large enough to amortise the round trip, small enough to balance.
CHUNK = 64
#: Chunks outstanding per worker: later chunks are handed the keys earlier ones named.
IN_FLIGHT = 2
#: Below this many artifacts a pool costs more than it saves: checked in one process.
BULK_MIN = 16

Results = dict[tuple[str, str], bool]  # (file SHA-256, keyid) -> a signature verifies?
Keys = Mapping[str, PublicKey]
#: path, parsed form (None: unreadable, the caller reports it), keys the statement names.
Entry = tuple[str, Parsed | None, list[PublicKey]]


def default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _read(path: str) -> bytes | None:
    from writroot.errors import BadInput
    from writroot.jsonio import read_capped
    from writroot.verify.files import MAX_ARTIFACT_BYTES

    try:
        return read_capped(Path(path), MAX_ARTIFACT_BYTES)
    except BadInput:
        return None


def _named(parsed: Parsed) -> list[PublicKey]:
    """Keys a statement names as its subject's `key` or `previous`: every possible issuer."""
    subject = parsed.statement.subject if parsed.statement is not None else {}
    return [subject[k] for k in ("key", "previous") if isinstance(subject.get(k), PublicKey)]


def _check(digest: str, envelope: Envelope, keys: Keys, found: Results) -> None:
    """Verify the envelope's signatures by candidate keys into `found` (engine faults are
    left out: the core checks again and reports the engine)."""
    from writroot.crypto import engines
    from writroot.errors import EngineFault, EngineUnavailable

    message: bytes | None = None
    for keyid in sorted({s.keyid for s in envelope.signatures if s.keyid in keys}):
        if (digest, keyid) in found:
            continue
        key = keys[keyid]
        message = message if message is not None else envelope.pae()
        try:
            verifier = engines.verifier_for(key.algorithm)
            found[(digest, keyid)] = any(
                verifier.verify(key.algorithm, key.raw, message, s.sig)
                for s in envelope.signatures if s.keyid == keyid)
        except (EngineFault, EngineUnavailable):
            continue


def _light(parsed: Parsed, found: Results) -> Parsed:
    """Without payload and signature bytes once every signature has a result (a signature
    by a key no statement names keeps them: the core may still need them)."""
    from dataclasses import replace

    from writroot.envelope import Signature

    envelope = parsed.envelope
    if envelope is None or not all((parsed.digest, s.keyid) in found
                                   for s in envelope.signatures):
        return parsed
    return replace(parsed, envelope=Envelope(envelope.payload_type, b"", tuple(
        Signature(s.keyid, b"") for s in envelope.signatures)))


def _parse_chunk(paths: list[str], known: Keys) -> tuple[list[Entry], Results]:
    """Pass 1: read and parse each file once; check signatures by the keys known so far
    and by keys named in this chunk."""
    from writroot.verify.core import parse_artifact

    parsed: list[tuple[str, Parsed | None]] = []
    keys = dict(known)
    for path in paths:
        data = _read(path)
        one = None if data is None else parse_artifact(path, data)
        parsed.append((path, one))
        for key in _named(one) if one is not None else []:
            keys.setdefault(key.keyid, key)
    found: Results = {}
    out: list[Entry] = []
    for path, one in parsed:
        if one is not None and one.envelope is not None:
            _check(one.digest, one.envelope, keys, found)
            out.append((path, _light(one, found), _named(one)))
        else:
            out.append((path, one, []))
    return out, found


def _rest_chunk(wanted: list[tuple[str, str]], keys: Keys) -> tuple[Results, list[str]]:
    """Pass 2: read again the files (path, SHA-256) that still need a signature checked;
    a file whose bytes changed since pass 1 is returned by path (the caller refuses it)."""
    from writroot.errors import WritrootError

    found: Results = {}
    changed: list[str] = []
    for path, digest in wanted:
        data = _read(path)
        if data is None or hashlib.sha256(data).hexdigest() != digest:
            changed.append(path)
            continue
        try:
            envelope = Envelope.parse(data, path)
        except WritrootError:
            changed.append(path)
            continue
        _check(digest, envelope, keys, found)
    return found, changed


def _chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def parse_all(paths: Sequence[Path], anchor_key: PublicKey | None,
              jobs: int) -> tuple[list[Parsed | None], Results]:
    """Every file parsed (in `paths` order; None: unreadable) and every candidate
    signature's result, on `jobs` processes."""
    import multiprocessing

    from writroot.errors import BadInput

    names = [str(p) for p in paths]
    size = max(1, min(CHUNK, len(names) // (jobs * 4) or 1))
    keys: dict[str, PublicKey] = {}
    if anchor_key is not None:
        keys[anchor_key.keyid] = anchor_key
    parsed: dict[str, Parsed | None] = {}
    results: Results = {}
    from writroot.verify.core import paused_gc

    context = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
    with paused_gc(), ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        pending: list[Future[tuple[list[Entry], Results]]] = []
        chunks = _chunks(names, size)
        while True:
            while len(pending) < jobs * IN_FLIGHT:
                chunk = next(chunks, None)
                if chunk is None:
                    break
                pending.append(pool.submit(_parse_chunk, chunk, dict(keys)))
            if not pending:
                break
            entries, found = pending.pop(0).result()
            results.update(found)
            for path, one, named in entries:
                parsed[path] = one
                for key in named:
                    keys.setdefault(key.keyid, key)
        wanted = [(path, one.digest) for path, one in parsed.items()
                  if one is not None and one.envelope is not None
                  and any(s.keyid in keys and (one.digest, s.keyid) not in results
                          for s in one.envelope.signatures)]
        rest = [wanted[i:i + size] for i in range(0, len(wanted), size)]
        for found, changed in pool.map(_rest_chunk, rest, [keys] * len(rest)):
            if changed:
                raise BadInput("changed while it was being verified", changed[0])
            results.update(found)
    out = []
    for path in names:
        one = parsed[path]
        out.append(None if one is None else _light(one, results))
    return out, results
