"""What an audit package distributes, checked against what was verified (issue 19).

`fleet-root.pem` is what relying parties pin and `spire/*.spiffe.json` what SPIRE admins load:
a manifest rebuilt around another key or an edited bundle must not verify. Every file of the
package is accounted for; each ceremony's binder holds its approvals (a quorum of them, for
the plan its record names), its approvers' enrolments and the key requests of the keys it
certified; what `withheld` lists is revoked by a verified list and is not shipped. Pure: the
package's bytes and the verified results in, one result per check out.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from writroot.errors import WritrootError
from writroot.jsonio import canonical, loads_strict
from writroot.verify.report import ArtifactResult, Finding, Report

if TYPE_CHECKING:
    from writroot.crypto.keys import PublicKey
    from writroot.statements import Statement
    from writroot.verify.core import Anchor
    from writroot.verify.package import Package

DIST = "distribution/"
_CEREMONY_FILES = ("plan.lock.json", "transcript.jsonl", "ceremony-record.dsse.json")
_SPIRE = re.compile(r"distribution/spire/([^/]+)/([^/]+)\.spiffe\.json")


def _result(name: str, type_: str, found: list[tuple[str, str]]) -> ArtifactResult:
    result = ArtifactResult(name, type=type_)
    result.findings = [Finding(name, check, message) for check, message in found]
    return result


def _ok(verified: list[ArtifactResult], type_: str) -> list[Statement]:
    return [r.statement for r in verified
            if r.ok and r.statement is not None and r.statement.type == type_]


def binder_complete(pkg: Package, name: str,
                    verified: list[ArtifactResult]) -> list[ArtifactResult]:
    """The ceremony's binder: a quorum of verified approvals of the plan its record ran, a
    verified enrolment for each approver, a verified key request for each key it certified
    from a request."""
    base = f"ceremonies/{name}"
    try:
        lock = loads_strict(pkg.files.get(f"{base}/plan.lock.json", b"{}"),
                            pkg.at(f"{base}/plan.lock.json"))
    except WritrootError:
        return []  # reported by the ceremony's own check
    if not isinstance(lock, dict):
        return []
    from writroot.rules.merkle import plan_digest

    try:
        digest = plan_digest(lock)
    except (WritrootError, KeyError, TypeError, ValueError):
        return []
    found: list[tuple[str, str]] = []
    roster = lock.get("roster") if isinstance(lock.get("roster"), dict) else {}
    inner = roster.get("roster") if isinstance(roster, dict) else None
    threshold = inner.get("threshold") if isinstance(inner, dict) else None
    need = threshold if isinstance(threshold, int) and threshold > 0 else 1
    approvals = [st for st in _ok(verified, "approval")
                 if st.subject["plan_sha256"] == digest and st.subject["ceremony"] == name]
    approvers = {st.subject["custodian"]: st.issuer_keyid for st in approvals}
    if len(approvers) < need:
        found.append(("binder-approvals", f"holds {len(approvers)} verified approval(s) of "
                      f"plan {digest[:16]}..., {need} needed"))
    enrolled = {(st.subject["custodian"]["id"], st.subject["custodian"]["key"].keyid)
                for st in _ok(verified, "enrolment")}
    missing = sorted(c for c, keyid in approvers.items() if (c, keyid) not in enrolled)
    if missing:
        found.append(("binder-enrolments", "no verified enrolment of approver(s) "
                      + ", ".join(missing)))
    requested = {st.subject["key"].keyid for st in _ok(verified, "key-request")}
    for i, op in enumerate(lock.get("operations") or []):
        key = op.get("key") if isinstance(op, dict) else None
        if isinstance(key, dict) and str(key.get("path", "")).startswith("requests/") \
                and key.get("keyid") not in requested:
            found.append(("binder-key-requests", f"operations[{i}] certifies key "
                          f"{key.get('keyid')} and no verified key request for it is in the "
                          "binder"))
    return [_result(pkg.at(f"{base}/binder"), "ceremony-binder", found)]


def _keys(report: Report, anchor: Anchor) -> dict[str, PublicKey]:
    from writroot.verify.explain import known_keys

    return known_keys(report, anchor)


def distributed(pkg: Package, anchor: Anchor, report: Report, verified: list[ArtifactResult],
                sources: set[str]) -> list[ArtifactResult]:
    """Each distributed file is what was verified; every file of the package is accounted
    for."""
    from writroot.crypto.keys import PublicKey

    keys = _keys(report, anchor)
    bundles = {(st.ceremony.get("id"), st.subject["trust_domain"]):
               canonical(st.document["subject"]["bundle"]) + b"\n"
               for st in _ok(verified, "enclave-bundle")}
    ceremonies = {str(c) for c in pkg.index["ceremonies"]}
    transfers = {str(e["path"]) for e in pkg.index["transfers"]}
    out: list[ArtifactResult] = []
    for rel in sorted(pkg.files):
        data = pkg.files[rel]
        found: list[tuple[str, str]] = []
        kind = "distributed-file"
        if rel == "distribution/fleet-root.pem" or (rel.startswith("distribution/keys/")
                                                     and rel.endswith(".pem")):
            kind = "public-key"
            try:
                keyid = PublicKey.from_pem(data, pkg.at(rel)).keyid
            except WritrootError as exc:
                found.append(("distributed-key", f"not a public key PEM: {exc.message}"))
            else:
                if rel == "distribution/fleet-root.pem":
                    if keyid not in (anchor.keyid, report.fleet_root):
                        found.append(("distributed-key", f"key {keyid} is neither the pinned "
                                      "anchor nor the fleet root in force"))
                elif keyid not in keys:
                    found.append(("distributed-key", f"key {keyid} is no verified "
                                  "statement's key"))
        elif (m := _SPIRE.fullmatch(rel)) is not None:
            kind = "spiffe-bundle"
            if bundles.get((m.group(1), m.group(2))) != data:
                found.append(("distributed-bundle", "is not the bundle of a verified, "
                              f"unrevoked enclave-bundle statement of {m.group(1)} for "
                              f"{m.group(2)}"))
        elif rel.endswith(".dsse.json") and rel.startswith(("distribution/", "binder/")):
            continue  # verified as an artifact
        elif rel.startswith("distribution/oscal/"):
            if pkg.at(rel) not in sources:
                found.append(("package-file", "no plan in the package pins this OSCAL file"))
            else:
                continue  # checked against its pin
        elif rel.startswith("distribution/transcripts/"):
            name = rel.removeprefix("distribution/transcripts/").removesuffix(
                ".transcript.jsonl")
            if name not in ceremonies or pkg.files.get(
                    f"ceremonies/{name}/transcript.jsonl") != data:
                found.append(("package-file", "is not the transcript of a ceremony of the "
                              "package"))
        elif rel == "package.json" or rel in transfers or _log_file(rel):
            continue  # log files: judged by verify.logs (signatures, tiles against them)
        elif rel.startswith("ceremonies/") and rel.count("/") == 2 \
                and rel.split("/")[1] in ceremonies and rel.split("/")[2] in _CEREMONY_FILES:
            continue
        else:
            found.append(("package-file", "not a file an audit package holds "
                          "(docs/format.md §6.11)"))
        if found or kind != "distributed-file":
            out.append(_result(pkg.at(rel), kind, found))
    return out


def _log_file(rel: str) -> bool:
    """A transparency-log file in its published place (docs/format.md §10.10): a log's
    checkpoint or a well-formed tile path under distribution/logs/<origin>/, a proof, a
    returned cosigned checkpoint, witness evidence."""
    from writroot.errors import BadInput
    from writroot.log.tiles import parse_tile_path

    if rel.startswith("distribution/logs/"):
        if rel.endswith("/checkpoint"):
            return True
        _head, sep, tail = rel.partition("/tile/")
        if not sep:
            return False
        try:
            parse_tile_path(f"tile/{tail}")
        except BadInput:
            return False
        return True
    return any(rel.startswith(f"distribution/{d}/") and rel.endswith(suffix)
               and rel.count("/") == 2 for d, suffix in (
                   ("proofs", ".tlog-proof"), ("cosignatures", ".checkpoint"),
                   ("evidence", ".evidence.json")))


def withheld(pkg: Package, verified: list[ArtifactResult]) -> list[ArtifactResult]:
    """Each `withheld` entry: its ceremony is in the package, its target is revoked by a
    verified revocation list, and the artifact is not distributed after all."""
    from writroot.statements import revocation_target

    revoked = {revocation_target(e) for st in _ok(verified, "revocation-list")
               for e in st.subject["entries"]}
    ceremonies = {str(c) for c in pkg.index["ceremonies"]}
    out = []
    for i, entry in enumerate(pkg.index["withheld"]):
        found: list[tuple[str, str]] = []
        item: dict[str, Any] = entry
        if item["ceremony"] not in ceremonies:
            found.append(("withheld", f"names ceremony {item['ceremony']!r}, not in the "
                          "package"))
        if item["revoked"] not in revoked:
            found.append(("withheld", f"{item['revoked']!r} is revoked by no verified "
                          "revocation list"))
        if f"distribution/artifacts/{item['artifact']}" in pkg.files:
            found.append(("withheld", "is withheld and distributed at once"))
        out.append(_result(pkg.at(f"package.json: withheld[{i}]"), "withheld", found))
    return out
