"""Judging against an established state on every core.

Once the chain, the revocations and the regional roots are established, each remaining
statement (`judge.LEAF_TYPES`) is judged on its own: it reads the established state and
writes only its own result. So they can be judged in worker processes forked after
establishment (the state is inherited, not pickled); each worker returns, per statement,
its findings, the engines that accepted it, the keys whose signature held and whether it
passed. The cross-statement checks (bundle conflicts, sequences, overlays' baselines) run
afterwards in the calling process, on the same results a single process would have.
"""

from __future__ import annotations

import os
from typing import Any

from writroot.crypto.keys import PublicKey
from writroot.verify.judge import judge_leaf
from writroot.verify.model import Item
from writroot.verify.report import Finding
from writroot.verify.state import Verifier

#: Below this many statements a pool costs more than it saves.
POOL_MIN = 512

#: What one statement's judgement returns from a worker.
Judged = tuple[list[Finding], set[str], dict[str, PublicKey], bool, bool]

#: The state a forked worker judges against: set just before the pool starts.
_JOB: tuple[Verifier, list[Item], list[Item]] | None = None


def judge_all(v: Verifier, leaf: list[Item], regional: list[Item], jobs: int) -> list[Item]:
    """Judge every statement of `leaf`; the ones checked as issued that passed."""
    if jobs <= 1 or len(leaf) < POOL_MIN or not hasattr(os, "fork"):
        return [item for item in leaf if judge_leaf(v, item, regional)]
    return _in_pool(v, leaf, regional, jobs)


def _in_pool(v: Verifier, leaf: list[Item], regional: list[Item], jobs: int) -> list[Item]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    global _JOB
    size = max(64, len(leaf) // (jobs * 4))
    chunks = [(start, min(start + size, len(leaf))) for start in range(0, len(leaf), size)]
    _JOB = (v, leaf, regional)
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            done = list(pool.map(_judge_chunk, chunks))
    except (BrokenProcessPool, OSError):  # no workers to be had: judge here, same answer
        return [item for item in leaf if judge_leaf(v, item, regional)]
    finally:
        _JOB = None
    passed = []
    for (start, _end), judged in zip(chunks, done, strict=True):
        for item, (findings, checked_by, keys, was_judged, ok) in zip(
                leaf[start:], judged, strict=False):
            item.result.findings = findings
            item.result.checked_by = checked_by
            item.verified_keys = {k: keys.get(k) or _trusted_key(v, k) for k in keys}
            if was_judged:
                v.judged.add(item.digest)
            if ok:
                passed.append(item)
    return passed


def _trusted_key(v: Verifier, keyid: str) -> PublicKey:
    return v.trusted[keyid].key


def _judge_chunk(bounds: tuple[int, int]) -> list[Judged]:
    assert _JOB is not None, "forked without a job"
    v, leaf, regional = _JOB
    out: list[Judged] = []
    for item in leaf[bounds[0]:bounds[1]]:
        ok = judge_leaf(v, item, regional)
        # Keys the parent knows are sent by keyid only (a regional root's key is 2.6 KB).
        keys: dict[str, Any] = {k: (None if k in v.trusted else key)
                                for k, key in item.verified_keys.items()}
        out.append((item.result.findings, item.result.checked_by, keys,
                    item.digest in v.judged, ok))
    return out
