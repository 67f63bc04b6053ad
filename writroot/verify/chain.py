"""The anchor and the fleet-root chain: the pinned root's own statement, rotations and
roster changes, the policies and rosters in force over time."""

from __future__ import annotations

from dataclasses import replace

from writroot.crypto.keys import PublicKey
from writroot.jsonio import canonical
from writroot.quorum.count import Roster
from writroot.verify.judge import check_issued
from writroot.verify.model import Chain, Item, RootTerm, RosterTerm, Trusted
from writroot.verify.quorum import quorum_proven
from writroot.verify.signatures import signature_valid, signed_by
from writroot.verify.state import Verifier, guarded

#: A hard bound on the rotation chain, whatever a policy says.
MAX_CHAIN = 64


def establish_anchor(v: Verifier, items: list[Item]) -> None:
    """The pinned root's own statement: genesis, or the rotation that made it current.
    Two of them (different payloads that both verify) are a conflict, and a statement the
    anchor signed that breaks a rule condemns it too: the anchor is then trusted for nothing,
    whether it was pinned by fingerprint or by PEM. A copy the anchor did not sign is only
    reported."""
    if v.anchor.key is not None:
        v.current = v.building[v.anchor.keyid] = Trusted(
            v.anchor.key, "fleet-root", None, None)
    good: list[Item] = []
    unsigned = False
    for item in sorted(items, key=lambda i: i.order):
        v.judged.add(item.digest)
        verdict = anchor_statement(v, item)
        if verdict is None:
            continue
        if verdict == UNSIGNED:  # not the anchor's: reported, and it distrusts nothing
            unsigned = True
        elif verdict:
            good.append(item)
        else:  # the anchor itself signed a statement that breaks a rule: trust it for nothing
            v.anchor_statement_failed = True
    if unsigned and not good:  # no statement of the anchor verifies
        v.anchor_statement_failed = True
    if len(good) > 1:  # the anchor signed two statements of itself: trust neither
        v.conflict(good, "conflict-anchor", f"the pinned fleet root's own statement "
                   f"({v.anchor.keyid})")
        v.anchor_statement_failed = True
    if v.anchor_statement_failed:
        v.building.pop(v.anchor.keyid, None)  # a PEM pins the key, not its record
        v.current = None
        return
    if good:
        item = good[0]
        st = item.statement
        key = st.subject["key"]
        v.current = v.building[key.keyid] = Trusted(
            key, "fleet-root", None, st, since=st.issued_at, version=st.subject["version"])
        v.current_item = item
        v.version = st.subject["version"]
        v.fleet = st.fleet
        v.policies = [(st.issued_at, st.subject["policy"])]
        v.rosters = [RosterTerm.of(st.issued_at, Roster.from_checked(st.subject["roster"]))]
        v.anchor_item = item


#: An anchor statement the anchor's key did not sign: a forgery, or a damaged copy. Anyone
#: can make one, so it knocks nothing out while a statement the anchor signed is given.
UNSIGNED = "unsigned"


@guarded
def anchor_statement(v: Verifier, item: Item) -> bool | str | None:
    """Is this the anchor's own statement (None: not about the anchor), and does it hold
    (`UNSIGNED`: the anchor's signature does not verify)? Its proof of quorum is judged
    only once its signatures verify."""
    st = item.statement
    key: PublicKey = st.subject["key"]
    if key.keyid != v.anchor.keyid:
        if st.type == "fleet-root":
            v.fail(item, "anchor-pinned", f"fleet-root key {key.keyid} is not the "
                   f"pinned anchor {v.anchor.keyid}")
        return None
    if v.anchor.key is not None and key != v.anchor.key:
        v.fail(item, "anchor-pinned", "fleet-root key differs from the pinned PEM")
        return None
    roster = RosterTerm.of(st.issued_at, Roster.from_checked(st.subject["roster"]))
    if st.type == "fleet-root":
        ok = signed = issuer_is(v, item, key)
    else:
        ok = signed = signature_valid(v, item, st.subject["previous"])
    by_anchor = signature_valid(v, item, key)
    signed = by_anchor and signed
    ok = signed and quorum_proven(v, item, roster) and ok
    ok = policy_algorithm(v, item) and ok
    if not by_anchor:
        return UNSIGNED
    return ok and item.result.ok


def issuer_is(v: Verifier, item: Item, key: PublicKey) -> bool:
    st = item.statement
    if st.issuer_keyid != key.keyid or st.issuer_role != "fleet-root":
        v.fail(item, "issuer-self-signed", f"issuer must be fleet-root {key.keyid}, not "
               f"{st.issuer_role} {st.issuer_keyid}")
        return False
    return True


def policy_algorithm(v: Verifier, item: Item) -> bool:
    st = item.statement
    key: PublicKey = st.subject["key"]
    required = st.subject["policy"]["fleet_root_algorithm"]
    if key.algorithm.name != required:
        v.fail(item, "policy-algorithm", f"fleet root is {key.algorithm.name}, policy "
               f"requires {required}")
        return False
    return True


@guarded
def check_rotation(v: Verifier, item: Item) -> None:
    """One step of the chain: signed by the current root and the new one, version +1,
    approved under the roster in force, the chain no longer than policy allows."""
    st = item.statement
    if item is v.anchor_item:
        return
    previous: PublicKey = st.subject["previous"]
    new: PublicKey = st.subject["key"]
    if v.current is None:
        v.fail(item, "rotation-chain", "no trusted fleet root to rotate from (see the "
               "anchor's findings)")
        return
    if item.digest in v.forked:
        return  # reported as a conflict already
    if previous.keyid == v.current.key.keyid:
        rivals = [r for r in v.rotations if r.statement.subject["previous"] == previous
                  and signed_by(v, r, previous)]
        if len({r.digest for r in rivals}) > 1:
            v.conflict(rivals, "conflict-rotation", f"the rotation from fleet root "
                       f"version {v.version} ({previous.keyid})")
            v.forked |= {r.digest for r in rivals}
            v.fork_at = v.version
            return
    if v.fork_at is not None:
        v.fail(item, "rotation-chain", f"the chain forks at version {v.fork_at}; "
               "no rotation after a fork is trusted")
        return
    if previous.keyid != v.current.key.keyid:
        known = previous.keyid in v.trusted
        v.fail(item, "rotation-chain", f"rotates {previous.keyid}, which is "
               f"{'a superseded root' if known else 'not in the chain'}; the current "
               f"root is {v.current.key.keyid}")
        return
    ok = v.fleet_matches(item)
    if st.issuer_keyid != previous.keyid or st.issuer_role != "fleet-root":
        v.fail(item, "rotation-issuer", "a rotation is issued by the root it replaces")
        ok = False
    signed = signature_valid(v, item, previous)
    signed = signature_valid(v, item, new) and signed
    ok = signed and ok
    if st.subject["version"] != v.version + 1:
        v.fail(item, "rotation-version", f"version {st.subject['version']} does not "
               f"follow version {v.version}")
        ok = False
    limit = min(MAX_CHAIN, v.policy_at(st.issued_at).get("max_rotation_chain",
                                                         MAX_CHAIN))
    if v.chain + 1 > limit:
        v.fail(item, "rotation-chain-length", f"the chain from the pinned root would be "
               f"{v.chain + 1} rotations long; at most {limit} are allowed")
        ok = False
    if v.current.since is not None and st.issued_at < v.current.since:
        v.fail(item, "rotation-chain", "issued before the root it replaces took office")
        ok = False
    in_force = v.roster_at(st.issued_at)
    if in_force is not None and canonical(Roster.from_checked(
            st.subject["roster"]).to_json()) != canonical(in_force.json):
        v.fail(item, "roster-matches", "a rotation carries the roster in force; change "
               "rosters with a roster statement")
        ok = False
    ok = signed and quorum_proven(v, item, in_force) and ok
    ok = policy_algorithm(v, item) and ok
    if ok and item.result.ok:
        v.building[previous.keyid] = replace(v.current, until=st.issued_at)
        v.current = v.building[new.keyid] = Trusted(
            new, "fleet-root", None, st, since=st.issued_at, version=st.subject["version"])
        v.current_item = item
        v.version = st.subject["version"]
        v.chain += 1
        v.policies.append((st.issued_at, st.subject["policy"]))


@guarded
def check_roster(v: Verifier, item: Item) -> None:
    """A roster change: version +1, approved under the old roster and the new one."""
    st = item.statement
    new = Roster.from_checked(st.subject["roster"])
    ok = check_issued(v, item)
    old = v.roster_at(st.issued_at)
    if old is not None and new.version != old.version + 1:
        v.fail(item, "roster-version", f"roster version {new.version} does not follow "
               f"version {old.version}")
        ok = False
    term = RosterTerm.of(st.issued_at, new)
    if ok:
        ok = quorum_proven(v, item, term, label="new roster")
    if ok and item.result.ok:
        v.rosters.append(term)


def freeze(v: Verifier) -> Chain:
    """The chain phase's result, as a value: the roots in the order they took office."""
    roots = tuple(RootTerm(t.key, t.version, t.since, t.until, t.statement)
                  for t in v.trusted.values() if t.role == "fleet-root")
    if v.current is not None:  # the root in force last, whatever the insertion order
        roots = tuple(r for r in roots if r.key != v.current.key) + tuple(
            r for r in roots if r.key == v.current.key)
    return Chain(v.at, v.fleet, roots if v.current is not None else (),
                 tuple((since, dict(p)) for since, p in v.policies),
                 tuple(v.rosters), anchor_failed=v.anchor_statement_failed,
                 fork_at=v.fork_at)


def under_revocation(v: Verifier, chain: Chain, items: list[Item]) -> Chain:
    """The revocation step of the chain: each fleet-level statement judged against the
    revocations (found only after the chain was walked); a new chain naming the roots
    whose own statement is revoked."""
    revoked: set[str] = set()
    for item in items:
        if not v.not_revoked(item) and item.statement.type in ("fleet-root",
                                                                "fleet-rotation"):
            revoked.add(item.statement.subject["key"].keyid)
    return chain.revoking(frozenset(revoked))

# -- everything else: who signed it, and may they? ------------------------------------
