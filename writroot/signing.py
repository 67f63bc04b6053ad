"""Signing a statement with a pinned key in custody, and checking it before anything is written."""

from __future__ import annotations

from dataclasses import dataclass

from writroot.envelope import (
    INTOTO_PAYLOAD_TYPE,
    WRITROOT_PREFIX,
    Envelope,
    Signature,
    payload_type_for,
)
from writroot.errors import VerificationFailed
from writroot.hsm.custody import Custody
from writroot.statements import Statement, parse_any


@dataclass(frozen=True)
class Signed:
    envelope: Envelope
    statement: Statement
    engine: str
    checked_by: str


def sign_statement(custody: Custody, keyid: str, payload: bytes,
                   cosigners: tuple[str, ...] = ()) -> Signed:
    """Sign `payload` with the key pinned by `keyid` (and each cosigner: a fleet rotation is
    signed by the old and the new root); every signature is independently verified."""
    envelope, statement = prepare(keyid, payload)
    results = [(k, custody.sign(k, envelope.pae())) for k in (keyid, *cosigners)]
    signed = Envelope(envelope.payload_type, payload,
                      tuple(Signature(k, r.signature) for k, r in results))
    return Signed(signed, statement, results[0][1].engine, results[0][1].checked_by)


def prepare(keyid: str, payload: bytes) -> tuple[Envelope, Statement]:
    """The unsigned envelope of a statement that `keyid` is to sign (parsed, issuer checked)."""
    # Canonical JSON sorts keys: an in-toto Statement starts with its "_type".
    intoto = payload.startswith(b'{"_type":')
    statement = parse_any(INTOTO_PAYLOAD_TYPE if intoto else WRITROOT_PREFIX, payload,
                          "statement to sign")
    if statement.issuer_keyid != keyid:
        raise VerificationFailed(f"statement names issuer {statement.issuer_keyid}, "
                                 f"but the signing key is {keyid}")
    return Envelope(payload_type_for(statement.type), payload, ()), statement
