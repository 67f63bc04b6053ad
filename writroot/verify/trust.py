"""The one entry point of the trust engine: what is trusted, from an anchor, a set of parsed
statements and a time (DESIGN §4, §6).

`verify` and the ceremony machine both call `establish`; nothing else decides what is
trusted. The result is a frozen value: the fleet root in force, its policy and roster, the
revocations that apply, the regional roots trusted as authorities, and the report on every
statement given. `require` turns the judgement of one input into a one-line refusal.
Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from writroot.crypto.keys import PublicKey
from writroot.errors import VerificationFailed
from writroot.verify.core import Anchor, Parsed, _phases
from writroot.verify.model import Chain, Revocations, Trust
from writroot.verify.report import ArtifactResult, Report

__all__ = ["Authority", "Established", "Revocation", "establish", "judge"]


@dataclass(frozen=True, slots=True)
class Revocation:
    target: str  # "keyid:<hex>" or "serial:<serial>"
    revoked_at: datetime
    reason: str
    sequence: int


@dataclass(frozen=True, slots=True)
class Authority:
    """A regional root trusted at the reference time: verified, in no conflict, unrevoked."""

    region: str
    version: int
    key: PublicKey
    not_after: datetime
    digest: str  # SHA-256 of the statement's file as given
    name: str
    log_key: PublicKey | None = None  # the region's log key, when its statement names one


@dataclass(frozen=True)
class Established:
    anchor: Anchor
    at: datetime
    report: Report
    fleet: str | None
    fleet_root: PublicKey | None  # the root in force at `at`; None when the chain failed
    fleet_version: int | None
    fleet_not_after: datetime | None
    policy: Mapping[str, Any] | None
    roster: Mapping[str, Any] | None  # JSON form, the roster in force at `at`
    revocation_sequence: int | None
    revocations: Mapping[str, Revocation]
    authorities: tuple[Authority, ...]
    results: Mapping[str, ArtifactResult]  # by file SHA-256
    #: The phases' own frozen results: the fleet-root chain (after the revocation step)
    #: and every verified revocation list's entries together.
    chain: Chain | None = None
    revocation_state: Revocations | None = None
    #: Everything established, as the judge phase reads it (`judge`).
    state: Trust | None = None

    def trusted(self, type_: str) -> tuple[Any, ...]:
        """The statements of `type_` that verified with no finding, oldest first."""
        found = {id(r.statement): r.statement for r in self.results.values()
                 if r.type == type_ and r.ok and r.statement is not None}
        return tuple(sorted(found.values(), key=lambda st: (st.issued_at, st.serial)))

    @property
    def witness_policy(self) -> Any:
        """The witness-policy statement in force: the highest version trusted (None: none)."""
        return self._logs().policy

    @property
    def log_keys(self) -> Mapping[str, PublicKey]:
        """Log origin -> the log key certified for it now: the fleet's named by the newest
        trusted fleet-root, rotation or witness policy that names one; a region's by its
        newest trusted regional root (writroot.verify.logs.derive, as verify uses)."""
        if self.fleet_root is None:
            return MappingProxyType({})
        return MappingProxyType(self._logs().keys)

    @property
    def log_key_history(self) -> Mapping[str, tuple[PublicKey, ...]]:
        """Every log key each origin has had, oldest first (older checkpoints stay valid)."""
        if self.fleet_root is None:
            return MappingProxyType({})
        return MappingProxyType(self._logs().history)

    def _logs(self) -> Any:
        from writroot.verify.logs import derive

        found = {id(r.statement): r.statement for r in self.results.values()
                 if r.ok and r.statement is not None}
        return derive(found.values(), self.fleet)

    @property
    def roster_version(self) -> int | None:
        return int(self.roster["version"]) if self.roster is not None else None

    def revoked(self, target: str, when: datetime | None = None) -> Revocation | None:
        """The revocation of `target` in force at `when` (default: any, whenever revoked)."""
        hit = self.revocations.get(target)
        if hit is None or (when is not None and hit.revoked_at > when):
            return None
        return hit

    def authority(self, keyid: str) -> Authority | None:
        return next((a for a in self.authorities if a.key.keyid == keyid), None)

    def result(self, parsed: Parsed) -> ArtifactResult:
        return self.results[parsed.digest]

    def require(self, parsed: Parsed, where: str) -> ArtifactResult:
        """The input's judgement, or a one-line refusal naming its first finding."""
        result = self.results.get(parsed.digest)
        if result is None:
            raise VerificationFailed("not among the statements the trust engine was given",
                                     where)
        if result.findings:
            first = result.findings[0]
            more = f" (and {len(result.findings) - 1} more)" if len(result.findings) > 1 else ""
            raise VerificationFailed(f"does not chain to the pinned anchor: {first.message} "
                                     f"[{first.check}]{more}", where)
        return result


def establish(anchor: Anchor, parsed: Iterable[Parsed], at: datetime, *,
              independent: bool = False,
              signatures: Mapping[tuple[str, str], bool] | None = None) -> Established:
    """Everything trusted from `anchor` at `at`, given these statements (each judged)."""
    given = sorted(parsed, key=lambda p: (p.name, p.digest))
    report, verifier = _phases(list(_unique(given)), anchor, at, independent, None, None,
                               signatures)
    by_name = {r.name: r for r in report.results}
    results: dict[str, ArtifactResult] = {}
    for p in given:
        if p.name in by_name:
            results.setdefault(p.digest, by_name[p.name])
    chain = verifier.fleet_chain
    assert chain is not None, "the phases always freeze the chain"
    in_force = chain.in_force if chain.holds else None
    fleet_root = in_force.key if in_force is not None else None
    current_st = in_force.statement if in_force is not None else None
    revocations = {target: Revocation(target, r.entry["revoked_at"], str(r.entry["reason"]),
                                      r.sequence)
                   for target, r in verifier.revocations.entries.items()}
    # A regional root in a conflict is not in `trusted` at all (it certifies nothing); one
    # that is there is an authority when its statement holds (some file carrying it is OK:
    # copies share the statement's findings, plus their own signature's).
    digests = {id(r): d for d, r in results.items()}
    authorities = []
    for trusted in verifier.trusted.values():
        st = trusted.statement
        if trusted.role != "regional-root" or st is None:
            continue
        carrying = [r for r in report.results if r.statement is st]
        if not any(r.ok for r in carrying):
            continue
        authorities.append(Authority(st.subject["region"], st.subject["version"],
                                     st.subject["key"], st.not_after,
                                     digests.get(id(carrying[0]), ""), carrying[0].name,
                                     st.subject.get("log_key")))
    roster = chain.roster_at(at) if in_force is not None else None
    return Established(
        anchor=anchor, at=at, report=report, fleet=verifier.fleet, fleet_root=fleet_root,
        fleet_version=verifier.version if fleet_root else None,
        fleet_not_after=current_st.not_after if current_st is not None else None,
        policy=MappingProxyType(dict(chain.policy_at(at))) if in_force else None,
        roster=MappingProxyType(dict(roster.json)) if roster is not None else None,
        revocation_sequence=verifier.revocations.sequence,
        revocations=MappingProxyType(revocations),
        authorities=tuple(sorted(authorities, key=lambda a: (a.region, a.version))),
        results=MappingProxyType(results), chain=chain,
        revocation_state=verifier.revocations, state=verifier.trust)


def judge(trust: Established, item: Parsed) -> ArtifactResult:
    """One artifact judged against what `establish` established, as `verify` judges it
    among the others, less what only a set can show (conflicts between statements,
    sequences). Establishing statements (the chain, lists, regional roots) were judged
    by `establish`: their result is that one."""
    from writroot.verify.core import _statements
    from writroot.verify.judge import LEAF_TYPES, judge_leaf
    from writroot.verify.state import Verifier

    if trust.state is None:
        raise ValueError("judge needs an Established value made by establish")
    known = trust.results.get(item.digest)
    if known is not None:
        return known
    verifier = Verifier.judging(trust.anchor, trust.state, trust.report.independent)
    results, items, _files = _statements([item], verifier)
    if items and items[0].statement.type in LEAF_TYPES:
        judge_leaf(verifier, items[0], [])
    elif items:
        verifier.fail(items[0], "unchecked", f"a {items[0].statement.type} statement "
                      "establishes trust: pass it to establish")
    return results[0]


def _unique(given: list[Parsed]) -> Iterable[Parsed]:
    seen: set[str] = set()
    for p in given:
        if p.digest not in seen:
            seen.add(p.digest)
            yield p
