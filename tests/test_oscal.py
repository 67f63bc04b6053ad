"""The OSCAL / in-toto layer on real NIST content: what is refused, where, and why.

tests/data/oscal holds NIST's SP 800-53 rev 5 MODERATE resolved catalog and example component
definition unchanged, a writroot-ready baseline derived from that example, and a CONUS
overlay pinning it (tests/data/oscal/README.md).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from writroot.crypto import engines
from writroot.crypto.algorithms import ML_DSA_87, SLH_DSA_SHA2_256F, SLH_DSA_SHA2_256S, Algorithm
from writroot.crypto.keys import PublicKey
from writroot.envelope import Envelope, Signature, pae
from writroot.errors import BadInput, VerificationFailed
from writroot.jsonio import canonical
from writroot.oscal import (
    OSCAL_PREDICATE_TYPE,
    PAYLOAD_TYPE,
    SLSA_PREDICATE_TYPE,
    STATEMENT_TYPE,
    ComponentDefinition,
    Subject,
    build_statement,
    check_document_subject,
    check_overlay,
    check_subjects,
    file_subject,
    load_component_definition,
    models,
    oscal_statement,
    parse_artifact,
    parse_intoto,
    provenance_statement,
    slsa_predicate,
    sslib,
)

DATA = Path(__file__).parent / "data" / "oscal"
CATALOG = "NIST_SP-800-53_rev5_MODERATE-baseline-resolved-profile_catalog-min.json"
BASELINE = DATA / "baseline-component-definition.json"
OVERLAY = DATA / "overlay-conus.json"
NIST_EXAMPLE = DATA / "example-component-definition.json"
CD = "component-definition"
IMPL = f"{CD}.components[0].control-implementations[0]"
REQ = f"{IMPL}.implemented-requirements"
NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)


def read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def write(directory: Path, name: str, document: Any) -> Path:
    path = directory / name
    path.write_text(json.dumps(document, indent=1))
    return path


def refused(call: Any, *args: Any, where: str, says: str, **kwargs: Any) -> BadInput:
    """The call raises BadInput whose `where` is exactly `where` and whose message says `says`."""
    with pytest.raises(BadInput) as info:
        call(*args, **kwargs)
    assert info.value.where == where, str(info.value)
    assert says in info.value.message, str(info.value)
    assert info.value.exit_code == 2
    return info.value


@pytest.fixture(scope="module")
def baseline() -> ComponentDefinition:
    return load_component_definition(BASELINE)


@pytest.fixture
def doc() -> dict[str, Any]:
    """A fresh copy of the writroot-ready baseline to break."""
    return read(BASELINE)


def load_bad(tmp_path: Path, document: Any, where: str, says: str) -> None:
    path = write(tmp_path, "comp.json", document)
    refused(load_component_definition, path, DATA, where=f"{path}: {where}", says=says)


# --- component definitions ------------------------------------------------------------------


def test_baseline_loads_with_its_digest_and_scope(baseline: ComponentDefinition) -> None:
    from trestle.oscal.component import ComponentDefinition as TrestleComponentDefinition

    document = read(BASELINE)
    assert baseline.document == document
    assert baseline.canonical == canonical(document)
    assert baseline.sha256 == hashlib.sha256(canonical(document)).hexdigest()
    assert baseline.uuid == document[CD]["uuid"]
    assert baseline.version == "1.0.0"
    assert baseline.subject_name == f"component-definition/{baseline.uuid}@1.0.0"
    assert isinstance(baseline.model, TrestleComponentDefinition)
    assert baseline.control_ids == {"sc-8", "sc-8.1", "sa-4.9"}
    (impl,) = baseline.implementations
    assert impl.path == IMPL
    assert impl.source.kind == "catalog" and impl.source.path.name == CATALOG
    assert "MODERATE" in impl.source.title
    assert impl.source.sha256 == hashlib.sha256(canonical(read(DATA / CATALOG))).hexdigest()


def test_digest_ignores_formatting(tmp_path: Path, baseline: ComponentDefinition) -> None:
    # Same JSON, different bytes: the subject digest is of the RFC 8785 form.
    path = tmp_path / "compact.json"
    path.write_text(json.dumps(read(BASELINE), separators=(",", ":"), sort_keys=True))
    assert load_component_definition(path, DATA).sha256 == baseline.sha256


def test_oscal_1_2_documents_load_too(tmp_path: Path, doc: dict[str, Any]) -> None:
    doc[CD]["metadata"]["oscal-version"] = "1.2.1"
    assert load_component_definition(write(tmp_path, "c.json", doc), DATA).version == "1.0.0"


def _nist_steps() -> list[tuple[str, str, str]]:
    return [
        (f"{CD}.metadata.parties[0].links[0].href", "https: reference", "remote href"),
        (f"{CD}.back-matter.resources[0].rlinks[0].href", "climbs out", "'..' in rlinks"),
        (f"{REQ}[1].statements[0].uuid", "duplicate uuid bb9219b1", "reused uuid"),
        (f"{CD}.components[0].responsible-roles[1].role-id", "role 'customer' is not defined",
         "undefined role"),
        (f"{CD}.back-matter.resources[0]", "not referenced", "unreferenced resource"),
        ("profile.back-matter.resources[0].rlinks[1].href", "climbs out",
         "NIST's profile imports the full catalog through a '..' rlink"),
        (f"{REQ}[0].set-parameters[0].param-id", "'sc-8_prm_1' is not a parameter of control sc-8",
         "rev 5.0 parameter ids"),
    ]


def test_nist_example_is_refused_and_why(tmp_path: Path) -> None:
    """NIST's example fails seven writroot checks; fixing each in turn reveals the next."""
    doc = read(NIST_EXAMPLE)
    cd = doc[CD]
    nist_profile = read(DATA / "NIST_SP-800-53_rev5_MODERATE-baseline_profile.json")
    source = cd["components"][0]["control-implementations"][0]["source"]
    fixes = [
        lambda: cd["metadata"]["parties"][0].pop("links"),
        lambda: cd["back-matter"]["resources"][0].update(rlinks=[
            {"href": "moderate-profile.json", "media-type": "application/oscal.profile+json"}]),
        lambda: cd["components"][0]["control-implementations"][0]["implemented-requirements"][1]
        ["statements"][0].update(uuid="6f1d2b8e-52a4-4c1a-9a55-0c1e6e5b2f10"),
        lambda: cd["metadata"]["roles"].append({"id": "customer", "title": "Customer"}),
        lambda: cd["metadata"].update(links=[{"href": source, "rel": "reference"}]),
        lambda: None,  # next: map the source to the local resolved catalog instead
    ]
    write(tmp_path, "moderate-profile.json", nist_profile)
    path = tmp_path / "example.json"
    steps = _nist_steps()
    for (where, says, _), fix in zip(steps, [*fixes, None], strict=True):
        path.write_text(json.dumps(doc))
        sources: Any = tmp_path if where != steps[-1][0] else {source: DATA / CATALOG}
        file = tmp_path / "moderate-profile.json" if where.startswith("profile.") else path
        refused(load_component_definition, path, sources, where=f"{file}: {where}", says=says)
        if fix is not None:
            fix()


def test_duplicate_control_id(tmp_path: Path, doc: dict[str, Any]) -> None:
    reqs = doc[CD]["components"][0]["control-implementations"][0]["implemented-requirements"]
    dup = copy.deepcopy(reqs[1])
    dup["uuid"] = "9e3c3c47-3f0a-4c55-8f57-3c7f54b5f3a1"
    dup["statements"][0]["uuid"] = "0e58f5a5-8d51-4a39-b2b5-3d8b3e8a4c11"
    reqs.append(dup)
    load_bad(tmp_path, doc, f"{REQ}[3].control-id",
             "control 'sc-8.1' is implemented twice in one control implementation "
             "(first at implemented-requirements[1])")


def test_control_missing_from_catalog(tmp_path: Path, doc: dict[str, Any]) -> None:
    req = doc[CD]["components"][0]["control-implementations"][0]["implemented-requirements"][2]
    req["control-id"] = "pe-18"  # a HIGH-baseline control, not in the MODERATE catalog
    load_bad(tmp_path, doc, f"{REQ}[2].control-id", "control 'pe-18' is not in NIST Special "
             f"Publication 800-53 Revision 5.1.1 MODERATE IMPACT BASELINE ({CATALOG})")


def test_statement_and_parameter_must_belong_to_the_control(tmp_path: Path,
                                                            doc: dict[str, Any]) -> None:
    reqs = doc[CD]["components"][0]["control-implementations"][0]["implemented-requirements"]
    reqs[0]["set-parameters"][0]["param-id"] = "sc-08.01_odp"
    load_bad(tmp_path, doc, f"{REQ}[0].set-parameters[0].param-id",
             "'sc-08.01_odp' is not a parameter of control sc-8")
    reqs[0]["set-parameters"][0]["param-id"] = "sc-08_odp"
    reqs[1]["statements"][0]["statement-id"] = "sc-8_smt"
    load_bad(tmp_path, doc, f"{REQ}[1].statements[0].statement-id",
             "'sc-8_smt' is not a part of control sc-8.1")


@pytest.mark.parametrize("href", [
    "http://example.com/catalog.json", "https://example.com/catalog.json",
    "sftp://example.com/catalog.json", "file:///etc/catalog.json", "trestle://catalog.json",
    "C:/catalog.json", "/etc/catalog.json", "../catalog.json", "a/%2e%2e/../catalog.json",
    "a\\catalog.json", "catalog.json?x=1",
])
def test_source_must_be_local_and_relative(tmp_path: Path, doc: dict[str, Any], href: str
                                           ) -> None:
    doc[CD]["components"][0]["control-implementations"][0]["source"] = href
    path = write(tmp_path, "comp.json", doc)
    with pytest.raises(BadInput) as info:
        load_component_definition(path, DATA)
    assert info.value.where == f"{path}: {IMPL}.source"


@pytest.mark.parametrize("scheme", ["http", "https", "sftp"])
def test_remote_link_anywhere_is_refused(tmp_path: Path, doc: dict[str, Any], scheme: str
                                         ) -> None:
    doc[CD]["components"][0]["links"] = [{"href": f"{scheme}://mongodb.example/docs",
                                          "rel": "reference"}]
    load_bad(tmp_path, doc, f"{CD}.components[0].links[0].href", f"{scheme}: reference")


def test_naive_timestamp(tmp_path: Path, doc: dict[str, Any]) -> None:
    doc[CD]["metadata"]["last-modified"] = "2025-06-03T12:00:00"
    load_bad(tmp_path, doc, f"{CD}.metadata.last-modified",
             "naive timestamp '2025-06-03T12:00:00' refused")


@pytest.mark.parametrize("value, where", [
    ("5c1e8a2e-6ad1-5e7e-9a3b-6f1b8c4d2e90", f"{CD}.components[0].uuid"),  # v5, name-based
    ("6ba7b810-9dad-11d1-80b4-00c04fd430c8", f"{CD}.components[0].uuid"),  # v1, time-based
])
def test_non_v4_uuid(tmp_path: Path, doc: dict[str, Any], value: str, where: str) -> None:
    doc[CD]["components"][0]["uuid"] = value
    load_bad(tmp_path, doc, where, "is not a version 4 (random) UUID")


def test_non_v4_uuid_reference(tmp_path: Path, doc: dict[str, Any]) -> None:
    roles = doc[CD]["components"][0]["responsible-roles"]
    roles[0]["party-uuids"] = ["6ba7b810-9dad-11d1-80b4-00c04fd430c8"]
    load_bad(tmp_path, doc, f"{CD}.components[0].responsible-roles[0].party-uuids[0]",
             "not a version 4")


def test_unknown_field(tmp_path: Path, doc: dict[str, Any]) -> None:
    doc[CD]["components"][0]["control-implementations"][0]["implemented-requirements"][1][
        "implementation-status"] = "implemented"
    load_bad(tmp_path, doc, f"{REQ}[1].implementation-status",
             "unknown field 'implementation-status'")


def test_unknown_root_field(tmp_path: Path, doc: dict[str, Any]) -> None:
    doc["$schema"] = "oscal_component_schema.json"
    path = write(tmp_path, "comp.json", doc)
    refused(load_component_definition, path, DATA, where=str(path), says="one root field")


def test_missing_field(tmp_path: Path, doc: dict[str, Any]) -> None:
    del doc[CD]["components"][0]["title"]
    load_bad(tmp_path, doc, f"{CD}.components[0].title", "missing field 'title'")


def test_duplicate_json_key(tmp_path: Path) -> None:
    text = BASELINE.read_text().replace('"version": "1.0.0",',
                                        '"version": "1.0.0", "version": "1.0.1",', 1)
    path = tmp_path / "comp.json"
    path.write_text(text)
    refused(load_component_definition, path, DATA, where=str(path), says="duplicate key 'version'")


def test_version_must_be_a_token(tmp_path: Path, doc: dict[str, Any]) -> None:
    doc[CD]["metadata"]["version"] = "1.0 beta/2"
    load_bad(tmp_path, doc, f"{CD}.metadata.version", "names the signed subject")


def test_unreferenced_resource(tmp_path: Path, doc: dict[str, Any]) -> None:
    doc[CD]["back-matter"] = {"resources": [{"uuid": "3f6e0a56-7f5c-4b0e-8d7e-2b8f0e6c9a12",
                                             "title": "orphan"}]}
    load_bad(tmp_path, doc, f"{CD}.back-matter.resources[0]", "not referenced")


def test_source_not_found_locally(tmp_path: Path, doc: dict[str, Any]) -> None:
    doc[CD]["components"][0]["control-implementations"][0]["source"] = "missing-catalog.json"
    load_bad(tmp_path, doc, f"{IMPL}.source", "'missing-catalog.json' is not a local file")


def test_source_by_back_matter_and_mapping(tmp_path: Path, doc: dict[str, Any]) -> None:
    res = "b3f0f6de-8a8e-4d5e-9c1a-1f2e3d4c5b6a"
    doc[CD]["components"][0]["control-implementations"][0]["source"] = f"#{res}"
    doc[CD]["metadata"]["links"] = [{"href": f"#{res}", "rel": "reference"}]
    doc[CD]["back-matter"] = {"resources": [{"uuid": res, "title": "SP 800-53 MODERATE",
                                             "rlinks": [{"href": CATALOG}]}]}
    path = write(tmp_path, "comp.json", doc)
    assert load_component_definition(path, DATA).control_ids == {"sc-8", "sc-8.1", "sa-4.9"}
    mapped = load_component_definition(path, {f"#{res}": DATA / CATALOG})
    assert mapped.implementations[0].source.path == DATA / CATALOG


def test_profile_source_resolves_offline(tmp_path: Path, doc: dict[str, Any]) -> None:
    """A control implementation may name a profile: trestle resolves it, offline."""
    profile = read(OVERLAY)
    body = profile["profile"]
    body["imports"][0]["href"] = "catalog/" + CATALOG  # relative to the profile's own directory
    body["imports"][0]["include-controls"][0]["with-ids"] = ["sc-8", "sc-8.1"]
    del body["modify"]["alters"]
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / CATALOG).write_bytes((DATA / CATALOG).read_bytes())
    write(tmp_path, "profile.json", profile)
    doc[CD]["components"][0]["control-implementations"][0]["source"] = "profile.json"
    path = write(tmp_path, "comp.json", doc)
    refused(load_component_definition, path, where=f"{path}: {REQ}[2].control-id",
            says="control 'sa-4.9' is not in CONUS regional")
    body["imports"][0]["include-controls"][0]["with-ids"].append("sa-4.9")
    write(tmp_path, "profile.json", profile)
    impl = load_component_definition(path).implementations[0]
    assert impl.source.kind == "profile" and impl.control_ids == ("sc-8", "sc-8.1", "sa-4.9")


def test_trestle_warnings_are_failures() -> None:
    with pytest.raises(BadInput) as info:
        with models.no_warnings("x.json: catalog"):
            logging.getLogger("trestle.core.something").warning("it looked odd")
    assert info.value.where == "x.json: catalog"
    assert "trestle warned: it looked odd" in info.value.message
    with pytest.raises(BadInput, match="deprecated thing"):
        with models.no_warnings("x.json: catalog"):
            import warnings

            warnings.warn("deprecated thing", DeprecationWarning, stacklevel=1)


def test_trestle_validators_run(baseline: ComponentDefinition) -> None:
    """Past writroot's own uuid check, trestle's duplicates validator still refuses."""
    body = copy.deepcopy(baseline.document[CD])
    reqs = body["components"][0]["control-implementations"][0]["implemented-requirements"]
    reqs[1]["uuid"] = reqs[0]["uuid"]
    model = models.parse(CD, body, "dup.json")
    refused(models.validate, model, CD, "dup.json", where=f"dup.json: {CD}",
            says="Duplicate detected of item")


# --- overlays -------------------------------------------------------------------------------


@pytest.fixture
def overlay() -> dict[str, Any]:
    return read(OVERLAY)


def overlay_bad(tmp_path: Path, document: Any, baseline: ComponentDefinition, where: str,
                says: str) -> None:
    path = write(tmp_path, "overlay.json", document)
    refused(check_overlay, path, baseline, DATA, where=f"{path}: {where}", says=says)


def test_overlay_passes(baseline: ComponentDefinition) -> None:
    result = check_overlay(OVERLAY, baseline)
    assert result.kind == "profile"
    assert result.subject_name == f"profile/{result.uuid}@1.0.0"
    assert result.baseline == baseline.subject_name
    assert result.baseline_sha256 == baseline.sha256
    assert result.pin == "profile.back-matter.resources[0].rlinks[0]"
    assert result.control_ids == {"sc-8", "sc-8.1", "sa-4.9"}
    assert [r.path.name for r in result.imports] == [CATALOG]


def test_overlay_includes_control_outside_baseline(tmp_path: Path, overlay: dict[str, Any],
                                                   baseline: ComponentDefinition) -> None:
    overlay["profile"]["imports"][0]["include-controls"][0]["with-ids"].append("ac-2")
    overlay_bad(tmp_path, overlay, baseline,
                "profile.imports[0].include-controls[0].with-ids[3]",
                f"control 'ac-2' is outside the baseline {baseline.subject_name}")


def test_overlay_excludes_control_outside_baseline(tmp_path: Path, overlay: dict[str, Any],
                                                   baseline: ComponentDefinition) -> None:
    overlay["profile"]["imports"][0]["exclude-controls"] = [{"with-ids": ["ia-2"]}]
    overlay_bad(tmp_path, overlay, baseline, "profile.imports[0].exclude-controls[0].with-ids[0]",
                "control 'ia-2' is outside the baseline")


def test_overlay_alters_control_outside_baseline(tmp_path: Path, overlay: dict[str, Any],
                                                 baseline: ComponentDefinition) -> None:
    alters = overlay["profile"]["modify"]["alters"]
    alters.append(copy.deepcopy(alters[0]) | {"control-id": "sc-13"})
    alters[1]["adds"][0]["parts"][0]["id"] = "sc-13_conus"
    overlay_bad(tmp_path, overlay, baseline, "profile.modify.alters[1].control-id",
                "control 'sc-13' is outside the baseline")


def test_overlay_sets_parameter_outside_baseline(tmp_path: Path, overlay: dict[str, Any],
                                                 baseline: ComponentDefinition) -> None:
    params = overlay["profile"]["modify"]["set-parameters"]
    params.append({"param-id": "ac-02_odp.01", "values": ["90 days"]})
    overlay_bad(tmp_path, overlay, baseline, "profile.modify.set-parameters[1].param-id",
                "'ac-02_odp.01' belongs to control 'ac-2', which the baseline")
    params[1]["param-id"] = "no-such_odp"
    overlay_bad(tmp_path, overlay, baseline, "profile.modify.set-parameters[1].param-id",
                "not a parameter of any control the overlay imports")


def test_overlay_pins_wrong_hash(tmp_path: Path, overlay: dict[str, Any],
                                 baseline: ComponentDefinition) -> None:
    rlink = overlay["profile"]["back-matter"]["resources"][0]["rlinks"][0]
    rlink["hashes"][0]["value"] = hashlib.sha256(BASELINE.read_bytes()).hexdigest()  # raw bytes
    overlay_bad(tmp_path, overlay, baseline,
                "profile.back-matter.resources[0].rlinks[0].hashes[0].value",
                f"has canonical SHA-256 {baseline.sha256}")


def test_overlay_hash_case_is_ignored(tmp_path: Path, overlay: dict[str, Any],
                                      baseline: ComponentDefinition) -> None:
    rlink = overlay["profile"]["back-matter"]["resources"][0]["rlinks"][0]
    rlink["hashes"][0]["value"] = baseline.sha256.upper()
    path = write(tmp_path, "overlay.json", overlay)
    assert check_overlay(path, baseline, DATA).baseline_sha256 == baseline.sha256


def test_overlay_unpinned(tmp_path: Path, overlay: dict[str, Any],
                          baseline: ComponentDefinition) -> None:
    body = overlay["profile"]
    del body["back-matter"]
    del body["metadata"]["links"]
    overlay_bad(tmp_path, overlay, baseline, "profile.back-matter",
                "the overlay does not pin its baseline")


def test_overlay_pin_without_sha256(tmp_path: Path, overlay: dict[str, Any],
                                    baseline: ComponentDefinition) -> None:
    rlink = overlay["profile"]["back-matter"]["resources"][0]["rlinks"][0]
    rlink["hashes"] = [{"algorithm": "SHA-512", "value": "00" * 64}]
    overlay_bad(tmp_path, overlay, baseline, "profile.back-matter.resources[0].rlinks[0]",
                "carries no SHA-256 hash")


def test_overlay_pins_two_baselines(tmp_path: Path, overlay: dict[str, Any],
                                    baseline: ComponentDefinition) -> None:
    res = overlay["profile"]["back-matter"]["resources"][0]
    res["rlinks"].append(copy.deepcopy(res["rlinks"][0]))
    overlay_bad(tmp_path, overlay, baseline, "profile.back-matter.resources[0].rlinks[1]",
                "pins more than one baseline")


def test_overlay_selection_forms_refused(tmp_path: Path, overlay: dict[str, Any],
                                         baseline: ComponentDefinition) -> None:
    imp = overlay["profile"]["imports"][0]
    imp["include-controls"][0] = {"matching": [{"pattern": "sc-*"}]}
    overlay_bad(tmp_path, overlay, baseline, "profile.imports[0].include-controls[0].matching",
                "matching patterns can reach past the baseline")
    del imp["include-controls"]
    imp["include-all"] = {}
    overlay_bad(tmp_path, overlay, baseline, "profile.imports[0].include-all",
                "include-all reaches past the baseline")


def test_overlay_remote_import(tmp_path: Path, overlay: dict[str, Any],
                               baseline: ComponentDefinition) -> None:
    overlay["profile"]["imports"][0]["href"] = (
        "https://raw.githubusercontent.com/usnistgov/oscal-content/main/nist.gov/SP800-53/rev5/"
        "json/NIST_SP-800-53_rev5_catalog.json")
    overlay_bad(tmp_path, overlay, baseline, "profile.imports[0].href", "https: reference")


def _pinned(overlay: dict[str, Any], base: ComponentDefinition) -> dict[str, Any]:
    overlay["profile"]["back-matter"]["resources"][0]["rlinks"][0]["hashes"][0]["value"] = (
        base.sha256)
    return overlay


def test_overlay_resolution_stays_inside_baseline(tmp_path: Path, overlay: dict[str, Any],
                                                  doc: dict[str, Any]) -> None:
    """Named ids inside the baseline, but with-child-controls pulls sc-8.1 in."""
    reqs = doc[CD]["components"][0]["control-implementations"][0]["implemented-requirements"]
    del reqs[1]  # this baseline implements sc-8 and sa-4.9, not sc-8.1
    narrow = load_component_definition(write(tmp_path, "narrow.json", doc), DATA)
    body = _pinned(overlay, narrow)["profile"]
    body["imports"][0]["include-controls"] = [{"with-ids": ["sc-8"], "with-child-controls": "yes"}]
    del body["modify"]["alters"]
    overlay_bad(tmp_path, overlay, narrow, "profile.imports",
                "resolves to control 'sc-8.1', outside the baseline")


def test_overlay_resolution_warning_is_failure(tmp_path: Path, overlay: dict[str, Any],
                                               baseline: ComponentDefinition) -> None:
    """trestle's resolver only warns when a set-parameter finds no control; writroot refuses."""
    body = overlay["profile"]
    body["imports"][0]["include-controls"][0]["with-ids"] = ["sc-8", "sa-4.9"]
    del body["modify"]["alters"]
    body["modify"]["set-parameters"].append({"param-id": "sc-08.01_odp", "values": ["x"]})
    overlay_bad(tmp_path, overlay, baseline, "profile.imports",
                "trestle warned: SetParameter for param_id sc-08.01_odp not found")


def test_overlay_merge_compat_error(tmp_path: Path, overlay: dict[str, Any],
                                    baseline: ComponentDefinition) -> None:
    overlay["profile"]["merge"] = {"combine": {"method": "merge"}, "as-is": True}
    overlay_bad(tmp_path, overlay, baseline, "profile.merge.combine", "OSCAL 1.2 compatibility")


# --- in-toto statements ---------------------------------------------------------------------


def test_oscal_statement_layout(baseline: ComponentDefinition) -> None:
    header = {"writroot": {"fleet": "writsov", "serial": "0001"}}
    payload = oscal_statement(baseline, header)
    assert payload == canonical(json.loads(payload))
    assert json.loads(payload) == {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": baseline.subject_name, "digest": {"sha256": baseline.sha256}}],
        "predicateType": OSCAL_PREDICATE_TYPE,
        "predicate": {"canonicalization": "RFC8785", "digestAlgorithm": "sha256",
                      "digestSource": "canonical-json", "tool": "writroot", **header},
    }
    statement = parse_intoto(payload, "p")
    assert statement.subjects == (Subject(baseline.subject_name, baseline.sha256),)
    check_document_subject(statement, baseline)
    with pytest.raises(BadInput, match="reserved"):
        oscal_statement(baseline, {"digestSource": "raw"})


def test_document_subject_mismatch(tmp_path: Path, doc: dict[str, Any],
                                   baseline: ComponentDefinition) -> None:
    statement = parse_intoto(oscal_statement(baseline, {}), "p")
    doc[CD]["components"][0]["purpose"] = "Provides a NoSQL database service, quietly changed"
    changed = load_component_definition(write(tmp_path, "changed.json", doc), DATA)
    with pytest.raises(VerificationFailed, match="differs from the signed"):
        check_document_subject(statement, changed)
    doc[CD]["metadata"]["version"] = "1.0.1"
    bumped = load_component_definition(write(tmp_path, "bumped.json", doc), DATA)
    with pytest.raises(VerificationFailed, match="not component-definition/") as info:
        check_document_subject(statement, bumped)
    assert info.value.exit_code == 1


def _statement(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"_type": STATEMENT_TYPE,
                            "subject": [{"name": "a.tar.gz", "digest": {"sha256": "ab" * 32}}],
                            "predicateType": "https://example.com/p/v1", "predicate": {}}
    base.update(changes)
    return base


@pytest.mark.parametrize("document, where, says", [
    (_statement(extra=1), "p: extra", "unknown field 'extra'"),
    ({k: v for k, v in _statement().items() if k != "predicate"}, "p", "missing field"),
    (_statement(_type="https://in-toto.io/Statement/v0.1"), "p: _type", "Statement/v1"),
    (_statement(subject=[]), "p: subject", "1 to 1024 subjects"),
    (_statement(subject=[{"name": "a", "digest": {"sha256": "AB" * 32}}]),
     "p: subject[0].digest.sha256", "lowercase hex"),
    (_statement(subject=[{"name": "a", "digest": {"sha256": "ab" * 31}}]),
     "p: subject[0].digest.sha256", "lowercase hex"),
    (_statement(subject=[{"name": "a", "digest": {"sha256": "ab" * 32, "md5": "00"}}]),
     "p: subject[0].digest", "exactly {sha256}"),
    (_statement(subject=[{"name": "a", "digest": {"sha256": "ab" * 32}, "uri": "x"}]),
     "p: subject[0]", "exactly {name, digest}"),
    (_statement(subject=[{"name": "a", "digest": {"sha256": "ab" * 32}}] * 2),
     "p: subject[1].name", "duplicate subject"),
    (_statement(predicateType="not a uri"), "p: predicateType", "absolute URI"),
    (_statement(predicate=[]), "p: predicate", "expected an object"),
    (_statement(predicateType=OSCAL_PREDICATE_TYPE,
                predicate={"canonicalization": "JCS", "digestAlgorithm": "sha256",
                           "digestSource": "canonical-json", "tool": "t"}),
     "p: predicate.canonicalization", "must be 'RFC8785'"),
    (_statement(predicateType=OSCAL_PREDICATE_TYPE,
                predicate={"canonicalization": "RFC8785", "digestAlgorithm": "sha256",
                           "digestSource": "canonical-json"}),
     "p: predicate", "missing field 'tool'"),
    (_statement(predicateType=OSCAL_PREDICATE_TYPE,
                predicate={"canonicalization": "RFC8785", "digestAlgorithm": "sha256",
                           "digestSource": "canonical-json", "tool": "t", "extra": 1}),
     "p: predicate.extra", "unknown field"),
    (_statement(predicateType=SLSA_PREDICATE_TYPE, predicate={"buildDefinition": {}}),
     "p: predicate", "missing field 'runDetails'"),
])
def test_parse_intoto_is_strict(document: dict[str, Any], where: str, says: str) -> None:
    refused(parse_intoto, canonical(document), "p", where=where, says=says)


def test_parse_intoto_wants_canonical_bytes() -> None:
    pretty = json.dumps(_statement(), indent=2).encode()
    refused(parse_intoto, pretty, "p", where="p", says="not RFC 8785 canonical")
    dup = canonical(_statement()).replace(b'"predicate":{}', b'"predicate":{},"predicate":{}')
    refused(parse_intoto, dup, "p", where="p", says="duplicate key 'predicate'")


@pytest.fixture
def release(tmp_path: Path) -> dict[str, Path]:
    files = {"writroot-0.1.0.tar.gz": b"sdist bytes", "writroot-0.1.0-py3-none-any.whl": b"whl"}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return {name: tmp_path / name for name in files}


def _provenance(baseline: ComponentDefinition) -> dict[str, Any]:
    return slsa_predicate(
        build_type="https://writsov.com/writroot/release/v1", builder_id="https://writsov.com/ci",
        external_parameters={"ref": "refs/tags/v0.1.0"},
        internal_parameters={"writroot": {"fleet": "writsov", "serial": "0002"}},
        resolved_dependencies=[Subject(baseline.subject_name, baseline.sha256)],
        invocation_id="run-42", started_on=NOW, finished_on=NOW)


def test_release_provenance(release: dict[str, Path], baseline: ComponentDefinition) -> None:
    artifacts = [file_subject(release["writroot-0.1.0.tar.gz"]),
                 parse_artifact(f"sbom.spdx.json=sha256:{'cd' * 32}"),
                 parse_artifact(str(release["writroot-0.1.0-py3-none-any.whl"]))]
    payload = provenance_statement(artifacts, _provenance(baseline))
    statement = parse_intoto(payload, "p")
    assert statement.predicate_type == SLSA_PREDICATE_TYPE
    assert statement.subjects[0] == Subject("writroot-0.1.0.tar.gz",
                                            hashlib.sha256(b"sdist bytes").hexdigest())
    predicate = json.loads(payload)["predicate"]
    assert predicate["runDetails"] == {
        "builder": {"id": "https://writsov.com/ci"},
        "metadata": {"invocationId": "run-42", "startedOn": "2026-11-22T12:00:00Z",
                     "finishedOn": "2026-11-22T12:00:00Z"}}
    assert predicate["buildDefinition"]["resolvedDependencies"] == [
        {"name": baseline.subject_name, "digest": {"sha256": baseline.sha256}}]
    check_subjects(statement, release, exact=False)
    check_subjects(statement, [release["writroot-0.1.0.tar.gz"]], exact=False)
    with pytest.raises(VerificationFailed, match=r"'sbom\.spdx\.json' was not given"):
        check_subjects(statement, release)


def test_release_subject_mismatch(tmp_path: Path, release: dict[str, Path],
                                  baseline: ComponentDefinition) -> None:
    statement = parse_intoto(provenance_statement(
        [file_subject(p) for p in release.values()], _provenance(baseline)), "p")
    check_subjects(statement, release)
    release["writroot-0.1.0.tar.gz"].write_bytes(b"sdist bytes, swapped")
    with pytest.raises(VerificationFailed) as info:
        check_subjects(statement, release)
    assert info.value.where == str(release["writroot-0.1.0.tar.gz"])
    assert "differs from the signed subject" in info.value.message
    other = tmp_path / "other.bin"
    other.write_bytes(b"x")
    with pytest.raises(VerificationFailed, match="not a subject"):
        check_subjects(statement, [other], exact=False)


def test_slsa_predicate_checks(baseline: ComponentDefinition) -> None:
    with pytest.raises(BadInput, match="finishedOn is before startedOn"):
        slsa_predicate(build_type="https://x/t", builder_id="https://x/b",
                       external_parameters={}, invocation_id="i",
                       started_on=NOW, finished_on=NOW.replace(hour=11))
    predicate = _provenance(baseline)
    predicate["runDetails"]["builder"]["version"] = {"writroot": "0.1.0"}
    refused(build_statement, [Subject("a", "ab" * 32)], SLSA_PREDICATE_TYPE, predicate,
            where="new in-toto statement: predicate.runDetails.builder.version",
            says="unknown field 'version'")
    refused(parse_artifact, "a.tgz=sha256:XYZ", where="a.tgz=sha256:XYZ", says="64 lowercase hex")


# --- signatures: writroot keys in securesystemslib and trestle ------------------------------


def _keypair(alg: Algorithm) -> tuple[PublicKey, Any]:
    eng = engines.signer_for(alg)
    pk, sk = eng.keygen(alg)
    return PublicKey(alg, pk), lambda message: eng.sign(alg, sk, message)


@pytest.fixture(scope="module")
def slh_256f() -> tuple[PublicKey, Any]:
    return _keypair(SLH_DSA_SHA2_256F)


def _signed(payload: bytes, public: PublicKey, sign: Any) -> Envelope:
    return Envelope(PAYLOAD_TYPE, payload, (Signature(public.keyid, sign(pae(PAYLOAD_TYPE,
                                                                             payload))),))


def _tampered(envelope: Envelope) -> Envelope:
    payload = envelope.payload.replace(b'"tool":"writroot"', b'"tool":"writroat"')
    assert payload != envelope.payload
    return Envelope(envelope.payload_type, payload, envelope.signatures)


@pytest.mark.parametrize("alg", [SLH_DSA_SHA2_256F, SLH_DSA_SHA2_256S, ML_DSA_87],
                         ids=lambda a: a.name)
def test_key_registered_into_securesystemslib(alg: Algorithm) -> None:
    from securesystemslib.signer import Key

    sslib.register()
    public = PublicKey(alg, engines.signer_for(alg).keygen(alg)[0])
    as_dict = sslib.key_for(public).to_dict()
    keytype, scheme = sslib.SCHEMES[alg.name]
    assert as_dict == {"keytype": keytype, "scheme": scheme, "keyval": {"public": public.pem}}
    key = Key.from_dict(public.keyid, copy.deepcopy(as_dict))
    assert isinstance(key, sslib.WritrootKey) and key.keyid == public.keyid
    with pytest.raises(ValueError, match="keyid is not the SHA-256"):
        Key.from_dict("00" * 32, copy.deepcopy(as_dict))
    other = "slh-dsa-sha2-256f" if scheme == "slh-dsa-sha2-256s" else "slh-dsa-sha2-256s"
    with pytest.raises(ValueError):
        Key.from_dict(public.keyid, {**copy.deepcopy(as_dict), "scheme": other,
                                     "keytype": "slh-dsa"})


def test_tap21_ml_dsa_is_not_writroot_ml_dsa() -> None:
    """securesystemslib's own ml-dsa-87/1 pre-hashes (TAP 21); writroot signs pure ML-DSA."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key
    from securesystemslib.exceptions import UnverifiedSignatureError
    from securesystemslib.signer import Signature as SslibSignature
    from securesystemslib.signer import SSlibKey

    public, sign = _keypair(ML_DSA_87)
    tap21 = SSlibKey.from_crypto(load_pem_public_key(public.pem.encode()))
    assert (tap21.keytype, tap21.scheme) == ("ml-dsa", "ml-dsa-87/1")
    signature = SslibSignature(public.keyid, sign(b"data").hex())
    with pytest.raises(UnverifiedSignatureError):
        tap21.verify_signature(signature, b"data")
    sslib.key_for(public).verify_signature(signature, b"data")


def test_securesystemslib_dsse_verifies_writroot_envelope_256s(
        baseline: ComponentDefinition) -> None:
    """A fleet-root (SLH-DSA-SHA2-256s) signed baseline, checked by securesystemslib and
    trestle with nothing but the registered key."""
    from securesystemslib.dsse import Envelope as SslibEnvelope
    from securesystemslib.exceptions import VerificationError
    from trestle.common.err import TrestleError
    from trestle.core.signing import verify_dsse_payload, verify_oscal_provenance_envelope

    sslib.register()
    public, sign = _keypair(SLH_DSA_SHA2_256S)
    envelope = _signed(oscal_statement(baseline, {"writroot": {"serial": "1"}}), public, sign)
    key = sslib.key_for(public)

    accepted = SslibEnvelope.from_dict(json.loads(envelope.dumps())).verify([key], 1)
    assert list(accepted) == [public.keyid]
    statement = verify_oscal_provenance_envelope(
        baseline.path, json.loads(envelope.dumps()), key, subject_name=baseline.subject_name)
    assert statement["subject"][0]["digest"]["sha256"] == baseline.sha256
    assert verify_dsse_payload(json.loads(envelope.dumps()), key) == envelope.payload

    bad = json.loads(_tampered(envelope).dumps())
    with pytest.raises(VerificationError):
        SslibEnvelope.from_dict(copy.deepcopy(bad)).verify([key], 1)
    with pytest.raises(TrestleError, match="could not be verified"):
        verify_oscal_provenance_envelope(baseline.path, bad, key,
                                         subject_name=baseline.subject_name)


@pytest.mark.parametrize("alg", [SLH_DSA_SHA2_256F, ML_DSA_87], ids=lambda a: a.name)
def test_trestle_verify_accepts_and_rejects(alg: Algorithm, tmp_path: Path,
                                            baseline: ComponentDefinition, doc: dict[str, Any]
                                            ) -> None:
    from securesystemslib.dsse import Envelope as SslibEnvelope
    from securesystemslib.exceptions import VerificationError
    from trestle.common.err import TrestleError
    from trestle.core.signing import verify_oscal_provenance_envelope

    public, sign = _keypair(alg)
    envelope = json.loads(_signed(oscal_statement(baseline, {}), public, sign).dumps())
    key = sslib.key_for(public)
    verify_oscal_provenance_envelope(baseline.path, envelope, key,
                                     subject_name=baseline.subject_name)
    # the file changed after signing: the signature holds, the subject digest does not
    doc[CD]["metadata"]["title"] += " (edited)"
    edited = write(tmp_path, "edited.json", doc)
    with pytest.raises(TrestleError, match="digest does not match"):
        verify_oscal_provenance_envelope(edited, envelope, key,
                                         subject_name=baseline.subject_name)
    # a signature by another key
    other, other_sign = _keypair(alg)
    forged = json.loads(_signed(oscal_statement(baseline, {}), other, other_sign).dumps())
    forged["signatures"][0]["keyid"] = public.keyid
    with pytest.raises(TrestleError):
        verify_oscal_provenance_envelope(baseline.path, forged, key,
                                         subject_name=baseline.subject_name)
    with pytest.raises(VerificationError):
        SslibEnvelope.from_dict(forged).verify([key], 1)


def test_trestle_and_securesystemslib_sign_through_writroot_signer(
        slh_256f: tuple[PublicKey, Any], baseline: ComponentDefinition) -> None:
    """trestle's own signing path with a writroot signer: writroot reads the result."""
    from securesystemslib.dsse import Envelope as SslibEnvelope
    from trestle.core.signing import create_oscal_provenance_envelope

    public, sign = slh_256f
    signer = sslib.signer_for(public, sign)
    assert signer.public_key.keyid == public.keyid
    made = create_oscal_provenance_envelope(baseline.path, signer, baseline.subject_name)
    envelope = Envelope.from_json(made, "trestle.dsse.json")
    verifier = engines.verifier_for(public.algorithm)
    assert verifier.verify(public.algorithm, public.raw, envelope.pae(),
                           envelope.signatures[0].sig)
    statement = parse_intoto(envelope.payload, "trestle payload")  # trestle's bytes are JCS
    assert statement.predicate["tool"] == "compliance-trestle"
    check_document_subject(statement, baseline)

    ours = SslibEnvelope(oscal_statement(baseline, {}), PAYLOAD_TYPE, {})
    ours.sign(signer)
    parsed = Envelope.from_json(ours.to_dict(), "sslib.dsse.json")
    assert verifier.verify(public.algorithm, public.raw, parsed.pae(), parsed.signatures[0].sig)
    with pytest.raises(ValueError, match="signing callable"):
        type(signer).from_priv_key_uri("file:x", signer.public_key)


# --- lazy imports ---------------------------------------------------------------------------

HEAVY = ("trestle", "pydantic", "pydantic_core", "securesystemslib")


def test_cli_never_imports_trestle_pydantic_or_securesystemslib() -> None:
    code = ("import sys, writroot.cli, writroot.oscal, writroot.oscal.sslib; "
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
    timed = subprocess.run([sys.executable, "-X", "importtime", "-m", "writroot", "--version"],
                           capture_output=True, text=True, check=True)
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0]
                for line in timed.stderr.splitlines() if line.startswith("import time:")}
    assert not imported & set(HEAVY)


def test_nothing_outside_oscal_imports_it_at_top_level() -> None:
    import ast

    root = Path(__file__).parent.parent / "writroot"
    for path in root.rglob("*.py"):
        if "oscal" in path.relative_to(root).parts:
            continue
        for node in ast.parse(path.read_text()).body:  # module level only
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not [n for n in names if n.startswith("writroot.oscal")], path
