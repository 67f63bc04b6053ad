"""What an approved plan covers: the statement each operation yields, and whether a signed
statement is exactly one an operation of the plan yields (the proof-of-quorum rule)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from writroot.envelope import INTOTO_TYPES
from writroot.errors import BadInput
from writroot.jsonio import canonical, format_time
from writroot.statements import Statement

#: The statement type each signing operation yields.
OP_TYPE = {
    "sign-fleet-root": "fleet-root", "sign-roster": "roster",
    "sign-regional-root": "regional-root", "rotate-fleet-root": "fleet-rotation",
    "sign-revocation-list": "revocation-list", "sign-enclave-bundle": "enclave-bundle",
    "sign-federation-key": "federation-key", "sign-oscal-baseline": "oscal-baseline",
    "sign-oscal-overlay": "oscal-overlay", "sign-release-provenance": "release-provenance",
    "sign-witness-policy": "witness-policy",
}
REGIONAL_OPS = ("sign-enclave-bundle", "sign-federation-key", "sign-oscal-overlay")
INTOTO_OPS = ("sign-oscal-baseline", "sign-oscal-overlay", "sign-release-provenance")


def filled_entries(op: dict[str, Any], issued_at: datetime) -> list[dict[str, Any]]:
    """A revocation list's entries as signed: `revoked_at` defaults to the signing time."""
    return [{**e, "revoked_at": e.get("revoked_at", format_time(issued_at))}
            for e in op["entries"]]


def covers(plan: dict[str, Any], st: Statement) -> bool:
    """An operation of the approved plan yields exactly this statement (type, serial, subject
    and validity)."""
    ops = plan.get("operations")
    if not isinstance(ops, list) or plan.get("signer") not in ("generate", st.issuer_keyid):
        return False
    return any(isinstance(op, dict) and OP_TYPE.get(str(op.get("op"))) == st.type
               and st.serial == serial_for(str(plan.get("ceremony")), i) and _covers_op(op, st)
               for i, op in enumerate(ops))


def covers_included(header: dict[str, Any], op: Any, index: int, st: Statement) -> bool:
    """The same rule for one operation proven to sit at `index` of an approved plan."""
    return (header.get("signer") in ("generate", st.issuer_keyid) and isinstance(op, dict)
            and OP_TYPE.get(str(op.get("op"))) == st.type
            and st.serial == serial_for(str(header.get("ceremony")), index)
            and _covers_op(op, st))


def serial_for(ceremony: str, index: int) -> str:
    """The serial of the statement operation `index` yields: one per operation, so a plan
    can never yield two different statements under one approval (verify: serial-unique)."""
    return f"{ceremony}.{index}"


def _covers_op(op: dict[str, Any], st: Statement) -> bool:
    doc = st.document["subject"]
    if (st.not_after - st.not_before) != timedelta(days=op.get("validity_days", -1)):
        return False
    try:
        if not _covers_log_key(op, doc):
            return False
        if st.type == "witness-policy":
            return bool(all(op[k] == doc[k] for k in ("version", "quorum", "logging"))
                        and [(w["name"], w["key"]["keyid"]) for w in op["witnesses"]]
                        == [(w["name"], w["key"]["keyid"]) for w in doc["witnesses"]])
        if st.type in INTOTO_TYPES:
            return _covers_intoto(op, doc, st.type)
        if st.type == "fleet-root":
            return bool(op.get("policy") == doc["policy"])
        if st.type == "roster":
            return canonical(op["roster"]["roster"]) == canonical(doc["roster"])
        if st.type == "fleet-rotation":
            return bool(op["algorithm"] == doc["key"]["algorithm"]
                        and op["version"] == doc["version"] and op["policy"] == doc["policy"])
        if st.type == "revocation-list":
            return bool(op["sequence"] == doc["sequence"]
                        and filled_entries(op, st.issued_at) == doc["entries"])
        if st.type == "enclave-bundle":
            return bool(op["bundle"]["canonical_sha256"]
                        == hashlib.sha256(canonical(doc["bundle"])).hexdigest()
                        and all(op[k] == doc[k] for k in ("trust_domain", "region",
                                                          "impact_level")))
        key_ok = op["key"]["keyid"] == doc["key"]["keyid"]
        if st.type == "regional-root":
            return bool(key_ok and op["region"] == doc["region"]
                        and op["version"] == doc["version"] and op["may_sign"] == doc["may_sign"]
                        and op["enclaves"] == doc["enclaves"])
        return bool(key_ok and op["region"] == doc["region"] and op["pairing"] == doc["pairing"]
                    and op.get("cds_route") == doc.get("cds_route"))
    except (KeyError, TypeError, BadInput):
        return False


def _covers_log_key(op: dict[str, Any], doc: dict[str, Any]) -> bool:
    """A log key the plan pinned (carried on, or from a key request) is the one named; a key
    the ceremony makes (`log_key_label`) is named; otherwise none is."""
    if "log_key" in op:
        return "log_key" in doc and bool(op["log_key"]["keyid"] == doc["log_key"]["keyid"])
    if "log_key_label" in op:
        return "log_key" in doc
    return op.get("op") == "sign-fleet-root" or "log_key" not in doc


def _covers_intoto(op: dict[str, Any], doc: dict[str, Any], type_: str) -> bool:
    if type_ == "release-provenance":
        mine = sorted((a["name"], a["sha256"]) for a in op["artifacts"])
        return mine == sorted((a["name"], a["sha256"]) for a in doc["artifacts"])
    pinned = op["document"] if type_ == "oscal-baseline" else op["profile"]
    ok = (pinned["name"], pinned["canonical_sha256"]) == (doc["name"], doc["sha256"])
    if type_ == "oscal-overlay":
        ok = ok and op["region"] == doc["region"] and \
            (op["baseline"]["name"], op["baseline"]["canonical_sha256"]) == \
            (doc["baseline"]["name"], doc["baseline"]["sha256"])
    return ok
