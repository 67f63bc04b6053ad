"""`writroot demo` end to end on the real SLH-DSA-SHA2-256s path, and no secret left on disk."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import run_cli


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> dict:
    workdir = tmp_path_factory.mktemp("demo") / "run"
    proc = run_cli("demo", "--workdir", str(workdir), "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_demo_json_summary(demo: dict) -> None:
    assert {"workdir", "anchor_fingerprint", "anchor_pem"} <= set(demo)
    assert demo["anchor_algorithm"] == "SLH-DSA-SHA2-256s" and demo["custody"] == "wrapped"
    assert demo["verified"] and demo["verified_independent"]
    assert Path(demo["anchor_pem"]).read_text().startswith("-----BEGIN PUBLIC KEY-----")
    types = [a["type"] for a in demo["artifacts"]]
    assert types.count("regional-root") == 7  # six regions, CONUS twice (rotation)
    assert types.count("enclave-bundle") == 5 and types.count("federation-key") == 1
    assert {"fleet-root", "fleet-rotation", "revocation-list"} <= set(types)
    # SLH-DSA signed by pqcrypto and checked by slh-dsa-py; CENTCOM's ML-DSA-87 root signs
    # its enclave's bundle with cryptography, checked by pqcrypto.
    mldsa = [a for a in demo["artifacts"] if a["engine"] == "cryptography"]
    assert [a["serial"] for a in mldsa] == ["demo-centcom-enclaves.0"]
    assert mldsa[0]["checked_by"] == "pqcrypto"
    assert all(a["engine"] == "pqcrypto" and a["checked_by"] == "slh-dsa-py"
               for a in demo["artifacts"] if a not in mldsa)
    assert demo["current_fleet_root"] != demo["anchor_fingerprint"]
    assert len(demo["ceremonies"]) == 12 and all(demo["audits"].values())
    assert {"oscal-baseline", "oscal-overlay", "release-provenance"} <= set(types)
    assert Path(demo["audit_package"]).is_file() and Path(demo["audit_report"]).is_file()
    [(revoked, message)] = demo["revoked_rejected"].items()
    assert "federation-key" in revoked and "key-compromise" in message


def test_demo_keeps_a_witnessed_log_and_shows_a_split_view_refused(demo: dict) -> None:
    log = demo["log"]
    assert log["origin"] == "writroot/writsov/fleet" and log["size"] > 10
    assert len(log["witnesses"]) == 3 and log["quorum"] == 2
    assert log["cosigned"] == log["checkpoints"] >= 6 and log["split_view_refused"] is True
    evidence = json.loads(Path(log["evidence"]).read_text())
    assert evidence["kind"] == "split-view"
    published = Path(demo["published"])
    assert list((published / "proofs").glob("*.tlog-proof"))
    forked = Path(demo["workdir"]) / "forked"
    proc = run_cli("verify", str(published), str(forked), "--anchor", demo["anchor_pem"],
                   "--json")
    assert proc.returncode == 1
    checks = {(f["artifact"], f["check"]) for f in json.loads(proc.stdout)["findings"]}
    assert (str(forked / "logs" / log["origin"] / "checkpoint"), "conflict-log") in checks
    assert (str(published / "logs" / log["origin"] / "checkpoint"), "conflict-log") in checks
    proc = run_cli("status", str(published), "--anchor", demo["anchor_pem"], "--json")
    rows = {r["origin"]: r for r in json.loads(proc.stdout)["logs"]}
    assert rows[log["origin"]]["size"] == log["size"] and rows[log["origin"]]["cosigned"] == 3


#: Each region's ceremonies and its log's entries (its statements, one record a ceremony):
#: CONUS signs a bundle and two federation keys, its overlay, and v2 re-signs the bundle.
REGIONAL_LOGS = {"CONUS": (3, 3 + 1 + 1 + 1 + 1 + 1), "CONUS-NSS": (1, 2), "EUCOM": (1, 2),
                 "CENTCOM": (1, 2)}


def test_demo_every_region_keeps_a_witnessed_log(demo: dict) -> None:
    """Issue 21 items 1 and 8: each region's key request named a log key; each regional
    ceremony extended its region's log and the witnesses cosigned its checkpoint."""
    rows = {r["origin"]: r for r in demo["log"]["logs"]}
    regions = {f"writroot/writsov/region/{r}" for r in
               ("CONUS", "CONUS-NSS", "EUCOM", "INDOPAC", "CENTCOM", "FVEY")}
    assert set(rows) == {demo["log"]["origin"], *regions}
    fleet = rows[demo["log"]["origin"]]
    assert (fleet["size"], fleet["checkpoints"]) == (demo["log"]["size"],
                                                     demo["log"]["checkpoints"])
    published = Path(demo["published"])
    for region, (ceremonies, entries) in REGIONAL_LOGS.items():
        row = rows[f"writroot/writsov/region/{region}"]
        assert (row["size"], row["checkpoints"], row["cosigned"]) == (
            entries, ceremonies, 3), row
        assert (published / "logs" / row["origin"] / "checkpoint").is_file()
    for region in ("INDOPAC", "FVEY"):  # certified log keys, no ceremony of their own yet
        assert rows[f"writroot/writsov/region/{region}"]["size"] is None
    # one proof per entry of every log, the regions' included
    proofs = list((published / "proofs").glob("*.tlog-proof"))
    assert len(proofs) == sum(r["size"] or 0 for r in rows.values())
    proc = run_cli("status", str(published), "--anchor", demo["anchor_pem"], "--json")
    status = {r["origin"]: r for r in json.loads(proc.stdout)["logs"]}
    assert {o: (r["size"], r["cosigned"]) for o, r in status.items()} == {
        o: (r["size"], r["cosigned"]) for o, r in rows.items()}


def test_demo_calendar_covers_every_key(demo: dict) -> None:
    rows = demo["calendar"]
    regions = {r["name"] for r in rows if r["kind"] == "regional-root"}
    assert regions == {"CONUS", "CONUS-NSS", "EUCOM", "INDOPAC", "CENTCOM", "FVEY"}
    states = {(r["kind"], r["name"], r["version"]): r["state"] for r in rows}
    assert states[("regional-root", "CONUS", "v1")] == "superseded"
    assert states[("fleet-root", "writsov", "v1")] == "superseded"
    assert states[("fleet-root", "writsov", "v2")] == "ok"
    proc = run_cli("status", demo["published"], "--anchor", demo["anchor_pem"], "--json")
    # the revoked federation key is withheld, and its revocation is still on the calendar,
    # loudly (issue 19): nothing else is loud
    assert proc.returncode == 1, proc.stdout
    out = json.loads(proc.stdout)
    assert out["loud"] == 1 and [r["state"] for r in out["rows"] if r["kind"] == "revoked"] \
        == ["revoked"]
    late = run_cli("status", demo["published"], "--anchor", demo["anchor_pem"], "--at",
                   "2027-06-01T00:00:00Z")
    assert late.returncode == 1 and "OVERDUE, EXPIRED or REVOKED" in late.stdout


def test_demo_revoked_artifact_is_rejected_by_the_cli(demo: dict) -> None:
    revoked = next(iter(demo["revoked_rejected"]))
    published = Path(demo["published"])
    lists = [str(p) for p in published.glob("artifacts/revocation-list-*.dsse.json")]
    proc = run_cli("verify", str(published), revoked, "--anchor", demo["anchor_pem"],
                   "--revocations", lists[0], "--json")
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert [f["check"] for f in report["findings"]] == ["not-revoked"]
    assert report["revocation_sequence"] == 1


def test_demo_regional_transcript_audits(demo: dict) -> None:
    published = Path(demo["published"])
    name = "demo-conus-enclaves"
    proc = run_cli("audit", str(Path(demo["workdir"]) / "out" / name / "transcript.jsonl"),
                   "--anchor", demo["anchor_pem"], "--record",
                   str(published / "records" / f"{name}.ceremony-record.dsse.json"),
                   "--with", str(published / "artifacts"), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["ok"] is True


def test_demo_bare_spiffe_bundles_for_spire(demo: dict) -> None:
    from writroot.jsonio import loads_strict
    from writroot.spiffe import bundle_check

    bundles = sorted(Path(demo["published"]).glob("spire/*/*.spiffe.json"))
    assert len(bundles) == 5  # CONUS twice, CONUS-NSS, EUCOM, CENTCOM (ML-DSA-87)
    for path in bundles:
        bundle = bundle_check(loads_strict(path.read_bytes(), str(path)), str(path))
        assert {k["use"] for k in bundle["keys"]} == {"x509-svid", "jwt-svid"}


def test_demo_oscal_documents_match_their_signed_subjects(demo: dict, tmp_path: Path) -> None:
    """verify --subject checks the shipped OSCAL bytes; trestle's loader reads them; an
    edited document is caught."""
    from trestle.oscal.component import ComponentDefinition
    from trestle.oscal.profile import Profile

    published = Path(demo["published"])
    docs = sorted(published.glob("oscal/*.json"))
    assert [d.name.split("-")[0] for d in docs] == ["component", "profile"]
    args = [a for d in docs for a in ("--subject", str(d))]
    proc = run_cli("verify", str(published), "--anchor", demo["anchor_pem"], *args, "--json")
    assert proc.returncode == 0, proc.stdout
    ComponentDefinition.oscal_read(docs[0])
    Profile.oscal_read(docs[1])
    edited = tmp_path / docs[0].name
    edited.write_text(docs[0].read_text().replace("MongoDB", "MangoDB", 1))
    bad = run_cli("verify", str(published), "--anchor", demo["anchor_pem"], "--subject",
                  str(edited), "--json")
    assert bad.returncode == 1
    assert {f["check"] for f in json.loads(bad.stdout)["findings"]} == {"subject-digest"}


def test_demo_artifacts_verify_independently(demo: dict) -> None:
    artifacts = demo["published"]
    by_pem = run_cli("verify", artifacts, "--anchor", demo["anchor_pem"], "--independent",
                     "--json")
    assert by_pem.returncode == 0, by_pem.stdout
    report = json.loads(by_pem.stdout)
    # SLH-DSA: pqcrypto then slh-dsa-py; what CENTCOM's ML-DSA-87 root signed (its bundle and
    # its ceremony record): cryptography then pqcrypto
    assert all(set(a["checked_by"]) == ({"cryptography", "pqcrypto"} if "centcom-enclaves"
                                        in a["artifact"] else {"pqcrypto", "slh-dsa-py"})
               for a in report["artifacts"] if a["artifact"].endswith(".dsse.json"))
    # the logs: checkpoints and proofs are results of their own (ML-DSA-44 notes)
    assert {a["type"] for a in report["artifacts"]
            if not a["artifact"].endswith(".dsse.json")} == {"checkpoint", "tlog-proof"}
    by_fp = run_cli("verify", artifacts, "--anchor", demo["anchor_fingerprint"])
    assert by_fp.returncode == 0, by_fp.stdout


def test_demo_rehearsal_record_verifies_with_the_published_set(demo: dict) -> None:
    """The binder's signed rehearsal record is checked as what it is (format.md §5.17):
    signed by the restored anchor, which the published chain trusts."""
    workdir = Path(demo["published"]).parent
    records = sorted((workdir / "binder").glob("rehearsal-*.dsse.json"))
    assert records, "the demo leaves a rehearsal record in its binder"
    proc = run_cli("verify", demo["published"], *map(str, records), "--anchor",
                   demo["anchor_fingerprint"], "--json")
    assert proc.returncode == 0, proc.stdout
    rehearsal = [a for a in json.loads(proc.stdout)["artifacts"]
                 if a["type"] == "recovery-rehearsal"]
    assert len(rehearsal) == len(records) and all(a["ok"] and a["checked_by"]
                                                   for a in rehearsal)


def test_demo_refuses_a_non_empty_workdir(demo: dict) -> None:
    proc = run_cli("demo", "--workdir", demo["workdir"])
    assert proc.returncode == 2 and "not empty" in proc.stderr and demo["workdir"] in proc.stderr


def test_demo_text_output(tmp_path: Path) -> None:
    proc = run_cli("demo", "--workdir", str(tmp_path / "t"))
    assert proc.returncode == 0, proc.stderr
    assert "fingerprint" in proc.stdout and "PGP words" in proc.stdout
    assert "verified: True (independent: True)" in proc.stdout
    assert "revoked" in proc.stdout and "writroot status" in proc.stdout
    assert "writroot/writsov/region/CONUS: 8 entries, 3 checkpoints cosigned" in proc.stdout
    assert "writroot/writsov/region/INDOPAC: no checkpoint yet" in proc.stdout


SCAN = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from writroot.demo import run_demo, TOKENS
    from writroot.hsm.custody import Custody
    from writroot.hsm.token import TokenSpec, default_module, open_session

    pin = bytearray(b"scan-test-pin-8812")
    result = run_demo(Path(sys.argv[1]), pin=bytearray(pin))
    import os
    os.environ["SOFTHSM2_CONF"] = str(result.workdir / "hsm" / "softhsm2.conf")
    secrets = []
    keys = 0
    for label in TOKENS:
        with open_session(TokenSpec(default_module(), label), pin_bytes=pin) as session:
            custody = Custody(session, default_module())
            for record in custody.keys():
                private = custody.unseal(custody.find(record.keyid))
                # The whole key, and for SLH-DSA SK.seed and SK.prf too (an ML-DSA key is
                # its 32-byte seed): none may appear anywhere on disk.
                secrets.append(bytes(private))
                if len(private) >= 64:
                    secrets += [bytes(private[:32]), bytes(private[32:64])]
                keys += 1
    hits = []
    files = [p for p in result.workdir.rglob("*") if p.is_file()]
    for path in files:
        data = path.read_bytes()
        for s in secrets:
            if s in data:
                hits.append(str(path))
        if bytes(pin) in data:
            hits.append(str(path) + " (PIN)")
    assert all(len(s) >= 32 for s in secrets)
    print(json.dumps({"keys": keys, "files": len(files), "hits": hits}))
""")


def test_no_private_key_or_pin_on_disk_after_demo(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", SCAN, str(tmp_path / "scan")],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    # 2 fleet roots and the fleet's log key; 7 regional roots, each with its region's log key
    assert result["keys"] == 17 and result["files"] > 5
    assert result["hits"] == []


def test_demo_published_set_verifies_the_same_in_any_order(demo: dict) -> None:
    """DESIGN §6: the answer never depends on input order. The published set (plus its
    revoked artifact and its records) is verified in several shuffled orders, each file
    renamed so that its sorted position follows the shuffle too."""
    import random
    from datetime import UTC, datetime

    from writroot.crypto.keys import PublicKey
    from writroot.verify.core import Anchor, verify

    published = Path(demo["published"])
    files = sorted(p for sub in ("artifacts", "records") for p in (published / sub).glob("*"))
    blobs = [(p.name, p.read_bytes()) for p in files]
    anchor_key = PublicKey.from_pem(Path(demo["anchor_pem"]).read_bytes(), "anchor")
    anchor = Anchor(anchor_key.keyid, anchor_key)
    at = datetime.now(UTC).replace(microsecond=0)

    def findings(order: list[tuple[str, bytes]]) -> tuple[object, ...]:
        named = [(f"{i:03d}-{name}", data) for i, (name, data) in enumerate(order)]
        report = verify(named, anchor, at)
        back = {f"{i:03d}-{name}": name for i, (name, _d) in enumerate(order)}
        return (report.ok, report.fleet_root, report.fleet_version,
                report.revocation_sequence,
                sorted((back[f.artifact], f.check, f.message.replace(f.artifact, back[f.artifact]))
                       for f in report.findings))

    baseline = findings(blobs)
    assert baseline[0], baseline
    rng = random.Random(9)
    for _ in range(4):
        shuffled = blobs[:]
        rng.shuffle(shuffled)
        assert findings(shuffled) == baseline
    assert findings(blobs[::-1]) == baseline


def test_demo_recovery_split_and_rehearsal(demo: dict) -> None:
    """Genesis made a 3-of-5 recovery split; three holders rehearsed restoring the anchor."""
    rec = demo["recovery"]
    assert rec["rehearsed"] and rec["restored_keyid"] == demo["anchor_fingerprint"]
    assert (rec["threshold"], rec["shares"], len(rec["holders"])) == (3, 5, 3)
    assert rec["token_destroyed"]
    record = json.loads(Path(rec["record"]).read_bytes())
    assert record["signatures"][0]["keyid"] == demo["anchor_fingerprint"]
    proc = run_cli("recovery", "check-share", "--help")
    assert proc.returncode == 0
