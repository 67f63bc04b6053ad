"""Ceremony operations: the plan schema of each, what locking pins (reading and checking the
inputs), and the statement each yields. The rules a locked plan must keep, and the rule a
verifier uses to tell whether an approved plan covers a statement, live in `writroot.rules`."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from writroot.ceremony import retire
from writroot.ceremony.inputs import LockContext, read_statement, resolve_input
from writroot.crypto.keys import PublicKey
from writroot.errors import BadInput, PolicyRefused
from writroot.jsonio import canonical, loads_strict
from writroot.recovery import ops as recovery_ops
from writroot.rules.covers import INTOTO_OPS, OP_TYPE, REGIONAL_OPS, filled_entries
from writroot.rules.rights import ENCLAVE_MAY_SIGN, REGIONAL_MAY_SIGN
from writroot.statements import (
    IMPACT_LEVELS,
    REVOCATION_REASONS,
    build,
    pairing_check,
    region_check,
    serial_check,
)
from writroot.statements import schema as s

__all__ = [
    "INTOTO_OPS",
    "OPERATIONS",
    "OP_TYPE",
    "REGIONAL_OPS",
    "BuildContext",
    "lock_op",
    "op_check",
    "policy_of",
    "statement_for",
]

FLEET_ALGORITHMS = ("SLH-DSA-SHA2-256s", "SLH-DSA-SHA2-256f")
OPERATIONS = ("generate-fleet-root", "sign-fleet-root", "sign-regional-root", "sign-roster",
              "rotate-fleet-root", "sign-revocation-list", "sign-oscal-baseline",
              "sign-release-provenance", "sign-witness-policy", *REGIONAL_OPS, retire.OP,
              *recovery_ops.OPS)


def _plan_entry(value: Any, where: str) -> dict[str, Any]:
    """A revocation entry as a plan writes it: `revoked_at` defaults to the signing time."""
    from writroot.jsonio import parse_time

    entry = s.record(value, where, {"reason": s.one_of(*REVOCATION_REASONS)},
                     {"keyid": _keyid_input, "serial": serial_check, "revoked_at": s.string,
                      "artifact": s.string, "revoke": s.one_of("key", "serial")})
    if "revoked_at" in entry:
        parse_time(entry["revoked_at"], f"{where}.revoked_at")
    if sum(k in entry for k in ("keyid", "serial", "artifact")) != 1:
        raise BadInput("an entry revokes exactly one keyid, serial or artifact (a signed "
                       "statement file)", where)
    if "revoke" in entry and "artifact" not in entry:
        raise BadInput("revoke: goes with artifact:", f"{where}.revoke")
    return entry


def _keyid_input(value: Any, where: str) -> str:
    """A keyid as people copy it: 64 hex, in groups, upper case, or as 32 PGP words."""
    from writroot.crypto.fingerprint import normalise

    return s.digest(normalise(value) if isinstance(value, str) else value, where)


def _plan_enclave(value: Any, where: str) -> dict[str, Any]:
    """An enclave assigned to a region, as a plan writes it: `may_sign` defaults to both."""
    from writroot.spiffe import trust_domain_check

    return s.record(value, where, {"trust_domain": trust_domain_check,
                                   "impact_level": s.one_of(*IMPACT_LEVELS)},
                    {"may_sign": s.list_of(s.one_of(*ENCLAVE_MAY_SIGN), 1)})


def _vkey_text(value: Any, where: str) -> str:
    """A vkey's text (an ML-DSA-44 key is 1,312 bytes: longer than a plan's other strings)."""
    if not isinstance(value, str) or not 0 < len(value) <= 4096:
        raise BadInput("expected a vkey (name+keyid+base64 key)", where)
    return value


def _plan_witness(value: Any, where: str) -> dict[str, Any]:
    """A witness as a plan names it: its vkey (as `witness init` prints it) or a PEM file."""
    out = s.record(value, where, {"name": s.string}, {"vkey": _vkey_text, "key": s.string})
    if ("vkey" in out) == ("key" in out):
        raise BadInput("a witness is given by exactly one of vkey: or key: (a PEM file)",
                       where)
    return out


_DAYS = s.integer(1, 3650)
#: How a key is born (absent: native where the token offers it, else wrapped; wrapped when
#: recovery holders are named, for only a wrapped key can be sealed for them).
_CUSTODY = s.one_of("native", "wrapped")
SCHEMAS: dict[str, tuple[dict[str, s.Check], dict[str, s.Check]]] = {
    "generate-fleet-root": ({"label": s.name, "algorithm": s.one_of(*FLEET_ALGORITHMS)},
                            {"recovery_holders": recovery_ops.holders, "custody": _CUSTODY,
                             "log_key_label": s.name}),
    "sign-fleet-root": ({"validity_days": _DAYS}, {"policy": s.anything}),
    "sign-roster": ({"roster": s.string, "validity_days": _DAYS}, {}),
    "sign-regional-root": ({"region": region_check, "request": s.string, "validity_days": _DAYS,
                            "enclaves": s.list_of(_plan_enclave, 0, 1024)},
                           {"may_sign": s.list_of(s.one_of(*REGIONAL_MAY_SIGN), 1),
                            "version": s.integer(1), "previous": s.string}),
    "rotate-fleet-root": ({"label": s.name, "algorithm": s.one_of(*FLEET_ALGORITHMS),
                           "validity_days": _DAYS},
                          {"policy": s.anything, "recovery_holders": recovery_ops.holders,
                           "custody": _CUSTODY, "log_key_label": s.name}),
    "sign-revocation-list": ({"sequence": s.integer(1),
                              "entries": s.list_of(_plan_entry, 0, 10_000),
                              "validity_days": _DAYS},
                             {"previous": s.string, "known": s.list_of(s.string, 1, 1024)}),
    "sign-enclave-bundle": ({"region": region_check, "trust_domain": s.string,
                             "impact_level": s.one_of(*IMPACT_LEVELS), "bundle": s.string,
                             "validity_days": _DAYS}, {"previous": s.string}),
    "sign-federation-key": ({"region": region_check, "key": s.string,
                             "pairing": pairing_check, "validity_days": _DAYS},
                            {"cds_route": s.name}),
    "sign-oscal-baseline": ({"document": s.string, "validity_days": _DAYS}, {}),
    "sign-oscal-overlay": ({"region": region_check, "profile": s.string, "baseline": s.string,
                            "baseline_document": s.string, "validity_days": _DAYS}, {}),
    "sign-witness-policy": ({"witnesses": s.list_of(_plan_witness, 0, 64),
                             "quorum": s.integer(0, 64),
                             "logging": s.one_of("required", "optional"),
                             "validity_days": _DAYS}, {"log_key_label": s.name}),
    "sign-release-provenance": ({"artifacts": s.list_of(s.string, 1, 1024),
                                 "validity_days": _DAYS},
                                {"build_type": s.string, "builder_id": s.string}),
}

SCHEMAS[retire.OP] = retire.SCHEMA  # retire-key: writroot/ceremony/retire.py
SCHEMAS.update(recovery_ops.SCHEMAS)  # restore-key, resplit-recovery: writroot/recovery/


def op_check(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict) or value.get("op") not in OPERATIONS:
        raise BadInput(f"op must be one of {', '.join(OPERATIONS)}", f"{where}.op")
    required, optional = SCHEMAS[value["op"]]
    return s.record(value, where, {"op": s.string, **required}, optional)


# -- locking: resolve and pin inputs, refuse what policy forbids ------------------------------

def lock_op(op: dict[str, Any], i: int, ctx: LockContext) -> dict[str, Any]:
    entry = dict(op)
    at = f"operations[{i}]"
    kind = op["op"]
    if kind == "sign-regional-root":
        entry.pop("request")
        entry["key"], recovery, request = _request(ctx, op, at)
        if recovery is not None and "log_key" in recovery:
            entry["log_key"] = recovery.pop("log_key")
        if recovery:  # the split made at the key's birth (rules/recovery.py)
            entry["request_recovery"] = recovery
        if "previous" in op:
            _regional_previous(entry, ctx, at)
        entry.setdefault("version", 1)
        entry.setdefault("may_sign", list(REGIONAL_MAY_SIGN))
        entry["enclaves"] = _enclaves(op["enclaves"], ctx.where(f"{at}.enclaves"))
        if ctx.now is not None:  # last: what the request asks for is judged first
            from writroot.region import check_window

            check_window(request, ctx.now, ctx.where(f"{at}.request"))
    elif kind == "rotate-fleet-root":
        if ctx.fleet is None:
            raise BadInput("rotating the fleet root needs the fleet_root input", ctx.where("plan"))
        entry["version"] = ctx.fleet["version"] + 1
        entry["policy"] = policy_of(op.get("policy"), ctx.fleet["policy"], ctx.where, at)
        _carry_log_key(entry, ctx)
    elif kind == "sign-witness-policy":
        _witness_policy(entry, ctx, at)
    elif kind == "sign-revocation-list":
        from writroot.ceremony.revocation import lock_list

        lock_list(entry, ctx, at)
    elif kind == "sign-enclave-bundle":
        _enclave_bundle(entry, ctx, at)
    elif kind == "sign-federation-key":
        _federation_key(entry, ctx, at)
    elif kind in recovery_ops.OPS:
        recovery_ops.lock(entry, ctx, at)
    elif kind in INTOTO_OPS:
        from writroot.ceremony import oscal_ops

        {"sign-oscal-baseline": oscal_ops.lock_baseline,
         "sign-oscal-overlay": oscal_ops.lock_overlay,
         "sign-release-provenance": oscal_ops.lock_provenance}[kind](entry, ctx, at)
    return entry


def _carry_log_key(entry: dict[str, Any], ctx: LockContext) -> None:
    """A rotation carries the fleet's log key on (the log continues), unless it names a new
    one (`log_key_label`): the key is pinned here, so custodians approve it."""
    if "log_key_label" in entry or ctx.trust is None or ctx.trust.fleet is None:
        return
    from writroot.verify.logs import fleet_origin

    key = ctx.trust.log_keys.get(fleet_origin(ctx.trust.fleet))
    if key is not None:
        entry["log_key"] = key.to_json()


def _witness_policy(entry: dict[str, Any], ctx: LockContext, at: str) -> None:
    """Witness keys resolved (vkey or PEM, ML-DSA-44), version one above the policy in force."""
    from writroot.crypto.algorithms import ML_DSA_44
    from writroot.log.cosignature import parse_vkey
    from writroot.log.note import check_name

    witnesses = []
    for i, w in enumerate(entry["witnesses"]):
        where = ctx.where(f"{at}.witnesses[{i}]")
        check_name(w["name"], where)
        if "vkey" in w:
            name, key = parse_vkey(w["vkey"], where)
            if name != w["name"]:
                raise BadInput(f"the vkey is for {name!r}, not {w['name']!r}", where)
        else:
            data, _pin = resolve_input(ctx.base, w["key"], where)
            key = PublicKey.from_pem(data, where)
            if key.algorithm is not ML_DSA_44:
                raise BadInput(f"a witness key is ML-DSA-44, not {key.algorithm.name}", where)
        witnesses.append({"name": w["name"], "key": key.to_json()})
    entry["witnesses"] = witnesses
    current = ctx.trust.witness_policy if ctx.trust is not None else None
    entry["version"] = 1 if current is None else current.subject["version"] + 1
    from writroot.statements import witness_policy_check

    try:
        witness_policy_check({k: entry[k] for k in ("version", "witnesses", "quorum",
                                                    "logging")}, "policy")
    except BadInput as exc:
        raise BadInput(exc.message, ctx.where(at)) from None


def policy_of(value: Any, base: dict[str, Any], where: Callable[[str], str],
              at: str) -> dict[str, Any]:
    """A plan's policy: the given fields over `base`, every field checked."""
    from writroot.statements import policy_check

    if value is not None and not isinstance(value, dict):
        raise BadInput("expected an object of policy fields (format.md §5.5)",
                       where(f"{at}.policy"))
    policy = {**base, **(value or {})}
    try:
        policy_check(policy, f"{at}.policy")
    except BadInput as exc:
        raise BadInput(exc.message, where(exc.where or "")) from None
    return policy


def _enclaves(given: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    """The enclaves a regional root is given, in the statement's form (sorted, explicit)."""
    from writroot.statements import enclaves_check

    out = sorted(({**e, "may_sign": e.get("may_sign", list(ENCLAVE_MAY_SIGN))} for e in given),
                 key=lambda e: str(e["trust_domain"]))
    try:
        return enclaves_check(out, "enclaves")
    except BadInput as exc:
        raise BadInput(exc.message, where) from None


def _request(ctx: LockContext, op: dict[str, Any], at: str
             ) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any]]:
    """A region's key request (proof of possession), as an envelope or a transfer bundle:
    the pinned key, the public facts of its recovery split if it has one, and the request
    as checked."""
    from writroot.region import check_request

    where = ctx.where(f"{at}.request")
    data, pin = resolve_input(ctx.base, op["request"], where)
    name = str(ctx.base / op["request"])
    if op["request"].endswith(".tar"):
        from writroot.transfer import read_bundle

        manifest, files = read_bundle(ctx.base / op["request"])
        if "key-request.json" not in files:
            raise BadInput("the bundle carries no key-request.json", where)
        pin = {**pin, "manifest_sha256": manifest.sha256}
        name, data = f"{name}!key-request.json", files["key-request.json"]
    request = check_request(loads_strict(data, name), name)
    if ctx.fleet_name is not None and request["fleet"] != ctx.fleet_name:
        raise BadInput(f"the key request is for fleet {request['fleet']!r}, the plan's is "
                       f"{ctx.fleet_name!r}", where)
    if request["region"] != op["region"]:
        raise PolicyRefused(f"the request is for region {request['region']}, not {op['region']}",
                            where)
    key: PublicKey = request["key"]
    split = request.get("recovery")
    recovery = None if split is None else {
        "split": split["split"], "keyid": split["keyid"], "threshold": split["threshold"],
        "shares": split["shares"], "holders": [h["id"] for h in split["holders"]]}
    if "log_key" in request:  # the region's log key, proven by the request's second signature
        recovery = {**(recovery or {}), "log_key": request["log_key"].to_json()}
    return {**pin, **key.to_json()}, recovery, request


def _regional_previous(entry: dict[str, Any], ctx: LockContext, at: str) -> None:
    """A regional rotation names the root it supersedes: pinned with its version, key and
    enclaves, so the review shows what changes; the new version follows it."""
    where = ctx.where(f"{at}.previous")
    _env, st, pin = read_statement(ctx.base, entry["previous"], where, ("regional-root",))
    # the root it supersedes may have expired or been revoked; it must still be genuine
    ctx.chained(pin, where, tolerate=("validity-window", "not-revoked"))
    if st.subject["region"] != entry["region"]:
        raise BadInput(f"the previous regional root is {st.subject['region']}'s", where)
    if st.subject["key"].keyid == entry["key"]["keyid"]:
        raise PolicyRefused("the request is for the key this root supersedes: a rotation "
                            "certifies a new key (writroot region keygen)", where)
    entry.setdefault("version", st.subject["version"] + 1)
    entry["previous"] = {**pin, "region": st.subject["region"],
                         "version": st.subject["version"],
                         "keyid": st.subject["key"].keyid, "enclaves": st.subject["enclaves"]}


def _enclave_bundle(entry: dict[str, Any], ctx: LockContext, at: str) -> None:
    from writroot.spiffe import bundle_check, bundle_facts, trust_domain_check

    trust_domain_check(entry["trust_domain"], ctx.where(f"{at}.trust_domain"))
    data, pin = resolve_input(ctx.base, entry["bundle"], ctx.where(f"{at}.bundle"))
    name = str(ctx.base / entry["bundle"])
    bundle = bundle_check(loads_strict(data, name), name)
    entry["bundle"] = {**pin, "canonical_sha256": hashlib.sha256(canonical(bundle)).hexdigest(),
                       "spiffe_sequence": bundle["spiffe_sequence"], **bundle_facts(bundle)}
    if "previous" in entry:
        where = ctx.where(f"{at}.previous")
        _env, st, ppin = read_statement(ctx.base, entry["previous"], where, ("enclave-bundle",))
        # the bundle it replaces may have expired or been revoked; it must still be genuine
        ctx.chained(ppin, where, tolerate=("validity-window", "not-revoked"))
        if st.subject["trust_domain"] != entry["trust_domain"]:
            raise BadInput(f"the previous bundle is for {st.subject['trust_domain']}", where)
        entry["previous"] = {**ppin, "spiffe_sequence": st.subject["spiffe_sequence"]}


def _federation_key(entry: dict[str, Any], ctx: LockContext, at: str) -> None:
    data, pin = resolve_input(ctx.base, entry["key"], ctx.where(f"{at}.key"))
    key = PublicKey.from_pem(data, ctx.where(f"{at}.key"))
    entry["key"] = {**pin, **key.to_json()}


# -- running: the statement each operation yields --------------------------------------------

@dataclass
class BuildContext:
    fleet: str
    role: str
    keyid: str
    signer_key: PublicKey
    roster: dict[str, Any]
    proof: dict[str, Any]
    now: datetime
    log_key: PublicKey | None = None  # a log key this ceremony made (`log_key_label`)


def statement_for(op: dict[str, Any], index: int, ctx: BuildContext,
                  new_key: PublicKey | None = None,
                  bundle: dict[str, Any] | None = None, oscal: Any = None) -> bytes:
    """`new_key` is a rotation's freshly generated root; `bundle` an enclave's SPIFFE bundle
    and `oscal` an OSCAL document, read again at run time (digests checked against the plan)."""
    kind = op["op"]
    common: dict[str, Any] = {"fleet": ctx.fleet, "issuer_role": ctx.role,
                              "issuer_keyid": ctx.keyid, "ceremony": ctx.proof,
                              "issued_at": ctx.now, "not_before": ctx.now,
                              "not_after": ctx.now + timedelta(days=op["validity_days"]),
                              "serial": f"{ctx.proof['id']}.{index}"}
    if kind in INTOTO_OPS:
        from writroot.ceremony import oscal_ops

        return oscal_ops.payload(op, common, oscal)
    subject: dict[str, Any]
    if kind == "sign-fleet-root":
        subject = {"key": ctx.signer_key.to_json(), "version": 1, "policy": op["policy"],
                   "roster": ctx.roster}
        subject.update(_log_key(op, ctx))
    elif kind == "sign-roster":
        subject = {"roster": op["roster"]["roster"]}
    elif kind == "sign-regional-root":
        subject = {"region": op["region"], "key": _locked_key(op, index),
                   "version": op["version"], "may_sign": op["may_sign"],
                   "enclaves": op["enclaves"], **_log_key(op, ctx)}
    elif kind == "rotate-fleet-root":
        assert new_key is not None
        subject = {"key": new_key.to_json(), "previous": ctx.signer_key.to_json(),
                   "version": op["version"], "policy": op["policy"], "roster": ctx.roster,
                   **_log_key(op, ctx)}
    elif kind == "sign-revocation-list":
        subject = {"sequence": op["sequence"], "entries": filled_entries(op, ctx.now)}
    elif kind == "sign-witness-policy":
        subject = {"version": op["version"], "witnesses": op["witnesses"],
                   "quorum": op["quorum"], "logging": op["logging"], **_log_key(op, ctx)}
    elif kind == "sign-enclave-bundle":
        assert bundle is not None
        subject = {"trust_domain": op["trust_domain"], "region": op["region"],
                   "impact_level": op["impact_level"],
                   "spiffe_sequence": bundle["spiffe_sequence"], "bundle": bundle}
    else:
        subject = {"region": op["region"], "key": _locked_key(op, index),
                   "pairing": op["pairing"],
                   **({"cds_route": op["cds_route"]} if "cds_route" in op else {})}
    return build(OP_TYPE[kind], **common, subject=subject)


def _log_key(op: dict[str, Any], ctx: BuildContext) -> dict[str, Any]:
    """The log key a statement names: pinned by the lock (carried on, or a region's from its
    key request), or made by this ceremony."""
    if "log_key" in op:
        return {"log_key": op["log_key"]}
    if ctx.log_key is not None and (op["op"] == "sign-fleet-root" or "log_key_label" in op):
        return {"log_key": ctx.log_key.to_json()}
    return {}


def _locked_key(op: dict[str, Any], index: int) -> dict[str, str]:
    key = PublicKey.from_json({k: op["key"][k] for k in ("algorithm", "public_key", "keyid")},
                              f"operations[{index}].key")
    return key.to_json()
