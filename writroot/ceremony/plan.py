"""Ceremony plans: strict YAML in, a locked plan (every input pinned by SHA-256) out.

The locked plan is what custodians approve: its Merkle root (writroot.rules.merkle; the SHA-256
over RFC 8785 JSON for version 1 locks) is the plan digest.
Host details (module, token, PIN) are not in it, so the reviewed plan runs unchanged. It
carries its own `source` (the parsed YAML): every command that reads a lock locks the source
again from the inputs beside it and refuses unless the result is byte-for-byte the lock, so
a hand-edited lock skips no rule (`revalidate`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from writroot.ceremony import strictyaml
from writroot.ceremony.inputs import LockContext, read_statement, resolve_input
from writroot.ceremony.logs import LogState, check_head
from writroot.ceremony.logs import lock_state as lock_log
from writroot.ceremony.operations import lock_op, op_check
from writroot.ceremony.trust import Pinned, chained, establish_inputs
from writroot.ceremony.trust import record as established_record
from writroot.errors import BadInput, PolicyRefused, VerificationFailed, excerpt, field_name
from writroot.jsonio import canonical, format_time, read_json_file
from writroot.rules import Violation
from writroot.rules.merkle import MERKLE_VERSION, inclusion, plan_digest
from writroot.rules.plan import PLAN_VERSION, Authority, PlanFacts, check_locked, check_structure
from writroot.statements import roster_check
from writroot.statements import schema as s
from writroot.verify.trust import Established


def _signer(value: Any, where: str) -> str:
    if value == "generate":
        return "generate"
    from writroot.crypto.fingerprint import normalise

    return s.digest(normalise(value) if isinstance(value, str) else value, where)


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
    #: The fleet policy in force when it was (re)locked: not part of the plan's digest.
    policy: dict[str, Any] | None = field(default=None, compare=False)
    #: What the trust engine established when it was (re)locked (None for genesis).
    trust: Established | None = field(default=None, compare=False)
    #: The issuer's log as (re)locking found it (None: the issuer keeps no log).
    log: LogState | None = field(default=None, compare=False)

    @property
    def sha256(self) -> str:
        return plan_digest(self.document)

    def inclusion(self, index: int) -> dict[str, Any]:
        """The proof of operation `index`'s place in the plan an artifact carries."""
        return inclusion(self.document, index)

    @property
    def ceremony(self) -> str:
        return str(self.document["ceremony"])

    @property
    def operations(self) -> list[dict[str, Any]]:
        ops: list[dict[str, Any]] = self.document["operations"]
        return ops

    def dumps(self) -> bytes:
        return canonical(self.document) + b"\n"


def _genesis_roster(base: Path, rel: str, where: str, version: int = 1,
                    fleet: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
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
        custodian = check_enrolment(env, str(epath), fleet)
        for key in ("id", "name"):
            if custodian[key] != c[key]:
                raise BadInput(f"the roster entry's {key} is {excerpt(c[key])} but its "
                               f"enrolment ({excerpt(c['enrolment'])}) says "
                               f"{excerpt(custodian[key])}", at)
        members.append({"id": c["id"], "name": c["name"], "key": custodian["key"].to_json()})
    roster = {"version": version, "threshold": proposal["threshold"], "custodians": members}
    try:
        roster_check(roster, "roster")
    except BadInput as exc:
        raise located.rebase(exc, "roster") from None
    return roster, pin


def _roster_in_force(base: Path, rel: str, where: str, fleet: str,
                     trust: Established) -> tuple[dict[str, Any], dict[str, Any]]:
    """The roster in force, as the trust engine derives it; the plan's `roster:` input must
    be a statement that carries exactly it and chains to the anchor."""
    _env, st, pin = read_statement(base, rel, where, ("fleet-root", "fleet-rotation", "roster"))
    if st.fleet != fleet:
        raise BadInput(f"the roster is fleet {st.fleet!r}'s, the plan's fleet is {fleet!r}",
                       where)
    chained(trust, pin["sha256"], where)
    roster = st.subject["roster"]
    roster = {**roster, "custodians": [{**c, "key": c["key"].to_json()}
                                       for c in roster["custodians"]]}
    if trust.roster is None or canonical(roster) != canonical(dict(trust.roster)):
        in_force = trust.roster["version"] if trust.roster is not None else "unknown"
        raise PolicyRefused(f"this statement carries roster version {roster['version']}; the "
                            f"roster in force is version {in_force}: name the statement that "
                            "carries it [roster-in-force]", where)
    return roster, pin


def check_plan(located: strictyaml.Located) -> dict[str, Any]:
    """The plan's own rules, before any input is read."""
    try:
        plan = s.record(located.value, "plan", PLAN_FIELDS, PLAN_OPTIONAL)
    except BadInput as exc:
        raise located.rebase(exc, "plan") from None
    _refuse(check_structure(plan, PlanFacts()), located)
    return plan


def _refuse(violations: list[Violation], located: strictyaml.Located) -> None:
    """The first broken rule as a one-line error naming the rule, file, line and field."""
    if not violations:
        return
    v = violations[0]
    error = BadInput if v.rule in ("plan-well-formed", "plan-structure") else PolicyRefused
    raise error(f"{v.message} [{v.rule}]", located.where(v.where))


def lock(plan_path: Path, now: datetime, pinned: Pinned | None = None) -> LockedPlan:
    """Parse a plan strictly and pin every input; errors name file, line and field. Every
    plan but genesis is checked against the pinned anchor (`pinned`)."""
    return _lock(strictyaml.load_file(plan_path), plan_path.parent, now, pinned)


#: What to do when a lock no longer holds, and who does it.
AGAIN = ("the officer locks the plan again and the custodians approve the new lock")
NO_ANCHOR = ("a plan after genesis is checked against the pinned fleet anchor: give --anchor "
             "FINGERPRINT|PEM and --trust DIR (the fleet's published set), or anchor: and "
             "trust: in the host profile")


def _lock(located: strictyaml.Located, base: Path, now: datetime,
          pinned: Pinned | None) -> LockedPlan:
    plan = check_plan(located)
    genesis = plan["signer"] == "generate"
    trust: Established | None = None
    if genesis:
        if pinned is not None:
            raise PolicyRefused("a genesis plan makes the fleet anchor, so none may be pinned "
                                "for it (drop --anchor, or the host profile's anchor:) "
                                "[genesis-anchor]", located.where("signer"))
        roster, roster_pin = _genesis_roster(base, plan["roster"], located.where("roster"),
                                             fleet=plan["fleet"])
    else:
        if pinned is None:
            raise BadInput(NO_ANCHOR, located.where("signer"))
        trust = establish_inputs(pinned, located.value, base, now)
        if trust.fleet != plan["fleet"]:
            raise PolicyRefused(f"the pinned anchor is fleet {trust.fleet!r}'s, the plan's "
                                f"fleet is {plan['fleet']!r}", located.where("fleet"))
        roster, roster_pin = _roster_in_force(base, plan["roster"], located.where("roster"),
                                              plan["fleet"], trust)
    ctx = LockContext(base, located.where, plan["signer"], roster, fleet_name=plan["fleet"],
                      trust=trust, now=now)
    document: dict[str, Any] = {"plan": MERKLE_VERSION, "ceremony": plan["ceremony"],
                                "fleet": plan["fleet"], "signer": plan["signer"],
                                "roster": {**roster_pin, "roster": roster},
                                "source": located.value}
    facts = PlanFacts(now=now)
    if "fleet_root" in plan and trust is not None:
        where = located.where("fleet_root")
        _env, st, pin = read_statement(base, plan["fleet_root"], where,
                                       ("fleet-root", "fleet-rotation"))
        chained(trust, pin["sha256"], where)
        assert trust.fleet_root is not None
        key = st.subject["key"]
        if key != trust.fleet_root:
            raise PolicyRefused(f"this is fleet root version {st.subject['version']} "
                                f"({key.keyid}), superseded: the fleet root in force is "
                                f"version {trust.fleet_version} ({trust.fleet_root.keyid}) "
                                "[fleet-root-in-force]", where)
        ctx.fleet = {"key": key, "version": st.subject["version"],
                     "policy": st.subject["policy"], "not_after": st.not_after}
        ctx.policy = ctx.fleet["policy"]
        document["fleet_root"] = {**pin, "keyid": key.keyid, "version": st.subject["version"],
                                  "not_after": format_time(st.not_after)}
        facts = PlanFacts(now=now, policy=ctx.policy, fleet_keyid=key.keyid,
                          fleet_version=st.subject["version"], fleet_not_after=st.not_after)
    authority_keyid = None
    if "authority" in plan and trust is not None:
        where = located.where("authority")
        _env, st, pin = read_statement(base, plan["authority"], where, ("regional-root",))
        if ctx.fleet is None:
            raise BadInput("a regional ceremony names the fleet root in force", where)
        chained(trust, pin["sha256"], where)
        key = st.subject["key"]
        if key.keyid != plan["signer"]:
            raise PolicyRefused(f"the plan's signer {plan['signer']} is not the key the "
                                f"authority certifies ({key.keyid})", where)
        if trust.authority(key.keyid) is None:
            raise VerificationFailed("this regional root is not trusted now (superseded, "
                                     "revoked, expired or in conflict) [authority-in-force]",
                                     where)
        authority_keyid = key.keyid
        ctx.authority = st
        document["authority"] = {**pin, "region": st.subject["region"],
                                 "not_after": st.document["not_after"]}
        facts = PlanFacts(now=now, policy=facts.policy, fleet_keyid=facts.fleet_keyid,
                          fleet_version=facts.fleet_version,
                          fleet_not_after=facts.fleet_not_after,
                          authority=Authority(st.subject["region"], key.keyid,
                                              st.subject["may_sign"], st.subject["enclaves"],
                                              st.not_after))
    elif trust is not None and trust.fleet_root is not None \
            and plan["signer"] != trust.fleet_root.keyid:
        raise PolicyRefused(f"the plan's signer is not the fleet root in force "
                            f"({trust.fleet_root.keyid}, version {trust.fleet_version}) "
                            "[fleet-root-in-force]", located.where("signer"))
    if trust is not None:
        document["established"] = established_record(trust, authority_keyid)
    region = ctx.authority.subject["region"] if ctx.authority is not None else None
    log = lock_log(plan, trust, pinned.trust_dir if pinned else None, region,
                   ctx.authority.subject.get("log_key") if ctx.authority is not None else None)
    if log is not None:
        document["log"] = log.head()  # the head it starts from: approved with the plan
    locked_ops = []
    for i, op in enumerate(plan["operations"]):
        if op["op"] == "sign-fleet-root":
            op = {**op, "policy": _policy(op.get("policy"), located, i)}
            ctx.policy = op["policy"]
        if op["op"] == "sign-roster":
            new, pin = _genesis_roster(base, op["roster"],
                                       located.where(f"operations[{i}].roster"),
                                       version=roster["version"] + 1, fleet=plan["fleet"])
            op = {**op, "roster": {**pin, "roster": new}}
        locked_ops.append(lock_op(op, i, ctx))
    document["operations"] = locked_ops
    _refuse(check_locked(document, facts), located)
    return LockedPlan(document, ctx.policy, trust, log)


def _policy(value: Any, located: strictyaml.Located, index: int) -> dict[str, Any]:
    from writroot.ceremony.operations import policy_of
    from writroot.statements import DEFAULT_POLICY

    return policy_of(value, DEFAULT_POLICY, located.where, f"operations[{index}]")


def load_locked(path: Path) -> LockedPlan:
    """Read a locked plan's shape only (for tools that never sign with it); anything that
    approves or runs a plan uses `revalidate`."""
    obj = read_json_file(path)
    shape = check_locked(obj, PlanFacts()) if isinstance(obj, dict) else []
    if not isinstance(obj, dict) or any(v.rule == "plan-well-formed" for v in shape):
        why = shape[0] if shape else Violation("plan-well-formed", "", "not an object")
        raise BadInput(f"not a locked plan: {why.message} [{why.rule}]",
                       f"{path}: {why.where}" if why.where else str(path))
    roster_check(obj["roster"].get("roster") if isinstance(obj["roster"], dict) else None,
                 f"{path}: roster.roster")
    return LockedPlan(obj)


def revalidate(path: Path, now: datetime, pinned: Pinned | None) -> LockedPlan:
    """A locked plan, trusted for nothing: its source is locked again from the inputs beside
    it (every input re-hashed, every signature and proof of possession re-checked, every
    statement established from the pinned anchor, every rule applied at `now`) and the result
    must be exactly the lock."""
    if path.suffix in (".yaml", ".yml"):
        raise BadInput("this is the YAML plan; lock it with `writroot ceremony plan` and give "
                       "the locked plan (PLAN.lock.json)", str(path))
    given = load_locked(path)
    genesis = given.document.get("signer") == "generate"
    if not genesis and "established" not in given.document:
        raise PolicyRefused("this lock predates anchor pinning (it records no `established`): "
                            "lock the plan again with `writroot ceremony plan --anchor ... "
                            "--trust ...` and have it approved again [plan-relock]", str(path))
    if not genesis and pinned is not None \
            and given.document["established"].get("anchor") != pinned.anchor.keyid:
        raise PolicyRefused(f"the plan was locked against anchor "
                            f"{str(given.document['established'].get('anchor'))[:16]}..., "
                            f"not the anchor you pinned ({pinned.anchor.keyid[:16]}...): do "
                            "not approve or run it until the two agree [anchor-pinned]",
                            f"{path}: established.anchor")
    _inputs_unchanged(given.document, path.parent)
    source = strictyaml.Located(given.document["source"], {}, f"{path}: source")
    relocked = _lock(source, path.parent, now, pinned)
    relocked = _log_head(given, relocked, path)
    was, now_is = given.document.get("established"), relocked.document.get("established")
    if canonical(was or {}) != canonical(now_is or {}):
        where = first_difference(was, now_is, "established")
        raise PolicyRefused("what the pinned anchor and the trust directory establish now "
                            f"differs from what the lock recorded ({where}: "
                            f"{_at(was, where)} -> {_at(now_is, where)}); {AGAIN} "
                            "[plan-established]", f"{path}: {where}")
    if canonical(relocked.document) != canonical(given.document):
        where = first_difference(given.document, relocked.document)
        raise PolicyRefused("the lock is not what its source and inputs lock to (edited by "
                            f"hand, or an input changed); {AGAIN} [plan-relock]",
                            f"{path}: {where}")
    return relocked


def _log_head(given: LockedPlan, relocked: LockedPlan, path: Path) -> LockedPlan:
    """The log given now must extend the head the plan was approved on and not hold this
    plan's ceremony record; the plan keeps its approved head (its digest is the approved
    one)."""
    head, log = given.document.get("log"), relocked.log
    if head is None and log is None:
        return relocked
    if head is None or log is None:
        raise PolicyRefused("the issuer's log key changed since the plan was locked; lock the "
                            "plan again and have it approved again [plan-relock]",
                            f"{path}: log")
    check_head(head, log, given.sha256, relocked.trust, f"{path}: log")
    return LockedPlan({**relocked.document, "log": head}, relocked.policy, relocked.trust,
                      log)


def _at(value: Any, where: str) -> str:
    """The value at a field path of first_difference's form (for messages)."""
    for part in where.split(".")[1:]:
        value = value.get(part) if isinstance(value, dict) else None
    return "absent" if value is None else str(value)[:80]


def _pins(value: Any) -> list[dict[str, Any]]:
    """Every input pin ({path, sha256, size, ...}) anywhere in a locked plan."""
    if isinstance(value, dict):
        here = [value] if {"path", "sha256", "size"} <= set(value) else []
        return here + [p for k, v in value.items() if k != "source" for p in _pins(v)]
    if isinstance(value, list):
        return [p for v in value for p in _pins(v)]
    return []


def _inputs_unchanged(document: dict[str, Any], base: Path) -> None:
    """Each input still has the digest the custodians approved (checked first, so a changed
    input is named as such rather than by whatever its new bytes break)."""
    for pin in _pins(document):
        path = str(pin["path"])
        # the path comes from the lock, hostile until re-locked: named in a short form
        where = str(base / path) if len(path) <= 255 and path.isprintable() \
            else f"{base}/{excerpt(path)}"
        _data, now = resolve_input(base, path, where)
        if now["sha256"] != pin["sha256"]:
            raise PolicyRefused(f"input changed since the plan was locked (sha256 "
                                f"{now['sha256'][:16]}... is not the approved "
                                f"{str(pin['sha256'])[:16]}...)", where)


def first_difference(a: Any, b: Any, where: str = "") -> str:
    """The first field path at which two JSON values differ (types count: true is not 1)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            name = field_name(k)  # a key from the hostile side: a short, printable form
            if k not in a or k not in b:
                return f"{where}.{name}" if where else name
            found = first_difference(a[k], b[k], f"{where}.{name}" if where else name)
            if found:
                return found
        return ""
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return where or "(list length)"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = first_difference(x, y, f"{where}[{i}]")
            if found:
                return found
        return ""
    if type(a) is not type(b) or a != b:
        return where or "(document)"
    return ""
