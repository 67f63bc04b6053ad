"""Proofs of quorum: the carried plan or inclusion proof, the plan rules and header pins,
and the approvals counted against the roster in force (revoked custodians count nothing)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from writroot.errors import WritrootError
from writroot.jsonio import format_time
from writroot.quorum.count import Roster, Tally, count
from writroot.rules import Violation, merkle
from writroot.rules.covers import covers, covers_included
from writroot.rules.plan import (
    Authority,
    Pins,
    PlanFacts,
    check_header,
    check_included,
    check_locked,
    check_pins,
)
from writroot.rules.validity import approval_window
from writroot.statements import roster_check
from writroot.verify.model import (
    Item,
    Revoked,
    RosterTerm,
    Trusted,
    approval_signer,
    approvals_key,
    exact_json,
    genesis_policy,
)
from writroot.verify.state import Verifier


def quorum_proven(v: Verifier, item: Item, roster_in_force: RosterTerm | None,
                  label: str = "") -> bool:
    """The artifact carries a locked plan covering it, approved by M custodians of the
    roster in force, unexpired when it was signed."""
    st = item.statement
    cer = st.ceremony
    if "inclusion" in cer:
        return quorum_included(v, item, roster_in_force, label)
    plan = cer.get("plan")
    if not isinstance(plan, dict):
        v.fail(item, "quorum-proof", "carries no locked plan")
        return False
    try:
        digest, roster = plan_facts(v, cer["plan_sha256"], plan)
    except (WritrootError, AttributeError) as exc:
        v.fail(item, "quorum-proof", f"malformed locked plan: {exc}")
        return False
    if digest != cer["plan_sha256"] or plan.get("ceremony") != cer["id"] \
            or plan.get("fleet") != st.fleet:
        v.fail(item, "quorum-proof", "the carried plan is not the plan named by "
               "ceremony.plan_sha256, ceremony.id and fleet")
        return False
    if roster_in_force is None:
        v.fail(item, "quorum-proof", "the roster in force is unknown: pass the "
               "anchor's fleet-root statement")
        return False
    if label:  # a roster change: count the same approvals against the new roster too
        roster = roster_in_force.checked
    elif roster.to_json() != roster_in_force.json:
        v.fail(item, "quorum-proof", "the plan's roster is not the roster in force")
        return False
    if not covers(plan, st):
        v.fail(item, "quorum-proof", f"the approved plan has no operation that "
               f"yields this {st.type} statement")
        return False
    if not plan_rules(v, item, plan):
        return False
    if not report_plan_rules(v, item, header_pins(v, item, plan)):
        return False
    return quorum_met(v, item, roster, v.policy_at(st.issued_at)
                      or genesis_policy(plan["operations"]), label)


def quorum_included(v: Verifier, item: Item, roster_in_force: RosterTerm | None,
                    label: str) -> bool:
    """The artifact carries its operation and an inclusion proof into the approved plan
    (docs/format.md §5.10a): the proof must lead to ceremony.plan_sha256, and the rules
    judged on the header and that one operation."""
    st = item.statement
    cer = st.ceremony
    if "plan" in cer:
        v.fail(item, "quorum-proof", "carries both a plan and an inclusion proof")
        return False
    proof = cer["inclusion"]
    derived = item.derived
    root = derived.inclusion_root if derived and derived.inclusion_root else \
        merkle.inclusion_root(proof)
    if root != cer["plan_sha256"]:
        v.fail(item, "quorum-proof", "the inclusion proof does not lead to the plan "
               "named by ceremony.plan_sha256 (operation, header or path altered, or "
               "taken from another plan)")
        return False
    header, op, index = proof["header"], proof["operation"], proof["index"]
    if header.get("ceremony") != cer["id"] or header.get("fleet") != st.fleet:
        v.fail(item, "quorum-proof", "the proven plan is not the plan named by "
               "ceremony.id and fleet")
        return False
    if roster_in_force is None:
        v.fail(item, "quorum-proof", "the roster in force is unknown: pass the "
               "anchor's fleet-root statement")
        return False
    roster = roster_in_force.checked
    if not label and roster_in_force.leaf != proof["roster"]:
        v.fail(item, "quorum-proof", "the plan's roster is not the roster in force")
        return False
    if not covers_included(header, op, index, st):
        v.fail(item, "quorum-proof", f"the approved plan's operation {index} does not "
               f"yield this {st.type} statement")
        return False
    domains = [op["trust_domain"]] if isinstance(op.get("trust_domain"), str) else [
        p["trust_domain"] for p in op.get("pairing") or []
        if isinstance(p, dict) and isinstance(p.get("trust_domain"), str)]
    # The header is the same for every artifact of a plan (the proof led to plan_sha256,
    # which commits to it): its shape is judged once per plan.
    checked = v.headers.get(cer["plan_sha256"])
    if checked is None:
        checked = v.headers[cer["plan_sha256"]] = check_header(header)
    found = checked or check_included(header, op, index,
                                      plan_facts_for(v, item, domains or None),
                                      header_checked=True)
    found = found or header_pins(v, item, header)
    if not report_plan_rules(v, item, found):
        return False
    genesis = genesis_policy([op]) if header.get("signer") == "generate" else {}
    return quorum_met(v, item, roster, v.policy_at(st.issued_at) or genesis, label)


def quorum_met(v: Verifier, item: Item, roster: Roster, policy: dict[str, Any],
               label: str) -> bool:
    st = item.statement
    cer = st.ceremony
    tally = tally_of(v, cer, roster, st.issued_at, policy.get("approval_expiry_hours"),
                     item.derived.approvals if item.derived else "",
                     revoked_custodians(v, roster, st.issued_at))
    if not tally.met:
        why = "; ".join(f"{a}: {r}" for a, r in tally.rejected) or "none given"
        v.fail(item, "quorum-proof", f"{len(tally.counted)} of {tally.threshold} "
               f"approvals hold{' under the ' + label if label else ''} ({why})")
        return False
    return v.violations(item, approval_window(st.issued_at, tally.windows))


def revoked_custodians(v: Verifier, roster: Roster, when: datetime) -> Mapping[str, Revoked]:
    """The roster's keys revoked at or before `when`: their approvals count nothing (an
    approval's own time is its signer's claim, so the statement's time decides)."""
    known = dict(v.prior.revoked) if v.prior is not None else {}
    known.update(v.revoked)
    out = {}
    for c in roster.custodians:
        hit = known.get(f"keyid:{c.key.keyid}")
        if hit is not None and hit.entry["revoked_at"] <= when:
            out[c.key.keyid] = hit
    return out


def plan_rules(v: Verifier, item: Item, plan: dict[str, Any]) -> bool:
    """The carried plan keeps every rule the ceremony machine applies (writroot.rules),
    judged from the facts verified here: the policy in force and the signer's root."""
    return report_plan_rules(v, item, check_locked(plan, plan_facts_for(v, item)))


def header_pins(v: Verifier, item: Item, header: Any) -> list[Violation]:
    """The header's pins, less what the statement's own findings say already (signed
    by a superseded root; for another region)."""
    seen = {f.check for f in item.result.findings}
    implied = {"plan-header-fleet-root": "issuer-superseded",
               "plan-header-authority": "region-matches"}
    return [x for x in check_pins(header, pins_for(v, item)) if implied[x.rule] not in seen]


def pins_for(v: Verifier, item: Item) -> Pins:
    """What a plan header's pins must name: the fleet roots in force when the statement
    was signed (roots known only from a PEM, with no statement, are not judged) and the
    signer's regional root."""
    st = item.statement
    when = st.issued_at
    roots = tuple((t.key.keyid, t.version) for t in v.trusted.values()
                  if t.role == "fleet-root" and t.since is not None and t.since <= when
                  and (t.until is None or when <= t.until))
    trusted = v.trusted.get(st.issuer_keyid)
    if trusted is None or trusted.role != "regional-root" or trusted.statement is None:
        return Pins(roots)
    return Pins(roots, trusted.region, st.issuer_keyid,
                trusted.statement.subject["version"])


def plan_facts_for(v: Verifier, item: Item, domains: list[str] | None = None) -> PlanFacts:
    """The facts a carried plan is judged by: the policy in force, the signer's root
    (its enclaves: all, or those of `domains`, the only ones one operation looks up)."""
    st = item.statement
    trusted = v.trusted.get(st.issuer_keyid)
    authority = None
    if trusted is not None and trusted.role == "regional-root" and trusted.statement:
        sub = trusted.statement.subject
        enclaves = sub["enclaves"] if domains is None else enclaves_of(v, trusted,
                                                                       domains)
        authority = Authority(sub["region"], st.issuer_keyid, sub["may_sign"],
                              enclaves, trusted.statement.not_after)
    return PlanFacts(policy=v.policy_at(st.issued_at) or None, authority=authority)


def enclaves_of(v: Verifier, trusted: Trusted, domains: list[str]) -> list[dict[str, Any]]:
    """The entries of a regional root's `enclaves` for these trust domains, in their
    order (lookups by trust domain see the same entries as in the whole list)."""
    assert trusted.statement is not None
    keyid = trusted.key.keyid  # one trusted statement per regional key
    index = v.enclave_index.get(keyid)
    if index is None:
        by_domain: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for entry in trusted.statement.subject["enclaves"]:
            by_domain[entry["trust_domain"]].append(entry)
        index = v.enclave_index[keyid] = dict(by_domain)
    return [e for d in dict.fromkeys(domains) for e in index.get(d, [])]


def report_plan_rules(v: Verifier, item: Item, violations: list[Violation]) -> bool:
    seen = {f.check for f in item.result.findings}  # the statement's own finding says it
    found = [x for x in violations if x.rule not in seen]
    for x in found:
        v.fail(item, x.rule, f"the approved plan breaks a rule at {x.where or 'top'}: "
               f"{x.message}")
    return not found


def plan_facts(v: Verifier, claimed: str, plan: dict[str, Any]) -> tuple[str, Roster]:
    """A plan's digest and roster. Every statement of a ceremony carries the same plan:
    an equal plan seen before is not canonicalised again (equality is exact)."""
    exact = exact_json(plan)  # json.dumps tells true from 1, unlike ==
    seen = v.plans.get(claimed)
    if seen is not None and seen[0] == exact:
        return seen[1], seen[2]
    digest = merkle.plan_digest(plan)
    roster = Roster.from_checked(roster_check(plan.get("roster", {}).get("roster"),
                                              "plan.roster.roster"))
    v.plans[claimed] = (exact, digest, roster)
    return digest, roster


def tally_of(v: Verifier, cer: dict[str, Any], roster: Roster, when: datetime,
             max_hours: int | None, exact: str = "",
             revoked: Mapping[str, Revoked] | None = None) -> Tally:
    """Count the approvals; the same approvals, roster, time and revoked keys give the
    same count (`exact`: the approvals' `approvals_key`, when computed beforehand)."""
    gone = frozenset(revoked or {})
    key = (cer["plan_sha256"], when, max_hours)
    exact = exact or approvals_key(cer["approvals"])
    for approvals, counted_roster, out, tally in v.tallies.get(key, []):
        if approvals == exact and counted_roster == roster and out == gone:
            return tally
    named = [(f"approvals[{i}]", a) for i, a in enumerate(cer["approvals"])]
    refused: list[tuple[str, str]] = []
    if gone:
        kept = []
        for name, approval in named:
            signer = approval_signer(approval)
            if signer in gone:
                hit = (revoked or {})[signer]
                refused.append((name, f"signed by {signer[:16]}..., revoked at "
                                f"{format_time(hit.entry['revoked_at'])} by revocation "
                                f"list {hit.sequence}"))
            else:
                kept.append((name, approval))
        named = kept
    tally = count(named, roster, cer["id"], cer["plan_sha256"], when, max_hours)
    tally.rejected[:0] = refused
    v.tallies.setdefault(key, []).append((exact, roster, gone, tally))
    return tally

# -- revocation -----------------------------------------------------------------------
