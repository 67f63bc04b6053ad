"""The region's side of regional-root issuance: generate the key in the region's HSM and export
a key request whose self-signature proves possession of the private key."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from writroot.crypto.algorithms import Algorithm
from writroot.crypto.keys import PublicKey
from writroot.envelope import Envelope, payload_type_for
from writroot.errors import BadInput, PolicyRefused, VerificationFailed
from writroot.hsm.custody import Custody
from writroot.jsonio import canonical, format_time
from writroot.signing import sign_statement
from writroot.statements import build, parse_payload

if TYPE_CHECKING:
    from writroot.recovery.escrow import Escrow

REQUEST_FILE = "key-request.json"
REQUEST_DAYS = 30
REGIONAL_ALGORITHMS = ("SLH-DSA-SHA2-256s", "SLH-DSA-SHA2-256f", "ML-DSA-87")


@dataclass(frozen=True)
class KeyRequest:
    envelope: Envelope
    key: PublicKey
    region: str
    custody: str
    recovery: dict[str, Any] | None = None  # the recovery file (blob + public description)
    log_key: PublicKey | None = None  # the region's log key, when one was made

    def files(self) -> dict[str, bytes]:
        """What crosses the air gap: the signed request, the PEM and, with a recovery split,
        the recovery file (the sealed blob opens only with M shares); nothing secret."""
        out = {REQUEST_FILE: self.envelope.dumps(),
               f"{self.region.lower()}-root.pem": self.key.pem.encode()}
        if self.log_key is not None:
            out[f"{self.region.lower()}-log.pem"] = self.log_key.pem.encode()
        if self.recovery is not None:
            from writroot.recovery.escrow import recovery_name

            out[recovery_name(self.recovery["split"]["split"])] = \
                canonical(self.recovery) + b"\n"
        return out


def make_request(custody: Custody, alg: Algorithm, region: str, fleet: str, label: str,
                 token: str, now: datetime, backup_dir: Path | None = None,
                 escrow: Escrow | None = None, log_label: str | None = None) -> KeyRequest:
    """Generate the regional root in custody and sign its key request with it; with
    `escrow`, seal the new key under a recovery key at birth and put the split's public
    description into the signed request. With `log_label`, the region's ML-DSA-44 log key
    is born on the same token and named in the request, which it signs too (possession)."""
    if alg.name not in REGIONAL_ALGORITHMS:
        raise PolicyRefused(f"{alg.name} is not a regional-root algorithm", "--algorithm")
    record = custody.generate(alg, "regional-root", label, backup_dir=backup_dir,
                              escrow=escrow, recovery_split=escrow.split_id if escrow else "")
    log_key = None
    if log_label is not None:
        from writroot.crypto.algorithms import ML_DSA_44

        log_key = custody.generate(ML_DSA_44, "regional-log", log_label,
                                   backup_dir=backup_dir).key
    document = escrow.document if escrow is not None else None
    payload = request_payload(record.key, region, fleet, record.custody, token, now,
                              document["split"] if document else None, log_key)
    signed = sign_statement(custody, record.keyid, payload,
                            (log_key.keyid,) if log_key is not None else ())
    return KeyRequest(signed.envelope, record.key, region, record.custody, document, log_key)


def request_payload(key: PublicKey, region: str, fleet: str, custody: str, token: str,
                    now: datetime, recovery: dict[str, Any] | None = None,
                    log_key: PublicKey | None = None) -> bytes:
    """The key-request statement, to be signed by `key` itself (proof of possession) and by
    `log_key` when it names one."""
    subject: dict[str, Any] = {"region": region, "key": key.to_json(), "custody": custody,
                               "token": token}
    if recovery is not None:
        subject["recovery"] = recovery
    if log_key is not None:
        subject["log_key"] = log_key.to_json()
    # A request is not a quorum ceremony: its "plan" is its own subject, as for enrolments.
    return build("key-request", fleet=fleet, issuer_role="regional-root",
                 issuer_keyid=key.keyid,
                 ceremony={"id": f"request-{region.lower()}",
                           "plan_sha256": hashlib.sha256(canonical(subject)).hexdigest(),
                           "approvals": []},
                 subject=subject, issued_at=now, not_before=now,
                 not_after=now + timedelta(days=REQUEST_DAYS))


def check_request(obj: Any, where: str) -> dict[str, Any]:
    """A key request's subject, once its proof of possession (self-signature) verifies, with
    `requested_at` and `valid_until` (see `check_window`)."""
    env = Envelope.from_json(obj, where)
    st = parse_payload(env.payload, f"{where}: payload")
    if st.type != "key-request" or env.payload_type != payload_type_for("key-request"):
        raise BadInput("not a key-request statement", where)
    key: PublicKey = st.subject["key"]
    if st.issuer_keyid != key.keyid:
        raise VerificationFailed("key request is not signed by the requested key", where)
    if not env.signed_by(key):
        raise VerificationFailed("proof of possession fails: the request's signature does not "
                                 "verify", where)
    if "log_key" in st.subject and not env.signed_by(st.subject["log_key"]):
        raise VerificationFailed("proof of possession fails: the request is not signed by the "
                                 "log key it names", where)
    if st.not_before != st.issued_at:
        raise BadInput("a key request is valid from when it was made (not_before = issued_at)",
                       f"{where}: payload.not_before")
    return {**st.subject, "fleet": st.fleet, "requested_at": format_time(st.issued_at),
            "valid_until": format_time(st.not_after)}


def check_window(request: dict[str, Any], at: datetime, where: str) -> None:
    """A request (as `check_request` returns it) is certified only inside its window: a
    stale one is not (the region makes a new key and request)."""
    start, end = request["requested_at"], request["valid_until"]
    if not start <= format_time(at) <= end:
        raise PolicyRefused(f"the key request is valid {start} .. {end}, not at "
                            f"{format_time(at)}: the region makes a new one (writroot region "
                            "keygen) [request-window]", where)
