"""Ceremony plans: strict YAML in, a locked plan (every input pinned by SHA-256) out.

The locked plan is what custodians approve: its SHA-256 over RFC 8785 JSON is the plan digest.
Host details (module, token, PIN) are not in it, so the reviewed plan runs unchanged.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from writroot.ceremony import strictyaml
from writroot.crypto.keys import PublicKey
from writroot.errors import BadInput
from writroot.jsonio import canonical, read_json_file
from writroot.statements import REGIONAL_MAY_SIGN, region_check, roster_check
from writroot.statements import schema as s

PLAN_VERSION = 1
MAX_INPUT_BYTES = 4 * 1024 * 1024
OPERATIONS = ("generate-fleet-root", "sign-fleet-root", "sign-regional-root", "sign-roster")


def _op(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict) or value.get("op") not in OPERATIONS:
        raise BadInput(f"op must be one of {', '.join(OPERATIONS)}", f"{where}.op")
    op = value["op"]
    if op == "generate-fleet-root":
        return s.record(value, where, {"op": s.string, "label": s.name,
                                       "algorithm": s.one_of("SLH-DSA-SHA2-256s",
                                                             "SLH-DSA-SHA2-256f")})
    if op == "sign-roster":
        return s.record(value, where, {"op": s.string, "roster": s.string,
                                       "validity_days": s.integer(1, 3650)})
    if op == "sign-fleet-root":
        return s.record(value, where, {"op": s.string, "validity_days": s.integer(1, 3650)},
                        {"policy": s.anything})
    return s.record(value, where, {"op": s.string, "region": region_check, "key": s.string,
                                   "validity_days": s.integer(1, 3650)},
                    {"may_sign": s.list_of(s.one_of(*REGIONAL_MAY_SIGN), 1)})


def _signer(value: Any, where: str) -> str:
    if value == "generate":
        return "generate"
    return s.digest(value, where)


PLAN_FIELDS: dict[str, s.Check] = {
    "plan": s.integer(PLAN_VERSION, PLAN_VERSION), "ceremony": s.name, "fleet": s.name,
    "signer": _signer, "roster": s.string, "operations": s.list_of(_op, 1, 64, unique=False),
}


@dataclass(frozen=True)
class LockedPlan:
    document: dict[str, Any]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(canonical(self.document)).hexdigest()

    @property
    def ceremony(self) -> str:
        return str(self.document["ceremony"])

    @property
    def operations(self) -> list[dict[str, Any]]:
        ops: list[dict[str, Any]] = self.document["operations"]
        return ops

    def dumps(self) -> bytes:
        return canonical(self.document) + b"\n"


def _resolve_input(base: Path, rel: str, where: str) -> tuple[Path, dict[str, Any]]:
    """An input file beside the plan: relative, no '..', a regular file; pinned by digest."""
    rel_path = Path(rel)
    if rel_path.is_absolute() or ".." in rel_path.parts:
        raise BadInput("inputs must be relative paths inside the plan's directory", where)
    path = base / rel_path
    if path.is_symlink() or not path.is_file():
        raise BadInput(f"no such regular file {rel!r}", where)
    data = path.read_bytes()
    if len(data) > MAX_INPUT_BYTES:
        raise BadInput("input too large", where)
    return path, {"path": rel, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def _genesis_roster(base: Path, rel: str, where: str,
                    version: int = 1) -> tuple[dict[str, Any], dict[str, Any]]:
    """A roster proposal: threshold and custodians, each pinned by their enrolment envelope."""
    from writroot.envelope import Envelope
    from writroot.quorum.enrol import check_enrolment

    path, pin = _resolve_input(base, rel, where)
    located = strictyaml.load(path.read_bytes(), str(path))
    try:
        proposal = s.record(located.value, "roster", {
            "threshold": s.integer(1, 64),
            "custodians": s.list_of(lambda v, w: s.record(v, w, {"id": s.name, "name": s.string,
                                                                  "enrolment": s.string}),
                                    2, 64)})
    except BadInput as exc:
        raise located.rebase(exc, "roster") from None
    members = []
    for i, c in enumerate(proposal["custodians"]):
        at = located.where(f"custodians[{i}].enrolment")
        epath, _ = _resolve_input(path.parent, c["enrolment"], at)
        env = Envelope.parse(epath.read_bytes(), str(epath))
        custodian = check_enrolment(env, str(epath))
        if custodian["id"] != c["id"] or custodian["name"] != c["name"]:
            raise BadInput("enrolment names another custodian", at)
        members.append({"id": c["id"], "name": c["name"], "key": custodian["key"].to_json()})
    roster = {"version": version, "threshold": proposal["threshold"], "custodians": members}
    try:
        roster_check(roster, "roster")
    except BadInput as exc:
        raise located.rebase(exc, "roster") from None
    return roster, pin


def _roster_in_force(base: Path, rel: str, where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The roster carried by a fleet-root or roster envelope (checked again when run)."""
    from writroot.envelope import Envelope
    from writroot.statements import parse_payload

    path, pin = _resolve_input(base, rel, where)
    env = Envelope.from_json(read_json_file(path), str(path))
    st = parse_payload(env.payload, f"{path}: payload")
    if st.type not in ("fleet-root", "roster"):
        raise BadInput(f"expected a fleet-root or roster statement, not {st.type}", where)
    roster = st.subject["roster"]
    return {**roster, "custodians": [{**c, "key": c["key"].to_json()}
                                     for c in roster["custodians"]]}, pin


def check_plan(located: strictyaml.Located) -> dict[str, Any]:
    """The plan's own rules, before any input is read."""
    try:
        plan = s.record(located.value, "plan", PLAN_FIELDS)
    except BadInput as exc:
        raise located.rebase(exc, "plan") from None
    ops = plan["operations"]
    kinds = [o["op"] for o in ops]
    genesis = "generate-fleet-root" in kinds
    if genesis != (plan["signer"] == "generate"):
        raise BadInput("signer: generate goes with a generate-fleet-root operation, and only "
                       "with it", located.where("signer"))
    if genesis and kinds[0] != "generate-fleet-root":
        raise BadInput("generate-fleet-root must be the first operation",
                       located.where("operations[0]"))
    if kinds.count("generate-fleet-root") > 1 or kinds.count("sign-fleet-root") > 1:
        raise BadInput("at most one fleet root per ceremony", located.where("operations"))
    if genesis and "sign-fleet-root" not in kinds:
        raise BadInput("a genesis plan must sign the fleet-root statement",
                       located.where("operations"))
    if genesis and "sign-roster" in kinds:
        raise BadInput("a genesis plan carries its roster in the fleet-root statement",
                       located.where("operations"))
    return plan


def lock(plan_path: Path) -> LockedPlan:
    """Parse a plan strictly and pin every input; errors name file, line and field."""
    located = strictyaml.load_file(plan_path)
    plan = check_plan(located)
    base = plan_path.parent
    ops = plan["operations"]
    genesis = plan["signer"] == "generate"
    roster_loader = _genesis_roster if genesis else _roster_in_force
    roster, roster_pin = roster_loader(base, plan["roster"], located.where("roster"))
    locked_ops = []
    for i, op in enumerate(ops):
        entry = dict(op)
        if op["op"] == "sign-regional-root":
            at = located.where(f"operations[{i}].key")
            path, pin = _resolve_input(base, op["key"], at)
            key = PublicKey.from_pem(path.read_bytes(), at)
            entry["key"] = {**pin, **key.to_json()}
        if op["op"] == "sign-fleet-root":
            entry["policy"] = _policy(op.get("policy"), located, i)
        if op["op"] == "sign-roster":
            new, pin = _genesis_roster(base, op["roster"],
                                       located.where(f"operations[{i}].roster"),
                                       version=roster["version"] + 1)
            entry["roster"] = {**pin, "roster": new}
        locked_ops.append(entry)
    document = {"plan": PLAN_VERSION, "ceremony": plan["ceremony"], "fleet": plan["fleet"],
                "signer": plan["signer"], "roster": {**roster_pin, "roster": roster},
                "operations": locked_ops}
    return LockedPlan(document)


def _policy(value: Any, located: strictyaml.Located, index: int) -> dict[str, Any]:
    from writroot.statements import DEFAULT_POLICY, POLICY_FIELDS

    policy = {**DEFAULT_POLICY, **(value or {})}
    try:
        s.record(policy, f"operations[{index}].policy", POLICY_FIELDS)
    except BadInput as exc:
        raise BadInput(exc.message, located.where(exc.where or "")) from None
    return policy


def load_locked(path: Path) -> LockedPlan:
    """Read a locked plan; it must be canonical JSON of a plan we would have produced."""
    obj = read_json_file(path)
    if not isinstance(obj, dict) or obj.get("plan") != PLAN_VERSION:
        raise BadInput(f"not a locked plan (plan: {PLAN_VERSION} missing)", str(path))
    expected = {"plan", "ceremony", "fleet", "signer", "roster", "operations"}
    if set(obj) != expected:
        raise BadInput(f"locked plan fields must be {sorted(expected)}", str(path))
    s.name(obj["ceremony"], f"{path}: ceremony")
    s.name(obj["fleet"], f"{path}: fleet")
    roster_check(obj["roster"].get("roster") if isinstance(obj["roster"], dict) else None,
                 f"{path}: roster.roster")
    return LockedPlan(obj)
