"""Section 2: the custody unseal-and-sign path against the raw signing engine."""

from __future__ import annotations

import os
import statistics
import time

from bench import Row
from writroot.crypto import engines
from writroot.crypto.keys import wipe
from writroot.hsm.custody import Custody, KeyRecord

SECTION = "hsm"
REPS = 5
MESSAGE_SIZE = 4096  # about a regional-root statement's DSSE PAE
TARGET_RATIO = 1.10


def _ms(samples: list[float]) -> float:
    return 1000 * statistics.median(samples)


def run(custody: Custody, record: KeyRecord) -> list[Row]:
    """Interleave raw signs, the custody path step by step, and whole `Custody.sign` calls."""
    alg = record.key.algorithm
    signer = engines.signer_for(alg)  # what Custody.sign signs with
    checker = engines.independent_for(alg, signer)
    message = os.urandom(MESSAGE_SIZE)
    clock = time.perf_counter
    raw: list[float] = []
    unseal: list[float] = []
    sign: list[float] = []
    check: list[float] = []
    whole: list[float] = []
    held = custody.unseal(custody.find(record.keyid))  # the raw baseline signs with the same key
    try:
        for _ in range(REPS):
            t0 = clock()
            signer.sign(alg, held, message)
            t1 = clock()
            private = custody.unseal(custody.find(record.keyid))
            t2 = clock()
            try:
                signature = signer.sign(alg, private, message)
            finally:
                wipe(private)
            t3 = clock()
            if not checker.verify(alg, record.key.raw, message, signature):
                raise RuntimeError(f"{checker.name} rejects the custody signature")
            t4 = clock()
            custody.sign(record.keyid, message)
            t5 = clock()
            raw.append(t1 - t0)
            unseal.append(t2 - t1)
            sign.append(t3 - t2)
            check.append(t4 - t3)
            whole.append(t5 - t4)
    finally:
        wipe(held)
    base = statistics.median(raw)
    sums = [u + s for u, s in zip(unseal, sign, strict=True)]
    sums_checked = [u + s + c for u, s, c in zip(unseal, sign, check, strict=True)]
    note = f"median of {REPS}, {alg.name}, {MESSAGE_SIZE} B message"
    return [
        Row(SECTION, f"raw sign [{signer.name}]", _ms(raw), "ms", note=note),
        Row(SECTION, "custody: find + unseal", _ms(unseal), "ms", note="token AES-GCM"),
        Row(SECTION, f"custody: sign [{signer.name}]", _ms(sign), "ms"),
        Row(SECTION, f"custody: independent check [{checker.name}]", _ms(check), "ms"),
        Row(SECTION, "Custody.sign (whole)", _ms(whole), "ms"),
        Row(SECTION, "unseal+sign / raw sign", statistics.median(sums) / base, "x",
            TARGET_RATIO),
        Row(SECTION, "unseal+sign+check / raw sign", statistics.median(sums_checked) / base,
            "x", TARGET_RATIO),
        Row(SECTION, "Custody.sign / raw sign", statistics.median(whole) / base, "x",
            TARGET_RATIO),
    ]
