"""What a ceremony run needs for recovery, given by the caller (CLI, demo, tests): where new
shares go (`handout`) and where a restore's shares come from (`shares`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from writroot.errors import BadInput
from writroot.recovery.collect import ShareInput
from writroot.recovery.handout import Handout
from writroot.rules.recovery import KEY_BIRTH, RESPLIT, RESTORE


@dataclass
class RecoveryIO:
    handout: Handout | None = None
    shares: list[ShareInput] = field(default_factory=list)

    def close(self) -> None:
        if self.handout is not None:
            self.handout.close()
        for share in self.shares:
            if share.passphrase is not None:
                share.passphrase = None


def new_holders(operations: list[dict[str, Any]]) -> list[str]:
    """Every holder a plan hands a new share to."""
    out: list[str] = []
    for op in operations:
        if (op["op"] in KEY_BIRTH and "recovery_holders" in op) or op["op"] == RESPLIT:
            out += [h for h in op["recovery_holders"] if h not in out]
    return out


def preflight(operations: list[dict[str, Any]], io: RecoveryIO | None, where: str) -> None:
    """Before the HSM opens: a plan that makes shares has somewhere to hand them out, and a
    restore has shares to read."""
    holders = new_holders(operations)
    if holders:
        if io is None or io.handout is None:
            raise BadInput("this plan makes a recovery split: give --shares-out DIR (share "
                           "files under each holder's passphrase) or run on a terminal to "
                           "show each holder their share", where)
        io.handout.check(holders)
    if any(op["op"] == RESTORE for op in operations):
        if io is None or not io.shares:
            raise BadInput("this plan restores a key: run it with `writroot recovery restore "
                           "... --share SOURCE` (M shares)", where)
        for share in io.shares:
            share.check()
