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
    assert types == ["fleet-root", "regional-root"]
    assert all(a["engine"] == "pqcrypto" and a["checked_by"] == "slh-dsa-py"
               for a in demo["artifacts"])


def test_demo_artifacts_verify_independently(demo: dict) -> None:
    artifacts = str(Path(demo["workdir"]) / "genesis" / "artifacts")
    by_pem = run_cli("verify", artifacts, "--anchor", demo["anchor_pem"], "--independent",
                     "--json")
    assert by_pem.returncode == 0, by_pem.stdout
    report = json.loads(by_pem.stdout)
    assert all(set(a["checked_by"]) == {"pqcrypto", "slh-dsa-py"} for a in report["artifacts"])
    by_fp = run_cli("verify", artifacts, "--anchor", demo["anchor_fingerprint"])
    assert by_fp.returncode == 0, by_fp.stdout


def test_demo_refuses_a_non_empty_workdir(demo: dict) -> None:
    proc = run_cli("demo", "--workdir", demo["workdir"])
    assert proc.returncode == 2 and "not empty" in proc.stderr and demo["workdir"] in proc.stderr


def test_demo_text_output(tmp_path: Path) -> None:
    proc = run_cli("demo", "--workdir", str(tmp_path / "t"))
    assert proc.returncode == 0, proc.stderr
    assert "fingerprint" in proc.stdout and "PGP words" in proc.stdout
    assert "verified: True (independent: True)" in proc.stdout


SCAN = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from writroot.demo import run_demo, FLEET_TOKEN, REGION_TOKEN
    from writroot.hsm.custody import Custody
    from writroot.hsm.token import TokenSpec, default_module, open_session

    pin = bytearray(b"scan-test-pin-8812")
    result = run_demo(Path(sys.argv[1]), pin=bytearray(pin))
    import os
    os.environ["SOFTHSM2_CONF"] = str(result.workdir / "hsm" / "softhsm2.conf")
    secrets = []
    for label in (FLEET_TOKEN, REGION_TOKEN):
        with open_session(TokenSpec(default_module(), label), pin_bytes=pin) as session:
            custody = Custody(session, default_module())
            for record in custody.keys():
                private = custody.unseal(custody.find(record.keyid))
                # SK.seed, SK.prf and the whole key: none may appear anywhere on disk.
                secrets += [bytes(private), bytes(private[:32]), bytes(private[32:64])]
    hits = []
    files = [p for p in result.workdir.rglob("*") if p.is_file()]
    for path in files:
        data = path.read_bytes()
        for s in secrets:
            if s in data:
                hits.append(str(path))
        if bytes(pin) in data:
            hits.append(str(path) + " (PIN)")
    print(json.dumps({"keys": len(secrets) // 3, "files": len(files), "hits": hits}))
""")


def test_no_private_key_or_pin_on_disk_after_demo(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", SCAN, str(tmp_path / "scan")],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["keys"] == 2 and result["files"] > 5
    assert result["hits"] == []
