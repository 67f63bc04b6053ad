"""Revocation lists: every list that verifies applies (fail-safe, conflicting lists
included); the highest sequence is reported and must be current."""

from __future__ import annotations

from collections import defaultdict
from types import MappingProxyType

from writroot.jsonio import format_time
from writroot.statements import revocation_target
from writroot.verify.judge import check_issued
from writroot.verify.model import Item, Revocations, Revoked
from writroot.verify.state import Verifier


def apply_revocations(v: Verifier, lists: list[Item]) -> Revocations:
    """Every verified list's entries apply: no list, older or newer, un-revokes. The
    highest sequence must be current; a later list that drops an entry is reported."""
    ordered = sorted(lists, key=lambda i: (i.statement.subject["sequence"], i.order))
    good = [item for item in ordered if check_issued(v, item, window=False)]
    by_sequence: dict[int, list[Item]] = defaultdict(list)
    for item in good:  # only lists that verify can conflict; their entries all apply
        by_sequence[item.statement.subject["sequence"]].append(item)
    for seq, claims in by_sequence.items():
        if len({c.digest for c in claims}) > 1:
            v.conflict(claims, "revocation-sequence", f"revocation list sequence {seq}")
    for item in good:  # a list issued after another carries a higher sequence
        st = item.statement
        earlier = [o for o in good if o.statement.issued_at < st.issued_at
                   and o.statement.subject["sequence"] > st.subject["sequence"]]
        if earlier:
            first = min(earlier, key=lambda o: o.order)
            v.fail(item, "revocation-sequence", f"issued {format_time(st.issued_at)} "
                   f"with sequence {st.subject['sequence']}, after list "
                   f"{first.statement.subject['sequence']} ({first.result.name}) "
                   "was issued: sequences only increase")
    revoked: dict[str, Revoked] = {}
    for item in good:
        for entry in item.statement.subject["entries"]:
            target = revocation_target(entry)
            seen = revoked.get(target)
            if seen is None or entry["revoked_at"] < seen.entry["revoked_at"]:
                revoked[target] = Revoked(entry, item.statement.subject["sequence"])
    if not good:
        return Revocations(MappingProxyType(revoked))
    highest = good[-1]
    v.window(highest)
    kept = {revocation_target(e) for e in highest.statement.subject["entries"]}
    for target in sorted(set(revoked) - kept):
        v.fail(highest, "revocation-cumulative", f"drops {target}, revoked by list "
               f"{revoked[target].sequence}; revocations are never withdrawn")
    return Revocations(MappingProxyType(revoked), highest.statement.subject["sequence"])
