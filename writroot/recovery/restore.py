"""`restore-key`: rebuild the plan's signer from M shares and its recovery file into this
token's wrapped custody (a fresh token gets a new KEK).

Order: the recovery file is re-hashed against the approved plan, the shares are read and
combined, the blob opened and the key checked against the expected keyid — all before the
token is written. On the token: self-test, seal, store (its record names the plan, so a run
that dies before publishing leaves an orphan the re-run removes). The run's ceremony record
is then signed by the restored key and checked against the pinned key (the test statement).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from writroot.crypto.keys import wipe
from writroot.errors import PolicyRefused
from writroot.hsm.custody import Custody, KeyRecord
from writroot.jsonio import loads_strict, read_capped
from writroot.recovery.blob import RecoveryFile, open_blob, recovery_check
from writroot.recovery.collect import ShareInput, read_shares
from writroot.recovery.split import combine


def read_pinned(plan_dir: Path, pin: dict[str, Any]) -> tuple[RecoveryFile, str]:
    path = plan_dir / str(pin["path"])
    data = read_capped(path, 1024 * 1024)
    digest = hashlib.sha256(data).hexdigest()
    if digest != pin["sha256"]:
        raise PolicyRefused("input changed since the plan was locked", str(path))
    return recovery_check(loads_strict(data, str(path)), str(path)), digest


def recover_private(blob: RecoveryFile, shares: list[ShareInput], where: str,
                    keyid: str | None, fleet: str | None) -> tuple[bytearray, list[str]]:
    """M shares -> recovery key (memory only) -> the private key, checked; the holders."""
    key, holders = combine(blob.split, read_shares(shares))
    try:
        return open_blob(blob, key, where, keyid, fleet), holders
    finally:
        wipe(key)


def execute(op: dict[str, Any], custody: Custody, shares: list[ShareInput], plan: Any,
            plan_dir: Path, backup_dir: Path, transcript: Any) -> KeyRecord:
    blob, digest = read_pinned(plan_dir, op["recovery"])
    where = str(plan_dir / op["recovery"]["path"])
    private, holders = recover_private(blob, shares, where, plan.document["signer"],
                                       plan.document["fleet"])
    try:
        record = custody.adopt(blob.role, op["label"], blob.key, private, backup_dir,
                               plan_sha256=plan.sha256, recovery_split=blob.split_id)
    finally:
        wipe(private)
    transcript.record("restore", keyid=record.keyid, label=record.label, role=record.role,
                      split=blob.split_id, threshold=blob.split["threshold"], holders=holders,
                      recovery_sha256=digest, kek_check=record.kek_check)
    return record
