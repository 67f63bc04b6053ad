"""Signed OSCAL documents: loading, trestle validation and the baseline checks trestle lacks."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from writroot.errors import BadInput
from writroot.jsonio import canonical
from writroot.oscal import models
from writroot.oscal.checks import at, common_checks, walk
from writroot.oscal.sources import SourceRef, Sources, base_dir, follow, load_source, read

#: The prop trestle uses to declare a rule parameter: set-parameters naming one are not
#: catalog parameters, and are left to trestle's rule-parameter checks.
RULE_PARAMETER_PROP = "Parameter_Id"


@dataclass(frozen=True, kw_only=True)
class OscalDocument:
    """A checked OSCAL document and the digest its in-toto subject carries."""

    path: Path
    kind: str  # "component-definition" or "profile"
    document: dict[str, Any]  # the whole JSON document, root key included
    canonical: bytes  # RFC 8785 form of `document`
    sha256: str  # hex SHA-256 of `canonical`
    uuid: str
    version: str  # metadata.version
    title: str
    model: Any = field(repr=False, compare=False)  # the trestle model object

    @property
    def subject_name(self) -> str:
        """The in-toto subject name: `<model type>/<uuid>@<metadata.version>`."""
        return f"{self.kind}/{self.uuid}@{self.version}"


@dataclass(frozen=True)
class ControlImplementation:
    path: str  # OSCAL path, e.g. component-definition.components[0].control-implementations[0]
    source: SourceRef
    control_ids: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class ComponentDefinition(OscalDocument):
    implementations: tuple[ControlImplementation, ...] = ()

    @property
    def control_ids(self) -> frozenset[str]:
        """Every control some component implements: the baseline's scope."""
        return frozenset(c for impl in self.implementations for c in impl.control_ids)


def load_document(path: Path, kinds: tuple[str, ...]) -> OscalDocument:
    """Strict read, writroot's common checks, trestle's model and validators, digest."""
    where = str(path)
    _, document = read(path, where)
    kind, body, version = common_checks(document, where, kinds)
    model = models.parse(kind, body, where)
    models.validate(model, kind, where)
    data = canonical(document)
    title = body["metadata"]["title"]
    return OscalDocument(path=path, kind=kind, document=document, canonical=data,
                         sha256=hashlib.sha256(data).hexdigest(), uuid=str(body["uuid"]),
                         version=version, title=str(title), model=model)


def load_component_definition(path: Path, sources: Sources = None) -> ComponentDefinition:
    """Load a baseline component definition and check it completely.

    `sources` says where the catalogs and profiles named by each control implementation's
    `source` are: a mapping from the source as written to a local file, or a directory that
    relative sources resolve against (default: the document's own directory). Every failure
    is BadInput naming the file and the OSCAL path.
    """
    doc = load_document(path, ("component-definition",))
    body = doc.document[doc.kind]
    where = str(path)
    rule_params = {str(prop.get("value")) for _, key, props, _ in walk(body, doc.kind)
                   if key == "props" for prop in props if prop.get("name") == RULE_PARAMETER_PROP}
    impls = []
    for ipath, impl in _control_implementations(body):
        impls.append(_check_implementation(body, ipath, impl, base_dir(path, sources), sources,
                                           where, rule_params))
    return ComponentDefinition(path=doc.path, kind=doc.kind, document=doc.document,
                               canonical=doc.canonical, sha256=doc.sha256, uuid=doc.uuid,
                               version=doc.version, title=doc.title, model=doc.model,
                               implementations=tuple(impls))


def _control_implementations(body: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    # The model has been checked: the shapes below are the OSCAL ones.
    for i, comp in enumerate(body.get("components") or []):
        for j, impl in enumerate(comp.get("control-implementations") or []):
            yield f"component-definition.components[{i}].control-implementations[{j}]", impl


def _set_parameters(requirement: dict[str, Any], path: str) -> Iterator[tuple[str, str]]:
    """(OSCAL path, param-id) of every set-parameter in an implemented requirement."""
    holders = [(path, requirement)]
    for s, stmt in enumerate(requirement.get("statements") or []):
        holders.append((f"{path}.statements[{s}]", stmt))
    for hpath, holder in list(holders):
        for b, by in enumerate(holder.get("by-components") or []):
            holders.append((f"{hpath}.by-components[{b}]", by))
    for hpath, holder in holders:
        for p, sp in enumerate(holder.get("set-parameters") or []):
            yield f"{hpath}.set-parameters[{p}].param-id", sp["param-id"]


def _check_implementation(body: dict[str, Any], ipath: str, impl: dict[str, Any], base: Path,
                          sources: Sources, where: str, rule_params: set[str]
                          ) -> ControlImplementation:
    href, source_where = follow(body, "component-definition", impl["source"], sources, where,
                                f"{ipath}.source")
    ref, index = load_source(href, base, sources, source_where)
    named = f"{ref.title} ({ref.path.name})"
    first: dict[str, int] = {}
    for k, req in enumerate(impl.get("implemented-requirements") or []):
        rpath = f"{ipath}.implemented-requirements[{k}]"
        cid = req["control-id"]
        if cid in first:
            raise BadInput(f"control {cid!r} is implemented twice in one control implementation "
                           f"(first at implemented-requirements[{first[cid]}])",
                           at(where, f"{rpath}.control-id"))
        first[cid] = k
        if cid not in index.params:
            raise BadInput(f"control {cid!r} is not in {named}", at(where, f"{rpath}.control-id"))
        for s, stmt in enumerate(req.get("statements") or []):
            if stmt["statement-id"] not in index.parts[cid]:
                raise BadInput(f"{stmt['statement-id']!r} is not a part of control {cid} in "
                               f"{named}", at(where, f"{rpath}.statements[{s}].statement-id"))
        for ppath, pid in _set_parameters(req, rpath):
            if pid not in index.params[cid] and pid not in rule_params:
                raise BadInput(f"{pid!r} is not a parameter of control {cid} in {named}",
                               at(where, ppath))
    for p, sp in enumerate(impl.get("set-parameters") or []):
        pid = sp["param-id"]
        if pid not in rule_params and index.param_owner.get(pid) not in first:
            raise BadInput(f"{pid!r} is not a parameter of a control this control "
                           f"implementation implements", at(where, f"{ipath}.set-parameters[{p}]"
                                                             ".param-id"))
    return ControlImplementation(ipath, ref, tuple(first))
