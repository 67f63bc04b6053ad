"""Ceremony operations that sign in-toto statements: OSCAL baselines (fleet), regional OSCAL
overlays and release provenance (fleet). trestle is imported only when one of them runs."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

from writroot.ceremony.inputs import LockContext, read_statement, resolve_input
from writroot.errors import BadInput, PolicyRefused
from writroot.statements import header

BUILD_TYPE = "https://writroot.dev/ceremony/release/v1"
BUILDER_ID = "https://writroot.dev/ceremony"


def _source_pins(refs: Any, base: Path, where: str) -> list[dict[str, Any]]:
    """Pin the catalogs and profiles a document was checked against (they must sit beside
    the plan, so the custodians approve exactly them)."""
    pins = []
    for ref in refs:
        try:
            rel = Path(ref.path).resolve().relative_to(base.resolve())
        except ValueError:
            raise BadInput(f"source {ref.href!r} is outside the plan's directory", where) \
                from None
        pins.append(resolve_input(base, str(rel), where)[1])
    return sorted(pins, key=lambda p: str(p["path"]))


def lock_baseline(entry: dict[str, Any], ctx: LockContext, at: str) -> None:
    from writroot.oscal import load_component_definition

    where = ctx.where(f"{at}.document")
    _data, pin = resolve_input(ctx.base, entry["document"], where)
    doc = load_component_definition(ctx.base / entry["document"])
    entry["document"] = {**pin, "name": doc.subject_name, "canonical_sha256": doc.sha256}
    entry["sources"] = _source_pins({i.source for i in doc.implementations}, ctx.base, where)


def lock_overlay(entry: dict[str, Any], ctx: LockContext, at: str) -> None:
    """The overlay pins the signed baseline by hash and stays inside it."""
    from writroot.oscal import check_overlay, load_component_definition

    where = ctx.where(f"{at}.baseline")
    _env, st, bpin = read_statement(ctx.base, entry["baseline"], where, ("oscal-baseline",))
    ctx.chained(bpin, where)
    dwhere = ctx.where(f"{at}.baseline_document")
    _data, dpin = resolve_input(ctx.base, entry["baseline_document"], dwhere)
    baseline = load_component_definition(ctx.base / entry["baseline_document"])
    if (baseline.subject_name, baseline.sha256) != (st.subject["name"], st.subject["sha256"]):
        raise BadInput(f"this document ({baseline.subject_name}, canonical sha256 "
                       f"{baseline.sha256[:16]}...) is not the signed baseline "
                       f"({st.subject['name']})", dwhere)
    pwhere = ctx.where(f"{at}.profile")
    _data, ppin = resolve_input(ctx.base, entry["profile"], pwhere)
    overlay = check_overlay(ctx.base / entry["profile"], baseline)
    entry["profile"] = {**ppin, "name": overlay.subject_name, "canonical_sha256": overlay.sha256}
    entry["baseline"] = {**bpin, "name": st.subject["name"],
                         "canonical_sha256": st.subject["sha256"]}
    entry["baseline_document"] = dpin
    refs = [*{i.source for i in baseline.implementations}, *overlay.imports]
    entry["sources"] = _source_pins({r.path: r for r in refs}.values(), ctx.base, pwhere)


def lock_provenance(entry: dict[str, Any], ctx: LockContext, at: str) -> None:
    """Release artifacts as files beside the plan (pinned) or `name=sha256:<hex>`."""
    from writroot.oscal.intoto import parse_artifact

    out = []
    for i, spec in enumerate(entry["artifacts"]):
        where = ctx.where(f"{at}.artifacts[{i}]")
        if "=sha256:" in spec:
            subject = parse_artifact(spec)
            out.append({"name": subject.name, "sha256": subject.sha256})
            continue
        data, pin = resolve_input(ctx.base, spec, where)
        out.append({**pin, "name": Path(spec).name, "sha256": hashlib.sha256(data).hexdigest()})
    names = [a["name"] for a in out]
    if len(set(names)) != len(names):
        raise BadInput("artifact names must be distinct", ctx.where(f"{at}.artifacts"))
    entry["artifacts"] = out


def prepare(op: dict[str, Any], plan_dir: Path) -> Any:
    """Load (and check again) the document an OSCAL operation signs."""
    from writroot.oscal import check_overlay, load_component_definition

    doc: Any
    if op["op"] == "sign-oscal-baseline":
        doc = load_component_definition(plan_dir / op["document"]["path"])
        expected = op["document"]["canonical_sha256"]
    else:
        baseline = load_component_definition(plan_dir / op["baseline_document"]["path"])
        doc = check_overlay(plan_dir / op["profile"]["path"], baseline)
        expected = op["profile"]["canonical_sha256"]
    if doc.sha256 != expected:
        raise PolicyRefused("document changed since the plan was locked", str(doc.path))
    return doc


def payload(op: dict[str, Any], common: dict[str, Any], doc: Any) -> bytes:
    """The in-toto statement, with writroot's signed header inside its predicate."""
    from writroot.oscal import oscal_statement, provenance_statement, slsa_predicate
    from writroot.oscal.subjects import Subject

    kind = op["op"]
    if kind == "sign-release-provenance":
        artifacts = [{"name": a["name"], "sha256": a["sha256"]} for a in op["artifacts"]]
        head = header("release-provenance", **common, subject={"artifacts": artifacts})
        now: datetime = common["issued_at"]
        predicate = slsa_predicate(
            build_type=op.get("build_type", BUILD_TYPE),
            builder_id=op.get("builder_id", BUILDER_ID),
            external_parameters={"ceremony": common["ceremony"]["id"],
                                 "plan_sha256": common["ceremony"]["plan_sha256"]},
            internal_parameters={"writroot": head},
            invocation_id=common["serial"], started_on=now, finished_on=now)
        return provenance_statement([Subject(a["name"], a["sha256"]) for a in artifacts],
                                    predicate)
    subject: dict[str, Any] = {"name": doc.subject_name, "sha256": doc.sha256}
    if kind == "sign-oscal-overlay":
        subject |= {"region": op["region"],
                    "baseline": {"name": op["baseline"]["name"],
                                 "sha256": op["baseline"]["canonical_sha256"]}}
        head = header("oscal-overlay", **common, subject=subject)
    else:
        head = header("oscal-baseline", **common, subject=subject)
    return oscal_statement(doc, {"writroot": head})
