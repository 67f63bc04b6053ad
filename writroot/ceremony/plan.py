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
from writroot.ceremony.inputs import (
    check_authority,
    fleet_state,
    read_statement,
    resolve_input,
)
from writroot.ceremony.operations import REGIONAL_OPS, LockContext, lock_op, op_check
from writroot.errors import BadInput
from writroot.jsonio import canonical, read_json_file
from writroot.statements import roster_check
from writroot.statements import schema as s

PLAN_VERSION = 1


def _signer(value: Any, where: str) -> str:
    if value == "generate":
        return "generate"
    return s.digest(value, where)


PLAN_FIELDS: dict[str, s.Check] = {
    "plan": s.integer(PLAN_VERSION, PLAN_VERSION), "ceremony": s.name, "fleet": s.name,
    "signer": _signer, "roster": s.string,
    "operations": s.list_of(op_check, 1, 64, unique=False),
}
#: Optional inputs: the fleet root in force (any non-genesis plan) and, for a regional
#: ceremony, the signer's regional-root statement.
PLAN_OPTIONAL: dict[str, s.Check] = {"fleet_root": s.string, "authority": s.string}


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


def _genesis_roster(base: Path, rel: str, where: str,
                    version: int = 1) -> tuple[dict[str, Any], dict[str, Any]]:
    """A roster proposal: threshold and custodians, each pinned by their enrolment envelope."""
    from writroot.envelope import Envelope
    from writroot.quorum.enrol import check_enrolment

    data, pin = resolve_input(base, rel, where)
    path = base / rel
    located = strictyaml.load(data, str(path))
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
        edata, _ = resolve_input(path.parent, c["enrolment"], at)
        epath = path.parent / c["enrolment"]
        env = Envelope.parse(edata, str(epath))
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
    """The roster carried by a fleet-root, fleet-rotation or roster envelope."""
    _env, st, pin = read_statement(base, rel, where, ("fleet-root", "fleet-rotation", "roster"))
    roster = st.subject["roster"]
    return {**roster, "custodians": [{**c, "key": c["key"].to_json()}
                                     for c in roster["custodians"]]}, pin


def check_plan(located: strictyaml.Located) -> dict[str, Any]:
    """The plan's own rules, before any input is read."""
    try:
        plan = s.record(located.value, "plan", PLAN_FIELDS, PLAN_OPTIONAL)
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
    if not genesis and "fleet_root" not in plan:
        raise BadInput("a plan after genesis names the fleet root in force (fleet_root: the "
                       "latest fleet-root or fleet-rotation envelope)", located.where("plan"))
    regional = [k for k in kinds if k in REGIONAL_OPS]
    if regional and len(regional) != len(kinds):
        raise BadInput("a plan is signed by the fleet root or by one regional root, not both",
                       located.where("operations"))
    if regional and "authority" not in plan:
        raise BadInput("a regional ceremony names its authority (the signer's regional-root "
                       "envelope)", located.where("plan"))
    if "rotate-fleet-root" in kinds and len(kinds) != 1:
        raise BadInput("a fleet-root rotation is a ceremony of its own",
                       located.where("operations"))
    return plan


def lock(plan_path: Path) -> LockedPlan:
    """Parse a plan strictly and pin every input; errors name file, line and field."""
    located = strictyaml.load_file(plan_path)
    plan = check_plan(located)
    base = plan_path.parent
    genesis = plan["signer"] == "generate"
    roster_loader = _genesis_roster if genesis else _roster_in_force
    roster, roster_pin = roster_loader(base, plan["roster"], located.where("roster"))
    ctx = LockContext(base, located.where, plan["signer"], roster)
    document: dict[str, Any] = {"plan": PLAN_VERSION, "ceremony": plan["ceremony"],
                                "fleet": plan["fleet"], "signer": plan["signer"],
                                "roster": {**roster_pin, "roster": roster}}
    if "fleet_root" in plan:
        where = located.where("fleet_root")
        env, st, pin = read_statement(base, plan["fleet_root"], where,
                                      ("fleet-root", "fleet-rotation"))
        ctx.fleet = fleet_state(env, st, where)
        ctx.policy = ctx.fleet["policy"]
        if st.fleet != plan["fleet"]:
            raise BadInput(f"the fleet root is fleet {st.fleet!r}", where)
        if "authority" not in plan and ctx.fleet["key"].keyid != plan["signer"]:
            raise BadInput("the plan's signer is not the fleet root in force "
                           f"({ctx.fleet['key'].keyid})", located.where("signer"))
        document["fleet_root"] = {**pin, "keyid": ctx.fleet["key"].keyid,
                                  "version": ctx.fleet["version"]}
    if "authority" in plan:
        where = located.where("authority")
        env, st, pin = read_statement(base, plan["authority"], where, ("regional-root",))
        assert ctx.fleet is not None
        check_authority(env, st, ctx.fleet, plan["signer"], where)
        ctx.authority = st
        document["authority"] = {**pin, "region": st.subject["region"],
                                 "not_after": st.document["not_after"]}
    locked_ops = []
    for i, op in enumerate(plan["operations"]):
        if op["op"] == "sign-fleet-root":
            op = {**op, "policy": _policy(op.get("policy"), located, i)}
            ctx.policy = op["policy"]
        if op["op"] == "sign-roster":
            new, pin = _genesis_roster(base, op["roster"],
                                       located.where(f"operations[{i}].roster"),
                                       version=roster["version"] + 1)
            op = {**op, "roster": {**pin, "roster": new}}
        locked_ops.append(lock_op(op, i, ctx))
    document["operations"] = locked_ops
    return LockedPlan(document)


def _policy(value: Any, located: strictyaml.Located, index: int) -> dict[str, Any]:
    from writroot.ceremony.operations import policy_of
    from writroot.statements import DEFAULT_POLICY

    return policy_of(value, DEFAULT_POLICY, located.where, f"operations[{index}]")


def load_locked(path: Path) -> LockedPlan:
    """Read a locked plan; it must be canonical JSON of a plan we would have produced."""
    obj = read_json_file(path)
    if not isinstance(obj, dict) or obj.get("plan") != PLAN_VERSION:
        raise BadInput(f"not a locked plan (plan: {PLAN_VERSION} missing)", str(path))
    expected = {"plan", "ceremony", "fleet", "signer", "roster", "operations"}
    if not expected <= set(obj) <= expected | {"fleet_root", "authority"}:
        raise BadInput(f"locked plan fields must be {sorted(expected)} (and fleet_root, "
                       "authority)", str(path))
    s.name(obj["ceremony"], f"{path}: ceremony")
    s.name(obj["fleet"], f"{path}: fleet")
    roster_check(obj["roster"].get("roster") if isinstance(obj["roster"], dict) else None,
                 f"{path}: roster.roster")
    return LockedPlan(obj)
