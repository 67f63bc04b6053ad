"""The rotation calendar (`writroot.status.calendar`) and `writroot status`: ok, due, overdue,
expired and superseded, for fleet roots, regional roots, enclave bundles, federation keys and
the revocation list; the CLI exits 1 only when something in force is overdue or expired."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import (
    NOW,
    RawKey,
    enclave,
    enclave_bundle_payload,
    fast_policy,
    federation_key_payload,
    genesis_payload,
    raw_key,
    regional_root_payload,
    revocation_payload,
    rotation_payload,
    run_cli,
    sign_all,
)
from writroot.crypto.algorithms import ML_DSA_87
from writroot.jsonio import format_time
from writroot.status import LOUD, Row, calendar
from writroot.verify.core import Anchor, verify

G = NOW - timedelta(days=1)  # genesis; approvals in conftest proofs hold NOW - 2 d .. NOW + 1 d
C1 = "conus-1.writsov.com"
C2 = "conus-2.writsov.com"
#: Fleet roots due for rotation after 30 days (valid 60); regional roots 90 + 14 (fast_policy).
POLICY = {**fast_policy(), "fleet_root_rotation_days": 30}


def h(hours: float) -> datetime:
    return G + timedelta(hours=hours)


def d(days: float) -> datetime:
    return G + timedelta(days=days)


def env(payload: bytes, *signers: RawKey) -> bytes:
    return sign_all(payload, *signers).dumps()


@pytest.fixture(scope="module")
def keys() -> dict[str, RawKey]:
    return {name: raw_key() for name in ("k0", "k1", "conus", "conus2", "eucom")}


@pytest.fixture(scope="module")
def fleet(keys) -> dict[str, bytes]:
    k0, k1 = keys["k0"], keys["k1"]
    return {"genesis": env(genesis_payload(k0, POLICY, issued_at=G, days=60), k0),
            "rotation": env(rotation_payload(k0, k1, 2, issued_at=h(6), policy=POLICY,
                                             days=60), k0, k1)}


@pytest.fixture(scope="module")
def genesis(keys) -> bytes:
    """Valid 500 days, due for rotation after 548: the fleet root stays quiet."""
    return env(genesis_payload(keys["k0"], fast_policy(), issued_at=G), keys["k0"])


@pytest.fixture(scope="module")
def hierarchy(keys, genesis) -> dict[str, bytes]:
    """Genesis (no rotation); EUCOM v1 for 104 days; CONUS v1 for 20 days, then v2; one
    enclave trust domain with two bundles; a federation key; a revocation list."""
    k0 = keys["k0"]
    conus, conus2, eucom = keys["conus"], keys["conus2"], keys["eucom"]
    return {
        "genesis": genesis,
        "EUCOM-v1": env(regional_root_payload(k0, eucom.key, issued_at=G, region="EUCOM"), k0),
        "CONUS-v1": env(regional_root_payload(k0, conus.key, issued_at=G, days=20), k0),
        "CONUS-v2": env(regional_root_payload(k0, conus2.key, issued_at=h(6), version=2), k0),
        "bundle-1": env(enclave_bundle_payload(conus, C1, 1, issued_at=h(2), days=19), conus),
        "bundle-2": env(enclave_bundle_payload(conus, C1, 2, issued_at=h(4), days=19), conus),
        "federation": env(federation_key_payload(
            conus, raw_key(ML_DSA_87).key, [enclave(C1, "IL4"), enclave(C2, "IL4")],
            issued_at=h(3), days=19), conus),
        "revocations": env(revocation_payload(k0, 3, [], issued_at=h(5), days=19), k0),
    }


def _rows(blobs: dict[str, bytes], anchor: RawKey, at: datetime | None = None,
          verified_at: datetime = NOW) -> dict[tuple[str, str, str], Row]:
    """Verify at `verified_at` (all authentic and in force); read the calendar at `at`."""
    report = verify(list(blobs.items()), Anchor(anchor.keyid), verified_at)
    assert report.ok, report.findings
    return {(r.kind, r.name, r.version): r for r in calendar(report, 14, at)}


def _states(rows: dict[tuple[str, str, str], Row]) -> dict[tuple[str, str, str], str]:
    return {key: row.state for key, row in rows.items()}


# -- fleet roots ----------------------------------------------------------------------------

@pytest.mark.parametrize(("at", "state"), [
    (None, "ok"),         # the report's own time: day 1 of 30
    (d(15), "ok"),        # due at day 30, warned from day 16
    (d(17), "due"),
    (d(31), "overdue"),   # past the rotation date, still valid until day 60
    (d(61), "expired"),
])
def test_fleet_root_states(keys, fleet, at, state) -> None:
    rows = _rows({"genesis": fleet["genesis"]}, keys["k0"], at)
    assert _states(rows) == {("fleet-root", "testfleet", "v1"): state}
    row = rows["fleet-root", "testfleet", "v1"]
    assert (row.keyid, row.since, row.expires, row.due) == (keys["k0"].keyid, G, d(60), d(30))


def test_rotated_fleet_root_is_superseded(keys, fleet) -> None:
    rows = _rows(fleet, keys["k0"], d(40))
    assert _states(rows) == {("fleet-root", "testfleet", "v1"): "superseded",
                             ("fleet-root", "testfleet", "v2"): "overdue"}
    assert rows["fleet-root", "testfleet", "v2"].keyid == keys["k1"].keyid
    assert rows["fleet-root", "testfleet", "v2"].due == h(6) + timedelta(days=30)


def test_failed_rotation_is_not_on_the_calendar(keys, fleet) -> None:
    k0, k1 = keys["k0"], keys["k1"]
    one_signature = env(rotation_payload(k0, k1, 2, issued_at=h(6), policy=POLICY, days=60),
                        k1)
    report = verify([("genesis", fleet["genesis"]), ("rotation", one_signature)],
                    Anchor(k0.keyid), NOW)
    assert not report.ok
    assert [(r.kind, r.version, r.state) for r in calendar(report)] == [
        ("fleet-root", "v1", "ok")]


# -- regional roots, enclave bundles, federation keys, the revocation list -------------------

CALENDAR = [
    # (reference time, {row: state}) with rows named (kind, name, version)
    (d(1), {("regional-root", "EUCOM", "v1"): "ok",
            ("regional-root", "CONUS", "v1"): "superseded",
            ("regional-root", "CONUS", "v2"): "ok",
            ("enclave-bundle", C1, "seq 2"): "ok",
            ("federation-key", f"{C1} <-> {C2}", ""): "ok",
            ("revocation-list", "revocations", "seq 3"): "ok"}),
    (d(8), {("enclave-bundle", C1, "seq 2"): "due",  # expires at day 19 + 4 h
            ("federation-key", f"{C1} <-> {C2}", ""): "due",
            ("revocation-list", "revocations", "seq 3"): "due"}),
    (d(20), {("enclave-bundle", C1, "seq 2"): "expired",
             ("federation-key", f"{C1} <-> {C2}", ""): "expired",
             ("revocation-list", "revocations", "seq 3"): "expired"}),
    # EUCOM v1: due at day 90, expires at day 104; CONUS v2 six hours later
    (d(77), {("regional-root", "EUCOM", "v1"): "due", ("regional-root", "CONUS", "v2"): "due"}),
    (d(90.1), {("regional-root", "EUCOM", "v1"): "overdue",
               ("regional-root", "CONUS", "v2"): "due"}),
    (d(104.1), {("regional-root", "EUCOM", "v1"): "expired",
                ("regional-root", "CONUS", "v2"): "overdue"}),
]


@pytest.mark.parametrize(("at", "expected"), CALENDAR, ids=[f"day {(c[0] - G).days}"
                                                           for c in CALENDAR])
def test_calendar_states(keys, hierarchy, at, expected) -> None:
    states = _states(_rows(hierarchy, keys["k0"], at))
    # the fleet root, each regional version, one row per trust domain, pairing and list
    assert len(states) == 7
    assert {key: states[key] for key in expected} == expected


def test_calendar_rows_describe_each_key(keys, hierarchy) -> None:
    rows = _rows(hierarchy, keys["k0"])
    eucom = rows["regional-root", "EUCOM", "v1"]
    assert (eucom.keyid, eucom.since, eucom.expires, eucom.due) == (
        keys["eucom"].keyid, G, d(104), d(90))
    bundle = rows["enclave-bundle", C1, "seq 2"]  # the latest bundle of the trust domain
    assert bundle.keyid is None and bundle.since == h(4) and bundle.due == bundle.expires
    assert rows["revocation-list", "revocations", "seq 3"].expires == h(5) + timedelta(days=19)
    assert eucom.to_json() == {
        "kind": "regional-root", "name": "EUCOM", "version": "v1",
        "keyid": keys["eucom"].keyid, "since": format_time(G), "expires": format_time(d(104)),
        "rotation_due": format_time(d(90)), "age_days": 1, "days_to_due": 89, "state": "ok",
        "serial": eucom.serial}


def test_superseded_regional_version_stays_quiet_after_it_expires(keys, hierarchy) -> None:
    states = _states(_rows(hierarchy, keys["k0"], d(25)))  # CONUS v1 ended at day 20
    assert states["regional-root", "CONUS", "v1"] == "superseded"
    assert not [key for key, state in states.items() if state in LOUD
                and key[:2] == ("regional-root", "CONUS")]


def test_revoked_key_stays_on_the_calendar_as_revoked(keys, hierarchy) -> None:
    k0 = keys["k0"]
    revoked = env(revocation_payload(k0, 4, [{"keyid": keys["eucom"].keyid,
                                              "reason": "key-compromise",
                                              "revoked_at": format_time(h(7))}],
                                     issued_at=h(7)), k0)
    report = verify(list(hierarchy.items()), Anchor(k0.keyid), NOW,
                    revocations=[("revocations-4", revoked)])
    states = {(r.kind, r.name): r.state for r in calendar(report)}
    assert states[("regional-root", "EUCOM")] == "revoked"
    assert states[("regional-root", "CONUS")] != "revoked"


# -- writroot status ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def quiet(keys, genesis) -> dict[str, bytes]:
    """A fleet whose only clock is EUCOM v1: rotation due at day 90, expiry at day 104."""
    k0 = keys["k0"]
    return {"fleet-root.dsse.json": genesis,
            "regional-root-EUCOM.dsse.json": env(regional_root_payload(
                k0, keys["eucom"].key, issued_at=G, region="EUCOM"), k0)}


@pytest.fixture()
def status_dir(tmp_path: Path, keys, quiet) -> Path:
    for name, data in quiet.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "fleet-root.pem").write_text(keys["k0"].key.pem)
    return tmp_path


def _status(status_dir: Path, at: datetime, *extra: str):
    proc = run_cli("status", str(status_dir), "--anchor", str(status_dir / "fleet-root.pem"),
                   "--at", format_time(at), *extra)
    return proc


@pytest.mark.parametrize(("day", "state", "code"), [
    (1, "ok", 0), (80, "due", 0), (95, "overdue", 1), (110, "expired", 1)])
def test_cli_status_json_and_exit_code(status_dir: Path, day, state, code) -> None:
    proc = _status(status_dir, d(day), "--json")
    assert proc.returncode == code, proc.stdout + proc.stderr
    out = json.loads(proc.stdout)
    eucom = [r for r in out["rows"] if r["kind"] == "regional-root"]
    assert [(r["name"], r["version"], r["state"]) for r in eucom] == [("EUCOM", "v1", state)]
    assert out["loud"] == code and out["not_verified"] == []
    assert out["at"] == format_time(d(day))


def test_cli_status_text_is_loud_when_overdue(status_dir: Path) -> None:
    proc = _status(status_dir, d(95))
    assert proc.returncode == 1
    assert "OVERDUE" in proc.stdout and "regional-root EUCOM v1" in proc.stdout


def test_cli_status_applies_a_revocation_effective_before_at(status_dir: Path, keys) -> None:
    k0 = keys["k0"]
    later = env(revocation_payload(k0, 1, [{"keyid": keys["eucom"].keyid,
                                            "reason": "cessation-of-operation",
                                            "revoked_at": format_time(d(10))}],
                                   issued_at=h(3)), k0)
    (status_dir / "revocation-list-1.dsse.json").write_bytes(later)
    proc = _status(status_dir, d(20), "--json")
    rows = json.loads(proc.stdout)["rows"]
    assert not [r for r in rows if r["kind"] == "regional-root" and r["state"] == "ok"], rows


# -- every revocation a trusted list holds is on the calendar (issue 19) ----------------------


def test_demo_published_set_shows_revoked_rows_and_exits_1(audit_demo) -> None:
    """The demo's revoked federation key is withheld from the published set: its revocation
    still has a REVOKED row (expiry unknown: loud), and status exits 1."""
    published = Path(audit_demo["workdir"]) / "published"
    proc = run_cli("status", str(published), "--anchor", audit_demo["anchor_fingerprint"],
                   "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = json.loads(proc.stdout)
    revoked = [r for r in out["rows"] if r["state"] == "revoked"]
    assert len(revoked) == 1 and revoked[0]["kind"] == "revoked"
    assert revoked[0]["revocation"]["reason"] == "key-compromise"
    assert revoked[0]["revocation"]["target"] == f"keyid:{revoked[0]['keyid']}"
    assert revoked[0]["expires"] is None and out["loud"] >= 1
    text = run_cli("status", str(published), "--anchor", audit_demo["anchor_fingerprint"])
    assert text.returncode == 1 and "REVOKED" in text.stdout
    assert revoked[0]["keyid"] in text.stdout and "key-compromise" in text.stdout
    # with the withheld artifact given too, the row says what it was and until when
    withheld = Path(audit_demo["workdir"]) / "out" / "demo-conus-enclaves" / "artifacts"
    proc = run_cli("status", str(published), str(withheld), "--anchor",
                   audit_demo["anchor_fingerprint"], "--json")
    rows = [r for r in json.loads(proc.stdout)["rows"] if r["state"] == "revoked"]
    assert proc.returncode == 1 and [r["kind"] for r in rows] == ["federation-key"]
    assert rows[0]["expires"] and rows[0]["revocation"]["target"].endswith(rows[0]["keyid"])


def test_revoked_past_its_own_expiry_is_listed_not_loud() -> None:
    from writroot.status import with_revocations
    from writroot.verify.trust import Revocation

    rev = Revocation("keyid:" + "ab" * 32, d(5), "superseded", 2)
    row = Row("federation-key", "a <-> b", "", "ab" * 32, d(0), d(30), d(30), "ok", d(40))
    absent = Revocation("serial:gone.1", d(6), "key-compromise", 2)
    [late, unknown] = with_revocations([row], {rev.target: rev, absent.target: absent}, [],
                                       d(40))
    assert late.state == "revoked-expired" and late.state not in LOUD
    assert late.revocation == rev
    assert unknown.state == "revoked" and unknown.serial == "gone.1"
    [early, _] = with_revocations([replace(row, at=d(10))], {rev.target: rev,
                                                           absent.target: absent}, [], d(10))
    assert early.state == "revoked"
    # a revocation dated after the reference time is not in force yet
    assert with_revocations([row], {absent.target: replace(absent, revoked_at=d(50))}, [],
                            d(40)) == [row]
