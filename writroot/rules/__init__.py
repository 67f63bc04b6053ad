"""The rules: pure functions of signed facts, used by the ceremony machine and the verifier.

No I/O, no clock (every time is passed in), and no imports from `ceremony/` or `verify/`:
both take their rules from here, so a rule cannot be enforced in one place and not the other.
Each check returns `Violation`s named after the requirement they enforce.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Violation:
    """One broken rule: its name (a verify check name), where (a field path) and why."""

    rule: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message
