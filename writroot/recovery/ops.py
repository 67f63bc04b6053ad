"""The recovery fields and operations of a ceremony plan: their schema and what locking pins.

- `recovery_holders` on generate-fleet-root / rotate-fleet-root: the new key's recovery split
  (M and N from the fleet policy).
- `restore-key`: rebuild the plan's signer from M shares and its recovery file into this
  token (writroot/recovery/restore.py).
- `resplit-recovery`: a new recovery key and blob for the signer, among new holders; the old
  split is recorded as retired (writroot/recovery/resplit.py).
"""

from __future__ import annotations

from typing import Any

from writroot.errors import BadInput
from writroot.rules.recovery import OPS, RESPLIT, RESTORE
from writroot.statements import schema as s

__all__ = ["OPS", "RESPLIT", "RESTORE", "SCHEMAS", "holders", "lock"]

holders = s.list_of(s.name, 2, 16)
SCHEMAS: dict[str, tuple[dict[str, s.Check], dict[str, s.Check]]] = {
    RESTORE: ({"label": s.name, "recovery": s.string}, {}),
    RESPLIT: ({"recovery": s.string, "recovery_holders": holders}, {}),
}


def lock(entry: dict[str, Any], ctx: Any, at: str) -> None:
    """Pin the recovery file (the blob and its split's public description)."""
    from writroot.ceremony.inputs import resolve_input
    from writroot.jsonio import loads_strict
    from writroot.recovery.blob import recovery_check

    where = ctx.where(f"{at}.recovery")
    data, pin = resolve_input(ctx.base, entry["recovery"], where)
    name = str(ctx.base / entry["recovery"])
    try:
        blob = recovery_check(loads_strict(data, name), name)
    except BadInput as exc:
        raise BadInput(f"{exc.where}: {exc.message}", where) from None
    entry["recovery"] = {**pin, "fleet": blob.fleet, "keyid": blob.keyid, "role": blob.role,
                         "split": blob.split_id, "threshold": blob.split["threshold"],
                         "holders": [h["id"] for h in blob.split["holders"]]}
