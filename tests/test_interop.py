"""Implementations nobody here wrote agree with writroot's logs and SPIFFE bundles.

writroot writes a log (tiles, a checkpoint signed by an ML-DSA-44 log key and cosigned by
witnesses, older checkpoints, a forked one, tlog-proof files) and SPIFFE bundles as the
ceremonies publish them; tests/interop/interop.go, built in GOPATH mode inside the Debian sid
root (scripts/native-tokens.sh), reads them with golang.org/x/mod/sumdb/{tlog,note},
filippo.io/torchwood, Go's crypto/mldsa and go-spiffe, and reports what it found. Its demo mode
reads the set `writroot demo` really publishes (the `audit_demo` fixture): the fleet log's tiles
and checkpoint, the returned cosigned checkpoints and the forked one, every tlog-proof and every
SPIFFE bundle, with the keys, quorum, trust domains and sequences the statements name.

Without the root (or its Go packages) this skips with the reason, except in CI (CI=true),
where it fails, as the native-token tests do.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from writroot.crypto.keys import PublicKey
from writroot.jsonio import canonical
from writroot.log import logfile
from writroot.log.logfile import Log, MemoryKey

pytestmark = pytest.mark.interop

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "native-tokens.sh"
STAMP = REPO / ".cache" / "native-tokens" / ".stamp"
GO_ENV = ("GOPATH=/usr/share/gocode", "GO111MODULE=off", "GOTOOLCHAIN=local")
ORIGIN = "fleet.writsov.example/log"
SIZE = 66_000  # three tile levels, partial tiles at each
OLDER = (1, 255, 256, 300, 65_536)
PROVEN = (0, 1, 255, 256, 65_535, 65_536, SIZE - 1)
CLOCK = 1_780_000_000


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"interop root unavailable in CI: {reason}")
    pytest.skip(f"interop root unavailable: {reason} (make native-tokens)")


def _exec(*cmd: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), "exec", *GO_ENV, "--", *cmd], capture_output=True,
                          text=True, cwd=cwd, timeout=900, check=False)


@pytest.fixture(scope="module")
def work() -> Iterator[Path]:
    if not STAMP.is_file():
        _unavailable(f"{STAMP} is missing")
    if os.geteuid() != 0 and subprocess.run(["sudo", "-n", "true"], capture_output=True,
                                            check=False).returncode != 0:
        _unavailable("entering the root needs root or password-less sudo")
    # under the repository (the root sees it at the same path), not behind a .cache symlink
    work = REPO / "build" / f"interop-{secrets.token_hex(4)}"
    work.mkdir(parents=True)
    probe = _exec("go", "version", cwd=REPO)
    if probe.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        _unavailable(f"no Go in the root: {probe.stderr.strip()[-300:]}")
    yield work
    shutil.rmtree(work, ignore_errors=True)


def _entry(i: int) -> bytes:
    return logfile.entry_for(b"statement %d" % i)


def _key_json(name: str, key: MemoryKey) -> dict[str, str]:
    return {"name": name, "key": base64.b64encode(key.key.raw).decode()}


def _bundles(work: Path) -> list[dict[str, Any]]:
    from datetime import UTC, datetime

    from writroot.demo_inputs import spire_bundle

    out = []
    now = datetime.now(UTC)
    for domain, seq in (("conus-1.writsov.com", 2), ("emea-1.writsov.com", 1)):
        path = work / "spire" / f"{domain}.spiffe.json"  # as ceremony/runner.py writes them
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(canonical(json.loads(spire_bundle(domain, seq, now, 90))) + b"\n")
        out.append({"path": str(path), "trust_domain": domain, "sequence": seq})
    return out


@pytest.fixture(scope="module")
def report(work: Path) -> dict[str, Any]:
    log_key = MemoryKey.generate()
    witnesses = {f"w{i}.writsov.example/witness": MemoryKey.generate() for i in range(3)}
    log = Log(ORIGIN)
    log_signer = logfile.log_signer(ORIGIN, log_key, lambda: CLOCK)
    older: list[str] = []
    consistency: dict[str, list[str]] = {}
    for i in range(SIZE):
        log.append(_entry(i))
        if log.size in OLDER:
            path = work / f"checkpoint-{log.size}"
            path.write_bytes(log.sign([log_signer]))
            older.append(str(path))
    # a fork of the same log at 300 entries: signed by the same key, consistent with nothing
    fork = Log(ORIGIN)
    for i in range(300):
        fork.append(_entry(i) if i < 200 else logfile.entry_for(b"forked %d" % i))
    (work / "checkpoint-fork").write_bytes(fork.sign([log_signer]))
    for path in older:  # writroot's own consistency proofs, for Go's tlog.CheckTree
        size = int(path.rsplit("-", 1)[1])
        consistency[path] = [base64.b64encode(h).decode() for h in log.consistency(size)]
    consistency[str(work / "checkpoint-fork")] = consistency[str(work / "checkpoint-300")]
    cosigners = [logfile.log_signer(name, key, lambda: CLOCK + 1)
                 for name, key in list(witnesses.items())[:2]]  # two of three cosign
    signed = log.sign([log_signer, *cosigners])
    logfile.write_directory(work / "log", log, signed)
    proofs = []
    for index in PROVEN:
        path = work / f"proof-{index}.tlog-proof"
        path.write_bytes(log.proof_file(index, signed))
        proofs.append({"path": str(path), "entry": _entry(index).hex()})
    proofs.append({"path": str(work / "proof-0.tlog-proof"), "entry": _entry(1).hex()})
    manifest = {
        "logs": [{"dir": str(work / "log"), "log_key": _key_json(ORIGIN, log_key),
                  "witnesses": [_key_json(n, k) for n, k in witnesses.items()], "quorum": 2,
                  "checkpoints": [*older, str(work / "checkpoint-fork")],
                  "consistency": consistency, "proofs": proofs}],
        "bundles": _bundles(work),
    }
    (work / "manifest.json").write_text(json.dumps(manifest, indent=2))
    shutil.copy(REPO / "tests" / "interop" / "interop.go", work / "interop.go")
    proc = _exec("go", "run", "interop.go", "manifest.json", cwd=work)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result: dict[str, Any] = json.loads(proc.stdout)
    result["expected"] = {"root": base64.b64encode(log.hashes.root()).decode(),
                          "witnesses": list(witnesses)}
    return result


def test_checkpoint_log_signature_and_cosignatures_verify_in_go(report: dict[str, Any]) -> None:
    log = report["logs"][0]
    assert log.get("error", "") == ""
    assert (log["origin"], log["size"], log["root"]) == (ORIGIN, SIZE,
                                                         report["expected"]["root"])
    assert log["log_signed"]
    w = report["expected"]["witnesses"]
    assert log["cosigned"] == {w[0]: CLOCK + 1, w[1]: CLOCK + 1}
    assert log["quorum"]  # torchwood: origin, log key and 2 of 3 witnesses


def test_tiles_hash_to_the_checkpoint_with_x_mod_tlog(report: dict[str, Any]) -> None:
    log = report["logs"][0]
    assert log["tree_hash"] == report["expected"]["root"]
    assert log["entries"] == SIZE  # every entry bundle entry proven with tlog.CheckRecord


def test_older_checkpoints_consistent_and_the_fork_not(report: dict[str, Any]) -> None:
    results = report["logs"][0]["checkpoints"]
    assert [(r["size"], r["consistent"]) for r in results] == \
        [*((n, True) for n in OLDER), (300, False)]
    # writroot's own RFC 9162 consistency proofs, checked by x/mod's tlog.CheckTree
    assert [r["writroot_proof"] for r in results] == [True] * len(OLDER) + [False]


def test_tlog_proofs_verify_with_torchwood(report: dict[str, Any]) -> None:
    results = report["logs"][0]["proofs"]
    assert [r["verified"] for r in results] == [True] * len(PROVEN) + [False]


def test_go_spiffe_parses_the_bundles(report: dict[str, Any]) -> None:
    for b in report["bundles"]:
        assert b.get("error", "") == "", b
        assert b["has_sequence"] and b["x509_authorities"] == 1 and b["jwt_authorities"] == 1
    assert [(b["trust_domain"], b["sequence"]) for b in report["bundles"]] == \
        [("conus-1.writsov.com", 2), ("emea-1.writsov.com", 1)]


# ---------------------------------------------------------------- the demo's own published set


def _payload(path: Path) -> dict[str, Any]:
    envelope = json.loads(path.read_bytes())
    payload: dict[str, Any] = json.loads(base64.b64decode(envelope["payload"]))
    return payload


def _entry_of(path: Path) -> str:
    return logfile.entry_for(base64.b64decode(json.loads(path.read_bytes())["payload"])).hex()


def _pub_json(name: str, key: PublicKey) -> dict[str, str]:
    return {"name": name, "key": base64.b64encode(key.raw).decode()}


def _expected_cosigners(signed: bytes, witnesses: dict[str, PublicKey]) -> dict[str, int]:
    """writroot's own reading: which witnesses cosigned a checkpoint, and when."""
    from writroot.log import cosignature, note

    opened = note.open_note(signed, [cosignature.CosignatureVerifier(n, k)
                                     for n, k in witnesses.items()], "checkpoint")
    return {s.name: cosignature.timestamp_of(s) for s in opened.verified}


@pytest.fixture(scope="module")
def demo_report(work: Path, audit_demo: dict[str, Any]) -> dict[str, Any]:
    """The demo's published set, copied where the root sees it, read by interop.go's demo mode;
    the keys come from the statements (fleet-root: log key; witness-policy: witnesses)."""
    src = Path(audit_demo["workdir"])
    here = work / "demo"
    shutil.copytree(src / "published", here / "published")
    shutil.copytree(src / "forked", here / "forked")
    shutil.copytree(src / "auditor" / "audit-package" / "distribution" / "spire",
                    here / "audit-package" / "spire")
    pub = here / "published"
    statements = {p: _payload(p) for p in sorted((pub / "artifacts").glob("*.dsse.json"))}
    by_type: dict[str, list[dict[str, Any]]] = {}
    for st in statements.values():
        by_type.setdefault(st.get("type", ""), []).append(st)
    (root,) = by_type["fleet-root"]
    (policy,) = by_type["witness-policy"]
    origin = f"writroot/{root['fleet']}/fleet"
    log_key = PublicKey.from_json(root["subject"]["log_key"], "log_key")
    witnesses = {w["name"]: PublicKey.from_json(w["key"], "witness")
                 for w in policy["subject"]["witnesses"]}
    log_dir = pub / "logs" / origin
    log, _ = logfile.load(log_dir, log_key)  # writroot's own reading, to compare with Go's
    fleet_prefix = origin.replace("/", "_") + "-"  # the fleet's log (regions keep their own)
    older = sorted((p for p in (pub / "cosignatures").glob("*.checkpoint")
                    if p.name.startswith(fleet_prefix)),
                   key=lambda p: int(p.name.rsplit("-", 2)[1]))
    fork = here / "forked" / "logs" / origin / "checkpoint"
    consistency = {}
    for path in older:
        size = int(path.read_text().split("\n")[1])
        consistency[str(path)] = [base64.b64encode(h).decode() for h in log.consistency(size)]
    # a proof pairs with its statement by entry hash: the entry Go checks is the statement's
    entries = {_entry_of(p): p for p in [*statements, *sorted((pub / "records").glob("*.json"))]}
    proofs = []
    for path in sorted((pub / "proofs").glob("*.tlog-proof")):
        if f"\n{origin}\n" not in path.read_text():
            continue  # a proof into a region's log (its statement may be withheld: revoked)
        statement = entries[path.name.split(".")[0]]
        proofs.append({"path": str(path), "entry": _entry_of(statement)})
    hostile_proof = {"path": proofs[0]["path"], "entry": proofs[1]["entry"]}  # another's entry
    bundles = []
    for st in by_type["enclave-bundle"]:  # every published copy, with what its statement says
        name = f"{st['ceremony']['id']}/{st['subject']['trust_domain']}.spiffe.json"
        for path in (pub / "spire" / name, here / "audit-package" / "spire" / name):
            assert path.is_file(), path
            bundles.append({"path": str(path), "trust_domain": st["subject"]["trust_domain"],
                            "sequence": st["subject"]["spiffe_sequence"]})
    published = sorted(str(p) for p in [*(pub / "spire").rglob("*.spiffe.json"),
                                          *(here / "audit-package" / "spire").rglob("*.json")])
    assert sorted(b["path"] for b in bundles) == published  # none left out
    hostile_bundle = {**bundles[0], "sequence": bundles[0]["sequence"] + 1}  # a replayed one
    manifest = {
        "logs": [{"dir": str(log_dir), "log_key": _pub_json(origin, log_key),
                  "witnesses": [_pub_json(n, k) for n, k in witnesses.items()],
                  "quorum": policy["subject"]["quorum"],
                  "checkpoints": [*map(str, older), str(fork)],
                  "consistency": consistency, "proofs": [*proofs, hostile_proof]}],
        "bundles": [*bundles, hostile_bundle],
    }
    (here / "manifest.json").write_text(json.dumps(manifest, indent=2))
    shutil.copy(REPO / "tests" / "interop" / "interop.go", here / "interop.go")
    proc = _exec("go", "run", "interop.go", "demo", "manifest.json", cwd=here)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result: dict[str, Any] = json.loads(proc.stdout)
    signed = (log_dir / "checkpoint").read_bytes()
    result["expected"] = {
        "origin": origin, "size": log.size, "root": base64.b64encode(log.hashes.root()).decode(),
        "entries": [e.hex() for e in log.entries], "statements": sorted(entries),
        "cosigned": _expected_cosigners(signed, witnesses),
        "older": [(int(p.read_text().split("\n")[1]),
                   _expected_cosigners(p.read_bytes(), witnesses)) for p in older],
        "proofs": [p["entry"] for p in proofs], "demo_log": audit_demo["log"],
        "statement_bundles": {(st["subject"]["trust_domain"], st["subject"]["spiffe_sequence"]):
                              st["subject"]["bundle"] for st in by_type["enclave-bundle"]},
    }
    return result


def test_demo_checkpoint_signed_and_cosigned_in_go(demo_report: dict[str, Any]) -> None:
    log, want = demo_report["logs"][0], demo_report["expected"]
    assert log.get("error", "") == ""
    assert (log["origin"], log["size"], log["root"]) == (want["origin"], want["size"],
                                                         want["root"])
    assert log["size"] == want["demo_log"]["size"]
    assert log["log_signed"] and log["quorum"]
    assert log["cosigned"] == want["cosigned"]
    assert len(log["cosigned"]) >= want["demo_log"]["quorum"]
    assert not log["unverified_signers"]


def test_demo_tiles_hold_every_logged_statement(demo_report: dict[str, Any]) -> None:
    log, want = demo_report["logs"][0], demo_report["expected"]
    assert log["tree_hash"] == want["root"]
    assert log["entries"] == want["size"]  # every entry proven with tlog.CheckRecord
    assert log["entry_list"] == want["entries"]  # the same entries, in the same order
    assert set(log["entry_list"]) <= set(want["statements"])  # each one a published statement


def test_demo_older_checkpoints_consistent_and_the_fork_not(demo_report: dict[str, Any]) -> None:
    results, want = demo_report["logs"][0]["checkpoints"], demo_report["expected"]
    older, fork = results[:-1], results[-1]
    assert len(older) >= 2
    for r, (size, cosigned) in zip(older, want["older"], strict=True):
        assert r.get("error", "") == "", r
        assert (r["size"], r["consistent"], r["writroot_proof"]) == (size, True, True)
        assert r["quorum"] and r["cosigned"] == cosigned  # returned cosignatures verify
    # the checkpoint the demo showed a witness: signed by the log key, consistent with nothing
    assert fork["size"] == want["size"] and not fork["consistent"]
    assert fork["root"] != want["root"]


def test_demo_every_tlog_proof_verifies_with_torchwood(demo_report: dict[str, Any]) -> None:
    results, want = demo_report["logs"][0]["proofs"], demo_report["expected"]
    *honest, hostile = results
    assert len(honest) == len(want["proofs"]) == want["size"]
    for r in honest:
        assert r.get("error", "") == "" and r["verified"], r
        assert r["witnessed"], r  # its checkpoint is one that met the witness quorum
    assert not hostile["verified"]  # a proof paired with another statement's entry


def test_go_spiffe_parses_every_published_bundle(demo_report: dict[str, Any]) -> None:
    want = demo_report["expected"]["statement_bundles"]
    *honest, hostile = demo_report["bundles"]
    assert len(honest) == 2 * len(want)  # published and in the audit package
    assert "spiffe_sequence" in hostile["error"]  # go-spiffe reads the sequence we wrote
    for b in honest:
        assert b.get("error", "") == "", b
        assert b["has_sequence"]
        bundle = want[(b["trust_domain"], b["sequence"])]
        uses = [k.get("use") for k in bundle["keys"]]
        assert (b["x509_authorities"], b["jwt_authorities"]) == (uses.count("x509-svid"),
                                                                 uses.count("jwt-svid"))
