"""Regions' enclaves and the no-cross-impact-level rule (DESIGN §1).

A region's right to an enclave, and the enclave's impact level, come from one signed fact:
the `enclaves` list of its regional-root statement. Never from other bundles, nor from
which was issued first, nor from a pairing's own claim.
"""

from __future__ import annotations

from typing import Any

from writroot.rules import Violation


def assigned(enclaves: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """trust domain -> its entry in a regional-root statement's `enclaves`."""
    return {e["trust_domain"]: e for e in enclaves}


def crosses_impact_levels(pairing: list[dict[str, Any]]) -> bool:
    return bool(pairing[0]["impact_level"] != pairing[1]["impact_level"])


def registered_route(policy: dict[str, Any], route_id: str,
                     pairing: list[dict[str, Any]]) -> bool:
    """The policy registers this CDS route between exactly these two enclaves."""
    domains = sorted(p["trust_domain"] for p in pairing)
    return any(r["id"] == route_id and sorted(r["between"]) == domains
               for r in policy.get("cds_routes", []))


def bundle_assigned(enclaves: list[dict[str, Any]], region: str, trust_domain: str,
                    impact_level: str, where: str = "") -> list[Violation]:
    """A region signs a bundle only for an enclave assigned to it, at the assigned level."""
    entry = assigned(enclaves).get(trust_domain)
    if entry is None or "enclave-bundle" not in entry["may_sign"]:
        return [Violation("enclave-assigned", f"{where}trust_domain", f"{trust_domain} is not "
                          f"an enclave the {region} regional root may sign bundles for")]
    if entry["impact_level"] != impact_level:
        return [Violation("impact-level", f"{where}impact_level", f"{trust_domain} is "
                          f"{entry['impact_level']} in the {region} regional root, not "
                          f"{impact_level}")]
    return []


def pairing_allowed(enclaves: list[dict[str, Any]], region: str,
                    pairing: list[dict[str, Any]], route: str | None,
                    policy: dict[str, Any] | None, where: str = "") -> list[Violation]:
    """Both ends assigned to the signing region for federation keys, at their assigned
    levels; levels that differ need a CDS route the fleet policy registers between them."""
    out: list[Violation] = []
    given = assigned(enclaves)
    for i, side in enumerate(pairing):
        entry = given.get(side["trust_domain"])
        if entry is None or "federation-key" not in entry["may_sign"]:
            out.append(Violation("enclave-assigned", f"{where}pairing[{i}].trust_domain",
                                 f"{side['trust_domain']} is not an enclave the {region} "
                                 "regional root may certify federation keys for"))
        elif entry["impact_level"] != side["impact_level"]:
            out.append(Violation("impact-level", f"{where}pairing[{i}].impact_level",
                                 f"{side['trust_domain']} is {entry['impact_level']} in the "
                                 f"{region} regional root, not {side['impact_level']}"))
    if out:
        return out
    if crosses_impact_levels(pairing) and route is None:
        a, b = pairing
        out.append(Violation("impact-level", f"{where}pairing", f"{a['trust_domain']} "
                             f"({a['impact_level']}) and {b['trust_domain']} "
                             f"({b['impact_level']}) cross impact levels; name a registered "
                             "CDS route"))
    elif route is not None and (policy is None or not registered_route(policy, route, pairing)):
        out.append(Violation("cds-route", f"{where}cds_route", f"CDS route {route!r} is not "
                             "registered between these enclaves in the fleet policy"))
    return out
