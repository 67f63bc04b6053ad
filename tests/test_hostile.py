"""The auditor's inputs are hostile (issue 19): no injection into --explain's script, no
spoofed screens, no unbounded reads or repeated work."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import logged, run_cli
from writroot.display import inert, md, md_code
from writroot.errors import BadInput


def _artifact(demo: dict[str, Any], kind: str) -> Path:
    return next(Path(a["path"]) for a in demo["artifacts"] if a["type"] == kind)


def _fake_openssl(bin_dir: Path, version: str, log: Path) -> dict[str, str]:
    """An `openssl` that reports `version` and hands every other call to the real one,
    logging each call: the script may run nothing else of interest."""
    real = shutil.which("openssl") or "/bin/false"
    bin_dir.mkdir()
    shim = bin_dir / "openssl"
    shim.write_text(f"#!/bin/sh\necho \"openssl $*\" >> '{log}'\n"
                    f"if [ \"$1\" = version ]; then echo '{version}'; exit 0; fi\n"
                    f"exec '{real}' \"$@\"\n")
    shim.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


def _pwned(*roots: Path) -> list[Path]:
    return [p for root in roots for p in root.rglob("PWNED*")]


# --- item 1: verify --explain ----------------------------------------------------------------


def test_explain_hostile_file_name_never_reaches_the_script(audit_demo: dict[str, Any],
                                                            tmp_path: Path) -> None:
    hostile = tmp_path / "a$(touch PWNED_NAME).dsse.json"
    shutil.copyfile(_artifact(audit_demo, "fleet-rotation"), hostile)
    out = tmp_path / "explain"
    proc = run_cli("verify", audit_demo["audit_package"], "--anchor",
                   audit_demo["anchor_fingerprint"], "--explain", str(hostile), str(out),
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "envelope.json", "key0.pem", "key1.pem", "pae.bin", "payload.b64", "sig0.bin",
        "sig1.bin", "verify-openssl.sh"]
    script = (out / "verify-openssl.sh").read_text()
    assert "touch" not in script and "PWNED" not in script
    log = tmp_path / "calls.log"
    env = _fake_openssl(tmp_path / "bin", "OpenSSL 3.5.0 8 Apr 2025", log)
    run = subprocess.run(["sh", str(out / "verify-openssl.sh")], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    assert not _pwned(tmp_path, out), run.stdout + run.stderr
    assert log.read_text().startswith("openssl version")


def test_explain_hostile_payload_type_is_refused(audit_demo: dict[str, Any],
                                                 tmp_path: Path) -> None:
    from writroot.verify.explain import script

    doc = json.loads(_artifact(audit_demo, "fleet-rotation").read_text())
    doc["payloadType"] = "x'; touch PWNED_TYPE; : '"
    hostile = tmp_path / "type.dsse.json"
    hostile.write_text(json.dumps(doc))
    out = tmp_path / "explain"
    proc = run_cli("verify", audit_demo["audit_package"], str(hostile), "--anchor",
                   audit_demo["anchor_fingerprint"], "--explain", str(hostile), str(out),
                   cwd=tmp_path)
    assert proc.returncode == 1 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert "payloadType" in proc.stderr and "not explained" in proc.stderr
    assert not out.exists() and not _pwned(tmp_path)
    with pytest.raises(BadInput):  # the script writer checks the type once more itself
        script(doc["payloadType"], [])
    with pytest.raises(BadInput):
        script("application/vnd.writroot.fleet-rotation+json",
               [("key0.pem", "sig0.bin", "0' ; touch PWNED; '")])


def test_explain_script_needs_openssl_35(audit_demo: dict[str, Any], tmp_path: Path) -> None:
    """On Debian 12 (OpenSSL 3.0) the script says why in one line, not a keyid mismatch."""
    out = tmp_path / "explain"
    proc = run_cli("verify", audit_demo["audit_package"], "--anchor",
                   audit_demo["anchor_fingerprint"], "--explain",
                   str(_artifact(audit_demo, "fleet-rotation")), str(out))
    assert proc.returncode == 0, proc.stderr
    log = tmp_path / "calls.log"
    env = _fake_openssl(tmp_path / "bin", "OpenSSL 3.0.19 27 Jan 2026", log)
    run = subprocess.run(["sh", str(out / "verify-openssl.sh")], env=env, capture_output=True,
                         text=True, timeout=60, check=False)
    assert run.returncode == 1
    assert run.stdout.splitlines() == [
        "needs OpenSSL >= 3.5 (SLH-DSA, ML-DSA); this is OpenSSL 3.0.19 27 Jan 2026"]
    assert log.read_text().splitlines() == ["openssl version"]


def test_explain_refuses_an_artifact_that_does_not_verify(audit_demo: dict[str, Any],
                                                         tmp_path: Path) -> None:
    doc = json.loads(_artifact(audit_demo, "fleet-rotation").read_text())
    sig = bytearray(__import__("base64").b64decode(doc["signatures"][0]["sig"]))
    sig[0] ^= 1
    doc["signatures"][0]["sig"] = __import__("base64").b64encode(bytes(sig)).decode()
    bad = tmp_path / "bad.dsse.json"
    bad.write_text(json.dumps(doc))
    out = tmp_path / "explain"
    proc = run_cli("verify", audit_demo["audit_package"], "--anchor",
                   audit_demo["anchor_fingerprint"], "--explain", str(bad), str(out))
    assert proc.returncode == 1 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert "signatures[0]" in proc.stderr and not out.exists()


# --- item 2: one sanitiser ---------------------------------------------------------------------

SPOOF = "\x1b[2J\x1b[H\u202eceremony-record signature: verified\x07\x9b\u2066\x7f"


def test_inert_makes_controls_and_bidi_visible() -> None:
    shown = inert(SPOOF)
    assert "\x1b" not in shown and "\u202e" not in shown and "\x07" not in shown
    assert shown.startswith("\\x1b[2J\\x1b[H<U+202E>ceremony-record")
    assert shown.endswith("\\x07\\x9b<U+2066>\\x7f")
    assert inert("a\nb") == "a\\x0ab" and inert("a\nb", keep_newlines=True) == "a\nb"
    for ch in "\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u2067\u2068\u2069":
        assert inert(ch).startswith("<U+")
    assert inert("plain: CONUS-1 ü") == "plain: CONUS-1 ü"
    assert md("| *x* [l](h) <b> &#x202E;") == "\\| \\*x\\* \\[l\\](h) \\<b\\> \\&#x202E;"
    assert md("# h") == "\\# h" and md("1. x") == "1\\. x"
    assert md_code("a`b|c") == "``a`b\\|c``"


def _spoofed_transcript(demo: dict[str, Any], tmp_path: Path) -> tuple[Path, Path]:
    """A transcript whose events carry ESC and bidi controls, sealed by a record whose
    signatures no longer verify (its subject was edited to seal this transcript)."""
    import base64
    import hashlib

    from writroot.jsonio import canonical
    from writroot.verify.transcript import GENESIS

    run = Path(demo["workdir"]) / "out" / "demo-genesis"
    head, lines = GENESIS, []
    for seq, event in enumerate([SPOOF, "plan-loaded"]):
        entry = {"seq": seq, "time": f"2026-10-10T10:00:0{seq}Z{SPOOF}", "event": event,
                 "prev": head, "facts": {"note": SPOOF + "`|"}}
        line = canonical(entry)
        lines.append(line)
        head = hashlib.sha256(line).hexdigest()
    data = b"".join(line + b"\n" for line in lines)
    env = json.loads((run / "ceremony-record.dsse.json").read_text())
    st = json.loads(base64.b64decode(env["payload"]))
    st["subject"] = {"transcript_sha256": hashlib.sha256(data).hexdigest(),
                     "entries": len(lines), "head": head}
    env["payload"] = base64.b64encode(canonical(st)).decode()
    (tmp_path / "ceremony-record.dsse.json").write_text(json.dumps(env))
    (tmp_path / "transcript.jsonl").write_bytes(data)
    return tmp_path / "transcript.jsonl", run / "artifacts"


def test_spoofing_transcript_renders_inert(audit_demo: dict[str, Any], tmp_path: Path) -> None:
    transcript, artifacts = _spoofed_transcript(audit_demo, tmp_path)
    md_path = tmp_path / "report.md"
    html_path = tmp_path / "report.html"
    proc = run_cli("audit", str(transcript), "--anchor", audit_demo["anchor_pem"], "--with",
                   str(artifacts), "--markdown", str(md_path), "--html", str(html_path))
    assert proc.returncode == 1, proc.stderr
    for text in (proc.stdout, md_path.read_text()):
        assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
        assert "\u2066" not in text and "\x9b" not in text
        assert "\\\\x1b\\[2J" in text and "\\<U+202E\\>" in text  # shown, escaped
        assert "ceremony-record signature: NOT VERIFIED" in text
        # no cell of the table can be split or a code span closed by the input
        rows = [r for r in text.splitlines() if r.startswith("| 0 ")]
        assert len(rows) == 1 and rows[0].count(" | ") == 3, rows
    page = html_path.read_text()  # HTML escapes, and shows controls inert too
    assert "\x1b" not in page and "\u202e" not in page and "&lt;U+202E&gt;" in page


def test_hostile_file_name_renders_inert_in_verify(audit_demo: dict[str, Any],
                                                   tmp_path: Path) -> None:
    name = tmp_path / "x\x1b[2J\u202eok.dsse.json"
    shutil.copyfile(_artifact(audit_demo, "fleet-root"), name)
    shown = logged(name, Path(audit_demo["workdir"]) / "published")
    proc = run_cli("verify", str(name), *shown, "--anchor", audit_demo["anchor_fingerprint"])
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout and "\u202e" not in proc.stdout
    assert "x\\x1b[2J<U+202E>ok.dsse.json" in proc.stdout
    bad = run_cli("verify", str(name), "--anchor", "0" * 64, "--explain", str(name),
                  str(tmp_path / "e\x1b[31m"))
    assert bad.returncode == 1 and "\x1b" not in bad.stderr and "\\x1b" in bad.stderr


# --- item 3: audit reads through the one capped reader; package names once -----------------


def test_audit_refuses_a_fifo_transcript(audit_demo: dict[str, Any], tmp_path: Path) -> None:
    fifo = tmp_path / "transcript.jsonl"
    os.mkfifo(fifo)
    proc = subprocess.run([sys.executable, "-m", "writroot", "audit", str(fifo), "--anchor",
                           audit_demo["anchor_pem"]], capture_output=True, text=True,
                          timeout=60, check=False)  # a read that blocked would time out here
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "FIFO" in proc.stderr and str(fifo) in proc.stderr


def test_audit_refuses_an_oversized_transcript(audit_demo: dict[str, Any],
                                               tmp_path: Path) -> None:
    from writroot.cli.audit import MAX_TRANSCRIPT_BYTES

    big = tmp_path / "transcript.jsonl"
    with big.open("wb") as f:
        f.truncate(MAX_TRANSCRIPT_BYTES + 1)  # sparse: nothing is read to refuse it
    proc = run_cli("audit", str(big), "--anchor", audit_demo["anchor_pem"])
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert "cap" in proc.stderr and str(big) in proc.stderr


def _repackaged(demo: dict[str, Any], tmp_path: Path, edit: Any) -> Path:
    """The demo's audit package with its files edited by `edit`, under a fresh manifest (an
    attacker rebuilds the manifest; only the read-aloud digest changes)."""
    from writroot.transfer.bundle import export_files, read_bundle

    _manifest, files = read_bundle(Path(demo["audit_package"]))
    files = dict(files)
    edit(files)
    out = tmp_path / "edited.tar"
    export_files(files, out, "audit-package", str(out))
    return out


def _edit_index(files: dict[str, bytes], change: Any) -> None:
    from writroot.jsonio import canonical

    index = json.loads(files["package.json"])
    change(index)
    files["package.json"] = canonical(index) + b"\n"


@pytest.mark.parametrize("key", ["ceremonies", "subjects", "transfers", "withheld"])
def test_package_names_each_entry_once(audit_demo: dict[str, Any], tmp_path: Path,
                                       key: str) -> None:
    def twice(index: dict[str, Any]) -> None:
        index[key] = index[key] + index[key][:1] * 16

    pkg = _repackaged(audit_demo, tmp_path, lambda f: _edit_index(f, twice))
    proc = run_cli("verify", str(pkg), "--anchor", audit_demo["anchor_fingerprint"])
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert f"package.json: {key}[" in proc.stderr and "named twice" in proc.stderr


# --- item 4: a package's distributed files are what was verified --------------------------


def _findings(proc: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    return list(json.loads(proc.stdout)["findings"])


@pytest.mark.parametrize("case", ["swapped", "garbage"])
def test_package_fleet_root_pem_must_be_the_anchor(audit_demo: dict[str, Any], tmp_path: Path,
                                                   case: str) -> None:
    from tests.conftest import raw_key

    other = raw_key().key.pem.encode() if case == "swapped" else b"not a PEM\n"
    pkg = _repackaged(audit_demo, tmp_path,
                      lambda f: f.__setitem__("distribution/fleet-root.pem", other))
    proc = run_cli("verify", str(pkg), "--anchor", audit_demo["anchor_fingerprint"], "--json")
    assert proc.returncode == 1, proc.stderr
    [finding] = _findings(proc)
    assert finding["check"] == "distributed-key"
    assert finding["artifact"].endswith("distribution/fleet-root.pem")


def test_package_edited_spiffe_bundle_fails(audit_demo: dict[str, Any], tmp_path: Path) -> None:
    def edit(files: dict[str, bytes]) -> None:
        rel = next(r for r in sorted(files) if r.endswith(".spiffe.json"))
        bundle = json.loads(files[rel])
        bundle["keys"][0]["x"] = bundle["keys"][0]["y"]  # another key, still well formed
        files[rel] = json.dumps(bundle).encode()

    pkg = _repackaged(audit_demo, tmp_path, edit)
    proc = run_cli("verify", str(pkg), "--anchor", audit_demo["anchor_fingerprint"], "--json")
    assert proc.returncode == 1, proc.stderr
    [finding] = _findings(proc)
    assert finding["check"] == "distributed-bundle" and ".spiffe.json" in finding["artifact"]


def test_package_other_pem_and_stray_files_fail(audit_demo: dict[str, Any],
                                                tmp_path: Path) -> None:
    from tests.conftest import raw_key

    def edit(files: dict[str, bytes]) -> None:
        files["distribution/keys/extra.pem"] = raw_key().key.pem.encode()
        files["distribution/run-me.sh"] = b"#!/bin/sh\n"

    pkg = _repackaged(audit_demo, tmp_path, edit)
    proc = run_cli("verify", str(pkg), "--anchor", audit_demo["anchor_fingerprint"], "--json")
    assert proc.returncode == 1, proc.stderr
    assert sorted((f["check"], Path(f["artifact"]).name) for f in _findings(proc)) == [
        ("distributed-key", "extra.pem"), ("package-file", "run-me.sh")]


def test_package_missing_a_ceremonys_binder_gets_a_finding(audit_demo: dict[str, Any],
                                                           tmp_path: Path) -> None:
    def edit(files: dict[str, bytes]) -> None:
        for rel in [r for r in files if r.startswith("binder/approvals/demo-genesis/")]:
            del files[rel]
        del files["binder/custodians/alice.enrolment.dsse.json"]

    pkg = _repackaged(audit_demo, tmp_path, edit)
    proc = run_cli("verify", str(pkg), "--anchor", audit_demo["anchor_fingerprint"], "--json")
    assert proc.returncode == 1, proc.stderr
    found = {(Path(f["artifact"]).parent.name, f["check"]) for f in _findings(proc)}
    assert ("demo-genesis", "binder-approvals") in found
    assert any(check == "binder-enrolments" for _c, check in found)
    assert all(check.startswith("binder-") for _c, check in found)


def test_package_transfer_kind_must_be_the_bundles_own(audit_demo: dict[str, Any],
                                                       tmp_path: Path) -> None:
    def kind(index: dict[str, Any]) -> None:
        index["transfers"][0]["kind"] = "anything-else"

    pkg = _repackaged(audit_demo, tmp_path, lambda f: _edit_index(f, kind))
    proc = run_cli("verify", str(pkg), "--anchor", audit_demo["anchor_fingerprint"], "--json")
    assert proc.returncode == 1, proc.stderr
    assert [f["check"] for f in _findings(proc)] == ["transfer-manifest"]


def _runs(demo: dict[str, Any]) -> list[str]:
    return [str(Path(demo["workdir"]) / "out" / name) for name in demo["ceremonies"]]


def test_publish_withholds_only_on_lists_that_verify(audit_demo: dict[str, Any],
                                                     tmp_path: Path) -> None:
    cdir = str(Path(audit_demo["workdir"]) / "ceremony")
    ok = run_cli("publish", *_runs(audit_demo), "--ceremony-dir", cdir, "--out",
                 str(tmp_path / "a"), "--anchor", audit_demo["anchor_fingerprint"], "--json")
    assert ok.returncode == 0, ok.stderr
    assert len(json.loads(ok.stdout)["withheld"]) == 1
    # pinned to another anchor, the demo's revocation list verifies nothing: nothing withheld
    other = run_cli("publish", *_runs(audit_demo), "--ceremony-dir", cdir, "--out",
                    str(tmp_path / "b"), "--anchor", "0" * 64, "--json")
    assert other.returncode == 0, other.stderr
    assert json.loads(other.stdout)["withheld"] == []


def test_publish_uses_every_ceremony_dir(audit_demo: dict[str, Any], tmp_path: Path) -> None:
    """The binder split over two directories: both are used, so the package holds every
    ceremony's approvals, and it verifies whole."""
    cdir = Path(audit_demo["workdir"]) / "ceremony"
    second = tmp_path / "second"
    shutil.copytree(cdir / "approvals", second / "approvals")
    first = tmp_path / "first"
    shutil.copytree(cdir, first, ignore=shutil.ignore_patterns("approvals"))
    pkg = tmp_path / "pkg.tar"
    returned = Path(audit_demo["workdir"]) / "witnesses" / "returned"  # their cosignatures
    proc = run_cli("publish", *_runs(audit_demo), "--ceremony-dir", str(first),
                   "--ceremony-dir", str(second), "--audit-package", str(pkg),
                   "--cosigned", str(returned), "--anchor", audit_demo["anchor_fingerprint"])
    assert proc.returncode == 0, proc.stderr
    code = run_cli("verify", str(pkg), "--anchor", audit_demo["anchor_fingerprint"])
    assert code.returncode == 0, code.stdout[-2000:]
    again = run_cli("publish", *_runs(audit_demo), "--ceremony-dir", str(first),
                    "--ceremony-dir", str(first), "--out", str(tmp_path / "x"),
                    "--anchor", audit_demo["anchor_fingerprint"])
    assert again.returncode == 2 and "named twice" in again.stderr


def test_publish_ships_nothing_of_a_withheld_statement(audit_demo: dict[str, Any],
                                                       tmp_path: Path) -> None:
    """A run that also wrote the revoked federation key's PEM: the key is withheld with its
    statement."""
    from writroot.envelope import Envelope
    from writroot.statements import parse_any

    runs = [Path(r) for r in _runs(audit_demo)]
    conus = next(r for r in runs if r.name == "demo-conus-enclaves")
    copy = tmp_path / "demo-conus-enclaves"
    shutil.copytree(conus, copy)
    revoked_keys = []
    for path in sorted((copy / "artifacts").glob("federation-key-*.dsse.json")):
        env = Envelope.parse(path.read_bytes(), str(path))
        key = parse_any(env.payload_type, env.payload, str(path)).subject["key"]
        (copy / f"federation-{key.keyid[:8]}.pem").write_text(key.pem)
        revoked_keys.append(key.keyid[:8])
    out = tmp_path / "dist"
    proc = run_cli("publish", *[str(copy if r == conus else r) for r in runs], "--ceremony-dir",
                   str(Path(audit_demo["workdir"]) / "ceremony"), "--out", str(out),
                   "--anchor", audit_demo["anchor_fingerprint"], "--json")
    assert proc.returncode == 0, proc.stderr
    [withheld] = json.loads(proc.stdout)["withheld"]
    shipped = {p.name for p in (out / "keys").glob("*.pem")}
    revoked = withheld["revoked"].removeprefix("keyid:")[:8]
    assert f"federation-{revoked}.pem" not in shipped
    assert {f"federation-{k}.pem" for k in revoked_keys if k != revoked} <= shipped
    assert withheld["artifact"] not in {p.name for p in (out / "artifacts").iterdir()}



# --- item 7: binder statements verified alone say what they are ------------------------------


def test_binder_statements_say_what_they_are(audit_demo: dict[str, Any]) -> None:
    binder = Path(audit_demo["workdir"]) / "ceremony"
    approval = next(p for p in sorted((binder / "approvals").rglob("*.dsse.json")))
    enrolment = next(p for p in sorted((binder / "custodians").glob("*.enrolment.dsse.json")))
    fleet_root = _artifact(audit_demo, "fleet-root")
    shown = logged(fleet_root, Path(audit_demo["workdir"]) / "published")
    proc = run_cli("verify", str(fleet_root), *shown, str(approval), str(enrolment), "--anchor",
                   audit_demo["anchor_fingerprint"], "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr  # information only: still exit 0
    notes = {Path(a["artifact"]).name: a.get("note", "") for a in json.loads(proc.stdout)
             ["artifacts"]}
    note = notes[approval.name]
    assert note.startswith("approval of plan ") and f"ceremony {approval.parent.name}" in note
    assert ("expired " in note or "current, until" in note) and "ceremony record" in note
    assert notes[enrolment.name].startswith("enrolment of custodian ")
    assert notes[fleet_root.name] == ""
    text = run_cli("verify", str(fleet_root), *shown, str(approval), "--anchor",
                   audit_demo["anchor_fingerprint"])
    assert text.returncode == 0 and "(approval of plan " in text.stdout
    assert "no verified ceremony record here ran this plan" in text.stdout


def test_withheld_bundle_statement_ships_no_spiffe_bundle(audit_demo: dict[str, Any]) -> None:
    """`publish`'s per-run step with an enclave bundle's serial revoked: neither its envelope
    nor its bare SPIFFE bundle is in the distribution set."""
    from writroot.envelope import Envelope
    from writroot.statements import parse_any
    from writroot.transfer.publish import Published, _run

    run = Path(audit_demo["workdir"]) / "out" / "demo-conus-nss-enclaves"
    [bundle] = sorted((run / "artifacts").glob("enclave-bundle-*.dsse.json"))
    env = Envelope.parse(bundle.read_bytes(), str(bundle))
    serial = parse_any(env.payload_type, env.payload, str(bundle)).serial
    kept, gone = Published(), Published()
    _run(kept, run, set(), [], False)
    _run(gone, run, {f"serial:{serial}"}, [], False)
    assert any(rel.startswith("spire/") for rel in kept.dist)
    assert not any(rel.startswith("spire/") for rel in gone.dist)
    assert f"artifacts/{bundle.name}" not in gone.dist
    assert gone.withheld == [{"artifact": bundle.name, "ceremony": "demo-conus-nss-enclaves",
                              "revoked": f"serial:{serial}"}]


# --- in-toto statements are read one way only (format.md §5.18) ------------------------------


def _intoto_edits() -> list[tuple[str, Any, str]]:
    def retype(doc: dict[str, Any]) -> None:
        doc["predicateType"] = "https://example.com/other/v1"

    def extra(doc: dict[str, Any]) -> None:
        doc["predicate"]["note"] = "x"

    def no_tool(doc: dict[str, Any]) -> None:
        del doc["predicate"]["tool"]

    def control_tool(doc: dict[str, Any]) -> None:
        doc["predicate"]["tool"] = "trestle\x1b[2J"

    return [("another predicateType", retype, "needs predicateType"),
            ("another predicate member", extra, "predicate.note"),
            ("no tool", no_tool, "missing field 'tool'"),
            ("a tool with controls", control_tool, "predicate.tool")]


@pytest.mark.parametrize("case, edit, says", _intoto_edits(), ids=[c[0] for c in _intoto_edits()])
def test_an_oscal_statement_read_another_way_is_malformed(audit_demo: dict[str, Any],
                                                          tmp_path: Path, case: str,
                                                          edit: Any, says: str) -> None:
    """A baseline whose predicate is not exactly §5.18's does not parse (exit 2 at verify),
    whatever the writroot header inside says."""
    import base64

    from writroot.envelope import Envelope
    from writroot.errors import BadInput
    from writroot.jsonio import canonical
    from writroot.statements import parse_any

    env = Envelope.from_json(json.loads(_artifact(audit_demo, "oscal-baseline").read_bytes()),
                             "baseline")
    parse_any(env.payload_type, env.payload, "baseline")  # as published: parses
    doc = json.loads(env.payload)
    edit(doc)
    with pytest.raises(BadInput) as info:
        parse_any(env.payload_type, canonical(doc), "baseline")
    assert says in str(info.value), info.value
    forged = {"payload": base64.b64encode(canonical(doc)).decode(),
              "payloadType": env.payload_type,
              "signatures": [{"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode()}
                             for s in env.signatures]}
    path = tmp_path / "baseline.dsse.json"
    path.write_text(json.dumps(forged))
    proc = run_cli("verify", str(path), "--anchor", audit_demo["anchor_fingerprint"])
    assert proc.returncode == 2 and "well-formed" in proc.stdout + proc.stderr, \
        proc.stdout + proc.stderr


def test_release_provenance_internal_parameters_hold_only_the_statement(
        audit_demo: dict[str, Any]) -> None:
    from writroot.envelope import Envelope
    from writroot.errors import BadInput
    from writroot.jsonio import canonical
    from writroot.statements import parse_any

    env = Envelope.from_json(json.loads(
        _artifact(audit_demo, "release-provenance").read_bytes()), "provenance")
    parse_any(env.payload_type, env.payload, "provenance")  # as published: parses
    doc = json.loads(env.payload)
    doc["predicate"]["buildDefinition"]["internalParameters"]["note"] = "x"
    with pytest.raises(BadInput) as info:
        parse_any(env.payload_type, canonical(doc), "provenance")
    assert "internalParameters" in str(info.value), info.value
