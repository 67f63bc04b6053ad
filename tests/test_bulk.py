"""Verification across processes (writroot.verify.bulk): the same report as one process,
whatever the order, with signature results keyed by content; `verify --jobs`."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from writroot.crypto.keys import PublicKey
from writroot.verify.bulk import precompute
from writroot.verify.core import Anchor, verify
from writroot.verify.files import gather, sources


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
    return out


def _anchor(audit_demo: dict[str, Any]) -> Anchor:
    key = PublicKey.from_pem(Path(audit_demo["anchor_pem"]).read_bytes(), "anchor")
    return Anchor(key.keyid, key)


def test_two_processes_give_the_one_process_report(audit_demo: dict[str, Any],
                                                   published: Path) -> None:
    anchor = _anchor(audit_demo)
    at = datetime.now(UTC).replace(microsecond=0)
    serial = verify(gather([str(published)]), anchor, at)
    artifacts, signatures = sources([str(published)], 2, anchor)
    parallel = verify(artifacts, anchor, at, signatures=signatures)
    assert parallel.to_json() == serial.to_json()
    bad = {(Path(f.artifact).name, f.check) for f in parallel.findings}
    assert ("tampered.dsse.json", "signature-valid") in bad  # (and serial-unique: a copy)
    assert any(not ok for ok in signatures.values())  # the flipped signature, found in bulk


def test_results_are_keyed_by_content(audit_demo: dict[str, Any], published: Path) -> None:
    files = sorted(published.glob("*.dsse.json"))
    key = _anchor(audit_demo).key
    one = precompute(files, key, 1)
    two = precompute(list(reversed(files)), key, 2)
    assert one == two


def test_cli_jobs(audit_demo: dict[str, Any], published: Path) -> None:
    base = ["verify", str(published), "--anchor", audit_demo["anchor_pem"], "--json"]
    one = run_cli(*base, "--jobs", "1")
    two = run_cli(*base, "--jobs", "2")
    assert one.returncode == two.returncode == 1
    strip = [{k: v for k, v in json.loads(p.stdout).items() if k != "at"} for p in (one, two)]
    assert strip[0] == strip[1]
    bad = run_cli(*base, "--jobs", "-1")
    assert bad.returncode == 2 and "--jobs" in bad.stderr
