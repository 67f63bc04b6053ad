"""The pure verification core: artifacts, a pinned anchor, revocation lists and a reference
time in, findings out (DESIGN §6; docs/format.md §6.4-§6.5).

No I/O and no clock: the caller passes the bytes and `at`. Every finding is reported, not
only the first; each check is named after the rule it enforces; the rules come from
`writroot.rules`, which the ceremony machine uses too. The phases, in this order:

1. `model`: parse each file; files carrying one payload (PAE) are one statement.
2. establish what is trusted, each step ending in a frozen value the next one takes:
   `chain` (the anchor, rotations and rosters) -> `model.Chain` (only the root in force
   must be unexpired: `Chain.expired`); `revocation` (every verified list, fail-safe) ->
   `model.Revocations`; the chain under revocation (`chain.under_revocation`) -> a new
   `Chain`; `authorities` (regional roots in no conflict) -> `model.Authorities`; all of
   it -> `model.Trust` (`Verifier.trust`; `trust.Established.state`);
3. `judge` every other statement against that (`pool`: in worker processes with `jobs`;
   `trust.judge` for one artifact against an `Established` value);
4. across statements: bundle conflicts, overlays' baselines, `--subject` files, sequences;
   a second pass when revoked custodians or shared serials were found; each file gets its
   statement's findings.

Within a phase statements are taken in an order computed from their contents, so the
answer never depends on the order of the inputs nor on how a file is named or encoded.
`writroot.verify.trust.establish` is the entry point that returns what is trusted.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import datetime
from types import MappingProxyType
from typing import TypeVar

from writroot.envelope import Envelope, payload_type_for
from writroot.verify.authorities import check_regional_root, trust_regional_roots
from writroot.verify.chain import (
    MAX_CHAIN,
    check_roster,
    check_rotation,
    establish_anchor,
    freeze,
    under_revocation,
)
from writroot.verify.judge import (
    LEAF_TYPES,
    bundle_conflicts,
    check_subject_files,
    overlays_pin_signed_baselines,
    sequences,
)
from writroot.verify.model import (
    Anchor,
    Item,
    Parsed,
    Prior,
    Source,
    Trust,
    light,
    parse_artifact,
    sources,
)
from writroot.verify.pool import judge_all
from writroot.verify.report import ArtifactResult, Finding, Report
from writroot.verify.revocation import apply_revocations
from writroot.verify.signatures import copy_signed, known
from writroot.verify.state import Verifier

__all__ = ["MAX_CHAIN", "Anchor", "ArtifactResult", "Finding", "Parsed", "Report", "Source",
           "parse_artifact", "verify", "verify_parsed"]

_T = TypeVar("_T")


def _statements(parsed: list[Parsed], verifier: Verifier
                ) -> tuple[list[ArtifactResult], list[Item], dict[str, list[ArtifactResult]]]:
    """One result per file; one item per statement (files whose PAE is the same: DSSE
    identity by payload), its copies' signatures taken together."""
    results: list[ArtifactResult] = []
    groups: dict[str, list[Parsed]] = defaultdict(list)
    files: dict[str, list[ArtifactResult]] = defaultdict(list)
    for one in parsed:
        result = ArtifactResult(one.name)
        results.append(result)
        if one.envelope is None or one.statement is None:
            result.findings.append(Finding(one.name, "well-formed", one.error, malformed=True,
                                           cause="malformed"))
            continue
        st = one.statement
        result.type, result.serial = st.type, st.serial
        result.issuer_keyid, result.statement = st.issuer_keyid, st
        identity = one.derived.identity if one.derived and one.derived.identity else \
            hashlib.sha256(one.envelope.pae()).hexdigest()
        groups[identity].append(one)
        files[identity].append(result)
    items = []
    for identity, copies in groups.items():
        first = next((c for c in copies if c.envelope and c.envelope.payload), copies[0])
        assert first.envelope is not None and first.statement is not None
        sigs = first.envelope.signatures if len(copies) == 1 else tuple(dict.fromkeys(
            s for c in copies if c.envelope for s in c.envelope.signatures))
        envelope = Envelope(first.envelope.payload_type, first.envelope.payload, sigs)
        own = files[identity]
        result = own[0] if len(own) == 1 else ArtifactResult(
            own[0].name, own[0].type, own[0].serial, own[0].issuer_keyid,
            statement=own[0].statement)
        item = Item(result, envelope, first.statement, identity, first.derived,
                    tuple((c.name, c.digest, c.envelope.signatures if c.envelope else ())
                           for c in copies))
        if envelope.payload and verifier.signatures and not verifier.independent and all(
                known(verifier, item, s.keyid) is not None for s in sigs):
            item.envelope = light(envelope)
        if envelope.payload_type != payload_type_for(first.statement.type):
            verifier.fail(item, "payload-type", f"payloadType {envelope.payload_type!r} does "
                          f"not match the statement type {first.statement.type!r}")
        items.append(item)
    return results, items, files


def _serials_unique(verifier: Verifier, items: list[Item]) -> None:
    by_serial: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        by_serial[item.statement.serial].append(item)
    for serial, claims in by_serial.items():
        for item in claims if len(claims) > 1 else []:
            others = ", ".join(sorted(o.result.name for o in claims if o is not item))
            verifier.fail(item, "serial-unique", f"serial {serial} is also used by {others}")


#: Statements signed by a key they introduce themselves, not by a trusted issuer.
_SELF_SIGNED = ("approval", "enrolment", "key-request")


def _prior(verifier: Verifier, items: list[Item]) -> Prior:
    """What a second pass must know from the start: revoked custodian keys (for counting
    approvals in the fleet's own chain), and the serials two different statements that
    verify under trusted issuers both use (a forger's unsigned copy knocks nothing out)."""
    custodians = {c.key.keyid for term in verifier.rosters for c in term.checked.custodians}
    revoked = {t: r for t, r in verifier.revoked.items()
               if t.startswith("keyid:") and t[6:] in custodians}
    verified = [i for i in items if i.statement.type not in _SELF_SIGNED
                and i.statement.issuer_keyid in i.verified_keys]
    by_serial: dict[str, list[Item]] = defaultdict(list)
    for item in verified:
        by_serial[item.statement.serial].append(item)
    serials = frozenset(i.digest for claims in by_serial.values() if len(claims) > 1
                        for i in claims)
    return Prior(revoked, serials)


def _spread(verifier: Verifier, items: list[Item],
            files: dict[str, list[ArtifactResult]]) -> None:
    """Each file carrying a statement gets its judgement; a copy none of whose own
    signatures verifies under a key the statement verified by says so (it would not verify
    alone), without touching the statement."""
    for item in items:
        own = files[item.digest]
        if len(own) == 1 and own[0] is item.result:
            continue
        for result, (name, digest, sigs) in zip(own, item.copies, strict=True):
            result.findings = [replace(f, artifact=name) for f in item.result.findings]
            result.checked_by = set(item.result.checked_by)
            if item.verified_keys and not any(
                    copy_signed(verifier, item, digest, sigs, key)
                    for key in item.verified_keys.values()):
                holds = sorted(n for n, d, ss in item.copies if d != digest and any(
                    copy_signed(verifier, item, d, ss, k) for k in item.verified_keys.values()))
                result.findings.append(Finding(name, "signature-valid", "none of this copy's "
                                               "signatures verifies; the statement's "
                                               f"signatures are in {', '.join(holds)}"))


def verify(artifacts: Iterable[tuple[str, bytes] | Source], anchor: Anchor, at: datetime,
           independent: bool = False,
           revocations: list[tuple[str, bytes]] | None = None,
           subject_files: list[tuple[str, bytes]] | None = None,
           signatures: Mapping[tuple[str, str], bool] | None = None) -> Report:
    """Verify artifacts against the anchor at reference time `at`, applying every revocation
    list given (as `revocations`, or among the artifacts); `subject_files` (release files,
    OSCAL documents) must match the subjects of the in-toto statements that name them.

    The inputs are first put in an order of their own (by name, then content), so the
    answer and the report are the same whatever order they were given in.

    `signatures` are results computed beforehand (`writroot.verify.bulk`, keyed by file
    SHA-256 and keyid); artifacts given as `Source` are read one at a time."""
    given = _first_named(sources(artifacts), sources(revocations or []),
                         lambda src: (src.name, src.digest))
    with paused_gc():
        parsed = [parse_artifact(src.name, src.load(), src.digest) for src in given]
        return _verify(parsed, anchor, at, independent, revocations, subject_files,
                       signatures)


def verify_parsed(parsed: Iterable[Parsed], anchor: Anchor, at: datetime,
                  revocations: list[tuple[str, bytes]] | None = None,
                  subject_files: list[tuple[str, bytes]] | None = None,
                  signatures: Mapping[tuple[str, str], bool] | None = None,
                  jobs: int = 1) -> Report:
    """`verify` for artifacts already parsed by `parse_artifact` (in a process pool:
    `writroot.verify.bulk`); the same report as `verify` on the same bytes. `jobs` > 1
    judges the statements after establishment in that many processes too."""
    extra = [parse_artifact(name, data) for name, data in revocations or []]
    given = _first_named(list(parsed), extra, lambda p: (p.name, p.digest))
    with paused_gc():
        return _verify(given, anchor, at, False, revocations, subject_files, signatures,
                       jobs)


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection while the core runs: it allocates many long-lived,
    acyclic objects (statements, findings), which each collection would only walk again
    (~15% of the time on 10,000 artifacts); reference counting frees them, and the
    collector runs as before afterwards."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _first_named(artifacts: list[_T], lists: list[_T],
                 order: Callable[[_T], tuple[str, str]]) -> list[_T]:
    """Each file once, in an order of its own: the same bytes given twice (in a directory
    and by name, or also as --revocations) are one, named as among the artifacts (the
    first name in order), so neither the spelling of a path nor the option decides."""
    chosen = list(_once([*sorted(artifacts, key=order), *sorted(lists, key=order)],
                        lambda one: order(one)[1]))
    return sorted(chosen, key=order)


def _once(given: Iterable[_T], digest: Callable[[_T], str]) -> Iterator[_T]:
    """Each file once: the same file given twice (in a directory and by name) is one."""
    seen: set[str] = set()
    for one in given:
        if digest(one) not in seen:
            seen.add(digest(one))
            yield one


def _verify(parsed: Iterable[Parsed], anchor: Anchor, at: datetime, independent: bool,
            revocations: list[tuple[str, bytes]] | None,
            subject_files: list[tuple[str, bytes]] | None,
            signatures: Mapping[tuple[str, str], bool] | None, jobs: int = 1) -> Report:
    return _phases(parsed, anchor, at, independent, revocations, subject_files, signatures,
                   jobs=jobs)[0]


def _phases(parsed: Iterable[Parsed], anchor: Anchor, at: datetime, independent: bool,
            revocations: list[tuple[str, bytes]] | None,
            subject_files: list[tuple[str, bytes]] | None,
            signatures: Mapping[tuple[str, str], bool] | None,
            prior: Prior | None = None, jobs: int = 1) -> tuple[Report, Verifier]:
    """The phases, over artifacts in their own order, each file once. A second pass runs
    when the first finds what earlier phases had to know (`_prior`)."""
    given = list(parsed)
    verifier = Verifier(anchor, at, independent, signatures=signatures or {}, prior=prior)
    results, items, files = _statements(given, verifier)
    if prior is not None:
        _serials_unique(verifier, [i for i in items if i.digest in prior.serials])
    lists_given = {hashlib.sha256(data).hexdigest() for _name, data in revocations or []}
    for item in items:
        if item.statement.type != "revocation-list" and any(
                digest in lists_given for _n, digest, _s in item.copies):
            verifier.fail(item, "revocation-list", "--revocations takes revocation lists only")
    by_type: dict[str, list[Item]] = defaultdict(list)
    for item in sorted(items, key=lambda i: i.order):
        by_type[item.statement.type].append(item)
    establish_anchor(verifier, by_type["fleet-root"] + by_type["fleet-rotation"])
    verifier.rotations = by_type["fleet-rotation"]
    fleet_level = by_type["fleet-rotation"] + by_type["roster"]
    for item in sorted(fleet_level, key=lambda i: (i.statement.issued_at, i.statement.type,
                                                   i.order)):
        if item.statement.type == "fleet-rotation":
            check_rotation(verifier, item)
        else:
            check_roster(verifier, item)
    if verifier.current_item is not None:
        verifier.window(verifier.current_item)  # reported; `Chain.expired` decides
    chain = freeze(verifier)
    verifier.fleet_chain = chain
    verifier.revocations = apply_revocations(verifier, by_type["revocation-list"])
    chain = under_revocation(verifier, chain, fleet_level + by_type["fleet-root"])
    verifier.fleet_chain = chain
    regional = [i for i in by_type["regional-root"] if check_regional_root(verifier, i)]
    authorities = trust_regional_roots(verifier, chain, regional)
    verifier.trust = Trust(chain, verifier.revocations, authorities, MappingProxyType(
        {**verifier.building, **authorities.regional}), prior)
    # Established: the chain, the revocations and the authorities. Everything else is
    # judged against that alone (in a pool when `jobs` > 1), then across statements.
    leaf = [item for kind in LEAF_TYPES for item in by_type[kind]]
    passed = judge_all(verifier, leaf, by_type["regional-root"], jobs)
    bundle_conflicts(verifier, [i for i in passed if i.statement.type == "enclave-bundle"])
    for item in items:  # every type is checked: what no rule took is not OK
        if item.digest not in verifier.judged:
            verifier.fail(item, "unchecked", f"no rule of this verifier checks "
                          f"{item.statement.type} statements")
    overlays_pin_signed_baselines(verifier, by_type["oscal-baseline"], by_type["oscal-overlay"])
    extra = check_subject_files(verifier, by_type, sorted(subject_files or []))
    sequences(verifier, items)
    if prior is None:
        again = _prior(verifier, items)
        if again.revoked or again.serials:
            return _phases(given, anchor, at, independent, revocations, subject_files,
                           signatures, again, jobs)
    _spread(verifier, items, files)
    current = verifier.current.key.keyid if verifier.current else None
    return Report(at, anchor.keyid, independent, results + extra, fleet_root=current,
                  fleet_version=verifier.version or None,
                  revocation_sequence=verifier.revocations.sequence), verifier
