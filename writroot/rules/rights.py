"""Issuer rights (DESIGN §1): who may sign which statement type."""

from __future__ import annotations

#: Which issuer role may sign which statement type.
RIGHTS: dict[str, tuple[str, ...]] = {
    "fleet-root": ("fleet-root",),
    "fleet-rotation": ("fleet-root",),
    "roster": ("fleet-root",),
    "regional-root": ("fleet-root",),
    "revocation-list": ("fleet-root",),
    "enclave-bundle": ("regional-root",),
    "federation-key": ("regional-root",),
    "ceremony-record": ("fleet-root", "regional-root"),
    "enrolment": ("custodian",),
    "approval": ("custodian",),
    "key-request": ("regional-root",),
    "oscal-baseline": ("fleet-root",),
    "oscal-overlay": ("regional-root",),
    "release-provenance": ("fleet-root",),
    "recovery-rehearsal": ("fleet-root", "regional-root"),
    "witness-policy": ("fleet-root",),
}

#: What a regional-root statement's `may_sign` may grant.
REGIONAL_MAY_SIGN = ("enclave-bundle", "federation-key", "oscal-overlay", "ceremony-record")
#: What a regional root may do for one enclave it was assigned.
ENCLAVE_MAY_SIGN = ("enclave-bundle", "federation-key")


def role_may_sign(role: str, type_: str) -> bool:
    return role in RIGHTS.get(type_, ())


def region_may_sign(may_sign: list[str], type_: str) -> bool:
    """A regional root signs its ceremony records and what its statement grants."""
    return type_ == "ceremony-record" or type_ in may_sign
