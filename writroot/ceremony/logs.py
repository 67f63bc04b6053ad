"""A ceremony and its issuer's log (DESIGN §6a): the head a plan starts from (locked and
approved with it), the checks `run` makes against the log it is given, and the appends,
checkpoint and proofs a run stages with its other outputs.

The log is read from the trust directory (the published set) under the log key the trust
engine established; a ceremony that makes a new log key (`log_key_label`) signs with it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from writroot.crypto.keys import PublicKey
from writroot.errors import BadInput, PolicyRefused
from writroot.jsonio import canonical
from writroot.log import cosignature
from writroot.log.logfile import Log
from writroot.verify.logs import (
    LOGS_DIR,
    PROOFS_DIR,
    Published,
    fleet_origin,
    read_published,
    region_origin,
)

if TYPE_CHECKING:
    from writroot.hsm.custody import Custody
    from writroot.verify.trust import Established

HEAD_FIELDS = {"origin", "size", "root"}


@dataclass(frozen=True)
class LogState:
    """The issuer's log as the lock (or the run) found it, and the key it is signed by."""

    published: Published
    key: PublicKey | None  # None: the log key is made by this ceremony

    def head(self) -> dict[str, Any]:
        size, root = self.published.head
        return {"origin": self.published.origin, "size": size, "root": root.hex()}


def makes_log_key(operations: list[dict[str, Any]]) -> bool:
    return any("log_key_label" in op for op in operations)


def lock_state(plan: dict[str, Any], trust: Established | None, trust_dir: Path | None,
               region: str | None, authority_log_key: PublicKey | None = None
               ) -> LogState | None:
    """The issuer's log a plan extends, or None when its issuer keeps none (no log key
    certified, none made by this plan). A regional ceremony signs with its authority's own
    log key (during an overlap the older regional root keeps signing with its key)."""
    origin = region_origin(plan["fleet"], region) if region else fleet_origin(plan["fleet"])
    key = trust.log_keys.get(origin) if trust is not None else None
    if region is not None:
        key = authority_log_key
    if key is None:
        if region is None and makes_log_key(plan["operations"]):
            return LogState(Published(origin, Log(origin), b""), None)
        return None
    history = trust.log_key_history.get(origin, (key,)) if trust is not None else (key,)
    published = read_published(trust_dir, origin, (*history, key))
    if region is None and published.log.size == 0 and not makes_log_key(plan["operations"]):
        # the ceremony that certified the fleet's log key signed its first checkpoint: a
        # published set without it would start the log again, a fork
        raise PolicyRefused(f"the trust directory holds no checkpoint of {origin} signed by "
                            f"its log key {key.keyid[:16]}...: give the fleet's whole "
                            "published set, logs/ included [log-missing]", "--trust")
    return LogState(published, key)


def check_head(given: dict[str, Any], now: LogState, plan_sha256: str,
               trust: Established | None, where: str) -> None:
    """`run` (and `approve`) refuse unless the log given is consistent with the head the plan
    was approved on and at least as large, and unless this plan is not in it already."""
    log = now.published.log
    if given.get("origin") != now.published.origin:
        raise PolicyRefused(f"the plan extends log {given.get('origin')!r}, its issuer's is "
                            f"{now.published.origin!r} [log-head]", where)
    size = given["size"]
    if log.size < size:
        raise PolicyRefused(f"the log given ({log.size} entries) is smaller than the head the "
                            f"plan was approved on ({size}): a rolled-back copy; give the "
                            "fleet's current published set [log-head]", where)
    if log.hashes.root(size).hex() != given["root"]:
        raise PolicyRefused(f"the log given is not consistent with the head the plan was "
                            f"approved on (size {size}): the log is forked [log-head]", where)
    for entry in _records_of(plan_sha256, trust):
        if log.index_of(entry) is not None:
            raise PolicyRefused(f"this plan ({plan_sha256[:16]}...) ran already: its ceremony "
                                "record is in the log; a plan runs once [plan-logged]", where)


def _records_of(plan_sha256: str, trust: Established | None) -> list[bytes]:
    """The log entries of the ceremony records the trust engine was given for this plan."""
    if trust is None:
        return []
    return [hashlib.sha256(canonical(r.statement.document)).digest()
            for r in trust.results.values()
            if r.type == "ceremony-record" and r.statement is not None
            and r.statement.ceremony.get("plan_sha256") == plan_sha256]


@dataclass
class _CustodyKey:
    """A log key in custody as a cosignature.RawSigner."""

    custody: Custody
    key: PublicKey

    def sign(self, message: bytes) -> bytes:
        return self.custody.sign(self.key.keyid, message).signature


def append(state: LogState, made: PublicKey | None, custody: Custody,
           payloads: list[bytes], when: int) -> dict[str, bytes]:
    """Append each payload's entry, sign a new checkpoint with the issuer's log key on this
    token, and return the files to stage: the new tiles and checkpoint under
    logs/<origin>/, and one tlog-proof per entry under proofs/<entry hex>.tlog-proof."""
    key = made or state.key
    if key is None:
        raise BadInput("no log key is certified for this log", state.published.origin)
    pub = state.published
    log = pub.log
    old = log.size
    first = log.size
    for payload in payloads:
        log.append(hashlib.sha256(payload).digest())
    signer = cosignature.CosignatureSigner(pub.origin, _CustodyKey(custody, key), lambda: when)
    signed = log.sign([signer])
    base = f"{LOGS_DIR}/{pub.origin}"
    out = {f"{base}/{path}": data for path, data in log.tile_files(old).items()}
    out[f"{base}/checkpoint"] = signed
    for index in range(first, log.size):
        out[f"{PROOFS_DIR}/{log.entries[index].hex()}.tlog-proof"] = log.proof_file(index,
                                                                                    signed)
    return out
