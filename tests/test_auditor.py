"""The auditor's toolkit (issue 14): audit packages, the ceremony binder, --html, --explain,
publish, sealed keys kept out of bundles, clean --json under every engine."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NOW, logged, raw_key, run_cli, sign_raw
from writroot.crypto import engines
from writroot.crypto.algorithms import ML_DSA_65
from writroot.crypto.keys import PublicKey
from writroot.envelope import Envelope
from writroot.statements import build, parse_payload


def _wd(demo: dict[str, Any]) -> Path:
    return Path(demo["workdir"])


def _verify(*args: str) -> tuple[int, dict[str, Any], str]:
    proc = run_cli("verify", *args, "--json")
    return proc.returncode, (json.loads(proc.stdout) if proc.stdout.strip() else {}), \
        proc.stderr


# --- audit packages -------------------------------------------------------------------------


def test_demo_audit_package_verifies_whole(audit_demo: dict[str, Any]) -> None:
    pkg = audit_demo["audit_package"]
    code, report, err = _verify(pkg, "--anchor", audit_demo["anchor_fingerprint"])
    assert code == 0, err
    assert report["ok"] and report["package"]["manifest_sha256"]
    kinds = {a["type"] for a in report["artifacts"]}
    # artifacts, binder, transcripts, OSCAL sources and transfer bundles: all in one report
    assert {"approval", "enrolment", "key-request", "ceremony-record", "transcript",
            "oscal-source", "transfer-bundle", "regional-root", "release-provenance"} <= kinds
    approvals = [a for a in report["artifacts"] if a["type"] == "approval"]
    assert len(approvals) == 3 * len(audit_demo["ceremonies"])
    assert all(a["ok"] and a["checked_by"] for a in approvals)
    # the copy imported in another directory verifies too, with the same digest
    imported = _wd(audit_demo) / "auditor" / "audit-package"
    code, again, err = _verify(str(imported), "--anchor", audit_demo["anchor_pem"])
    assert code == 0, err
    assert again["package"]["manifest_sha256"] == report["package"]["manifest_sha256"]


def test_ceremony_binder_verifies_as_what_it_is(audit_demo: dict[str, Any]) -> None:
    """Approvals against the roster in force, enrolments against the certified roster
    (the ceremony directory, as the issue reported it failing with issuer-known)."""
    # the envelopes carried back in (ceremony/inputs) come from logging roots: without the
    # published set's logs, proofs, cosignatures and witness policy they would fail
    # log-included and log-witnessed (withholding the policy turns nothing off)
    published = _wd(audit_demo) / "published"
    policy = next((published / "artifacts").glob("witness-policy-*.dsse.json"))
    code, report, err = _verify(str(_wd(audit_demo) / "ceremony"), str(policy),
                                *(str(published / d) for d in ("logs", "proofs", "cosignatures")),
                                "--anchor", audit_demo["anchor_pem"])
    assert code == 0, (err, [f for f in report.get("findings", [])])
    types = [a["type"] for a in report["artifacts"]]
    assert types.count("approval") == 36 and types.count("enrolment") == 5


def _approval(demo: dict[str, Any]) -> tuple[Path, Any]:
    path = sorted((_wd(demo) / "ceremony" / "approvals" / "demo-genesis").glob("*.dsse.json"))[0]
    return path, parse_payload(Envelope.parse(path.read_bytes(), "a").payload, "a")


def test_binder_rejects_an_approval_by_a_stranger(audit_demo: dict[str, Any],
                                                  tmp_path: Path) -> None:
    _path, st = _approval(audit_demo)
    stranger = raw_key(ML_DSA_65)
    doc = dict(st.document, issuer={"role": "custodian", "keyid": stranger.key.keyid},
               serial="stranger-approval")
    forged = sign_raw(stranger, build("approval", **_fields(doc)))
    (tmp_path / "forged.dsse.json").write_bytes(forged.dumps())
    code, report, _ = _verify(str(tmp_path / "forged.dsse.json"), audit_demo["audit_package"],
                              "--anchor", audit_demo["anchor_fingerprint"])
    assert code == 1
    [finding] = report["findings"]
    assert finding["check"] == "approver-rostered" and "forged.dsse.json" in finding["artifact"]


def _fields(doc: dict[str, Any]) -> dict[str, Any]:
    from writroot.jsonio import parse_time

    return {"fleet": doc["fleet"], "issuer_role": doc["issuer"]["role"],
            "issuer_keyid": doc["issuer"]["keyid"], "ceremony": doc["ceremony"],
            "subject": doc["subject"], "serial": doc["serial"],
            "issued_at": parse_time(doc["issued_at"], "t"),
            "not_before": parse_time(doc["not_before"], "t"),
            "not_after": parse_time(doc["not_after"], "t")}


def test_binder_rejects_a_bad_approval_signature_and_an_unrostered_enrolment(
        audit_demo: dict[str, Any], tmp_path: Path) -> None:
    path, _st = _approval(audit_demo)
    env = json.loads(path.read_bytes())
    sig = bytearray(base64.b64decode(env["signatures"][0]["sig"]))
    sig[10] ^= 1
    env["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    (tmp_path / "tampered.dsse.json").write_text(json.dumps(env))
    newcomer = raw_key(ML_DSA_65)
    subject = {"custodian": {"id": "zed", "name": "Zed", "key": newcomer.key.to_json()}}
    enrolment = sign_raw(newcomer, build(
        "enrolment", fleet="writsov", issuer_role="custodian", issuer_keyid=newcomer.key.keyid,
        ceremony={"id": "enrol-zed", "plan_sha256": "0" * 64, "approvals": []},
        subject=subject, issued_at=NOW, not_before=NOW, not_after=NOW + timedelta(days=9)))
    (tmp_path / "zed.enrolment.dsse.json").write_bytes(enrolment.dumps())
    genesis = next(a["path"] for a in audit_demo["artifacts"] if a["type"] == "fleet-root")
    # the genesis statement with its proof (its root keeps a log: alone it fails log-included)
    code, report, _ = _verify(str(tmp_path), genesis,
                              *logged(Path(genesis), _wd(audit_demo) / "published"),
                              "--anchor", audit_demo["anchor_fingerprint"])
    assert code == 1
    found = {(Path(f["artifact"]).name, f["check"]) for f in report["findings"]}
    assert found == {("tampered.dsse.json", "signature-valid"),
                     ("zed.enrolment.dsse.json", "enrolment-rostered")}


def test_binder_key_request_must_prove_possession(audit_demo: dict[str, Any],
                                                  tmp_path: Path) -> None:
    from writroot.region import request_payload

    requested, other = raw_key(ML_DSA_65), raw_key(ML_DSA_65)
    payload = request_payload(requested.key, "CONUS", "writsov", "wrapped", "t", NOW)
    (tmp_path / "req.dsse.json").write_bytes(
        sign_raw(other, payload, keyid=requested.key.keyid).dumps())
    code, report, _ = _verify(str(tmp_path), audit_demo["audit_package"], "--anchor",
                              audit_demo["anchor_fingerprint"])
    assert code == 1
    assert [(Path(f["artifact"]).name, f["check"]) for f in report["findings"]] == \
        [("req.dsse.json", "signature-valid")]


def _repack(demo: dict[str, Any], out: Path, change: Any) -> Path:
    """The demo's package, one file changed, under a fresh (consistent) manifest."""
    from writroot.transfer import read_bundle
    from writroot.transfer.bundle import export_files

    _manifest, files = read_bundle(Path(demo["audit_package"]))
    change(files)
    export_files(files, out, "audit-package", str(out))
    return out


@pytest.mark.parametrize(("change", "check"), [
    (lambda f: f.update({"ceremonies/demo-release/transcript.jsonl":
                         f["ceremonies/demo-release/transcript.jsonl"].replace(b'"seq":1',
                                                                               b'"seq":7')}),
     "transcript-chain"),
    (lambda f: f.update({"ceremonies/demo-release/transcript.jsonl":
                         f["ceremonies/demo-release/transcript.jsonl"].split(b"\n", 1)[0]
                         + b"\n"}), "record-seals"),
    (lambda f: f.update({"distribution/oscal/overlay-conus.json":
                         f["distribution/oscal/overlay-conus.json"] + b" "}), "oscal-source"),
    (lambda f: f.update({"package.json": f["package.json"].replace(b'"words":"',
                                                                   b'"words":"x')}),
     "transfer-manifest"),
], ids=["chain", "seal", "source", "transfer"])
def test_package_findings(audit_demo: dict[str, Any], tmp_path: Path, change: Any,
                          check: str) -> None:
    pkg = _repack(audit_demo, tmp_path / "pkg.tar", change)
    code, report, _ = _verify(str(pkg), "--anchor", audit_demo["anchor_fingerprint"])
    assert code == 1
    assert check in {f["check"] for f in report["findings"]}


def test_package_with_a_wrong_manifest_is_refused_in_one_line(audit_demo: dict[str, Any],
                                                              tmp_path: Path) -> None:
    imported = tmp_path / "pkg"
    shutil.copytree(_wd(audit_demo) / "auditor" / "audit-package", imported)
    target = imported / "ceremonies" / "demo-genesis" / "transcript.jsonl"
    target.chmod(0o600)
    target.write_bytes(target.read_bytes() + b"\n")
    proc = run_cli("verify", str(imported), "--anchor", audit_demo["anchor_fingerprint"])
    assert proc.returncode == 1 and proc.stdout == ""
    assert "transcript.jsonl" in proc.stderr and len(proc.stderr.splitlines()) == 1


@pytest.mark.parametrize("extra", [["--revocations", "PKG"], ["PKG"]],
                         ids=["revocations", "two-packages"])
def test_package_bad_usage(audit_demo: dict[str, Any], tmp_path: Path,
                           extra: list[str]) -> None:
    pkg = audit_demo["audit_package"]
    args = [pkg if a == "PKG" else a for a in extra]
    proc = run_cli("verify", pkg, *args, "--anchor", audit_demo["anchor_fingerprint"])
    assert proc.returncode == 2 and proc.stdout == ""
    assert "error:" in proc.stderr and len(proc.stderr.splitlines()) == 1


# --- publish ----------------------------------------------------------------------------------


def _runs(demo: dict[str, Any]) -> list[str]:
    return [str(_wd(demo) / "out" / name) for name in demo["ceremonies"]]


def test_publish_distribution_set_is_self_contained(audit_demo: dict[str, Any],
                                                    tmp_path: Path) -> None:
    out = tmp_path / "dist"
    proc = run_cli("publish", *_runs(audit_demo), "--ceremony-dir",
                   str(_wd(audit_demo) / "ceremony"), "--out", str(out), "--cosigned",
                   str(_wd(audit_demo) / "witnesses" / "returned"), "--json",
                   "--anchor", audit_demo["anchor_fingerprint"])
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    [withheld] = summary["withheld"]
    assert withheld["revoked"].startswith("keyid:")
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert "fleet-root.pem" in names and "keys/fleet-root-v2.pem" in names
    assert {f"records/{c}.ceremony-record.dsse.json" for c in audit_demo["ceremonies"]} <= names
    # no sealed key, no transcript (host facts) unless asked
    assert not any("sealed" in n or "transcript" in n for n in names)
    for path in out.rglob("*"):
        if path.is_file():
            assert b"PRIVATE KEY" not in path.read_bytes() and b'"sealed":{' not in \
                path.read_bytes()
    # every href the OSCAL documents name is published beside them, under that name
    profile = json.loads((out / "oscal" / "overlay-conus.json").read_text())["profile"]
    hrefs = [i["href"] for i in profile["imports"]] + [
        link["href"] for r in profile["back-matter"]["resources"] for link in r["rlinks"]]
    assert hrefs and all(f"oscal/{h}" in names for h in hrefs)
    code, _report, err = _verify(str(out), "--anchor", str(out / "fleet-root.pem"),
                                "--subject", str(out / "oscal" / "overlay-conus.json"))
    assert code == 0, err


def test_publish_with_transcripts_only_when_asked(audit_demo: dict[str, Any],
                                                  tmp_path: Path) -> None:
    genesis = str(_wd(audit_demo) / "out" / "demo-genesis")
    proc = run_cli("publish", genesis, "--out", str(tmp_path / "d"), "--with-transcripts",
                   "--anchor", audit_demo["anchor_fingerprint"])
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "d" / "transcripts" / "demo-genesis.transcript.jsonl").is_file()


@pytest.mark.parametrize(("case", "needle"), [
    ("no-output", "--out"),
    ("not-a-run", "plan.lock.json"),
    ("oscal-without-sources", "--ceremony-dir"),
    ("exists", "exists already"),
])
def test_publish_bad_input(audit_demo: dict[str, Any], tmp_path: Path, case: str,
                           needle: str) -> None:
    wd = _wd(audit_demo)
    out = tmp_path / "dist"
    args = {"no-output": [str(wd / "out" / "demo-genesis")],
            "not-a-run": [str(wd / "ceremony"), "--out", str(out)],
            "oscal-without-sources": [str(wd / "out" / "demo-genesis"),
                                      str(wd / "out" / "demo-oscal-baseline"), "--out",
                                      str(out)],
            "exists": [str(wd / "out" / "demo-genesis"), "--out", str(tmp_path)]}[case]
    proc = run_cli("publish", *args, "--anchor", audit_demo["anchor_fingerprint"])
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert not out.exists()


def test_bundle_export_refuses_sealed_keys_unless_asked(audit_demo: dict[str, Any],
                                                        tmp_path: Path) -> None:
    keys = _wd(audit_demo) / "out" / "demo-genesis" / "keys"
    proc = run_cli("bundle", "export", str(keys), str(tmp_path / "k.tar"))
    assert proc.returncode == 2 and "--include-sealed" in proc.stderr
    assert ".sealed.json: is a sealed private-key backup" in proc.stderr  # the first found
    assert not (tmp_path / "k.tar").exists()
    proc = run_cli("bundle", "export", str(keys), str(tmp_path / "k.tar"), "--include-sealed")
    assert proc.returncode == 0, proc.stderr


# --- --html, audit --html, --explain -------------------------------------------------------


def test_verify_html_is_self_contained_and_names_every_key(audit_demo: dict[str, Any],
                                                           tmp_path: Path) -> None:
    html_path = tmp_path / "r.html"
    code, report, err = _verify(audit_demo["audit_package"], "--anchor",
                                audit_demo["anchor_fingerprint"], "--html", str(html_path))
    assert code == 0, err
    page = html_path.read_text()
    assert "<svg" in page and "reference" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)  # no network
    keyids = {a["issuer_keyid"] for a in report["artifacts"]
              if a["type"] in ("regional-root", "fleet-rotation", "federation-key")}
    for keyid in keyids:
        assert f'data-keyid="{keyid}"' in page
    # the file is written once, never over anything
    again = run_cli("verify", audit_demo["audit_package"], "--anchor",
                    audit_demo["anchor_fingerprint"], "--html", str(html_path))
    assert again.returncode == 2 and "r.html" in again.stderr


def test_audit_html_is_a_page_not_pre(audit_demo: dict[str, Any], tmp_path: Path) -> None:
    run = _wd(audit_demo) / "out" / "demo-genesis"
    proc = run_cli("audit", str(run / "transcript.jsonl"), "--anchor",
                   audit_demo["anchor_pem"], "--with", str(run / "artifacts"), "--html",
                   str(tmp_path / "t.html"))
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "t.html").read_text()
    assert "<pre" not in page and "<table>" in page and "<svg" in page
    assert page.count("<tr>") > 5


def test_explain_writes_what_openssl_needs(audit_demo: dict[str, Any], tmp_path: Path) -> None:
    from writroot.crypto.spki import decode_pem

    rotation = next(Path(a["path"]) for a in audit_demo["artifacts"]
                    if a["type"] == "fleet-rotation")
    out = tmp_path / "explain"
    proc = run_cli("verify", audit_demo["audit_package"], "--anchor",
                   audit_demo["anchor_fingerprint"], "--explain", str(rotation), str(out))
    assert proc.returncode == 0, proc.stderr
    env = Envelope.parse(rotation.read_bytes(), "r")
    assert (out / "pae.bin").read_bytes() == env.pae()
    assert f"in {out}:" in proc.stdout and "verify-openssl.sh" in proc.stdout
    script = (out / "verify-openssl.sh").read_text()
    assert script.count("openssl pkeyutl -verify -rawin -pubin -inkey") == 2
    assert subprocess.run(["sh", "-n", str(out / "verify-openssl.sh")], check=False
                          ).returncode == 0
    for i, sig in enumerate(env.signatures):  # each PEM and .sig verify over the PAE
        alg, raw = decode_pem((out / f"key{i}.pem").read_bytes(), "pem")
        assert PublicKey(alg, raw).keyid == sig.keyid
        assert engines.verifier_for(alg).verify(alg, raw, (out / "pae.bin").read_bytes(),
                                                (out / f"sig{i}.bin").read_bytes())


def _openssl_35() -> bool:
    exe = shutil.which("openssl")
    if exe is None:
        return False
    text = subprocess.run([exe, "version"], capture_output=True, text=True,
                          check=False).stdout
    m = re.match(r"OpenSSL (\d+)\.(\d+)", text)
    return bool(m) and (int(m.group(1)), int(m.group(2))) >= (3, 5)


@pytest.mark.skipif(not _openssl_35(), reason="needs OpenSSL >= 3.5 (Debian 13's openssl); "
                    "Debian 12 ships 3.0: see docs/auditor.md, 'The OpenSSL route'")
@pytest.mark.parametrize("kind", ["fleet-rotation", "enclave-bundle"])
def test_explain_script_runs_under_openssl_35(audit_demo: dict[str, Any], tmp_path: Path,
                                              kind: str) -> None:
    artifact = next(Path(a["path"]) for a in audit_demo["artifacts"] if a["type"] == kind
                    and (kind != "enclave-bundle" or a["engine"] == "cryptography"))
    out = tmp_path / "explain"
    proc = run_cli("verify", audit_demo["audit_package"], "--anchor",
                   audit_demo["anchor_fingerprint"], "--explain", str(artifact), str(out))
    assert proc.returncode == 0, proc.stderr
    run = subprocess.run(["sh", str(out / "verify-openssl.sh")], capture_output=True,
                         text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "every signature verifies" in run.stdout


@pytest.mark.parametrize("case", ["unknown-signer", "outdir-exists"])
def test_explain_bad_input(audit_demo: dict[str, Any], tmp_path: Path, case: str) -> None:
    rotation = next(Path(a["path"]) for a in audit_demo["artifacts"]
                    if a["type"] == ("enclave-bundle" if case == "unknown-signer"
                                     else "fleet-rotation"))
    out = tmp_path if case == "outdir-exists" else tmp_path / "x"
    # alone, without the regional root that certifies its signer
    paths = [str(rotation)] if case == "unknown-signer" else [audit_demo["audit_package"]]
    anchor = "0" * 64 if case == "unknown-signer" else audit_demo["anchor_fingerprint"]
    proc = run_cli("verify", *paths, "--anchor", anchor, "--explain", str(rotation), str(out))
    # an artifact that does not verify is never explained (exit 1); a bad OUTDIR is exit 2
    assert proc.returncode == (1 if case == "unknown-signer" else 2)
    assert len(proc.stderr.splitlines()) == 1
    assert (rotation.name if case == "unknown-signer" else str(tmp_path)) in proc.stderr
    assert not (tmp_path / "x").exists()


# --- the demo's SPIFFE bundles ----------------------------------------------------------------


def test_demo_spiffe_ca_valid_as_long_as_the_statement(audit_demo: dict[str, Any]) -> None:
    from cryptography import x509

    for a in audit_demo["artifacts"]:
        if a["type"] != "enclave-bundle":
            continue
        env = Envelope.parse(Path(a["path"]).read_bytes(), "b")
        st = parse_payload(env.payload, "b")
        for jwk in st.subject["bundle"]["keys"]:
            for der in jwk.get("x5c", []):
                cert = x509.load_der_x509_certificate(base64.b64decode(der))
                assert cert.not_valid_after_utc >= st.not_after - timedelta(hours=2)


# --- clean machine output whatever the engine ---------------------------------------------


def test_quiet_import_keeps_a_noisy_module_off_stdout(tmp_path: Path) -> None:
    """A module that behaves as liboqs-python does at import: a print, and a logging
    handler bound to the real stdout that logs at once and later."""
    (tmp_path / "noisy_banner.py").write_text(textwrap.dedent("""
        import logging, sys
        from sys import stdout
        print("banner by print")
        log = logging.getLogger("noisy_banner")
        handler = logging.StreamHandler(stdout)
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.info("liboqs-python faulthandler is disabled")
        def later():
            log.info("later message")
    """))
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]);"
            "from writroot.crypto.engines.quiet import quiet_import;"
            "m = quiet_import('noisy_banner'); m.later();"
            "print(json.dumps({'ok': True}))")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"ok": True}
    assert "faulthandler is disabled" in proc.stderr and "later message" in proc.stderr


def _liboqs_present() -> bool:
    from writroot.crypto.engines.liboqs_engine import library_path

    return library_path() is not None


@pytest.mark.skipif(not _liboqs_present(), reason="liboqs shared library not installed "
                    "(set OQS_INSTALL_PATH): the liboqs engine cannot be exercised here")
def test_json_is_clean_with_liboqs(audit_demo: dict[str, Any]) -> None:
    proc = run_cli("verify", audit_demo["audit_package"], "--anchor",
                   audit_demo["anchor_fingerprint"], "--json",
                   env={"WRITROOT_LIBOQS": "force"})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["ok"]
