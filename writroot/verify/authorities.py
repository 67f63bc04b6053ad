"""Regional roots as authorities: those that verify and are in no conflict (a root in a
conflict certifies nothing)."""

from __future__ import annotations

from collections import defaultdict
from types import MappingProxyType
from typing import Any

from writroot.crypto.keys import PublicKey
from writroot.rules.validity import regional_validity
from writroot.verify.judge import check_issued
from writroot.verify.model import Authorities, Chain, Item, Trusted
from writroot.verify.state import Verifier, guarded


@guarded
def check_regional_root(v: Verifier, item: Item) -> bool:
    st = item.statement
    ok = check_issued(v, item)
    key: PublicKey = st.subject["key"]
    policy = v.policy_at(st.issued_at)
    if policy and key.algorithm.name not in policy["regional_root_algorithms"]:
        v.fail(item, "policy-algorithm", f"{key.algorithm.name} is not a regional-root "
               "algorithm the fleet policy allows")
        ok = False
    if policy:
        days = (st.not_after - st.not_before).total_seconds() / 86400
        ok = v.violations(item, regional_validity(policy, round(days, 1), "")) and ok
    return ok and item.result.ok


def trust_regional_roots(v: Verifier, chain: Chain, items: list[Item]) -> Authorities:
    """Regional roots that verified are trusted, unless two claim one region and version
    (a conflict: neither is trusted). Enclaves assigned to two regions, or at two impact
    levels, are conflicts of the fleet's own statements, reported on each."""
    slots: dict[tuple[str, int], list[Item]] = defaultdict(list)
    for item in items:
        slots[(item.statement.subject["region"], item.statement.subject["version"])] \
            .append(item)
    distrusted: dict[str, str] = {}
    fleet_roots = {r.key.keyid for r in chain.roots} | set(v.building)

    def distrust(claims: list[Item]) -> None:
        for item in claims:
            keyid = item.statement.subject["key"].keyid
            if keyid not in fleet_roots:
                distrusted.setdefault(keyid, item.result.name)

    trusted: list[Item] = []
    for (region, version), claims in sorted(slots.items()):
        if len({c.digest for c in claims}) > 1:
            v.conflict(claims, "conflict-regional-root", f"{region} regional root "
                       f"version {version}")
            distrust(claims)
            continue
        trusted.append(claims[0])
    owners: dict[str, list[tuple[Item, dict[str, Any]]]] = defaultdict(list)
    for item in trusted:
        for enclave in item.statement.subject["enclaves"]:
            owners[enclave["trust_domain"]].append((item, enclave))
    contested: list[Item] = []
    domains: set[str] = set()
    for domain, given in sorted(owners.items()):
        regions = {i.statement.subject["region"] for i, e in given
                   if "enclave-bundle" in e["may_sign"]}
        if len(regions) > 1:
            domains.add(domain)
            for item, _e in given:
                v.fail(item, "conflict-enclave-assigned", f"{domain} is assigned to "
                       f"{', '.join(sorted(regions))}: an enclave belongs to one region")
                contested.append(item)
        levels = {e["impact_level"] for _i, e in given}
        if len(levels) > 1:
            domains.add(domain)
            for item, _e in given:
                v.fail(item, "conflict-impact-level", f"{domain} is given as "
                       f"{' and '.join(sorted(levels))} by the regional roots")
                contested.append(item)
    # None of the parties of a conflict is trusted: a regional root in one certifies
    # nothing, not even for the enclaves nobody contests (DESIGN §6).
    distrust(contested)
    regional: dict[str, Trusted] = {}
    for item in sorted(trusted, key=lambda i: i.order):
        key: PublicKey = item.statement.subject["key"]
        if key.keyid not in fleet_roots and key.keyid not in regional \
                and key.keyid not in distrusted:
            regional[key.keyid] = Trusted(key, "regional-root",
                                          item.statement.subject["region"],
                                          item.statement)
    return Authorities(MappingProxyType(regional), MappingProxyType(distrusted),
                       frozenset(domains))
