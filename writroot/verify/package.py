"""Verifying an audit package: everything in it, in one report.

`load` reads the package (a tar file or a directory: a transfer bundle of kind
`audit-package`) and checks its manifest; `check` is pure: the artifacts and the binder go
through the verification core, and each ceremony's transcript chain, record seal and plan,
the OSCAL sources the plans pinned and the transfer bundles the index lists are checked here,
each as its own result.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from writroot.errors import BadInput, WritrootError
from writroot.jsonio import loads_strict
from writroot.rules.merkle import plan_digest
from writroot.verify.core import Anchor, verify
from writroot.verify.report import ArtifactResult, Finding, Report

KIND = "audit-package"
INDEX = "package.json"
FORMAT = "writroot-audit-package/1"


@dataclass
class Package:
    name: str
    files: dict[str, bytes]
    manifest_sha256: str
    words: str
    index: dict[str, Any]

    def at(self, rel: str) -> str:
        return f"{self.name}/{rel}"


def is_package(path: Path) -> bool:
    """A `.tar` file, or a directory with a MANIFEST.json at its top."""
    from writroot.transfer import MANIFEST_NAME

    return (path.is_file() and path.suffix == ".tar") or (path / MANIFEST_NAME).is_file()


def load(path: Path) -> Package:
    from writroot.transfer import read_bundle

    manifest, files = read_bundle(path, kind=KIND)
    where = f"{path}: {INDEX}"
    raw = files.get(INDEX)
    if raw is None:
        raise BadInput(f"no {INDEX} in the audit package", str(path))
    index = loads_strict(raw, where)
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise BadInput(f"expected format {FORMAT!r}", f"{where}: format")
    extra = set(index) - {"format", *_LISTS}
    if extra:
        raise BadInput(f"unknown member {sorted(extra)[0]!r}", where)
    for key in _LISTS:
        _check_list(index.get(key), key, len(files), f"{where}: {key}")
    return Package(str(path), files, manifest.sha256, manifest.words, index)


_LISTS = ("ceremonies", "subjects", "transfers", "withheld")
#: Members of each entry of the index's object lists (docs/format.md §6.11).
_MEMBERS = {"transfers": {"path", "kind", "manifest_sha256", "words", "files"},
            "withheld": {"artifact", "ceremony", "revoked"}}


def _check_list(value: object, key: str, nfiles: int, where: str) -> None:
    """A list of distinct entries, no more than the package holds files: no name may be
    given twice, so that no entry multiplies the work done (DESIGN §6)."""
    from writroot.statements.schema import name as name_check

    if not isinstance(value, list):
        raise BadInput("expected a list", where)
    if len(value) > nfiles:
        raise BadInput(f"{len(value)} entries, more than the {nfiles} files the package "
                       "holds", where)
    seen: set[str] = set()
    for i, entry in enumerate(value):
        at = f"{where}[{i}]"
        if key == "ceremonies":
            ident = name_check(entry, at)
        elif key == "subjects":
            if not isinstance(entry, str):
                raise BadInput("expected a path string", at)
            ident = entry
        else:
            if not isinstance(entry, dict) or set(entry) != _MEMBERS[key]:
                raise BadInput(f"expected exactly {sorted(_MEMBERS[key])}", at)
            for member, v in entry.items():
                ok = isinstance(v, list) and all(isinstance(f, str) for f in v) \
                    if member == "files" else isinstance(v, str)
                if not ok:
                    raise BadInput("expected a string" if member != "files" else
                                   "expected a list of strings", f"{at}.{member}")
            ident = str(entry["path"]) if key == "transfers" else \
                f"{entry['ceremony']}/{entry['artifact']}"
        if ident in seen:
            raise BadInput(f"{ident!r} is named twice", at)
        seen.add(ident)


def artifacts(pkg: Package) -> list[tuple[str, bytes]]:
    return [(pkg.at(rel), data) for rel, data in sorted(pkg.files.items())
            if rel.endswith(".dsse.json")]


def subject_files(pkg: Package) -> list[tuple[str, bytes]]:
    out = []
    for rel in pkg.index["subjects"]:
        if not isinstance(rel, str) or rel not in pkg.files:
            raise BadInput(f"lists {rel!r}, which the package does not hold",
                           f"{pkg.name}: {INDEX}: subjects")
        out.append((pkg.at(rel), pkg.files[rel]))
    return out


def _result(name: str, type_: str, findings: list[tuple[str, str]]) -> ArtifactResult:
    result = ArtifactResult(name, type=type_)
    result.findings = [Finding(name, check, message) for check, message in findings]
    return result


def _ceremony(pkg: Package, name: str) -> list[ArtifactResult]:
    """The transcript's chain, the record that seals it, and the plan the record names."""
    from writroot.envelope import Envelope
    from writroot.statements import parse_payload
    from writroot.verify.transcript import check_chain

    base = f"ceremonies/{name}"
    found: list[tuple[str, str]] = []
    transcript = pkg.files.get(f"{base}/transcript.jsonl")
    record = pkg.files.get(f"{base}/ceremony-record.dsse.json")
    lock = pkg.files.get(f"{base}/plan.lock.json")
    if transcript is None or record is None or lock is None:
        return [_result(pkg.at(base), "ceremony", [(
            "ceremony-complete", "needs transcript.jsonl, ceremony-record.dsse.json and "
            "plan.lock.json")])]
    try:
        events, head = check_chain(transcript, pkg.at(f"{base}/transcript.jsonl"))
    except WritrootError as exc:
        return [_result(pkg.at(f"{base}/transcript.jsonl"), "transcript",
                        [("transcript-chain", str(exc))])]
    try:
        st = parse_payload(Envelope.parse(record, base).payload, base)
        plan = loads_strict(lock, f"{base}/plan.lock.json")
    except WritrootError as exc:
        return [_result(pkg.at(base), "ceremony", [("well-formed", str(exc))])]
    sub = st.subject
    if st.type != "ceremony-record":
        found.append(("record-seals", "ceremony-record.dsse.json is a "
                      f"{st.type} statement"))
    elif sub["transcript_sha256"] != hashlib.sha256(transcript).hexdigest() \
            or sub["head"] != head or sub["entries"] != len(events):
        found.append(("record-seals", "the signed ceremony record does not seal this "
                      "transcript (digest, head or entry count differ)"))
    elif plan_digest(plan) != st.ceremony["plan_sha256"]:
        found.append(("plan-matches-record", "plan.lock.json is not the plan the record "
                      "names (ceremony.plan_sha256)"))
    elif st.ceremony["id"] != name:
        found.append(("plan-matches-record", f"the record is for ceremony "
                      f"{st.ceremony['id']!r}"))
    return [_result(pkg.at(f"{base}/transcript.jsonl"), "transcript", found)]


def _sources(pkg: Package) -> list[ArtifactResult]:
    """Every file an OSCAL operation pinned is published under its own name, unchanged."""
    from writroot.transfer.publish import pinned_files

    results: dict[str, ArtifactResult] = {}
    for name in pkg.index["ceremonies"]:
        raw = pkg.files.get(f"ceremonies/{name}/plan.lock.json")
        if raw is None:
            continue
        lock = loads_strict(raw, f"ceremonies/{name}/plan.lock.json")
        for where, pin in pinned_files(lock if isinstance(lock, dict) else {}):
            rel = f"distribution/oscal/{PurePosixPath(str(pin.get('path'))).name}"
            result = results.setdefault(rel, _result(pkg.at(rel), "oscal-source", []))
            data = pkg.files.get(rel)
            if data is None:
                result.findings.append(Finding(result.name, "oscal-source", f"{name} "
                                               f"{where} pins it, and it is not published"))
            elif hashlib.sha256(data).hexdigest() != pin.get("sha256"):
                result.findings.append(Finding(result.name, "oscal-source", f"differs from "
                                               f"the file {name} {where} pinned (sha256)"))
    return [results[k] for k in sorted(results)]


def _transfers(pkg: Package) -> list[ArtifactResult]:
    """Each transfer bundle listed re-verifies, with the digest and words the index gives."""
    from writroot.transfer import read_bundle_bytes

    out = []
    for entry in pkg.index["transfers"]:
        rel = entry.get("path") if isinstance(entry, dict) else None
        data = pkg.files.get(rel) if isinstance(rel, str) else None
        name = pkg.at(str(rel))
        if data is None:
            out.append(_result(name, "transfer-bundle", [("transfer-manifest", "listed in "
                                                          "package.json, not in the package")]))
            continue
        found: list[tuple[str, str]] = []
        try:
            manifest, files = read_bundle_bytes(data, name)
        except WritrootError as exc:
            out.append(_result(name, "transfer-bundle", [("transfer-manifest", str(exc))]))
            continue
        if manifest.sha256 != entry.get("manifest_sha256") or manifest.words != \
                entry.get("words"):
            found.append(("transfer-manifest", f"manifest {manifest.sha256} "
                          f"({manifest.words}) is not the digest recorded"))
        if entry.get("kind") != manifest.kind or entry.get("files") != \
                [f.path for f in manifest.files]:
            found.append(("transfer-manifest", "kind or files in package.json differ from the "
                          "bundle's own manifest"))
        request = files.get("key-request.json")
        extracted = pkg.files.get(f"{str(rel)[:-4]}.key-request.dsse.json")
        if request is not None and request != extracted:
            found.append(("transfer-contents", "the key request beside the bundle is not the "
                          "one inside it"))
        out.append(_result(name, "transfer-bundle", found))
    return out


def _logs(pkg: Package, report: Report, given: dict[str, bytes]) -> None:
    """The logs the distribution set carries (docs/format.md §10.7), judged as verify does."""
    from writroot.envelope import Envelope
    from writroot.errors import WritrootError
    from writroot.verify.logs import in_memory, judge

    def payload_of(name: str) -> bytes | None:
        try:
            return Envelope.parse(given[name], name).payload
        except (KeyError, WritrootError):
            return None

    fleet = next((r.statement.fleet for r in report.results if r.ok and r.statement), None)
    judge(report, fleet, in_memory(pkg.files, pkg.at), payload_of)


def check(pkg: Package, anchor: Anchor, at: datetime, independent: bool = False,
          extra: list[tuple[str, bytes]] | None = None) -> Report:
    """One report for the whole package (and any other artifacts given beside it)."""
    from writroot.verify.distribution import binder_complete, distributed, withheld

    given = artifacts(pkg) + (extra or [])
    report = verify(given, anchor, at, independent=independent,
                    subject_files=subject_files(pkg))
    _logs(pkg, report, dict(given))
    verified = list(report.results)
    for name in pkg.index["ceremonies"]:
        report.results += _ceremony(pkg, str(name))
        report.results += binder_complete(pkg, str(name), verified)
    sources = _sources(pkg)
    report.results += sources + _transfers(pkg)
    report.results += distributed(pkg, anchor, report, verified, {r.name for r in sources})
    report.results += withheld(pkg, verified)
    report.package = {"path": pkg.name, "manifest_sha256": pkg.manifest_sha256,
                      "words": pkg.words, "ceremonies": list(pkg.index["ceremonies"]),
                      "withheld": list(pkg.index["withheld"])}
    return report
