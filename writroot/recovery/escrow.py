"""Recovery at key birth, and the staging every new split shares (birth and re-split).

The split is drawn before the key exists; custody's generate hands this module the new key
in memory (after its self-test, before it is wiped) and the blob is sealed there. The shares
go to their holders, the recovery file and the transcript get the public description only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from writroot.crypto.keys import PublicKey
from writroot.jsonio import canonical
from writroot.recovery.blob import seal
from writroot.recovery.handout import Handout
from writroot.recovery.split import Split, new_split

Write = Callable[[str, bytes], None]
Record = Callable[..., None]


class Escrow:
    def __init__(self, fleet: str, role: str, policy: dict[str, Any], holders: list[str]) -> None:
        self.fleet, self.role = fleet, role
        self.split: Split = new_split(policy["recovery_threshold"], holders, "")
        self.document: dict[str, Any] | None = None

    @property
    def split_id(self) -> str:
        return self.split.split_id

    def __call__(self, key: PublicKey, private: bytearray) -> None:
        self.split.keyid = key.keyid
        self.document = seal(self.split.recovery_key, private, key, self.fleet, self.role,
                             self.split.description())

    def finish(self, handout: Handout, write: Write, record: Record) -> None:
        assert self.document is not None, "the key was not generated in wrapped custody"
        try:
            hand_out(self.split, self.document, handout, write, record)
        finally:
            self.split.wipe()


def recovery_name(split_id: str) -> str:
    return f"recovery/{split_id}.recovery.json"


def hand_out(split: Split, document: dict[str, Any], handout: Handout, write: Write,
             record: Record, event: str = "recovery-split") -> None:
    """Stage the recovery file, record the public description, give each holder their share."""
    data = canonical(document) + b"\n"
    name = recovery_name(split.split_id)
    write(name, data)
    record(event, file=name, sha256=hashlib.sha256(data).hexdigest(),
           **{k: v for k, v in document["split"].items() if k != "format"})
    handout.give(split)
    split.wipe()
