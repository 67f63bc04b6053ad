"""Approvals: a custodian signs the locked plan's digest, with an expiry."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from writroot.ceremony.plan import LockedPlan
from writroot.envelope import Envelope, Signature, payload_type_for
from writroot.errors import BadInput, PolicyRefused, WritrootError
from writroot.quorum.count import Custodian, Roster
from writroot.quorum.custodian import ApprovalSigner
from writroot.statements import build, roster_check

DEFAULT_EXPIRY_HOURS = 72


def approval_hours(plan: LockedPlan) -> int:
    """The longest an approval of this plan may live: the policy in force, or a genesis
    plan's own policy."""
    from writroot.statements import DEFAULT_POLICY

    policy = plan.policy or next((op["policy"] for op in plan.operations
                                  if op["op"] == "sign-fleet-root"), DEFAULT_POLICY)
    return int(policy["approval_expiry_hours"])


def plan_roster(plan: LockedPlan) -> Roster:
    return Roster.from_checked(roster_check(plan.document["roster"]["roster"], "plan roster"))


def plan_rosters(plan: LockedPlan) -> list[Roster]:
    """The roster in force, then any new roster the plan installs (whose members approve too)."""
    return [plan_roster(plan)] + [
        Roster.from_checked(roster_check(op["roster"]["roster"], "new roster"))
        for op in plan.operations if op["op"] == "sign-roster"]


def _hours(plan: LockedPlan, hours: int | None) -> int:
    limit = approval_hours(plan)
    hours = min(DEFAULT_EXPIRY_HOURS, limit) if hours is None else hours
    if not 1 <= hours <= limit:
        raise PolicyRefused(f"approvals may live at most {limit} hours under the fleet policy "
                            "(approval_expiry_hours)", "--hours")
    return hours


def _member(plan: LockedPlan, custodian_id: str) -> Custodian:
    members = [c for r in plan_rosters(plan) for c in r.custodians if c.id == custodian_id]
    if not members:
        ids = sorted({c.id for r in plan_rosters(plan) for c in r.custodians})
        raise PolicyRefused(f"{custodian_id!r} is not on the plan's roster (its custodians: "
                            f"{', '.join(ids)})", "--custodian")
    return members[0]


def preflight(plan: LockedPlan, custodian_id: str, hours: int | None, target: Path,
              now: datetime) -> None:
    """What `approve` checks before any prompt or passphrase: the lifetime, the roster, and
    the output (an earlier approval there is named for what it is)."""
    _hours(plan, hours)
    _member(plan, custodian_id)
    if not (target.exists() or target.is_symlink()):
        return
    from writroot.jsonio import format_time, read_json_file
    from writroot.statements import parse_payload

    try:
        st = parse_payload(Envelope.from_json(read_json_file(target), str(target)).payload,
                           str(target))
        mine = st.type == "approval" and st.subject["custodian"] == custodian_id
    except WritrootError:
        mine = False
    if not mine:
        raise BadInput("exists already and is not your approval (outputs are write-once): "
                       "choose another --out", str(target))
    if st.subject["plan_sha256"] != plan.sha256:
        raise BadInput(f"holds your approval of another lock of this ceremony (plan "
                       f"{st.subject['plan_sha256'][:16]}...): the plan was locked again since; "
                       "move that file away and approve this lock", str(target))
    if st.not_after < now:
        raise BadInput(f"holds your approval of this plan, which expired at "
                       f"{format_time(st.not_after)}: move it away and approve again",
                       str(target))
    raise BadInput(f"you approved this plan already; that approval expires "
                   f"{format_time(st.not_after)} (nothing to do)", str(target))


def approve(plan: LockedPlan, custodian_id: str, signer: ApprovalSigner, now: datetime,
            hours: int | None = None) -> Envelope:
    """Sign an approval of exactly this plan; only a roster custodian with their own key may.
    It lives `hours` (default and maximum: the policy's approval_expiry_hours)."""
    hours = _hours(plan, hours)
    member = _member(plan, custodian_id)
    if member.key != signer.key:
        raise PolicyRefused(f"this key ({signer.key.keyid[:16]}...) is not {custodian_id!r}'s "
                            "enrolled key", "--key")
    ceremony = {"id": plan.ceremony, "plan_sha256": plan.sha256, "approvals": []}
    payload = build("approval", fleet=plan.document["fleet"], issuer_role="custodian",
                    issuer_keyid=signer.key.keyid, ceremony=ceremony,
                    subject={"custodian": custodian_id, "ceremony": plan.ceremony,
                             "plan_sha256": plan.sha256},
                    issued_at=now, not_before=now, not_after=now + timedelta(hours=hours))
    unsigned = Envelope(payload_type_for("approval"), payload, ())
    return Envelope(unsigned.payload_type, payload,
                    (Signature(signer.key.keyid, signer.sign(unsigned.pae())),))
