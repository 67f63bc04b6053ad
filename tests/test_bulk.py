"""Verification across processes (writroot.verify.bulk): the same report as one process,
whatever the order, with signature results keyed by content; `verify --jobs`."""

from __future__ import annotations

import base64
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from writroot.crypto.keys import PublicKey
from writroot.jsonio import canonical
from writroot.verify.bulk import parse_all
from writroot.verify.core import Anchor, verify, verify_parsed
from writroot.verify.files import gather, parsed


@pytest.fixture(scope="module")
def published(audit_demo: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's published artifacts plus one with a flipped signature byte."""
    out = tmp_path_factory.mktemp("bulk") / "set"
    shutil.copytree(Path(audit_demo["published"]) / "artifacts", out)
    victim = sorted(out.glob("regional-root-*.dsse.json"))[0]
    doc = json.loads(victim.read_text())
    sig = doc["signatures"][0]["sig"]
    doc["signatures"][0]["sig"] = ("A" if sig[0] != "A" else "B") + sig[1:]
    (out / "tampered.dsse.json").write_text(json.dumps(doc))
    doc["signatures"][0]["sig"] = sig  # the right signature over a changed payload
    statement = json.loads(base64.b64decode(doc["payload"]))
    statement["subject"]["version"] += 1
    doc["payload"] = base64.b64encode(canonical(statement)).decode()
    (out / "payload-changed.dsse.json").write_text(json.dumps(doc))
    (out / "not-json.dsse.json").write_bytes(b"{not json")
    doc["payload"] = base64.b64encode(b'{"type": "regional-root"}').decode()
    (out / "bad-statement.dsse.json").write_text(json.dumps(doc))
    return out


def _anchor(audit_demo: dict[str, Any]) -> Anchor:
    key = PublicKey.from_pem(Path(audit_demo["anchor_pem"]).read_bytes(), "anchor")
    return Anchor(key.keyid, key)


def test_two_processes_give_the_one_process_report(audit_demo: dict[str, Any],
                                                   published: Path) -> None:
    anchor = _anchor(audit_demo)
    at = datetime.now(UTC).replace(microsecond=0)
    serial = verify(gather([str(published)]), anchor, at)
    artifacts, signatures = parsed([str(published)], 2, anchor)
    parallel = verify_parsed(artifacts, anchor, at, signatures=signatures)
    assert parallel.to_json() == serial.to_json()
    assert [str(f) for f in parallel.findings] == [str(f) for f in serial.findings]
    bad = {(Path(f.artifact).name, f.check) for f in parallel.findings}
    assert ("tampered.dsse.json", "signature-valid") in bad  # (and serial-unique: a copy)
    assert ("payload-changed.dsse.json", "signature-valid") in bad
    assert ("not-json.dsse.json", "well-formed") in bad
    assert ("bad-statement.dsse.json", "well-formed") in bad
    # parsed in the pool, the envelopes kept as keyids only: no payload reaches the core
    assert all(p.envelope is None or not p.envelope.payload for p in artifacts)
    assert any(not ok for ok in signatures.values())  # the flipped signature, found in bulk


def test_results_are_keyed_by_content(audit_demo: dict[str, Any], published: Path) -> None:
    files = sorted(published.glob("*.dsse.json"))
    key = _anchor(audit_demo).key
    one, by_one = parse_all(files, key, 1)
    two, by_two = parse_all(list(reversed(files)), key, 2)
    assert by_one == by_two and len(by_one) >= len(files) - 2
    assert one == list(reversed(two))


def test_unreadable_file_is_refused(audit_demo: dict[str, Any], published: Path,
                                    tmp_path: Path) -> None:
    folder = tmp_path / "set"
    shutil.copytree(published, folder)
    (folder / "huge.dsse.json").write_bytes(b" " * (4 * 1024 * 1024 + 1))
    proc = run_cli("verify", str(folder), "--anchor", audit_demo["anchor_pem"], "--jobs", "2")
    assert proc.returncode == 2
    assert "huge.dsse.json" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_cli_jobs(audit_demo: dict[str, Any], published: Path) -> None:
    base = ["verify", str(published), "--anchor", audit_demo["anchor_pem"], "--json"]
    one = run_cli(*base, "--jobs", "1")
    two = run_cli(*base, "--jobs", "2")
    assert one.returncode == two.returncode == 2  # malformed artifacts among them
    strip = [{k: v for k, v in json.loads(p.stdout).items() if k != "at"} for p in (one, two)]
    assert strip[0] == strip[1]
    bad = run_cli(*base, "--jobs", "-1")
    assert bad.returncode == 2 and "--jobs" in bad.stderr
