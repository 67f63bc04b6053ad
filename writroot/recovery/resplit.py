"""`resplit-recovery`: when recovery-share holders change, a new recovery key and blob for the
plan's signer; the old split is recorded as retired. The key is unsealed from wrapped custody
in memory for the seconds of sealing, as for signing, and never leaves it otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from writroot.crypto.keys import wipe
from writroot.errors import PolicyRefused
from writroot.hsm.custody import Custody
from writroot.recovery.blob import seal
from writroot.recovery.escrow import Record, Write, hand_out
from writroot.recovery.handout import Handout
from writroot.recovery.restore import read_pinned
from writroot.recovery.split import new_split


def execute(op: dict[str, Any], custody: Custody, handout: Handout, plan: Any,
            plan_dir: Path, write: Write, record: Record) -> None:
    old, _digest = read_pinned(plan_dir, op["recovery"])
    key_record = custody.find(plan.document["signer"])
    if key_record.custody != "wrapped":
        raise PolicyRefused(f"key {key_record.keyid} is in native custody: writroot cannot "
                            "seal it under a recovery key", "resplit-recovery")
    policy = plan.policy or {}
    split = new_split(policy["recovery_threshold"], op["recovery_holders"], key_record.keyid,
                      retires=old.split_id)
    try:
        private = custody.unseal(key_record)
        try:
            document = seal(split.recovery_key, private, key_record.key, old.fleet,
                            key_record.role, split.description())
        finally:
            wipe(private)
        hand_out(split, document, handout, write, record, event="recovery-resplit")
    finally:
        split.wipe()
