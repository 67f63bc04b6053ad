"""Signing a statement with a pinned key in custody, and checking it before anything is written."""

from __future__ import annotations

from dataclasses import dataclass

from writroot.envelope import Envelope, Signature, payload_type_for
from writroot.errors import VerificationFailed
from writroot.hsm.custody import Custody
from writroot.statements import Statement, parse_payload


@dataclass(frozen=True)
class Signed:
    envelope: Envelope
    statement: Statement
    engine: str
    checked_by: str


def sign_statement(custody: Custody, keyid: str, payload: bytes) -> Signed:
    """Sign `payload` with the key pinned by `keyid`; the signature is independently verified."""
    statement = parse_payload(payload, "statement to sign")
    if statement.issuer_keyid != keyid:
        raise VerificationFailed(f"statement names issuer {statement.issuer_keyid}, "
                                 f"but the signing key is {keyid}")
    envelope = Envelope(payload_type_for(statement.type), payload, ())
    result = custody.sign(keyid, envelope.pae())
    signed = Envelope(envelope.payload_type, payload, (Signature(keyid, result.signature),))
    return Signed(signed, statement, result.engine, result.checked_by)
