"""Inputs a plan names: files beside the plan, pinned by SHA-256 when the plan is locked."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from writroot.envelope import Envelope
from writroot.errors import BadInput, PolicyRefused, excerpt
from writroot.jsonio import loads_strict, read_capped
from writroot.statements import Statement, parse_any

if TYPE_CHECKING:
    from writroot.verify.trust import Established

MAX_INPUT_BYTES = 4 * 1024 * 1024
#: Fields of a locked plan (top level and per operation) that pin an input file.
PINNED_FIELDS = ("roster", "fleet_root", "authority", "key", "bundle", "previous", "document",
                 "profile", "baseline", "baseline_document", "sources", "artifacts")


def resolve_input(base: Path, rel: str, where: str) -> tuple[bytes, dict[str, Any]]:
    """An input file beside the plan: relative, no '..', a regular file; pinned by digest."""
    rel_path = Path(rel)
    if rel_path.is_absolute() or ".." in rel_path.parts:
        raise BadInput("inputs must be relative paths inside the plan's directory", where)
    path = base / rel_path
    try:
        regular = not path.is_symlink() and path.is_file()
    except OSError as exc:  # a name too long, say: the plan's line names it, not the OS
        raise BadInput(f"cannot read input {excerpt(rel)}: {exc.strerror}", where) from None
    if not regular:
        raise BadInput(f"no such regular file {excerpt(rel)}", where)
    try:
        data = read_capped(path, MAX_INPUT_BYTES)
    except BadInput as exc:  # name the plan's line and field, as every input error does
        raise BadInput(f"input {excerpt(rel)}: {exc.message}", where) from None
    return data, {"path": rel, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def read_statement(base: Path, rel: str, where: str,
                   types: tuple[str, ...]) -> tuple[Envelope, Statement, dict[str, Any]]:
    """A signed statement given as input (one of `types`), pinned by digest."""
    data, pin = resolve_input(base, rel, where)
    name = str(base / rel)
    env = Envelope.from_json(loads_strict(data, name), name)
    st = parse_any(env.payload_type, env.payload, f"{name}: payload")
    if st.type not in types:
        raise BadInput(f"expected a {' or '.join(types)} statement, not {st.type}", where)
    return env, st, pin


@dataclass
class LockContext:
    """What locking an operation may read: the plan's directory, its located fields, and
    the verified facts gathered so far."""

    base: Path
    where: Callable[[str], str]  # plan path -> "file:line: field"
    signer: str
    roster: dict[str, Any]
    policy: dict[str, Any] | None = None  # the fleet policy in force (or genesis policy)
    fleet: dict[str, Any] | None = None  # fleet_state() of the fleet_root input
    authority: Statement | None = None  # a regional ceremony's regional-root statement
    fleet_name: str | None = None  # the plan's fleet: every input must name it
    #: What the trust engine established from the pinned anchor (None only for genesis).
    trust: Established | None = None
    #: The lock's reference time (key requests must be valid then).
    now: datetime | None = None

    def chained(self, pin: dict[str, Any], where: str, tolerate: tuple[str, ...] = ()) -> None:
        """A statement input (by its pin) verifies under the anchor; refused otherwise."""
        from writroot.ceremony.trust import chained

        if self.trust is None:
            raise PolicyRefused("a genesis plan reads no signed statement", where)
        chained(self.trust, str(pin["sha256"]), where, tolerate)
