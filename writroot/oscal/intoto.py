"""in-toto Statement v1 for OSCAL documents and release artifacts, in trestle's layout.

compliance-trestle 5.x (`trestle sign`, trestle/core/signing.py) signs a JSON file as a DSSE
envelope of payload type `application/vnd.in-toto+json` whose payload is an in-toto
Statement v1: one subject whose digest is the SHA-256 of the file's RFC 8785 canonical JSON,
predicate type `https://oscal-compass.github.io/compliance-trestle/predicates/oscal-signing/v1`
and a predicate recording {canonicalization, digestAlgorithm, digestSource, tool}. writroot
uses the same statement, names the subject `<model type>/<uuid>@<version>`, and adds its
signed header to the predicate, so `trestle verify --subject-name ...` accepts writroot's
baselines and overlays. Release provenance uses the SLSA provenance v1 predicate.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from writroot.errors import BadInput, VerificationFailed, field_name
from writroot.jsonio import canonical, is_hex_digest, loads_strict
from writroot.oscal.provenance import check_predicate
from writroot.oscal.subjects import Subject, check_name, check_type_uri

if TYPE_CHECKING:
    from writroot.oscal.documents import OscalDocument

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
OSCAL_PREDICATE_TYPE = ("https://oscal-compass.github.io/compliance-trestle/predicates/"
                        "oscal-signing/v1")
SLSA_PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
#: The predicate fields trestle writes and `trestle verify` requires (tool is informative).
OSCAL_PREDICATE_BASE = {"canonicalization": "RFC8785", "digestAlgorithm": "sha256",
                        "digestSource": "canonical-json"}
TOOL = "writroot"

MAX_STATEMENT_BYTES = 2 * 1024 * 1024
MAX_SUBJECTS = 1024
_HASH_CHUNK = 1024 * 1024
_SPEC_RE = re.compile(r"(?P<name>[^=\s][^=]*)=sha256:(?P<hex>[0-9a-f]{64})")


@dataclass(frozen=True)
class InTotoStatement:
    subjects: tuple[Subject, ...]
    predicate_type: str
    predicate: dict[str, Any]
    payload: bytes  # the exact canonical bytes that were signed

    def subject(self, name: str) -> Subject | None:
        return next((s for s in self.subjects if s.name == name), None)


def _subjects(value: Any, where: str) -> tuple[Subject, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_SUBJECTS:
        raise BadInput(f"expected a list of 1 to {MAX_SUBJECTS} subjects", where)
    out: list[Subject] = []
    for i, item in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(item, dict) or set(item) != {"name", "digest"}:
            raise BadInput("expected exactly {name, digest}", at)
        name = check_name(item["name"], f"{at}.name")
        digest = item["digest"]
        if not isinstance(digest, dict) or set(digest) != {"sha256"}:
            raise BadInput("expected exactly {sha256}", f"{at}.digest")
        if not is_hex_digest(digest["sha256"]):
            raise BadInput("sha256 must be 64 lowercase hex digits", f"{at}.digest.sha256")
        if any(s.name == name for s in out):
            raise BadInput(f"duplicate subject {name!r}", f"{at}.name")
        out.append(Subject(name, digest["sha256"]))
    return tuple(out)


def parse_intoto(payload: bytes, where: str) -> InTotoStatement:
    """Parse a DSSE payload as an in-toto Statement v1, strictly.

    Exactly {_type, subject, predicateType, predicate}; subjects {name, digest: {sha256}};
    the trestle OSCAL and SLSA v1 predicates are checked too. The payload must be exactly its
    own RFC 8785 form, so one statement has one byte encoding and one signature input.
    """
    document = loads_strict(payload, where, MAX_STATEMENT_BYTES)
    if not isinstance(document, dict):
        raise BadInput("a statement must be a JSON object", where)
    fields = {"_type", "subject", "predicateType", "predicate"}
    for name in sorted(fields - set(document)):
        raise BadInput(f"missing field {name!r}", where)
    for name in sorted(set(document) - fields):
        raise BadInput(f"unknown field {name!r}", f"{where}: {name}")
    if document["_type"] != STATEMENT_TYPE:
        raise BadInput(f"expected {STATEMENT_TYPE}", f"{where}: _type")
    subjects = _subjects(document["subject"], f"{where}: subject")
    ptype = check_type_uri(document["predicateType"], f"{where}: predicateType")
    predicate = document["predicate"]
    if not isinstance(predicate, dict):
        raise BadInput("expected an object", f"{where}: predicate")
    if ptype == OSCAL_PREDICATE_TYPE:
        members = {*OSCAL_PREDICATE_BASE, "tool", "writroot"}  # writroot: ours, not trestle's
        for name in sorted(members - set(predicate) - {"writroot"}):
            raise BadInput(f"missing field {name!r}", f"{where}: predicate")
        for name in sorted(set(predicate) - members):
            raise BadInput("unknown field", f"{where}: predicate.{field_name(name)}")
        for name, value in OSCAL_PREDICATE_BASE.items():
            if predicate.get(name) != value:
                raise BadInput(f"must be {value!r}", f"{where}: predicate.{name}")
        check_name(predicate["tool"], f"{where}: predicate.tool")  # informative, but text
        if len(subjects) != 1:
            raise BadInput("an OSCAL signing statement has exactly one subject",
                           f"{where}: subject")
    elif ptype == SLSA_PREDICATE_TYPE:
        check_predicate(predicate, f"{where}: predicate")
    if canonical(document) != payload:
        raise BadInput("payload is not RFC 8785 canonical JSON", where)
    return InTotoStatement(subjects, ptype, predicate, payload)


def build_statement(subjects: Sequence[Subject], predicate_type: str,
                    predicate: Mapping[str, Any]) -> bytes:
    """Assemble a statement; return its canonical payload, checked by the parser."""
    document = {"_type": STATEMENT_TYPE, "subject": [s.to_json() for s in subjects],
                "predicateType": predicate_type, "predicate": dict(predicate)}
    payload = canonical(document)
    parse_intoto(payload, "new in-toto statement")
    return payload


def document_subject(document: OscalDocument) -> Subject:
    return Subject(document.subject_name, document.sha256)


def oscal_statement(document: OscalDocument, predicate: Mapping[str, Any]) -> bytes:
    """The statement for a baseline or overlay: trestle's OSCAL signing layout, with the
    caller's fields (writroot's signed header) added to trestle's predicate fields."""
    clash = sorted(set(predicate) & (set(OSCAL_PREDICATE_BASE) | {"tool"}))
    if clash:
        raise BadInput(f"predicate field {clash[0]!r} is reserved for trestle's layout",
                       "predicate")
    merged = {**OSCAL_PREDICATE_BASE, "tool": TOOL, **predicate}
    return build_statement([document_subject(document)], OSCAL_PREDICATE_TYPE, merged)


def provenance_statement(artifacts: Sequence[Subject], predicate: Mapping[str, Any]) -> bytes:
    """Release provenance: the artifacts as subjects, an SLSA v1 predicate (see provenance)."""
    return build_statement(artifacts, SLSA_PREDICATE_TYPE, predicate)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    try:
        with path.open("rb") as f:
            while chunk := f.read(_HASH_CHUNK):
                h.update(chunk)
    except OSError as exc:
        raise BadInput(f"cannot read: {exc.strerror}", str(path)) from None
    return h.hexdigest()


def file_subject(path: Path, name: str | None = None) -> Subject:
    """A release artifact on disk: named by its file name unless `name` is given."""
    return Subject(check_name(name or path.name, str(path)), file_sha256(path))


def parse_artifact(spec: str | Path) -> Subject:
    """`name=sha256:<64 hex>` for an artifact known by digest, else a path to a file."""
    if isinstance(spec, str):
        m = _SPEC_RE.fullmatch(spec)
        if m:
            return Subject(check_name(m.group("name"), spec), m.group("hex"))
        if "=sha256:" in spec:
            raise BadInput("expected name=sha256:<64 lowercase hex digits>", spec)
    return file_subject(Path(spec))


def check_subjects(statement: InTotoStatement, files: Iterable[Path] | Mapping[str, Path],
                   *, exact: bool = True) -> None:
    """Each file (named by its file name, or by the mapping's key) must be a subject with the
    same SHA-256; with `exact`, every subject must be given too."""
    if isinstance(files, Mapping):
        named = dict(files)
    else:
        named = {}
        for path in files:
            if named.setdefault(path.name, path) != path:
                raise BadInput(f"two files are named {path.name!r}: give a name -> path mapping",
                               str(path))
    for name, path in named.items():
        subject = statement.subject(name)
        if subject is None:
            raise VerificationFailed(f"{name!r} is not a subject of the statement", str(path))
        if not hmac.compare_digest(file_sha256(path), subject.sha256):
            raise VerificationFailed(f"SHA-256 differs from the signed subject {name!r}",
                                     str(path))
    missing = [s.name for s in statement.subjects if s.name not in named]
    if exact and missing:
        raise VerificationFailed(f"subject {missing[0]!r} was not given", "subject")


def check_document_subject(statement: InTotoStatement, document: OscalDocument) -> None:
    """The statement signs exactly this OSCAL document (name and canonical SHA-256)."""
    subject = statement.subject(document.subject_name)
    if subject is None:
        names = ", ".join(s.name for s in statement.subjects)
        raise VerificationFailed(f"the statement signs {names}, not {document.subject_name}",
                                 str(document.path))
    if not hmac.compare_digest(subject.sha256, document.sha256):
        raise VerificationFailed(f"canonical SHA-256 {document.sha256} differs from the signed "
                                 f"{subject.sha256}", str(document.path))
