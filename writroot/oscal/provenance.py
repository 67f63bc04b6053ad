"""SLSA provenance v1 predicates (https://slsa.dev/provenance/v1) for release bundles.

writroot writes the timestamps as UTC `YYYY-MM-DDTHH:MM:SSZ` (valid RFC 3339) and every
digest as SHA-256, and reads back only what it writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from writroot.errors import BadInput
from writroot.jsonio import format_time, is_hex_digest, parse_time
from writroot.oscal.subjects import Subject, check_name, check_type_uri


def slsa_predicate(*, build_type: str, builder_id: str, external_parameters: Mapping[str, Any],
                   internal_parameters: Mapping[str, Any] | None = None,
                   resolved_dependencies: Sequence[Subject] = (), invocation_id: str,
                   started_on: datetime, finished_on: datetime) -> dict[str, Any]:
    """Build and check an SLSA v1 predicate. writroot's signed header (fleet, serial, times,
    issuer, ceremony proof) belongs in `internal_parameters`: the ceremony is the builder."""
    for when, name in ((started_on, "started_on"), (finished_on, "finished_on")):
        if when.tzinfo is None:
            raise BadInput("naive datetime: give a timezone", name)
    build: dict[str, Any] = {"buildType": build_type,
                             "externalParameters": dict(external_parameters)}
    if internal_parameters is not None:
        build["internalParameters"] = dict(internal_parameters)
    if resolved_dependencies:
        build["resolvedDependencies"] = [d.to_json() for d in resolved_dependencies]
    predicate = {
        "buildDefinition": build,
        "runDetails": {"builder": {"id": builder_id},
                       "metadata": {"invocationId": invocation_id,
                                    "startedOn": format_time(started_on),
                                    "finishedOn": format_time(finished_on)}},
    }
    check_predicate(predicate, "new SLSA predicate")
    return predicate


def _fields(obj: Any, where: str, required: set[str], optional: set[str]) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise BadInput("expected an object", where)
    for name in sorted(required - set(obj)):
        raise BadInput(f"missing field {name!r}", where)
    for name in sorted(set(obj) - required - optional):
        raise BadInput(f"unknown field {name!r}", f"{where}.{name}")
    return obj


def _object(value: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise BadInput("expected an object", where)


def _descriptors(value: Any, where: str) -> None:
    if not isinstance(value, list) or len(value) > 4096:
        raise BadInput("expected a list of at most 4096 resource descriptors", where)
    for i, item in enumerate(value):
        at = f"{where}[{i}]"
        _fields(item, at, {"digest"}, {"name", "uri"})
        for key in ("name", "uri"):
            if key in item:
                check_name(item[key], f"{at}.{key}")
        digest = item["digest"]
        if not isinstance(digest, dict) or set(digest) != {"sha256"}:
            raise BadInput("expected exactly {sha256}", f"{at}.digest")
        if not is_hex_digest(digest["sha256"]):
            raise BadInput("sha256 must be 64 lowercase hex digits", f"{at}.digest.sha256")


def check_predicate(predicate: Any, where: str) -> None:
    """Check an SLSA provenance v1 predicate as writroot writes it; unknown fields refused."""
    _fields(predicate, where, {"buildDefinition", "runDetails"}, set())
    bw = f"{where}.buildDefinition"
    build = _fields(predicate["buildDefinition"], bw, {"buildType", "externalParameters"},
                    {"internalParameters", "resolvedDependencies"})
    check_type_uri(build["buildType"], f"{bw}.buildType")
    _object(build["externalParameters"], f"{bw}.externalParameters")
    if "internalParameters" in build:
        _object(build["internalParameters"], f"{bw}.internalParameters")
    if "resolvedDependencies" in build:
        _descriptors(build["resolvedDependencies"], f"{bw}.resolvedDependencies")
    rw = f"{where}.runDetails"
    run = _fields(predicate["runDetails"], rw, {"builder"}, {"metadata", "byproducts"})
    builder = _fields(run["builder"], f"{rw}.builder", {"id"}, set())
    check_type_uri(builder["id"], f"{rw}.builder.id")
    if "byproducts" in run:
        _descriptors(run["byproducts"], f"{rw}.byproducts")
    if "metadata" in run:
        mw = f"{rw}.metadata"
        meta = _fields(run["metadata"], mw, set(), {"invocationId", "startedOn", "finishedOn"})
        if "invocationId" in meta:
            check_name(meta["invocationId"], f"{mw}.invocationId")
        started = parse_time(meta["startedOn"], f"{mw}.startedOn") if "startedOn" in meta else None
        finished = (parse_time(meta["finishedOn"], f"{mw}.finishedOn")
                    if "finishedOn" in meta else None)
        if started and finished and finished < started:
            raise BadInput("finishedOn is before startedOn", f"{mw}.finishedOn")
