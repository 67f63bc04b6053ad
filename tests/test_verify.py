"""The verification core and `writroot verify`: every rule both ways, every finding named."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import (
    NOW,
    RawKey,
    fleet_root_payload,
    raw_key,
    regional_payload,
    run_cli,
    sign_raw,
)
from writroot.crypto.algorithms import ML_DSA_87
from writroot.envelope import Envelope
from writroot.jsonio import canonical
from writroot.verify.core import Anchor, verify


@pytest.fixture(scope="module")
def fleet() -> RawKey:
    return raw_key()


@pytest.fixture(scope="module")
def regional() -> RawKey:
    return raw_key(ML_DSA_87)


@pytest.fixture(scope="module")
def rogue() -> RawKey:
    return raw_key()


@pytest.fixture(scope="module")
def good(fleet: RawKey, regional: RawKey) -> dict[str, bytes]:
    return {
        "fleet-root.dsse.json": sign_raw(fleet, fleet_root_payload(fleet)).dumps(),
        "regional-root-CONUS.dsse.json":
            sign_raw(fleet, regional_payload(fleet, regional.key)).dumps(),
    }


def checks(report) -> set[str]:
    return {f.check for f in report.findings}


def run(blobs: dict[str, bytes], anchor: Anchor, at=NOW, independent: bool = False):
    return verify(list(blobs.items()), anchor, at, independent)


def _swap(envelope: bytes, **changes) -> bytes:
    obj = json.loads(envelope)
    obj.update(changes)
    return canonical(obj)


def _tamper_payload(envelope: bytes) -> bytes:
    obj = json.loads(envelope)
    doc = json.loads(base64.b64decode(obj["payload"]))
    doc["subject"]["region"] = "EUCOM"
    obj["payload"] = base64.b64encode(canonical(doc)).decode()
    return canonical(obj)


def _tamper_signature(envelope: bytes) -> bytes:
    obj = json.loads(envelope)
    sig = bytearray(base64.b64decode(obj["signatures"][0]["sig"]))
    sig[len(sig) // 3] ^= 0x10
    obj["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    return canonical(obj)


def test_good_set_verifies_by_fingerprint_and_by_pem(fleet: RawKey, good) -> None:
    assert run(good, Anchor(fleet.keyid)).ok
    report = run(good, Anchor(fleet.keyid, fleet.key), independent=True)
    assert report.ok
    assert all({"pqcrypto", "slh-dsa-py"} <= r.checked_by for r in report.results)


def test_regional_root_alone_needs_the_roster_in_force(fleet: RawKey, good) -> None:
    """Signatures check against a PEM anchor, but the quorum needs the roster in force."""
    only = {"r": good["regional-root-CONUS.dsse.json"]}
    by_pem = run(only, Anchor(fleet.keyid, fleet.key))
    assert checks(by_pem) == {"quorum-proof"}
    assert "roster in force is unknown" in by_pem.findings[0].message
    report = run(only, Anchor(fleet.keyid))
    assert checks(report) == {"issuer-known"}
    assert "not among the artifacts" in report.findings[0].message


REJECTIONS = [
    # (case, artifact to change, change, expected check)
    ("tampered payload", "regional-root-CONUS.dsse.json", _tamper_payload, "signature-valid"),
    ("tampered signature", "regional-root-CONUS.dsse.json", _tamper_signature,
     "signature-valid"),
    ("swapped payloadType", "regional-root-CONUS.dsse.json",
     lambda e: _swap(e, payloadType="application/vnd.writroot.fleet-root+json"), "payload-type"),
    ("signature keyid relabelled", "regional-root-CONUS.dsse.json",
     lambda e: _swap(e, signatures=[{**json.loads(e)["signatures"][0], "keyid": "0" * 64}]),
     "signature-present"),
]


@pytest.mark.parametrize(("case", "name", "change", "check"), REJECTIONS,
                         ids=[r[0] for r in REJECTIONS])
def test_rejections(fleet: RawKey, good, case, name, change, check) -> None:
    blobs = dict(good)
    blobs[name] = change(good[name])
    report = run(blobs, Anchor(fleet.keyid))
    assert not report.ok and not report.malformed
    bad = next(r for r in report.results if r.name == name)
    assert check in {f.check for f in bad.findings}, bad.findings
    others = [r for r in report.results if r.name != name]
    assert all(r.ok for r in others)


def test_wrong_anchor(rogue: RawKey, good) -> None:
    report = run(good, Anchor(rogue.keyid))
    assert checks(report) == {"anchor-pinned", "issuer-known"}


def test_anchor_pem_must_match_the_statement_key(fleet: RawKey, rogue: RawKey, good) -> None:
    report = run(good, Anchor(fleet.keyid, rogue.key))
    assert "anchor-pinned" in checks(report)


def test_signed_by_a_key_the_anchor_never_certified(fleet: RawKey, rogue: RawKey, regional,
                                                    good) -> None:
    forged = sign_raw(rogue, regional_payload(rogue, regional.key, serial="forged-1")).dumps()
    report = run({**good, "forged.dsse.json": forged}, Anchor(fleet.keyid))
    bad = next(r for r in report.results if r.name == "forged.dsse.json")
    assert [f.check for f in bad.findings] == ["issuer-known"]
    assert "never certified" in bad.findings[0].message


def test_forged_issuer_keyid_with_rogue_signature(fleet: RawKey, rogue: RawKey, regional,
                                                  good) -> None:
    """Claims the fleet root as issuer but carries the rogue's signature."""
    forged = sign_raw(rogue, regional_payload(fleet, regional.key, serial="forged-2")).dumps()
    report = run({**good, "forged.dsse.json": forged}, Anchor(fleet.keyid))
    bad = next(r for r in report.results if r.name == "forged.dsse.json")
    assert {f.check for f in bad.findings} == {"signature-present"}


@pytest.mark.parametrize(("at", "ok"), [
    (NOW, True),
    (NOW - timedelta(days=2), False),     # before not_before
    (NOW + timedelta(days=90), False),    # regional root expired
    (NOW + timedelta(days=88), True),
])
def test_validity_window(fleet: RawKey, good, at, ok) -> None:
    report = run(good, Anchor(fleet.keyid), at=at)
    assert report.ok is ok
    if not ok:
        assert "validity-window" in checks(report)
        assert "reference time" in next(f.message for f in report.findings
                                         if f.check == "validity-window")


def test_expired_anchor_statement_is_named(fleet: RawKey, good) -> None:
    report = run(good, Anchor(fleet.keyid), at=NOW + timedelta(days=600))
    messages = [f.message for f in report.findings if f.check == "issuer-known"]
    assert messages and "did not verify" in messages[0]


def test_issuer_rights(fleet: RawKey, regional: RawKey, good) -> None:
    """A regional root cannot certify another regional root."""
    payload = regional_payload(fleet, raw_key().key, serial="by-region",
                               issuer_role="regional-root", issuer_keyid=regional.keyid)
    env = sign_raw(regional, payload).dumps()
    report = run({**good, "x.dsse.json": env}, Anchor(fleet.keyid))
    bad = next(r for r in report.results if r.name == "x.dsse.json")
    assert "issuer-authorised" in {f.check for f in bad.findings}


def test_policy_limits_regional_algorithm_and_validity(fleet: RawKey, good) -> None:
    from writroot.crypto.algorithms import ML_DSA_65

    mldsa65 = raw_key(ML_DSA_65)
    too_long = sign_raw(fleet, regional_payload(fleet, mldsa65.key, serial="p1",
                                                not_after=NOW + timedelta(days=200))).dumps()
    report = run({**good, "p.dsse.json": too_long}, Anchor(fleet.keyid))
    bad = next(r for r in report.results if r.name == "p.dsse.json")
    assert {f.check for f in bad.findings} == {"policy-algorithm", "policy-validity"}


def test_fleet_root_algorithm_must_match_policy(fleet: RawKey) -> None:
    from tests.conftest import fast_policy

    policy = {**fast_policy(), "fleet_root_algorithm": "SLH-DSA-SHA2-256s"}
    env = sign_raw(fleet, fleet_root_payload(fleet, policy=policy)).dumps()
    report = run({"f": env}, Anchor(fleet.keyid))
    assert checks(report) == {"policy-algorithm"}


def test_duplicate_serials_and_other_fleets(fleet: RawKey, regional: RawKey, good) -> None:
    """A serial shared by two statements is a finding on every one of them (neither is the
    'first'); the duplicate is for another region so that nothing else conflicts."""
    first = json.loads(base64.b64decode(json.loads(good["regional-root-CONUS.dsse.json"])
                                        ["payload"]))
    ceremony = first["serial"].rsplit(".", 1)[0]  # the serial is <ceremony id>.<op index>
    dup = sign_raw(fleet, regional_payload(fleet, raw_key(ML_DSA_87).key, region="EUCOM",
                                           serial=ceremony)).dumps()
    assert json.loads(base64.b64decode(json.loads(dup)["payload"]))["serial"] == first["serial"]
    other = sign_raw(fleet, regional_payload(fleet, regional.key, serial="o1",
                                             fleet_id="otherfleet")).dumps()
    report = run({**good, "dup.dsse.json": dup, "other.dsse.json": other}, Anchor(fleet.keyid))
    by_name = {r.name: {f.check for f in r.findings} for r in report.results}
    assert by_name == {"fleet-root.dsse.json": set(),
                       "regional-root-CONUS.dsse.json": {"serial-unique"},
                       "dup.dsse.json": {"serial-unique"},
                       "other.dsse.json": {"fleet-matches"}}


def test_every_finding_is_reported_not_just_the_first(fleet: RawKey, good) -> None:
    blobs = {k: _tamper_signature(v) for k, v in good.items()}
    report = run(blobs, Anchor(fleet.keyid))
    assert len(report.results) == 2 and all(not r.ok for r in report.results)


# -- the CLI: exit codes and messages that name the file -----------------------------------


@pytest.fixture()
def good_dir(tmp_path: Path, fleet: RawKey, good) -> Path:
    for name, data in good.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "fleet-root.pem").write_text(fleet.key.pem)
    return tmp_path


def test_cli_ok_by_directory_and_json(good_dir: Path, fleet: RawKey) -> None:
    proc = run_cli("verify", str(good_dir), "--anchor", fleet.keyid, "--at",
                   "2026-11-22T12:00:00Z", "--json", "--independent")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] and report["at"] == "2026-11-22T12:00:00Z" and report["independent"]
    spaced = " ".join(fleet.keyid[i:i + 4].upper() for i in range(0, 64, 4))
    text = run_cli("verify", str(good_dir), "--anchor", spaced, "--at", "2026-11-22T12:00:00Z")
    assert text.returncode == 0 and "reference time  2026-11-22T12:00:00Z" in text.stdout
    pem = run_cli("verify", str(good_dir / "regional-root-CONUS.dsse.json"),
                  str(good_dir / "fleet-root.dsse.json"), "--anchor",
                  str(good_dir / "fleet-root.pem"), "--at", "2026-11-22T12:00:00Z")
    assert pem.returncode == 0, pem.stdout


def test_cli_failure_exits_1_with_finding(good_dir: Path, fleet: RawKey) -> None:
    target = good_dir / "regional-root-CONUS.dsse.json"
    target.write_bytes(_tamper_signature(target.read_bytes()))
    proc = run_cli("verify", str(good_dir), "--anchor", fleet.keyid, "--at",
                   "2026-11-22T12:00:00Z")
    assert proc.returncode == 1
    assert "signature-valid" in proc.stdout and str(target) in proc.stdout
    late = run_cli("verify", str(good_dir), "--anchor", fleet.keyid, "--at",
                   "2029-01-01T00:00:00Z", "--json")
    assert late.returncode == 1
    assert "validity-window" in {f["check"] for f in json.loads(late.stdout)["findings"]}


MALFORMED = [
    ("duplicate key", b'{"payloadType":"a","payloadType":"b","payload":"","signatures":[]}',
     "duplicate key 'payloadType'"),
    ("unknown field", None, "unknown field 'extra'"),
    ("bad base64", None, "payload: invalid base64"),
    ("truncated", None, "malformed JSON"),
    ("not json", b"\x00\xff garbage", "not UTF-8"),
    ("wrong type", b'{"payloadType":7,"payload":"","signatures":[]}', "payloadType"),
    ("empty signatures", None, "signatures: expected a non-empty list"),
    ("non-canonical payload", None, "not RFC 8785 canonical"),
    ("unknown statement field", None, "unknown field 'surprise'"),
    ("naive time", None, "expected a UTC time"),
]


def _malformed(case: str, good_env: bytes) -> bytes:
    obj = json.loads(good_env)
    doc = json.loads(base64.b64decode(obj["payload"]))
    if case == "unknown field":
        obj["extra"] = 1
    elif case == "bad base64":
        obj["payload"] = obj["payload"][:-3] + "!=="
    elif case == "truncated":
        return good_env[: len(good_env) // 2]
    elif case == "empty signatures":
        obj["signatures"] = []
    elif case == "non-canonical payload":
        obj["payload"] = base64.b64encode(json.dumps(doc, indent=1).encode()).decode()
    elif case == "unknown statement field":
        doc["surprise"] = True
        obj["payload"] = base64.b64encode(canonical(doc)).decode()
    elif case == "naive time":
        doc["not_after"] = "2027-01-01T00:00:00"
        obj["payload"] = base64.b64encode(canonical(doc)).decode()
    return canonical(obj)


@pytest.mark.parametrize(("case", "raw", "message"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_cli_malformed_exits_2_naming_file_and_field(good_dir: Path, fleet: RawKey, case, raw,
                                                     message) -> None:
    target = good_dir / "regional-root-CONUS.dsse.json"
    target.write_bytes(raw if raw is not None else _malformed(case, target.read_bytes()))
    proc = run_cli("verify", str(target), "--anchor", str(good_dir / "fleet-root.pem"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert str(target) in proc.stdout and message in proc.stdout, proc.stdout


def test_cli_oversized_input_is_refused(tmp_path: Path, fleet: RawKey) -> None:
    big = tmp_path / "big.dsse.json"
    big.write_bytes(b" " * (5 * 1024 * 1024))
    proc = run_cli("verify", str(big), "--anchor", fleet.keyid)
    assert proc.returncode == 2 and "larger than" in proc.stderr and str(big) in proc.stderr


@pytest.mark.parametrize("anchor", ["not-a-fingerprint", "ab" * 31])
def test_cli_bad_anchor_exits_2(good_dir: Path, anchor: str) -> None:
    proc = run_cli("verify", str(good_dir), "--anchor", anchor)
    assert proc.returncode == 2 and "--anchor" in proc.stderr


def test_cli_bad_at_and_missing_path(good_dir: Path, fleet: RawKey) -> None:
    proc = run_cli("verify", str(good_dir), "--anchor", fleet.keyid, "--at", "2026-11-22")
    assert proc.returncode == 2 and "--at" in proc.stderr
    gone = run_cli("verify", str(good_dir / "nope.dsse.json"), "--anchor", fleet.keyid)
    assert gone.returncode == 2 and "nope.dsse.json" in gone.stderr


def test_envelope_roundtrip_is_canonical(good) -> None:
    for data in good.values():
        env = Envelope.parse(data, "x")
        assert env.dumps() == data


@pytest.mark.parametrize("field_value", [("plan_sha256", "ab" * 32 + "\n"),
                                         ("not_before", "٢٠٢٦-11-21T12:00:00Z")])
def test_lookalike_values_are_malformed(fleet: RawKey, field_value) -> None:
    from tests.conftest import CEREMONY
    from writroot.errors import BadInput
    from writroot.statements import parse_payload

    name, value = field_value
    doc = json.loads(fleet_root_payload(fleet))
    if name == "plan_sha256":
        doc["ceremony"] = {**CEREMONY, "plan_sha256": value}
    else:
        doc[name] = value
    with pytest.raises(BadInput):
        parse_payload(canonical(doc), "x")
