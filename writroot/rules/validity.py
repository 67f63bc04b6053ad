"""Validity: what a key signs expires before the key does; approvals live as long as policy
allows, and a statement is issued inside its approvals' common window."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from writroot.rules import Violation

#: Statements whose validity must fit inside their issuer's (nothing breaks at rotation).
NESTED = ("regional-root", "enclave-bundle", "federation-key", "revocation-list", "oscal-overlay")


def _time(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def nested(not_after: datetime, issuer_not_after: datetime, issuer: str,
           where: str = "not_after") -> list[Violation]:
    if not_after > issuer_not_after:
        return [Violation("validity-nested", where, f"valid until {_time(not_after)}, after "
                          f"{issuer} expires ({_time(issuer_not_after)})")]
    return []


def regional_limit_days(policy: dict[str, Any]) -> int:
    return int(policy["regional_root_rotation_days"] + policy["regional_overlap_days"])


def regional_validity(policy: dict[str, Any], days: float,
                      where: str = "validity_days") -> list[Violation]:
    limit = regional_limit_days(policy)
    if days > limit:
        return [Violation("policy-validity", where, f"valid for {days:g} days; policy allows "
                          f"regional roots at most {limit}")]
    return []


def approval_lifetime(policy: dict[str, Any], not_before: datetime,
                      not_after: datetime) -> str | None:
    """Why an approval lives longer than the policy allows, or None."""
    hours = (not_after - not_before) / timedelta(hours=1)
    limit = policy["approval_expiry_hours"]
    if hours > limit:
        return f"lives {hours:g} hours; the fleet policy allows approvals {limit} hours"
    return None


def approval_window(issued_at: datetime,
                    windows: list[tuple[datetime, datetime]]) -> list[Violation]:
    """`issued_at` lies between the newest counted approval's creation and the earliest
    counted approval's expiry: nobody can backdate a statement before the quorum agreed,
    nor sign one after an approval lapsed."""
    if not windows:
        return []
    opens = max(start for start, _ in windows)
    closes = min(end for _, end in windows)
    if not opens <= issued_at <= closes:
        return [Violation("approval-window", "issued_at", f"issued {_time(issued_at)}, outside "
                          f"its approvals' common window {_time(opens)} .. {_time(closes)}")]
    return []
