"""A witness's memory and its one decision, pure: `advance` a log's head or refuse with
evidence (torchwood's witness: read state, check, then write).

A witness cosigns a checkpoint only if it is consistent with the last one it cosigned for that
origin: the same tree, or a larger one with a consistency proof. A smaller tree (rollback), a
different root at the same size (split view) or a proof that fails is a `Conflict` carrying
both signed checkpoints. The first checkpoint of an origin is taken as it is (the log's key
is what vouches for it).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from writroot.errors import BadInput
from writroot.log import checkpoint as cpmod
from writroot.log import note, tree
from writroot.log.checkpoint import Checkpoint

STATE_TYPE = "writroot-witness-state"
EVIDENCE_TYPE = "writroot-witness-evidence"
MAX_LOGS = 1024
MAX_STATE_BYTES = 32 * 1024 * 1024
MAX_TIME = 253402300799  # 9999-12-31T23:59:59Z


@dataclass(frozen=True, slots=True)
class Head:
    """The last checkpoint a witness cosigned for one origin."""

    checkpoint: Checkpoint
    signed: bytes  # the signed note as presented
    cosigned_at: int  # POSIX seconds


@dataclass(frozen=True, slots=True)
class WitnessState:
    name: str
    vkey: str  # the witness's own key (cosignature.vkey), so a key file can be matched to it
    heads: Mapping[str, Head] = field(default_factory=lambda: MappingProxyType({}))

    def with_head(self, head: Head) -> WitnessState:
        heads = dict(self.heads)
        heads[head.checkpoint.origin] = head
        return WitnessState(self.name, self.vkey, MappingProxyType(heads))


@dataclass(frozen=True, slots=True)
class Accepted:
    state: WitnessState
    head: Head
    same: bool  # the very checkpoint cosigned last time


@dataclass(frozen=True, slots=True)
class Conflict:
    kind: str  # rollback | split-view | inconsistent
    message: str
    known: Head
    presented: bytes  # the signed note refused
    proof: tuple[bytes, ...]


def advance(state: WitnessState, presented: Checkpoint, signed: bytes,
            proof: Sequence[bytes], now: int) -> Accepted | Conflict:
    """The checkpoint's log signature must already be verified (note.open_note)."""
    head = Head(presented, signed, now)
    known = state.heads.get(presented.origin)
    if known is None:
        return Accepted(state.with_head(head), head, False)
    old = known.checkpoint
    if presented.size < old.size:
        return Conflict("rollback", f"tree size {presented.size} is smaller than {old.size}, "
                        "which this witness cosigned", known, signed, tuple(proof))
    if presented.size == old.size:
        if presented.root != old.root:
            return Conflict("split-view", f"a different root hash for tree size {old.size}, "
                            "which this witness cosigned", known, signed, tuple(proof))
        return Accepted(state.with_head(head), head, True)
    if not tree.check_consistency(proof, old.size, presented.size, old.root, presented.root):
        return Conflict("inconsistent", f"tree size {presented.size} is not consistent with "
                        f"tree size {old.size}, which this witness cosigned", known, signed,
                        tuple(proof))
    return Accepted(state.with_head(head), head, False)


# ------------------------------------------------------------------ state and evidence files


def _text(data: bytes) -> str:
    return data.decode("utf-8")


def state_to_json(state: WitnessState) -> dict[str, Any]:
    return {"type": STATE_TYPE, "version": 1, "witness": state.name, "vkey": state.vkey,
            "logs": {origin: {"size": h.checkpoint.size,
                              "root": base64.b64encode(h.checkpoint.root).decode(),
                              "cosigned_at": h.cosigned_at, "checkpoint": _text(h.signed)}
                     for origin, h in sorted(state.heads.items())}}


def _field(obj: dict[str, Any], name: str, kind: type, where: str) -> Any:
    if name not in obj:
        raise BadInput(f"missing field {name!r}", where)
    value = obj[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise BadInput(f"{name} must be a {kind.__name__}", f"{where}.{name}")
    return value


def state_from_json(obj: Any, where: str) -> WitnessState:
    if not isinstance(obj, dict):
        raise BadInput("expected an object", where)
    extra = set(obj) - {"type", "version", "witness", "vkey", "logs"}
    if extra:
        raise BadInput(f"unknown field {sorted(extra)[0]!r}", where)
    if obj.get("type") != STATE_TYPE or obj.get("version") != 1:
        raise BadInput(f"not a {STATE_TYPE} version 1", where)
    name = _field(obj, "witness", str, where)
    note.check_name(name, f"{where}.witness")
    from writroot.log.cosignature import parse_vkey

    vkey = _field(obj, "vkey", str, where)
    if parse_vkey(vkey, f"{where}.vkey")[0] != name:
        raise BadInput("the vkey's name is not the witness's name", f"{where}.vkey")
    logs = _field(obj, "logs", dict, where)
    if len(logs) > MAX_LOGS:
        raise BadInput(f"more than {MAX_LOGS} logs", f"{where}.logs")
    state = WitnessState(name, vkey)
    for origin, entry in logs.items():
        at = f"{where}.logs[{origin!r}]"
        if not isinstance(entry, dict) or set(entry) != {"size", "root", "cosigned_at",
                                                         "checkpoint"}:
            raise BadInput("expected size, root, cosigned_at and checkpoint", at)
        signed = _field(entry, "checkpoint", str, at).encode("utf-8")
        text, _ = note.split(signed, f"{at}.checkpoint")
        cp = cpmod.parse(text, f"{at}.checkpoint")
        if cp.origin != origin or cp.size != entry["size"] \
                or base64.b64encode(cp.root).decode() != entry["root"]:
            raise BadInput("size, root or origin differ from the checkpoint kept", at)
        when = _field(entry, "cosigned_at", int, at)
        if not 0 <= when <= MAX_TIME:
            raise BadInput("cosigned_at out of range", at)
        state = state.with_head(Head(cp, signed, when))
    return state


def evidence_to_json(conflict: Conflict, witness: str, now: int) -> dict[str, Any]:
    """Both signed checkpoints (and the proof given), for anyone to check offline."""
    return {"type": EVIDENCE_TYPE, "version": 1, "kind": conflict.kind,
            "origin": conflict.known.checkpoint.origin, "witness": witness, "time": now,
            "message": conflict.message, "cosigned": _text(conflict.known.signed),
            "presented": _text(conflict.presented),
            "proof": [base64.b64encode(h).decode() for h in conflict.proof]}
