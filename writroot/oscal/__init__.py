"""Signed OSCAL baselines, regional overlays and release provenance (docs/oscal.md).

The pure layer: load and check documents, build and parse in-toto statements, and fit the
securesystemslib / trestle verification APIs. compliance-trestle, pydantic and
securesystemslib are imported inside functions only, so importing this package is cheap;
still, import it inside the commands that need it, not at the top of CLI modules.
"""

from __future__ import annotations

from writroot.oscal.documents import (
    ComponentDefinition,
    ControlImplementation,
    OscalDocument,
    load_component_definition,
)
from writroot.oscal.intoto import (
    OSCAL_PREDICATE_TYPE,
    PAYLOAD_TYPE,
    SLSA_PREDICATE_TYPE,
    STATEMENT_TYPE,
    InTotoStatement,
    build_statement,
    check_document_subject,
    check_subjects,
    file_subject,
    oscal_statement,
    parse_artifact,
    parse_intoto,
    provenance_statement,
)
from writroot.oscal.overlay import Overlay, check_overlay
from writroot.oscal.provenance import slsa_predicate
from writroot.oscal.sources import SourceRef, Sources
from writroot.oscal.subjects import Subject

__all__ = [
    "OSCAL_PREDICATE_TYPE",
    "PAYLOAD_TYPE",
    "SLSA_PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "ComponentDefinition",
    "ControlImplementation",
    "InTotoStatement",
    "OscalDocument",
    "Overlay",
    "SourceRef",
    "Sources",
    "Subject",
    "build_statement",
    "check_document_subject",
    "check_overlay",
    "check_subjects",
    "file_subject",
    "load_component_definition",
    "oscal_statement",
    "parse_artifact",
    "parse_intoto",
    "provenance_statement",
    "slsa_predicate",
]
