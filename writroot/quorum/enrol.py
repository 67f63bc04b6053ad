"""Custodian enrolment: a self-signed statement binding a custodian id and name to a key."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from writroot.crypto.keys import PublicKey
from writroot.envelope import Envelope, Signature, payload_type_for
from writroot.errors import BadInput, VerificationFailed
from writroot.jsonio import canonical
from writroot.quorum.custodian import ApprovalSigner
from writroot.statements import build, parse_payload

ENROLMENT_YEARS = 5


def enrol(signer: ApprovalSigner, fleet: str, custodian_id: str, name: str,
          now: datetime) -> Envelope:
    subject = {"custodian": {"id": custodian_id, "name": name, "key": signer.key.to_json()}}
    # An enrolment is not part of a quorum ceremony: its "plan" is its own subject.
    payload = build("enrolment", fleet=fleet, issuer_role="custodian",
                    issuer_keyid=signer.key.keyid,
                    ceremony={"id": f"enrol-{custodian_id}",
                              "plan_sha256": hashlib.sha256(canonical(subject)).hexdigest(),
                              "approvals": []},
                    subject=subject,
                    issued_at=now, not_before=now,
                    not_after=now + timedelta(days=365 * ENROLMENT_YEARS))
    unsigned = Envelope(payload_type_for("enrolment"), payload, ())
    return Envelope(unsigned.payload_type, payload,
                    (Signature(signer.key.keyid, signer.sign(unsigned.pae())),))


def check_enrolment(envelope: Envelope, where: str, fleet: str | None = None) -> dict[str, Any]:
    """The enrolled custodian {id, name, key}, once its self-signature verifies (and, given
    `fleet`, once it is for that fleet)."""
    st = parse_payload(envelope.payload, f"{where}: payload")
    if st.type != "enrolment" or envelope.payload_type != payload_type_for("enrolment"):
        raise BadInput("not an enrolment statement", where)
    custodian: dict[str, Any] = st.subject["custodian"]
    key: PublicKey = custodian["key"]
    if st.issuer_keyid != key.keyid:
        raise VerificationFailed("enrolment is not self-signed", where)
    if not envelope.signed_by(key):
        raise VerificationFailed("enrolment signature does not verify", where)
    if fleet is not None and st.fleet != fleet:
        raise BadInput(f"the enrolment is for fleet {st.fleet!r}, the plan's is {fleet!r}",
                       f"{where}: fleet")
    return custodian
