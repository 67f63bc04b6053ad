"""`retire-key`: destroy a superseded or compromised key on the token, in a quorum-approved
ceremony. It yields no signed statement: the transcript records the retirement and the
ceremony record (signed by the plan's signer) seals the transcript.

Retirement is marked on the token (a private object) before the key is destroyed, and a
retired key's sealed backup is refused by `restore_backup`, so a retired key signs nothing
again. Re-running the plan after a crash finds the key already retired and goes on.
"""

from __future__ import annotations

from typing import Any

from writroot.ceremony.transcript import Transcript
from writroot.crypto.fingerprint import normalise
from writroot.errors import HSMError, PolicyRefused
from writroot.hsm.custody import Custody
from writroot.statements import schema as s

OP = "retire-key"
REASONS = ("superseded", "key-compromise", "restored-over", "cessation-of-operation")
#: (required, optional) fields of the plan operation, as operations.SCHEMAS holds them
SCHEMA: tuple[dict[str, s.Check], dict[str, s.Check]] = (
    {"keyid": lambda v, w: s.digest(normalise(v) if isinstance(v, str) else v, w),
     "reason": s.one_of(*REASONS)}, {"label": s.name})


def lock(entry: dict[str, Any], at: str) -> None:
    """Nothing to pin: the keyid is named in the plan and checked on the token when run."""


def execute(op: dict[str, Any], custody: Custody, transcript: Transcript, signer_keyid: str,
            ceremony: str) -> None:
    keyid = op["keyid"]
    if keyid == signer_keyid:
        raise PolicyRefused("a ceremony cannot retire the key that signs its own record; "
                            "retire it from a ceremony signed by its successor", "retire-key")
    mark = custody.retired().get(keyid)
    if mark is not None:  # a re-run after a crash: already done
        transcript.record("retire", keyid=keyid, label=mark.get("label", ""),
                          reason=op["reason"], already=True)
        return
    record = next((r for r in custody.keys() if r.keyid == keyid), None)
    if record is None:
        raise HSMError(f"no writroot key with keyid {keyid} on this token to retire")
    if "label" in op and op["label"] != record.label:
        raise PolicyRefused(f"the key {keyid} is labelled {record.label!r} on this token, not "
                            f"{op['label']!r} as the plan says", "retire-key")
    custody.retire(keyid, op["reason"], ceremony)
    transcript.record("retire", keyid=keyid, label=record.label, role=record.role,
                      custody=record.custody, reason=op["reason"], already=False)
