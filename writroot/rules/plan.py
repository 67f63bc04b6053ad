"""A locked plan against every rule: the same check at `ceremony show`, `approve`, `run`
and in `verify` (on the plan an artifact carries as its proof of quorum).

Pure: the caller gathers the facts (policy in force, the fleet root, the signer's authority)
from statements it has verified, and passes the time the plan is checked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from writroot.errors import excerpt, field_name
from writroot.rules import Violation
from writroot.rules import recovery as recovery_rules
from writroot.rules.covers import OP_TYPE, REGIONAL_OPS
from writroot.rules.enclaves import bundle_assigned, pairing_allowed
from writroot.rules.merkle import MERKLE_VERSION
from writroot.rules.rights import region_may_sign
from writroot.rules.validity import NESTED, nested, regional_validity

PLAN_VERSION = 1  # the YAML plan's `plan:`
#: Locked plans: 1 (digest: flat SHA-256) is still verified; 2 (digest: Merkle root,
#: writroot.rules.merkle) is what `ceremony plan` writes.
LOCK_VERSIONS = (1, MERKLE_VERSION)
TOP_FIELDS = {"plan", "ceremony", "fleet", "signer", "roster", "operations", "source"}
OPTIONAL_TOP = {"fleet_root", "authority", "established", "log"}
#: What a genesis plan may do: make and sign the fleet root (its recovery split at birth
#: included) and issue the first regional roots. Nothing that needs an anchor.
GENESIS_OPS = ("generate-fleet-root", "sign-fleet-root", "sign-regional-root",
               "sign-witness-policy")
#: The lock's record of what the ceremony machine established from the pinned anchor.
ESTABLISHED_FIELDS = {"anchor", "fleet_root", "roster_version"}
ESTABLISHED_OPTIONAL = {"revocation_sequence", "authority"}


@dataclass(frozen=True)
class Authority:
    """The signer of a regional ceremony, from its verified regional-root statement."""

    region: str
    keyid: str
    may_sign: list[str]
    enclaves: list[dict[str, Any]]
    not_after: datetime


@dataclass(frozen=True)
class PlanFacts:
    """What a plan is checked against. `now` is when it would sign (None in verify, which
    checks each statement's own validity instead); `policy` the fleet policy in force (None
    at genesis, whose policy is the plan's own); `fleet_*` the fleet root in force."""

    now: datetime | None = None
    policy: dict[str, Any] | None = None
    fleet_keyid: str | None = None
    fleet_version: int | None = None
    fleet_not_after: datetime | None = None
    authority: Authority | None = None


def check_locked(plan: Any, facts: PlanFacts) -> list[Violation]:
    """Every rule a locked plan must keep; an empty list when it keeps them all."""
    shape = _shape(plan)
    if shape:
        return shape
    try:
        return check_structure(plan, facts) + [v for i, op in enumerate(plan["operations"])
                                          for v in _operation(plan, op, i, facts)]
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        return [Violation("plan-well-formed", "", f"malformed locked plan ({excerpt(exc)})")]


#: The integers RFC 8785 writes exactly (an IEEE 754 double's): a plan's digest needs them.
MAX_SAFE_INT = 2**53 - 1


def _exact_types(value: Any, where: str, scalars: bool = True) -> list[Violation]:
    """A locked plan holds strings, integers, lists and objects: `true` is never `1`; and no
    integer that canonical JSON cannot write exactly (`scalars=False`: that check only, for
    `source`, which may hold any strict-YAML value). Walked with a stack, not recursion: a
    hostile lock may nest as deep as its reader allows."""
    out: list[Violation] = []
    stack = [(value, where)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, bool) or item is None:
            if scalars:
                out.append(Violation("plan-well-formed", at, f"{item!r} is not a string, "
                                     "integer, list or object"))
        elif isinstance(item, int):
            if not -MAX_SAFE_INT <= item <= MAX_SAFE_INT:
                out.append(Violation("plan-well-formed", at, "an integer beyond 2^53 - 1"))
        elif isinstance(item, float):
            out.append(Violation("plan-well-formed", at, f"{excerpt(item)} is not a string, "
                                 "integer, list or object"))
        elif isinstance(item, dict):
            stack.extend((v, f"{at}.{field_name(k)}" if at else field_name(k))
                         for k, v in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend((v, f"{at}[{i}]") for i, v in reversed(list(enumerate(item))))
        elif not isinstance(item, str):
            out.append(Violation("plan-well-formed", at, "not a JSON value"))
    return out


def _shape(plan: Any) -> list[Violation]:
    if not isinstance(plan, dict):
        return [Violation("plan-well-formed", "", "a locked plan is an object")]
    missing = TOP_FIELDS - set(plan)
    extra = set(plan) - TOP_FIELDS - OPTIONAL_TOP
    if missing or extra:
        return [Violation("plan-well-formed", "", f"locked plan fields are {sorted(TOP_FIELDS)} "
                          f"and optionally {sorted(OPTIONAL_TOP)} (missing {sorted(missing)}, "
                          f"unknown {_names(extra)})")]
    out = (_exact_types({k: v for k, v in plan.items() if k != "source"}, "")
           + _exact_types(plan["source"], "source", scalars=False))
    if out:
        return out
    if plan["plan"] not in LOCK_VERSIONS:
        return [Violation("plan-well-formed", "plan", "locked plan version must be 1 or "
                          f"{MERKLE_VERSION}")]
    ops = plan["operations"]
    if not isinstance(ops, list) or not ops or not all(
            isinstance(op, dict) and isinstance(op.get("op"), str)
            and (op["op"] in OP_TYPE or op["op"] in NON_SIGNING) for op in ops):
        return [Violation("plan-well-formed", "operations", "operations must be a non-empty "
                          "list of known operations")]
    return []


def _names(fields: set[Any]) -> str:
    """Unknown field names from an input, as an error lists them (a few, each cut short)."""
    names = sorted(field_name(f) for f in fields)
    return f"[{', '.join(names[:5])}{', ...' if len(names) > 5 else ''}]"


#: Operations that yield no statement of their own.
NON_SIGNING = ("generate-fleet-root", "retire-key", *recovery_rules.OPS)


def check_header(header: Any) -> list[Violation]:
    """An inclusion proof's plan header alone: its members, value types and version (the
    part of `check_included` that is the same for every operation of one plan)."""
    if not isinstance(header, dict):
        return [Violation("plan-well-formed", "", "an inclusion proof carries a header and "
                          "an operation object")]
    fields = TOP_FIELDS - {"operations", "source"}
    missing, extra = fields - set(header), set(header) - fields - OPTIONAL_TOP
    if missing or extra:
        return [Violation("plan-well-formed", "", f"plan header fields are {sorted(fields)} "
                          f"and optionally {sorted(OPTIONAL_TOP)} (missing {sorted(missing)}, "
                          f"unknown {_names(extra)})")]
    out = _exact_types(header, "")
    if out:
        return out
    if header["plan"] != MERKLE_VERSION:
        return [Violation("plan-well-formed", "plan", f"an inclusion proof is into a plan of "
                          f"version {MERKLE_VERSION}")]
    return []


def check_included(header: Any, op: Any, index: int, facts: PlanFacts,
                   header_checked: bool = False) -> list[Violation]:
    """The rules that can be judged from a plan's header and one of its operations (what an
    artifact with an inclusion proof carries): every rule of `check_locked` except those
    that compare operations with each other (see docs/format.md §5.10a). `header_checked`:
    the caller found `check_header(header)` empty for this very header already."""
    found = [] if header_checked else check_header(header)
    if found:
        return found
    if not isinstance(op, dict):
        return [Violation("plan-well-formed", "", "an inclusion proof carries a header and "
                          "an operation object")]
    out = _exact_types(op, "operation")
    if out:
        return out
    if not isinstance(op.get("op"), str) or op["op"] not in OP_TYPE:
        return [Violation("plan-well-formed", f"operations[{index}]", "not a signing "
                          "operation")]
    plan = {**header, "operations": [op]}
    try:
        return check_structure(plan, facts, partial=True) + _operation(plan, op, index, facts)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        return [Violation("plan-well-formed", "", f"malformed plan header or operation "
                          f"({excerpt(exc)})")]


@dataclass(frozen=True)
class Pins:
    """What a plan header's pins are judged against, from verified statements: the fleet
    root in force when the statement was signed (None: not known, e.g. signed before the
    pinned anchor took office), and the signer's regional root (regional statements)."""

    #: (keyid, version) of each fleet root in force then (two at the instant of a rotation;
    #: none when not known); a version of None is not judged.
    fleet_roots: tuple[tuple[str, int | None], ...] = ()
    region: str | None = None
    authority_keyid: str | None = None
    authority_version: int | None = None


def check_pins(header: Any, pins: Pins) -> list[Violation]:
    """A plan header's `fleet_root` and `authority` (and the lock's `established` record of
    both) name the statements in force when the statement was signed (docs/format.md
    §5.10a). `established.anchor` is not judged: a verifier may pin a later root."""
    if not isinstance(header, dict):
        return []
    out: list[Violation] = []
    fleet = [("fleet_root", header.get("fleet_root"))]
    authority = [("authority", header.get("authority"))]
    established = header.get("established")
    if isinstance(established, dict):
        fleet.append(("established.fleet_root", established.get("fleet_root")))
        authority.append(("established.authority", established.get("authority")))
    for where, pin in fleet:
        if not isinstance(pin, dict):
            continue
        if not pins.fleet_roots:
            continue
        versions = [v for k, v in pins.fleet_roots if k == pin.get("keyid")]
        in_force = " or ".join(f"{k} (version {v})" if v is not None else k
                               for k, v in pins.fleet_roots)
        if not versions:
            out.append(Violation("plan-header-fleet-root", f"{where}.keyid", f"names "
                                 f"{pin.get('keyid')!r}; the fleet root in force when the "
                                 f"statement was signed is {in_force}"))
        elif None not in versions and pin.get("version") not in versions:
            out.append(Violation("plan-header-fleet-root", f"{where}.version", f"names "
                                 f"version {pin.get('version')!r}; the fleet root in force "
                                 f"when the statement was signed is {in_force}"))
    for where, pin in authority:
        if not isinstance(pin, dict) or pins.region is None:
            continue
        if pin.get("region") != pins.region:
            out.append(Violation("plan-header-authority", f"{where}.region", f"names region "
                                 f"{pin.get('region')!r}; the signer is the {pins.region} "
                                 "regional root"))
        for member, want in (("keyid", pins.authority_keyid),
                             ("version", pins.authority_version)):
            if member in pin and want is not None and pin[member] != want:
                out.append(Violation("plan-header-authority", f"{where}.{member}", f"names "
                                     f"{pin[member]!r}; the signer's regional root has "
                                     f"{member} {want!r}"))
    return out


def check_structure(plan: dict[str, Any], facts: PlanFacts,
                    partial: bool = False) -> list[Violation]:
    """`partial`: `plan` holds one of its operations only (an inclusion proof), so the
    rules that count or order operations are not judged."""
    kinds = [op["op"] for op in plan["operations"]]
    genesis = plan["signer"] == "generate" if partial else "generate-fleet-root" in kinds
    out: list[Violation] = []

    def bad(where: str, message: str) -> None:
        out.append(Violation("plan-structure", where, message))

    if not partial and genesis != (plan["signer"] == "generate"):
        bad("signer", "signer: generate goes with a generate-fleet-root operation, and only "
            "with it")
    if genesis and not partial and kinds[0] != "generate-fleet-root":
        bad("operations[0]", "generate-fleet-root must be the first operation")
    if kinds.count("generate-fleet-root") > 1 or kinds.count("sign-fleet-root") > 1:
        bad("operations", "at most one fleet root per ceremony")
    if genesis and not partial and "sign-fleet-root" not in kinds:
        bad("operations", "a genesis plan must sign the fleet-root statement")
    if genesis and "sign-roster" in kinds:
        bad("operations", "a genesis plan carries its roster in the fleet-root statement")
    if not genesis and "fleet_root" not in plan:
        bad("fleet_root", "a plan after genesis names the fleet root in force")
    if "sign-fleet-root" in kinds and not genesis:
        bad("operations", "only a genesis plan signs a fleet-root statement")
    regional = [k for k in kinds if k in REGIONAL_OPS]
    if regional and len(regional) != len(kinds):
        bad("operations", "a plan is signed by the fleet root or by one regional root, not both")
    if regional and "authority" not in plan:
        bad("authority", "a regional ceremony names its authority (the signer's regional-root "
            "envelope)")
    if not regional and "authority" in plan:
        bad("authority", "only a regional ceremony names an authority")
    if "rotate-fleet-root" in kinds and len(kinds) != 1:
        bad("operations", "a fleet-root rotation is a ceremony of its own")
    if facts.fleet_keyid is not None and "fleet_root" in plan:
        if plan["fleet_root"]["keyid"] != facts.fleet_keyid:
            bad("fleet_root.keyid", f"the fleet root in force is {facts.fleet_keyid}")
        if not regional and plan["signer"] != facts.fleet_keyid:
            bad("signer", f"the plan's signer is not the fleet root in force "
                f"({facts.fleet_keyid})")
    if facts.fleet_version is not None and "fleet_root" in plan \
            and plan["fleet_root"]["version"] != facts.fleet_version:
        bad("fleet_root.version", f"the fleet root in force is version {facts.fleet_version}")
    if genesis:
        for i, kind in enumerate(kinds):
            if kind not in GENESIS_OPS:
                bad(f"operations[{i}].op", f"a genesis plan holds only {', '.join(GENESIS_OPS)}"
                    f"; {kind} needs the anchor a genesis makes (a ceremony of its own)")
        if "established" in plan:
            bad("established", "a genesis plan establishes nothing from an anchor")
    elif "established" in plan:
        out += _established(plan["established"], bool(regional))
    if "log" in plan:
        out += _log_head(plan["log"])
    out += recovery_rules.structure(plan)
    authority = facts.authority
    if regional and authority is not None:
        if plan["signer"] != authority.keyid:
            bad("signer", f"the plan's signer is not the key the authority certifies "
                f"({authority.keyid})")
        if facts.now is not None and facts.now > authority.not_after:
            out.append(Violation("issuer-valid-when-signed", "authority", "the signer's "
                                 "regional root has expired"))
    return out


def _log_head(value: Any) -> list[Violation]:
    """The head of the issuer's log the plan starts from: origin, size, root (hex)."""
    import re

    if not isinstance(value, dict) or set(value) != {"origin", "size", "root"} \
            or not isinstance(value["origin"], str) or not isinstance(value["size"], int) \
            or value["size"] < 0 or not isinstance(value["root"], str) \
            or not re.fullmatch(r"[0-9a-f]{64}", value["root"]) \
            or not re.fullmatch(r"[A-Za-z0-9._/-]{1,255}", value["origin"]):
        return [Violation("plan-well-formed", "log", "members are origin (a log origin), size "
                          "(an integer ≥ 0) and root (64 hex digits)")]
    return []


def _established(value: Any, regional: bool) -> list[Violation]:
    def bad(where: str, message: str) -> list[Violation]:
        return [Violation("plan-well-formed", f"established{where}", message)]

    if not isinstance(value, dict):
        return bad("", "an object")
    keys = set(value)
    if not ESTABLISHED_FIELDS <= keys or keys - ESTABLISHED_FIELDS - ESTABLISHED_OPTIONAL:
        return bad("", f"members are {sorted(ESTABLISHED_FIELDS)} and optionally "
                   f"{sorted(ESTABLISHED_OPTIONAL)}")
    if regional != ("authority" in value):
        return bad(".authority", "present exactly when a regional root signs")
    root = value["fleet_root"]
    if not isinstance(root, dict) or set(root) != {"keyid", "version"}:
        return bad(".fleet_root", "members are keyid and version")
    auth = value.get("authority", {"region": "", "version": 1, "keyid": ""})
    if not isinstance(auth, dict) or set(auth) != {"region", "version", "keyid"}:
        return bad(".authority", "members are region, version and keyid")
    return []


def _operation(plan: dict[str, Any], op: dict[str, Any], i: int,
               facts: PlanFacts) -> list[Violation]:
    at = f"operations[{i}]."
    kind = op["op"]
    out: list[Violation] = []
    # genesis: the fleet-root statement this plan signs gives the policy and the fleet
    # root's validity (on the same run's clock)
    genesis = None if "fleet_root" in plan else next(
        (o for o in plan["operations"] if o["op"] == "sign-fleet-root"), None)
    policy = facts.policy
    if policy is None and genesis is not None:
        policy = genesis["policy"]
    out += recovery_rules.operation(op, policy, at)
    if kind in REGIONAL_OPS:
        out += _regional(op, at, facts, policy)
    elif facts.now is not None and OP_TYPE.get(kind) in NESTED:
        fleet_ends, whose = facts.fleet_not_after, "the fleet root in force"
        if fleet_ends is None and genesis is not None:
            fleet_ends = facts.now + timedelta(days=genesis["validity_days"])
            whose = "the fleet root this plan makes"
        if fleet_ends is not None:
            out += nested(facts.now + timedelta(days=op["validity_days"]), fleet_ends, whose,
                          f"{at}validity_days")
    if kind == "sign-regional-root" and policy is not None:
        out += regional_validity(policy, op["validity_days"], f"{at}validity_days")
        if op["key"]["algorithm"] not in policy["regional_root_algorithms"]:
            out.append(Violation("policy-algorithm", f"{at}key", f"{op['key']['algorithm']} is "
                                 "not a regional-root algorithm the fleet policy allows"))
    if kind == "rotate-fleet-root":
        if op["algorithm"] != op["policy"]["fleet_root_algorithm"]:
            out.append(Violation("policy-algorithm", f"{at}algorithm", "policy requires a "
                                 f"{op['policy']['fleet_root_algorithm']} fleet root"))
        if facts.fleet_version is not None and op["version"] != facts.fleet_version + 1:
            out.append(Violation("rotation-version", f"{at}version", f"version {op['version']} "
                                 f"does not follow version {facts.fleet_version}"))
    if kind == "sign-revocation-list" and "previous" in op \
            and op["sequence"] <= op["previous"]["sequence"]:
        out.append(Violation("revocation-sequence", f"{at}sequence", f"sequence "
                             f"{op['sequence']} does not exceed the previous list's "
                             f"{op['previous']['sequence']}"))
    if kind == "sign-regional-root" and "previous" in op \
            and op["version"] != op["previous"]["version"] + 1:
        out.append(Violation("regional-version", f"{at}version", f"version {op['version']} "
                             f"does not follow the previous regional root's "
                             f"{op['previous']['version']}"))
    if kind == "sign-enclave-bundle" and "previous" in op \
            and op["bundle"]["spiffe_sequence"] <= op["previous"]["spiffe_sequence"]:
        out.append(Violation("spiffe-sequence", f"{at}bundle", f"spiffe_sequence "
                             f"{op['bundle']['spiffe_sequence']} does not increase on the "
                             f"signed {op['previous']['spiffe_sequence']}"))
    return out


def _regional(op: dict[str, Any], at: str, facts: PlanFacts,
              policy: dict[str, Any] | None) -> list[Violation]:
    """A region signs only for itself, only what its root may sign, only for the enclaves
    the fleet assigned to it, and nothing that outlives its root."""
    authority = facts.authority
    if authority is None:
        return []
    out: list[Violation] = []
    if op["region"] != authority.region:
        out.append(Violation("region-matches", f"{at}region", f"the signer is the "
                             f"{authority.region} regional root; it does not sign for "
                             f"{op['region']}"))
    if not region_may_sign(authority.may_sign, OP_TYPE[op["op"]]):
        out.append(Violation("issuer-authorised", f"{at}op", f"the {authority.region} regional "
                             f"root may not sign {OP_TYPE[op['op']]}"))
    if op["op"] == "sign-enclave-bundle":
        out += bundle_assigned(authority.enclaves, authority.region, op["trust_domain"],
                               op["impact_level"], at)
    if op["op"] == "sign-federation-key":
        out += pairing_allowed(authority.enclaves, authority.region, op["pairing"],
                               op.get("cds_route"), policy, at)
    if facts.now is not None:
        ends = facts.now + timedelta(days=op["validity_days"])
        out += nested(ends, authority.not_after, f"the {authority.region} regional root",
                      f"{at}validity_days")
    return out
