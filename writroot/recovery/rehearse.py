"""`writroot recovery rehearse`: restore a key from M shares into a throwaway SoftHSM2 token,
sign a rehearsal record with it, verify that under the anchor, destroy the token.

The throwaway token lives in its own temporary directory and its own process (`worker`), so
it never shares a PKCS#11 module or a token directory with a real token; the recovery key
reaches the worker over a pipe, never a file. Nothing is published: the only output is the
signed rehearsal record, for the ceremony binder.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from writroot.crypto.keys import PublicKey, wipe
from writroot.envelope import Envelope, Signature, payload_type_for
from writroot.errors import HSMError, VerificationFailed
from writroot.jsonio import canonical, read_capped
from writroot.recovery.blob import open_blob, recovery_check
from writroot.recovery.collect import ShareInput, read_shares
from writroot.recovery.split import combine
from writroot.statements import build

TOKEN = "throwaway SoftHSM2 token"  # noqa: S105 (a description, not a secret)


@dataclass
class Rehearsal:
    envelope: Envelope
    split: str
    keyid: str
    holders: list[str]
    token_destroyed: bool

    def to_json(self) -> dict[str, Any]:
        return {"split": self.split, "keyid": self.keyid, "holders": self.holders,
                "result": "restored-and-verified", "token_destroyed": self.token_destroyed}


def rehearse(recovery_path: Path, anchor: PublicKey, shares: list[ShareInput], now: datetime,
             module: str | None = None) -> Rehearsal:
    """Everything but writing the record (the caller publishes `envelope`)."""
    from writroot.jsonio import loads_strict

    data = read_capped(recovery_path, 1024 * 1024)
    where = str(recovery_path)
    blob = recovery_check(loads_strict(data, where), where)
    key, holders = combine(blob.split, read_shares(shares))
    try:
        private = open_blob(blob, key, where, anchor.keyid)  # the key matches the anchor
        wipe(private)
        subject = {"split": blob.split_id, "keyid": blob.keyid,
                   "threshold": blob.split["threshold"], "shares": blob.split["shares"],
                   "holders": holders, "recovery_sha256": hashlib.sha256(data).hexdigest(),
                   "result": "restored-and-verified", "token": TOKEN}
        payload = build("recovery-rehearsal", fleet=blob.fleet, issuer_role=blob.role,
                        issuer_keyid=blob.keyid, subject=subject, issued_at=now,
                        not_before=now, not_after=now + timedelta(days=3650),
                        serial=f"rehearsal-{blob.split_id}-{now:%Y%m%dT%H%M%SZ}",
                        ceremony={"id": f"rehearsal-{blob.split_id}",
                                  "plan_sha256": hashlib.sha256(data).hexdigest(),
                                  "approvals": []})
        ptype = payload_type_for("recovery-rehearsal")
        signature, destroyed = _in_throwaway(key, json.loads(data), Envelope(ptype, payload,
                                                                             ()).pae(), module)
    finally:
        wipe(key)
    envelope = Envelope(ptype, payload, (Signature(blob.keyid, signature),))
    _verify_under(envelope, anchor)
    return Rehearsal(envelope, blob.split_id, blob.keyid, holders, destroyed)


def _verify_under(envelope: Envelope, anchor: PublicKey) -> None:
    """Under the anchor, with the usual verifier and an independent one."""
    from writroot.crypto import engines

    alg = anchor.algorithm
    usual = engines.verifier_for(alg)
    other = engines.independent_for(alg, usual)
    sig = envelope.signatures[0].sig
    for engine in (usual, other):
        if not engine.verify(alg, anchor.raw, envelope.pae(), sig):
            raise VerificationFailed(f"the rehearsal statement does not verify under the "
                                     f"anchor {anchor.keyid} ({engine.name})", "rehearsal")


def _in_throwaway(key: bytearray, recovery: dict[str, Any], message: bytes,
                  module: str | None) -> tuple[bytes, bool]:
    """Run the worker on a fresh token in a temporary directory; remove it all afterwards."""
    from writroot.hsm.softhsm import write_config
    from writroot.hsm.token import default_module

    tmp = Path(tempfile.mkdtemp(prefix="writroot-rehearsal-"))
    try:
        conf = write_config(tmp / "hsm")
        request = {"recovery_key": bytes(key).hex(), "recovery": recovery,
                   "message": base64.b64encode(message).decode(),
                   "module": module or default_module()}
        env = {k: v for k, v in os.environ.items() if not k.startswith("WRITROOT_SHARE_")}
        env["SOFTHSM2_CONF"] = str(conf)
        proc = subprocess.run([sys.executable, "-m", "writroot.recovery.worker"],
                              input=canonical(request), capture_output=True, env=env,
                              timeout=600, check=False)
        request.clear()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    destroyed = not tmp.exists()
    try:
        answer = json.loads(proc.stdout or b"{}")
    except ValueError:
        answer = {}
    if proc.returncode != 0 or "signature" not in answer:
        reason = answer.get("error") or "the throwaway token's worker failed"
        raise HSMError(f"rehearsal restore failed: {reason}", "rehearsal")
    return base64.b64decode(answer["signature"]), destroyed
