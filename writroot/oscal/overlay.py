"""Regional tailoring overlays: OSCAL profiles that may only narrow the signed baseline.

A regional root signs an overlay for its column; the fleet root signed the baseline. The
overlay pins the baseline by digest, so a verifier knows exactly which baseline it tailors,
and it may touch only controls the baseline implements: a region can tighten a parameter or
add guidance, never reach past the baseline into controls nobody implemented.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from writroot.errors import BadInput
from writroot.oscal import models
from writroot.oscal.checks import at, resources
from writroot.oscal.documents import ComponentDefinition, OscalDocument, load_document
from writroot.oscal.sources import (
    SourceRef,
    Sources,
    base_dir,
    follow,
    load_source,
    resolve_profile,
)

#: The rlink media type that marks a back-matter resource as the pinned baseline.
BASELINE_MEDIA_TYPE = "application/oscal.component-definition+json"
PIN_ALGORITHM = "SHA-256"


@dataclass(frozen=True, kw_only=True)
class Overlay(OscalDocument):
    baseline: str  # the pinned baseline's subject name
    baseline_sha256: str
    pin: str  # OSCAL path of the rlink that pins it
    imports: tuple[SourceRef, ...] = ()
    control_ids: frozenset[str] = frozenset()  # controls of the resolved overlay


def check_overlay(profile_path: Path, baseline: ComponentDefinition, sources: Sources = None
                  ) -> Overlay:
    """Load a regional overlay and check it against the baseline it must pin and stay inside.

    `sources` places the catalogs and profiles the overlay imports, as for
    `load_component_definition`. Every failure is BadInput naming the file and OSCAL path.
    """
    doc = load_document(profile_path, ("profile",))
    body = doc.document["profile"]
    where = str(profile_path)
    pin = _check_pin(body, baseline, where)
    base = base_dir(profile_path, sources)
    imports, owners = [], {}
    for i, imp in enumerate(body["imports"]):
        href, iwhere = follow(body, "profile", imp["href"], sources, where,
                              f"profile.imports[{i}].href")
        ref, index = load_source(href, base, sources, iwhere)
        imports.append(ref)
        owners.update(index.param_owner)
        _check_selection(imp, f"profile.imports[{i}]", baseline, where)
    _check_modify(body.get("modify") or {}, owners, baseline, where)
    catalog = resolve_profile(profile_path, sources, doc.document)
    resolved = models.index(catalog).control_ids
    outside = sorted(resolved - baseline.control_ids)
    if outside:
        raise BadInput(f"resolves to control {outside[0]!r}, outside the baseline "
                       f"{baseline.subject_name}", at(where, "profile.imports"))
    return Overlay(path=doc.path, kind=doc.kind, document=doc.document, canonical=doc.canonical,
                   sha256=doc.sha256, uuid=doc.uuid, version=doc.version, title=doc.title,
                   model=doc.model, baseline=baseline.subject_name,
                   baseline_sha256=baseline.sha256, pin=pin, imports=tuple(imports),
                   control_ids=resolved)


def _check_pin(body: dict[str, Any], baseline: ComponentDefinition, where: str) -> str:
    """Exactly one rlink of the baseline media type, whose SHA-256 hashes all equal the
    baseline's canonical SHA-256 (trestle does not check rlink hashes at all)."""
    pins = [(f"profile.back-matter.resources[{i}].rlinks[{j}]", rlink)
            for i, res in enumerate(resources(body))
            for j, rlink in enumerate(res.get("rlinks") or [])
            if rlink.get("media-type") == BASELINE_MEDIA_TYPE]
    if not pins:
        raise BadInput("the overlay does not pin its baseline: add a back-matter resource whose "
                       f"rlink has media-type {BASELINE_MEDIA_TYPE} and a {PIN_ALGORITHM} hash "
                       f"of the baseline's RFC 8785 canonical JSON ({baseline.sha256})",
                       at(where, "profile.back-matter"))
    if len(pins) > 1:
        raise BadInput("the overlay pins more than one baseline", at(where, pins[1][0]))
    path, rlink = pins[0]
    hashes = [(h, x) for h, x in enumerate(rlink.get("hashes") or [])
              if x.get("algorithm") == PIN_ALGORITHM]
    if not hashes:
        raise BadInput(f"the baseline rlink carries no {PIN_ALGORITHM} hash, so it pins "
                       f"nothing (expected {baseline.sha256})", at(where, path))
    for h, x in hashes:
        if str(x.get("value")).lower() != baseline.sha256:
            raise BadInput(f"pins baseline {PIN_ALGORITHM} {x.get('value')}, but "
                           f"{baseline.path.name} ({baseline.subject_name}) has canonical "
                           f"{PIN_ALGORITHM} {baseline.sha256}",
                           at(where, f"{path}.hashes[{h}].value"))
    return path


def _check_selection(imp: dict[str, Any], path: str, baseline: ComponentDefinition,
                     where: str) -> None:
    if "include-all" in imp:
        raise BadInput("include-all reaches past the baseline: name the tailored controls "
                       "with include-controls with-ids", at(where, f"{path}.include-all"))
    for key in ("include-controls", "exclude-controls"):
        for j, sel in enumerate(imp.get(key) or []):
            spath = f"{path}.{key}[{j}]"
            if "matching" in sel:
                raise BadInput("matching patterns can reach past the baseline: name the "
                               "controls with with-ids", at(where, f"{spath}.matching"))
            for k, cid in enumerate(sel.get("with-ids") or []):
                _in_baseline(cid, baseline, at(where, f"{spath}.with-ids[{k}]"))


def _check_modify(modify: dict[str, Any], owners: dict[str, str],
                  baseline: ComponentDefinition, where: str) -> None:
    for a, alter in enumerate(modify.get("alters") or []):
        _in_baseline(alter["control-id"], baseline,
                     at(where, f"profile.modify.alters[{a}].control-id"))
    for p, sp in enumerate(modify.get("set-parameters") or []):
        pid, ppath = sp["param-id"], at(where, f"profile.modify.set-parameters[{p}].param-id")
        if pid not in owners:
            raise BadInput(f"{pid!r} is not a parameter of any control the overlay imports",
                           ppath)
        if owners[pid] not in baseline.control_ids:
            raise BadInput(f"{pid!r} belongs to control {owners[pid]!r}, which the baseline "
                           f"{baseline.subject_name} does not implement", ppath)


def _in_baseline(cid: str, baseline: ComponentDefinition, where: str) -> None:
    if cid not in baseline.control_ids:
        raise BadInput(f"control {cid!r} is outside the baseline {baseline.subject_name} "
                       f"(it implements {', '.join(sorted(baseline.control_ids))})", where)
