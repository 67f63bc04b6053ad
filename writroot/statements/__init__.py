"""Statements: the shared header of DESIGN §5 and a strict parser per type."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from writroot.envelope import INTOTO_PAYLOAD_TYPE, INTOTO_TYPES
from writroot.errors import BadInput
from writroot.jsonio import canonical, format_time, loads_strict
from writroot.rules.rights import ENCLAVE_MAY_SIGN, REGIONAL_MAY_SIGN
from writroot.statements import schema as s

MAX_STATEMENT_BYTES = 2 * 1024 * 1024
_SERIAL_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_REGION_RE = re.compile(r"[A-Z][A-Z0-9-]{1,31}")

ROLES = ("fleet-root", "regional-root", "custodian")
IMPACT_LEVELS = ("IL2", "IL4", "IL5", "IL6")
REVOCATION_REASONS = ("key-compromise", "ca-compromise", "superseded", "cessation-of-operation",
                      "affiliation-changed", "privilege-withdrawn", "unspecified")
MAX_REVOCATIONS = 10_000
MAX_ENCLAVES = 1024



def serial_check(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _SERIAL_RE.fullmatch(value):
        raise BadInput("expected a serial of [A-Za-z0-9._-], 1-64 characters", where)
    return value


def region_check(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _REGION_RE.fullmatch(value):
        raise BadInput("expected a region code like CONUS or CONUS-NSS", where)
    return value


def new_serial() -> str:
    return secrets.token_hex(16)


def _algorithm(value: Any, where: str) -> str:
    from writroot.crypto.algorithms import by_name

    return by_name(value, where).name


def _cds_route(value: Any, where: str) -> dict[str, Any]:
    """A registered cross-domain-solution route between two enclaves (by trust domain)."""
    from writroot.spiffe import trust_domain_check

    return s.record(value, where, {"id": s.name,
                                   "between": s.list_of(trust_domain_check, 2, 2)})


def _cds_routes(value: Any, where: str) -> list[dict[str, Any]]:
    routes: list[dict[str, Any]] = s.list_of(_cds_route, 0, 256)(value, where)
    if len({r["id"] for r in routes}) != len(routes):
        raise BadInput("CDS route ids must be distinct", where)
    return routes


POLICY_FIELDS: dict[str, s.Check] = {
    "fleet_root_algorithm": _algorithm,
    "regional_root_algorithms": s.list_of(_algorithm, 1, 8),
    "fleet_root_rotation_days": s.integer(1, 3650),
    "regional_root_rotation_days": s.integer(1, 3650),
    "regional_overlap_days": s.integer(0, 365),
    "approval_expiry_hours": s.integer(1, 24 * 90),
    "max_rotation_chain": s.integer(1, 1000),
    "cds_routes": _cds_routes,
}

#: Optional policy fields (absent: no writroot recovery split is required or made).
#: recovery_threshold (M) and recovery_shares (N): a fleet root generated with
#: recovery_holders is split M-of-N among exactly N holders (writroot/recovery).
#: regional_recovery: "required" (absent, or "optional": not required) -- a regional root's key
#: request must carry an M-of-N recovery split made at its birth (`writroot region keygen
#: --recovery-holder`). A word, not a boolean: plans and statements hold no `true`/`false`.
POLICY_OPTIONAL: dict[str, s.Check] = {
    "recovery_threshold": s.integer(2, 16),
    "recovery_shares": s.integer(2, 16),
    "regional_recovery": s.one_of("required", "optional"),
}

DEFAULT_POLICY: dict[str, Any] = {
    "fleet_root_algorithm": "SLH-DSA-SHA2-256s",
    "regional_root_algorithms": ["SLH-DSA-SHA2-256s", "ML-DSA-87"],
    "fleet_root_rotation_days": 548,
    "regional_root_rotation_days": 90,
    "regional_overlap_days": 14,
    "approval_expiry_hours": 72,
    "max_rotation_chain": 16,
    "cds_routes": [],
}


def _policy(value: Any, where: str) -> dict[str, Any]:
    policy = s.record(value, where, POLICY_FIELDS, POLICY_OPTIONAL)
    if ("recovery_threshold" in policy) != ("recovery_shares" in policy):
        raise BadInput("recovery_threshold and recovery_shares go together", where)
    if policy.get("recovery_threshold", 0) > policy.get("recovery_shares", 16):
        raise BadInput("recovery_threshold must not exceed recovery_shares",
                       f"{where}.recovery_threshold")
    if policy.get("regional_recovery") == "required" and "recovery_threshold" not in policy:
        raise BadInput("regional_recovery needs recovery_threshold and recovery_shares",
                       f"{where}.regional_recovery")
    return policy


policy_check = _policy


def _custodian(value: Any, where: str) -> dict[str, Any]:
    return s.record(value, where, {"id": s.name, "name": s.string, "key": s.key})


def roster_check(value: Any, where: str) -> dict[str, Any]:
    """A custodian roster: distinct ids and keys, threshold M with 1 <= M < N."""
    roster = s.record(value, where, {"version": s.integer(1), "threshold": s.integer(1, 64),
                                     "custodians": s.list_of(_custodian, 2, 64)})
    members = roster["custodians"]
    if len({c["id"] for c in members}) != len(members):
        raise BadInput("custodian ids must be distinct", f"{where}.custodians")
    if len({c["key"].keyid for c in members}) != len(members):
        raise BadInput("custodian keys must be distinct", f"{where}.custodians")
    if not 1 <= roster["threshold"] < len(members):
        raise BadInput(f"threshold must satisfy 1 <= M < N (N = {len(members)})",
                       f"{where}.threshold")
    return roster


def log_key_check(value: Any, where: str) -> Any:
    """A log key (DESIGN §6a): ML-DSA-44, the one key type C2SP tlog-cosignature's 0x06 and
    writroot's checkpoint signatures take."""
    from writroot.crypto.algorithms import ML_DSA_44

    key = s.key(value, where)
    if key.algorithm is not ML_DSA_44:
        raise BadInput(f"a log key is ML-DSA-44, not {key.algorithm.name}", where)
    return key


#: Optional members naming the issuer's log key (absent in statements made before logs).
LOG_KEY: dict[str, s.Check] = {"log_key": log_key_check}


def _fleet_root(subject: Any, where: str) -> dict[str, Any]:
    return s.record(subject, where, {"key": s.key, "version": s.integer(1), "policy": _policy,
                                     "roster": roster_check}, LOG_KEY)


def _roster(subject: Any, where: str) -> dict[str, Any]:
    return s.record(subject, where, {"roster": roster_check})


def _enrolment(subject: Any, where: str) -> dict[str, Any]:
    return s.record(subject, where, {"custodian": _custodian})


def _approval(subject: Any, where: str) -> dict[str, Any]:
    return s.record(subject, where, {"custodian": s.name, "ceremony": s.name,
                                     "plan_sha256": s.digest})


def assigned_enclave(value: Any, where: str) -> dict[str, Any]:
    """An enclave the fleet assigns to a region: its trust domain, impact level and what the
    region may sign for it."""
    from writroot.spiffe import trust_domain_check

    return s.record(value, where, {
        "trust_domain": trust_domain_check, "impact_level": s.one_of(*IMPACT_LEVELS),
        "may_sign": s.list_of(s.one_of(*ENCLAVE_MAY_SIGN), 1, len(ENCLAVE_MAY_SIGN))})


def enclaves_check(value: Any, where: str) -> list[dict[str, Any]]:
    """A regional root's enclaves: distinct trust domains, in a canonical order."""
    enclaves: list[dict[str, Any]] = s.list_of(assigned_enclave, 0, MAX_ENCLAVES)(value, where)
    domains = [e["trust_domain"] for e in enclaves]
    if len(set(domains)) != len(domains):
        raise BadInput("a trust domain is assigned twice", where)
    if domains != sorted(domains):
        raise BadInput("enclaves are sorted by trust_domain", where)
    return enclaves


def _regional_root(subject: Any, where: str) -> dict[str, Any]:
    return s.record(subject, where, {
        "region": region_check, "key": s.key, "version": s.integer(1),
        "may_sign": s.list_of(s.one_of(*REGIONAL_MAY_SIGN), 1, len(REGIONAL_MAY_SIGN)),
        "enclaves": enclaves_check,
    }, LOG_KEY)


def _fleet_rotation(subject: Any, where: str) -> dict[str, Any]:
    """The next fleet root: signed by the previous root and the new one, version +1."""
    out = s.record(subject, where, {"key": s.key, "previous": s.key, "version": s.integer(2),
                                    "policy": _policy, "roster": roster_check}, LOG_KEY)
    if out["key"] == out["previous"]:
        raise BadInput("the new fleet root must differ from the previous one", f"{where}.key")
    return out


def _revocation_entry(value: Any, where: str) -> dict[str, Any]:
    entry = s.record(value, where, {"reason": s.one_of(*REVOCATION_REASONS),
                                    "revoked_at": s.time},
                     {"keyid": s.digest, "serial": serial_check})
    if ("keyid" in entry) == ("serial" in entry):
        raise BadInput("an entry revokes exactly one keyid or one serial", where)
    return entry


def revocation_target(entry: dict[str, Any]) -> str:
    return f"keyid:{entry['keyid']}" if "keyid" in entry else f"serial:{entry['serial']}"


def _revocation_list(subject: Any, where: str) -> dict[str, Any]:
    out = s.record(subject, where, {
        "sequence": s.integer(1),
        "entries": s.list_of(_revocation_entry, 0, MAX_REVOCATIONS)})
    targets = [revocation_target(e) for e in out["entries"]]
    if len(set(targets)) != len(targets):
        raise BadInput("a keyid or serial is listed twice", f"{where}.entries")
    return out


def enclave_check(value: Any, where: str) -> dict[str, Any]:
    """One side of a federation pairing: an enclave's trust domain and impact level."""
    from writroot.spiffe import trust_domain_check

    return s.record(value, where, {"trust_domain": trust_domain_check,
                                   "impact_level": s.one_of(*IMPACT_LEVELS)})


def _enclave_bundle(subject: Any, where: str) -> dict[str, Any]:
    from writroot.spiffe import bundle_check, trust_domain_check

    out = s.record(subject, where, {
        "trust_domain": trust_domain_check, "region": region_check,
        "impact_level": s.one_of(*IMPACT_LEVELS), "spiffe_sequence": s.integer(0),
        "bundle": bundle_check})
    if out["bundle"]["spiffe_sequence"] != out["spiffe_sequence"]:
        raise BadInput("spiffe_sequence differs from the bundle's own", f"{where}.spiffe_sequence")
    return out


def pairing_check(value: Any, where: str) -> list[dict[str, Any]]:
    """A federation pairing: two different enclaves."""
    pairing: list[dict[str, Any]] = s.list_of(enclave_check, 2, 2)(value, where)
    if pairing[0]["trust_domain"] == pairing[1]["trust_domain"]:
        raise BadInput("a pairing names two different enclaves", where)
    return pairing


def _federation_key(subject: Any, where: str) -> dict[str, Any]:
    return s.record(subject, where, {"region": region_check, "key": s.key,
                                     "pairing": pairing_check}, {"cds_route": s.name})


def _key_request(subject: Any, where: str) -> dict[str, Any]:
    """A region's key request; `recovery` is the public description of the recovery split
    made at the key's birth (writroot/recovery/split.py), covered by the self-signature."""
    from writroot.recovery.split import description_check

    out = s.record(subject, where, {"region": region_check, "key": s.key,
                                    "custody": s.one_of("native", "wrapped"),
                                    "token": s.string},
                   {"recovery": description_check, **LOG_KEY})
    if "recovery" in out and out["recovery"]["keyid"] != out["key"].keyid:
        raise BadInput("the recovery split restores another keyid than the request's key",
                       f"{where}.recovery.keyid")
    return out


def _named_digest(value: Any, where: str) -> dict[str, Any]:
    return s.record(value, where, {"name": s.string, "sha256": s.digest})


def _oscal_baseline(subject: Any, where: str) -> dict[str, Any]:
    return _named_digest(subject, where)


def _oscal_overlay(subject: Any, where: str) -> dict[str, Any]:
    return s.record(subject, where, {"name": s.string, "sha256": s.digest,
                                     "region": region_check, "baseline": _named_digest})


def _release_provenance(subject: Any, where: str) -> dict[str, Any]:
    return s.record(subject, where, {"artifacts": s.list_of(_named_digest, 1, 1024)})


def _established(value: Any, where: str) -> dict[str, Any]:
    """What the ceremony machine established from its pinned anchor (docs/format.md)."""
    return s.record(value, where, {
        "anchor": s.digest, "roster_version": s.integer(1),
        "fleet_root": lambda v, w: s.record(v, w, {"keyid": s.digest, "version": s.integer(1)})},
        {"revocation_sequence": s.integer(1),
         "authority": lambda v, w: s.record(v, w, {"region": region_check,
                                                   "version": s.integer(1),
                                                   "keyid": s.digest})})


def _unsigned_op(value: Any, where: str) -> dict[str, Any]:
    """An operation that published no statement, with its parameters and what the run
    recorded of it."""
    def obj(v: Any, w: str) -> dict[str, Any]:
        if not isinstance(v, dict):
            raise BadInput("must be an object", w)
        return v

    return s.record(value, where, {"index": s.integer(0, 63), "op": s.name, "params": obj,
                                   "events": s.list_of(obj, 0, 64, unique=False)})


def _ceremony_record(subject: Any, where: str) -> dict[str, Any]:
    return s.record(subject, where, {"transcript_sha256": s.digest,
                                     "entries": s.integer(1), "head": s.digest},
                    {"established": _established,
                     "operations": s.list_of(_unsigned_op, 1, 64, unique=False)})


def _recovery_rehearsal(subject: Any, where: str) -> dict[str, Any]:
    """A rehearsal record: the key a recovery split restored into a throwaway token, who took
    part, and the result; signed by the restored key itself (writroot/recovery/rehearse.py)."""
    return s.record(subject, where, {
        "split": s.string, "keyid": s.digest, "threshold": s.integer(2, 16),
        "shares": s.integer(2, 16), "holders": s.list_of(s.name, 2, 16),
        "recovery_sha256": s.digest, "result": s.one_of("restored-and-verified"),
        "token": s.string})


MAX_WITNESSES = 64


def _witness(value: Any, where: str) -> dict[str, Any]:
    from writroot.log.note import check_name

    out = s.record(value, where, {"name": s.string, "key": log_key_check})
    check_name(out["name"], f"{where}.name")
    return out


def witness_policy_check(subject: Any, where: str) -> dict[str, Any]:
    """The witness set, how many must cosign a checkpoint, and whether logging is required
    (a word, as regional_recovery); `log_key` names (or replaces) the fleet's log key."""
    out = s.record(subject, where, {
        "version": s.integer(1), "witnesses": s.list_of(_witness, 0, MAX_WITNESSES),
        "quorum": s.integer(0, MAX_WITNESSES), "logging": s.one_of("required", "optional")},
        LOG_KEY)
    names = [w["name"] for w in out["witnesses"]]
    if len(set(names)) != len(names):
        raise BadInput("witness names must be distinct", f"{where}.witnesses")
    if len({w["key"].keyid for w in out["witnesses"]}) != len(names):
        raise BadInput("witness keys must be distinct", f"{where}.witnesses")
    if out["quorum"] > len(names):
        raise BadInput(f"quorum must not exceed the {len(names)} witnesses named",
                       f"{where}.quorum")
    return out


SUBJECTS: dict[str, Callable[[Any, str], dict[str, Any]]] = {
    "fleet-root": _fleet_root,
    "regional-root": _regional_root,
    "roster": _roster,
    "enrolment": _enrolment,
    "approval": _approval,
    "ceremony-record": _ceremony_record,
    "fleet-rotation": _fleet_rotation,
    "revocation-list": _revocation_list,
    "enclave-bundle": _enclave_bundle,
    "federation-key": _federation_key,
    "key-request": _key_request,
    "oscal-baseline": _oscal_baseline,
    "oscal-overlay": _oscal_overlay,
    "release-provenance": _release_provenance,
    "recovery-rehearsal": _recovery_rehearsal,
    "witness-policy": witness_policy_check,
}


def _ceremony(value: Any, where: str) -> dict[str, Any]:
    """Proof of quorum: the locked plan (or an inclusion proof into it) and the approvals
    counted for it."""
    return s.record(value, where, {"id": s.name, "plan_sha256": s.digest,
                                   "approvals": s.list_of(s.anything, 0, 64, unique=False)},
                    {"plan": s.anything, "inclusion": s.anything})



def _issuer(value: Any, where: str) -> dict[str, Any]:
    return s.record(value, where, {"role": s.one_of(*ROLES), "keyid": s.digest})


@dataclass(frozen=True)
class Statement:
    type: str
    fleet: str
    serial: str
    issued_at: datetime
    not_before: datetime
    not_after: datetime
    issuer_role: str
    issuer_keyid: str
    ceremony: dict[str, Any]
    subject: dict[str, Any]
    document: dict[str, Any]

    def valid_at(self, when: datetime) -> bool:
        return self.not_before <= when <= self.not_after


def parse_statement(document: Any, where: str) -> Statement:
    """Check a statement document: header, then the subject of its type."""
    header = s.record(document, where, {
        "type": s.one_of(*SUBJECTS), "fleet": s.name, "serial": serial_check,
        "issued_at": s.time, "not_before": s.time, "not_after": s.time,
        "issuer": _issuer, "ceremony": _ceremony, "subject": s.anything,
    })
    if header["not_before"] > header["not_after"]:
        raise BadInput("not_before is after not_after", f"{where}.not_before")
    if header["issued_at"] > header["not_after"]:
        raise BadInput("issued_at is after not_after", f"{where}.issued_at")
    subject = SUBJECTS[header["type"]](document["subject"], f"{where}.subject")
    return Statement(header["type"], header["fleet"], header["serial"], header["issued_at"],
                     header["not_before"], header["not_after"], header["issuer"]["role"],
                     header["issuer"]["keyid"], header["ceremony"], subject, document)


def parse_payload(payload: bytes, where: str) -> Statement:
    """Parse an envelope payload; it must be exactly the RFC 8785 form of itself."""
    document = loads_strict(payload, where, MAX_STATEMENT_BYTES)
    statement = parse_statement(document, where)
    if canonical(document) != payload:
        raise BadInput("payload is not RFC 8785 canonical JSON", where)
    return statement


def header(type_: str, *, fleet: str, issuer_role: str, issuer_keyid: str,
           ceremony: dict[str, Any], subject: dict[str, Any], issued_at: datetime,
           not_before: datetime, not_after: datetime, serial: str | None = None
           ) -> dict[str, Any]:
    """A statement document (the header and its subject), checked by the parser."""
    document = {
        "type": type_, "fleet": fleet, "serial": serial or new_serial(),
        "issued_at": format_time(issued_at), "not_before": format_time(not_before),
        "not_after": format_time(not_after),
        "issuer": {"role": issuer_role, "keyid": issuer_keyid},
        "ceremony": ceremony, "subject": subject,
    }
    parse_statement(loads_strict(canonical(document), type_), f"new {type_} statement")
    return document


def build(type_: str, **fields: Any) -> bytes:
    """Assemble a statement and return its canonical payload (checked by the parser)."""
    payload = canonical(header(type_, **fields))
    parse_payload(payload, f"new {type_} statement")
    return payload


def intoto_header(statement: Any, where: str) -> Statement:
    """The writroot statement inside an in-toto Statement: under predicate.writroot (OSCAL)
    or predicate.buildDefinition.internalParameters.writroot (SLSA); its subject must name
    exactly the in-toto subjects."""
    predicate = statement.predicate
    build_def = predicate.get("buildDefinition")
    holder = build_def.get("internalParameters") if isinstance(build_def, dict) else predicate
    document = holder.get("writroot") if isinstance(holder, dict) else None
    if document is None:
        raise BadInput("no writroot header in the predicate", f"{where}.predicate")
    if isinstance(holder, dict) and holder is not predicate and set(holder) != {"writroot"}:
        raise BadInput("internalParameters holds exactly the writroot statement",
                       f"{where}.predicate.buildDefinition.internalParameters")
    st = parse_statement(document, f"{where}.predicate.writroot")
    if st.type not in INTOTO_TYPES:
        raise BadInput(f"{st.type} statements are not in-toto statements", where)
    from writroot.oscal.intoto import OSCAL_PREDICATE_TYPE, SLSA_PREDICATE_TYPE

    wanted = SLSA_PREDICATE_TYPE if st.type == "release-provenance" else OSCAL_PREDICATE_TYPE
    if statement.predicate_type != wanted:  # one type, one predicate: no other reading
        raise BadInput(f"a {st.type} statement needs predicateType {wanted}",
                       f"{where}.predicateType")
    named = ([st.subject] if "name" in st.subject else st.subject["artifacts"])
    mine = sorted((n["name"], n["sha256"]) for n in named)
    theirs = sorted((x.name, x.sha256) for x in statement.subjects)
    if mine != theirs:
        raise BadInput("the writroot header names other subjects than the statement",
                       f"{where}.predicate.writroot.subject")
    return st


def parse_any(payload_type: str, payload: bytes, where: str) -> Statement:
    """A writroot statement, or an in-toto Statement carrying one (by payload type)."""
    if payload_type == INTOTO_PAYLOAD_TYPE:
        from writroot.oscal.intoto import parse_intoto

        return intoto_header(parse_intoto(payload, where), where)
    return parse_payload(payload, where)
