"""The state the phases share while they run (`Verifier`), its small queries, and the
guard that makes a fault in one statement a finding on it."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

from writroot.errors import WritrootError
from writroot.jsonio import format_time
from writroot.quorum.count import Roster, Tally
from writroot.rules import Violation
from writroot.verify.model import (
    Anchor,
    Chain,
    Item,
    Prior,
    Revocations,
    Revoked,
    RosterTerm,
    Trust,
    Trusted,
    roster_at,
)
from writroot.verify.report import Finding

_P = ParamSpec("_P")
_R = TypeVar("_R")

#: The cause of findings that are not a rule's own verdict (report.CAUSES).
_CAUSES = {"malformed": "malformed", "well-formed": "malformed", "engine-error": "engine",
           "issuer-known": "upstream", "unchecked": "rule"}


def guarded(method: Callable[Concatenate[Verifier, Item, _P], _R]
             ) -> Callable[Concatenate[Verifier, Item, _P], _R | bool]:
    """A fault while judging one statement is a finding on it, never the end of the report
    (DESIGN §6): input the parser let through but a rule could not take is `malformed`,
    anything else an `engine-error`."""
    @functools.wraps(method)
    def judged(self: Verifier, item: Item, /, *args: _P.args, **kwargs: _P.kwargs
               ) -> _R | bool:
        self.judged.add(item.digest)
        try:
            return method(self, item, *args, **kwargs)
        except (WritrootError, KeyError, TypeError, ValueError, AttributeError, IndexError,
                OverflowError) as exc:
            self.fail(item, "malformed", f"could not be judged: {type(exc).__name__}: {exc}")
        except Exception as exc:  # one artifact's fault is a finding on it
            self.fail(item, "engine-error", f"fault while judging: {type(exc).__name__}: "
                      f"{exc}")
        return False
    return judged


@dataclass
class Verifier:
    """What the phases (chain, revocation, authorities, judge) build up over one run, and
    nothing between runs: each `verify` makes a new one. Caches are keyed by content (a
    statement's PAE digest, a key's keyid, a plan's digest, a roster's leaf)."""

    anchor: Anchor
    at: datetime
    independent: bool
    #: Fleet roots trusted so far, while the chain phase walks the chain; once
    #: established, `trusted` reads the frozen `trust` instead.
    building: dict[str, Trusted] = field(default_factory=dict)
    fleet: str | None = None
    current: Trusted | None = None  # the fleet root at the end of the chain
    current_item: Item | None = None
    anchor_item: Item | None = None  # the statement that introduced the pinned root
    version: int = 0
    chain: int = 0
    anchor_statement_failed: bool = False
    # Rosters and policies in force over time, while the chain phase builds them.
    rosters: list[RosterTerm] = field(default_factory=list)
    policies: list[tuple[datetime, dict[str, Any]]] = field(default_factory=list)
    #: The phases' frozen results, once each has run: the chain (after the revocation
    #: step), the revocations. Later phases read these, never the fields above.
    fleet_chain: Chain | None = None
    revocations: Revocations = field(default_factory=lambda: Revocations({}))
    plans: dict[str, tuple[str, str, Roster]] = field(default_factory=dict)
    tallies: dict[tuple[str, datetime, int | None],
                  list[tuple[Any, Roster, frozenset[str], Tally]]] = field(default_factory=dict)
    rotations: list[Item] = field(default_factory=list)
    forked: set[str] = field(default_factory=set)  # rotations in a fork, by identity
    fork_at: int | None = None
    #: regional root keyid -> trust domain -> its `enclaves` entries
    enclave_index: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)

    #: (statement identity, keyid) -> verified? (a conflict check and the main check share
    #: work; keyed by content)
    verified: dict[tuple[str, str], bool] = field(default_factory=dict)
    #: (file SHA-256, keyid) -> does a signature under that key verify with the primary
    #: engine? Computed in bulk beforehand (writroot.verify.bulk); keyed by content.
    signatures: Mapping[tuple[str, str], bool] = field(default_factory=dict)
    #: Everything established (chain, revocations, authorities), once it is.
    trust: Trust | None = None
    #: What a first pass found that the phases before revocation could not know
    #: (`Prior`): revocations of custodian keys, serials claimed by two statements.
    prior: Prior | None = None
    #: Statements some rule judged (by identity): the others are reported unchecked.
    judged: set[str] = field(default_factory=set)
    faults: dict[tuple[str, str], str] = field(default_factory=dict)  # engine failures
    #: plan_sha256 -> `rules.plan.check_header` of the header an inclusion proof led to it
    headers: dict[str, list[Violation]] = field(default_factory=dict)

    @classmethod
    def judging(cls, anchor: Anchor, trust: Trust, independent: bool = False) -> Verifier:
        """A verifier for judging statements against an established state alone (no
        phase before judging runs again)."""
        chain = trust.chain
        return cls(anchor, chain.at, independent, fleet=chain.fleet,
                   anchor_statement_failed=chain.anchor_failed, rosters=list(chain.rosters),
                   fleet_chain=chain, revocations=trust.revocations, trust=trust,
                   prior=trust.prior)

    def fail(self, item: Item, check: str, message: str, cause: str = "") -> None:
        cause = cause or _CAUSES.get(check, "rule")
        item.result.findings.append(Finding(item.result.name, check, message,
                                            malformed=cause == "malformed", cause=cause))

    def violations(self, item: Item, found: list[Violation]) -> bool:
        for v in found:
            self.fail(item, v.rule, f"{v.where}: {v.message}" if v.where else v.message)
        return not found

    def conflict(self, items: list[Item], check: str, slot: str) -> None:
        """Statements that claim one slot: each is reported, naming the others."""
        for item in items:
            others = ", ".join(sorted(o.result.name for o in items if o is not item))
            self.fail(item, check, f"{slot} is claimed by another statement too ({others}); "
                      "neither is trusted")

    def window(self, item: Item) -> bool:
        st = item.statement
        when = format_time(self.at)
        if self.at < st.not_before:
            self.fail(item, "validity-window",
                      f"not valid until {format_time(st.not_before)} (reference time {when})")
            return False
        if self.at > st.not_after:
            self.fail(item, "validity-window",
                      f"expired at {format_time(st.not_after)} (reference time {when})")
            return False
        return True

    def fleet_matches(self, item: Item) -> bool:
        st = item.statement
        if self.fleet is not None and st.fleet != self.fleet:
            self.fail(item, "fleet-matches", f"statement is for fleet {st.fleet!r}, the "
                      f"anchor's fleet is {self.fleet!r}")
            return False
        return True

    # -- the anchor and the fleet-root rotation chain -------------------------------------

    @property
    def trusted(self) -> Mapping[str, Trusted]:
        return self.trust.trusted if self.trust is not None else self.building

    @property
    def contested(self) -> frozenset[str]:
        """Trust domains in conflict."""
        return self.trust.authorities.contested if self.trust is not None else frozenset()

    @property
    def distrusted(self) -> Mapping[str, str]:
        """Regional roots trusted for nothing (a conflict): keyid -> the statement's name."""
        return self.trust.authorities.distrusted if self.trust is not None else {}

    @property
    def revoked(self) -> Mapping[str, Revoked]:
        return self.revocations.entries

    def chain_trusts(self, keyid: str) -> bool:
        """Does the chain, once walked, trust this fleet root? (Only the root in force
        must be unexpired: `Chain.expired`.) While the chain is walked, its roots are."""
        return self.fleet_chain is None or self.fleet_chain.trusts(keyid) is not None

    def policy_at(self, when: datetime) -> dict[str, Any]:
        if self.fleet_chain is not None:
            return self.fleet_chain.policy_at(when)
        current = self.policies[0][1] if self.policies else {}
        for since, policy in self.policies:
            if since <= when:
                current = policy
        return current

    def roster_at(self, when: datetime) -> RosterTerm | None:
        """The roster in force when a statement was signed."""
        if self.fleet_chain is not None:
            return self.fleet_chain.roster_at(when)
        return roster_at(self.rosters, when)

    def not_revoked(self, item: Item) -> bool:
        st = item.statement
        if st.type == "revocation-list":
            return True
        targets = [f"serial:{st.serial}", f"keyid:{st.issuer_keyid}"]
        if "key" in st.subject:
            targets.append(f"keyid:{st.subject['key'].keyid}")
        ok = True
        for target in targets:
            hit = self.revoked.get(target)
            if hit is not None and hit.entry["revoked_at"] <= self.at:
                self.fail(item, "not-revoked", f"{target} revoked at "
                          f"{format_time(hit.entry['revoked_at'])} ({hit.entry['reason']}) by "
                          f"revocation list {hit.sequence}")
                ok = False
        return ok

    # -- regional roots and what they sign ------------------------------------------------

    def unknown_issuer(self, item: Item) -> None:
        st = item.statement
        if st.issuer_keyid in self.distrusted:
            self.fail(item, "issuer-known", f"issuer {st.issuer_keyid}'s regional-root "
                      f"statement ({self.distrusted[st.issuer_keyid]}) is in conflict: it "
                      "certifies nothing")
        elif st.issuer_keyid == self.anchor.keyid and self.anchor_statement_failed:
            self.fail(item, "issuer-known", "the anchor's fleet-root statement did not "
                      "verify (see its findings)")
        elif st.issuer_keyid == self.anchor.keyid:
            self.fail(item, "issuer-known", "the anchor's fleet-root statement is not among "
                      "the artifacts; pass it, or pin the anchor by PEM")
        else:
            self.fail(item, "issuer-known",
                      f"issuer {st.issuer_keyid} was never certified under the anchor")
