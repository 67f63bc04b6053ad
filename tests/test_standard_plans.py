"""Every plan in ceremonies/ locks as shipped once its placeholders are filled.

The inputs are made by real ceremonies on SoftHSM2 tokens: the session's `writroot demo`
(genesis with recovery holders, regional roots, enclave bundles, federation keys, an OSCAL
baseline, a fleet-root rotation and a first revocation list). Each plan is copied unchanged
except for its placeholders (the keyids of all zeros or ones, the serials and input files it
names), and `writroot ceremony plan` must lock it (exit 0).
"""

from __future__ import annotations

import base64
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Token, run_cli

CEREMONIES = Path(__file__).resolve().parent.parent / "ceremonies"
TEMPLATES = CEREMONIES.parent / "templates"
ZEROS = "0" * 64


def lock_cmd(plan: Path, anchor: str, trust: Path) -> list[str]:
    """The one place the lock command is built: `anchor` is the demo fleet's pinned anchor
    (fingerprint) and `trust` a directory of its published statements, for when `ceremony plan`
    takes them."""
    if b"signer: generate" in plan.read_bytes():  # genesis makes the anchor: none is pinned
        return ["ceremony", "plan", str(plan)]
    return ["ceremony", "plan", str(plan), "--anchor", anchor, "--trust", str(trust)]


def show_cmd(locked: Path, anchor: str, trust: Path) -> list[str]:
    """`ceremony show` of a lock, built here only, beside `lock_cmd` and for the same reason."""
    if re.search(rb'"signer"\s*:\s*"generate"', locked.read_bytes()):  # genesis (hostile bytes)
        return ["ceremony", "show", str(locked)]
    return ["ceremony", "show", str(locked), "--anchor", anchor, "--trust", str(trust)]


def _statement(path: Path) -> dict[str, Any]:
    env = json.loads(path.read_text())
    payload: dict[str, Any] = json.loads(base64.b64decode(env["payload"]))
    return payload


class Demo:
    """The demo's directories and the inputs a plan needs, by the names the plans use."""

    def __init__(self, result: dict[str, Any]) -> None:
        self.root = Path(result["workdir"])
        self.ceremony = self.root / "ceremony"
        self.inputs = self.ceremony / "inputs"
        self.anchor = str(result["anchor_fingerprint"])
        self.fleet_v2 = str(result["current_fleet_root"])
        # the whole published set: a fleet plan is locked against the fleet's log (logs/)
        self.published = self.root / "published"
        self.eucom_request = self.ceremony / "requests" / "eucom-1.tar"
        self.genesis_requests: dict[str, Path] = {}

    def artifact(self, pattern: str) -> Path:
        found = sorted((self.root / "out").glob(f"*/artifacts/{pattern}"))
        assert len(found) == 1, (pattern, found)
        return found[0]

    def trust_for(self, name: str, tmp: Path) -> Path:
        """The published set as a plan of this kind would find it: a first revocation list
        sees the fleet before any list; a re-split or restore of the genesis root's recovery
        sees the fleet before its rotation (the demo's rotated root has no recovery split)."""
        drop = {"emergency-revocation-first": "revocation-list-*",
                "resplit-recovery": "fleet-rotation-*", "restore": "fleet-rotation-*"}
        if name not in drop:
            return self.published
        trust = tmp / f"trust-{name}"
        if not trust.exists():
            shutil.copytree(self.published, trust, ignore=shutil.ignore_patterns(drop[name]))
        return trust

    def keyid(self, path: Path) -> str:
        return str(_statement(path)["subject"]["key"]["keyid"])

    def recovery(self) -> Path:
        return next((self.root / "out" / "demo-genesis" / "recovery").glob("*.recovery.json"))


def make_demo(result: dict[str, Any], make_token: Callable[[str], Token], work: Path) -> Demo:
    """The demo's fleet, and a new EUCOM key request (for the regional rotation) made on a
    fresh SoftHSM2 token by `writroot region keygen`."""
    demo = Demo(result)
    token = make_token("eucom2")
    demo.eucom_request = work / "eucom-2.tar"
    # requests live 30 days: the demo's were made on its clock, 60 days back, so a genesis
    # plan locked now gets fresh ones (ML-DSA-87: the policy allows it, and it is quick)
    demo.genesis_requests = {name: work / "genesis-requests" / f"{name}.tar"
                             for name in ("conus-1", "conus-nss-1")}
    for region, label, out in (("EUCOM", "eucom-root-2", demo.eucom_request),
                               ("CONUS", "conus-root-g", demo.genesis_requests["conus-1"]),
                               ("CONUS-NSS", "conus-nss-root-g",
                                demo.genesis_requests["conus-nss-1"])):
        out.parent.mkdir(parents=True, exist_ok=True)
        proc = run_cli("region", "keygen", *token.cli_args(), "--region", region, "--fleet",
                       "writsov", "--label", label, "--algorithm", "ML-DSA-87", "--out",
                       str(out), "--json")
        assert proc.returncode == 0, proc.stderr
    return demo


@pytest.fixture(scope="module")
def demo(audit_demo: dict[str, Any], make_token: Callable[[str], Token],
         tmp_path_factory: pytest.TempPathFactory) -> Demo:
    return make_demo(audit_demo, make_token, tmp_path_factory.mktemp("standard-plans"))


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        shutil.copy(src, dst)


def _signer(text: str, keyid: str) -> str:
    filled, n = re.subn(rf'^signer: "{ZEROS}"', f'signer: "{keyid}"', text, flags=re.M)
    assert n == 1
    return filled


# Each filler copies the inputs a plan names into `d` and returns the plan's text filled in.
Filler = Callable[[Demo, Path, str], str]


def _genesis(demo: Demo, d: Path, text: str) -> str:
    """The roster proposal is templates/roster.yaml as shipped: the demo's custodians are
    the template's."""
    _copy(TEMPLATES / "roster.yaml", d / "roster.yaml")
    _copy(demo.ceremony / "custodians", d / "custodians")
    for name, request in demo.genesis_requests.items():
        _copy(request, d / "requests" / f"{name}.tar")
    return text


def _fleet_inputs(demo: Demo, d: Path, text: str) -> str:
    """After the rotation: the fleet-rotation envelope is the fleet root and roster in force."""
    for name in ("fleet-root.dsse.json", "roster.dsse.json"):
        _copy(demo.inputs / "fleet-rotation.dsse.json", d / name)
    return _signer(text, demo.fleet_v2)


def _regional_issuance(demo: Demo, d: Path, text: str) -> str:
    _copy(demo.eucom_request, d / "requests" / "eucom-2.tar")
    _copy(demo.inputs / "regional-root-EUCOM-1.dsse.json", d / "regional-root-EUCOM-1.dsse.json")
    return _fleet_inputs(demo, d, text)


def _roster_change(demo: Demo, d: Path, text: str) -> str:
    _copy(demo.ceremony / "custodians", d / "custodians")
    (d / "new-roster.yaml").write_text("threshold: 3\ncustodians:\n" + "".join(
        f"  - id: {c}\n    name: {c.title()} {c[0].upper()}.\n"
        f"    enrolment: custodians/{c}.enrolment.dsse.json\n"
        for c in ("alice", "bruno", "chen", "dana")))
    roster = _statement(demo.inputs / "fleet-rotation.dsse.json")["subject"]["roster"]
    names = {c["id"]: c["name"] for c in roster["custodians"]}
    text_roster = (d / "new-roster.yaml").read_text()
    for cid, name in names.items():  # the names the enrolments carry
        text_roster = re.sub(rf"(id: {cid}\n    name: ).*", rf"\g<1>{name}", text_roster)
    (d / "new-roster.yaml").write_text(text_roster)
    return _fleet_inputs(demo, d, text)


def _revocation_first(demo: Demo, d: Path, text: str) -> str:
    _copy(demo.artifact("federation-key-CONUS-demo-conus-enclaves.1.dsse.json"),
          d / "federation-key-conus-1-eucom-1.dsse.json")
    return _fleet_inputs(demo, d, text)


def _revocation(demo: Demo, d: Path, text: str) -> str:
    previous = demo.artifact("revocation-list-demo-revocation.0.dsse.json")
    _copy(previous, d / "revocation-list-1.dsse.json")
    _copy(demo.artifact("federation-key-CONUS-demo-conus-enclaves.2.dsse.json"),
          d / "federation-key-conus-1-conus-nss-1.dsse.json")
    eucom = demo.inputs / "regional-root-EUCOM-1.dsse.json"
    bundle = demo.artifact("enclave-bundle-eucom-1.writsov.com-demo-eucom-enclaves.0.dsse.json")
    _copy(eucom, d / "regional-root-EUCOM-1.dsse.json")
    _copy(bundle, d / "enclave-bundle-eucom-1.dsse.json")
    text = text.replace("1" * 64, demo.keyid(eucom))
    text = text.replace("regional-eucom-2027-01.0", _statement(bundle)["serial"])
    kept = "".join(f'      - keyid: "{e["keyid"]}"\n        reason: {e["reason"]}\n'
                   for e in _statement(previous)["subject"]["entries"])
    return _fleet_inputs(demo, d, text + kept)


def _enclave_bundles(demo: Demo, d: Path, text: str) -> str:
    authority = demo.inputs / "regional-root-CONUS-2.dsse.json"
    _copy(authority, d / "regional-root-CONUS.dsse.json")
    _copy(demo.ceremony / "bundles" / "conus-1.writsov.com-2.json",
          d / "bundles" / "conus-1.writsov.com.json")
    _copy(demo.ceremony / "federation" / "conus-1-conus-nss-1.pem",
          d / "federation" / "conus-1-conus-nss-1.pem")
    _fleet_inputs(demo, d, text)
    return _signer(text, demo.keyid(authority))


def _oscal_baseline(demo: Demo, d: Path, text: str) -> str:
    import hashlib

    _copy(demo.ceremony / "oscal", d / "oscal")
    _copy(demo.ceremony / "release" / "writroot-0.1.0-demo.tar.gz",
          d / "dist" / "writroot-0.1.0.tar.gz")
    wheel = hashlib.sha256(b"a wheel built elsewhere").hexdigest()
    text = text.replace(f"sha256:{ZEROS}", f"sha256:{wheel}")
    return _fleet_inputs(demo, d, text)


def _oscal_overlay(demo: Demo, d: Path, text: str) -> str:
    authority = demo.inputs / "regional-root-CONUS-2.dsse.json"
    _copy(authority, d / "regional-root-CONUS.dsse.json")
    _copy(demo.ceremony / "oscal", d / "oscal")
    _copy(demo.inputs / "oscal-baseline.dsse.json", d / "oscal-baseline.dsse.json")
    _fleet_inputs(demo, d, text)
    return _signer(text, demo.keyid(authority))


def _recovery(demo: Demo, d: Path, text: str) -> str:
    """Restore and re-split act on the key the recovery file seals: the genesis root, with
    the genesis statement as the fleet root and roster in force."""
    recovery = demo.recovery()
    for name in ("fleet-root.dsse.json", "roster.dsse.json"):
        _copy(demo.inputs / "fleet-root.dsse.json", d / name)
    _copy(recovery, d / "recovery" / recovery.name)
    text = text.replace("recovery/0000000000000000.recovery.json", f"recovery/{recovery.name}")
    return _signer(text, demo.anchor)


FILLERS: dict[str, Filler] = {
    "genesis": _genesis,
    "regional-issuance": _regional_issuance,
    "roster-change": _roster_change,
    "fleet-rotation": _fleet_inputs,
    "emergency-revocation-first": _revocation_first,
    "emergency-revocation": _revocation,
    "enclave-bundles": _enclave_bundles,
    "oscal-baseline": _oscal_baseline,
    "oscal-overlay": _oscal_overlay,
    "resplit-recovery": _recovery,
    "restore": _recovery,
}


def test_every_shipped_plan_has_a_filler() -> None:
    assert sorted(p.stem for p in CEREMONIES.glob("*.yaml")) == sorted(FILLERS)


@pytest.mark.parametrize("name", sorted(FILLERS))
def test_shipped_plan_locks_once_filled(demo: Demo, tmp_path: Path, name: str) -> None:
    d = tmp_path / name
    d.mkdir()
    shipped = (CEREMONIES / f"{name}.yaml").read_text()
    plan = d / f"{name}.yaml"
    plan.write_text(FILLERS[name](demo, d, shipped))
    trust = demo.trust_for(name, tmp_path)
    proc = run_cli(*lock_cmd(plan, demo.anchor, trust), cwd=d)
    assert proc.returncode == 0, proc.stderr
    locked = json.loads((d / f"{name}.lock.json").read_text())
    assert locked["ceremony"] == re.search(r"^ceremony: (\S+)", shipped, re.M).group(1)


def test_revocation_targets_lock_in_each_form(demo: Demo, tmp_path: Path) -> None:
    """The shipped revocation plan's artifact:, keyid: (found under known:) and serial:
    entries lock to the targets they name, and the previous list's entry is kept."""
    d = tmp_path / "revocation"
    d.mkdir()
    plan = d / "plan.yaml"
    plan.write_text(_revocation(demo, d, (CEREMONIES / "emergency-revocation.yaml").read_text()))
    assert run_cli(*lock_cmd(plan, demo.anchor, demo.published), cwd=d).returncode == 0
    op = json.loads((d / "plan.lock.json").read_text())["operations"][0]
    fed = demo.keyid(d / "federation-key-conus-1-conus-nss-1.dsse.json")
    eucom = demo.keyid(d / "regional-root-EUCOM-1.dsse.json")
    targets = {e.get("keyid") or e.get("serial") for e in op["entries"]}
    assert fed in targets and eucom in targets and len(targets) == 4
    assert [t["path"] for t in op["targets"]] == [
        "federation-key-conus-1-conus-nss-1.dsse.json"]
    assert op["previous"]["sequence"] == 1 and op["sequence"] == 2


def test_a_keyid_found_nowhere_is_refused_with_its_forms(demo: Demo, tmp_path: Path) -> None:
    d = tmp_path / "unknown"
    d.mkdir()
    text = _revocation_first(demo, d, (CEREMONIES / "emergency-revocation-first.yaml")
                             .read_text())
    plan = d / "plan.yaml"
    plan.write_text(text.replace("artifact: federation-key-conus-1-eucom-1.dsse.json",
                                 'keyid: "' + "ab" * 32 + '"'))
    proc = run_cli(*lock_cmd(plan, demo.anchor, demo.published), cwd=d)
    assert proc.returncode == 2
    assert "artifact: PATH" in proc.stderr and "plan.yaml:" in proc.stderr


# -- the review shows what is signed (issue 20 item 4) ----------------------------------------

def _locked_review(demo: Demo, d: Path, name: str, edit: Callable[[str], str] = str
                   ) -> tuple[dict[str, Any], str]:
    """Fill and lock a standard plan; its review as JSON (`ceremony plan --json`) and as the
    text `ceremony show` prints at 60 columns (no terminal: wrapped, never split mid-group)."""
    d.mkdir()
    plan = d / "plan.yaml"
    plan.write_text(edit(FILLERS[name](demo, d, (CEREMONIES / f"{name}.yaml").read_text())))
    trust = demo.trust_for(name, d)
    proc = run_cli(*lock_cmd(plan, demo.anchor, trust), "--json", cwd=d)
    assert proc.returncode == 0, proc.stderr
    review: dict[str, Any] = json.loads(proc.stdout)["review"]
    show = run_cli(*show_cmd(d / "plan.lock.json", demo.anchor, trust), cwd=d,
                   env={"COLUMNS": "60"})
    assert show.returncode == 0, show.stderr
    return review, show.stdout


def _groups_whole(keyid: str, text: str) -> bool:
    """Every group of four of `keyid` appears whole in `text` (wrapping never splits one)."""
    from writroot.crypto.fingerprint import hex_groups

    return set(hex_groups(keyid).split()) <= set(text.split())


def test_review_of_an_enclave_bundle(demo: Demo, tmp_path: Path) -> None:
    import hashlib

    def with_previous(text: str) -> str:
        _copy(demo.inputs / "enclave-bundle-conus-1-1.dsse.json",
              tmp_path / "b" / "enclave-bundle-conus-1.dsse.json")
        return text.replace("    # previous: enclave-bundle-conus-1.dsse.json",
                            "    previous: enclave-bundle-conus-1.dsse.json")

    review, text = _locked_review(demo, tmp_path / "b", "enclave-bundles", with_previous)
    bundle = json.loads((tmp_path / "b" / "bundles" / "conus-1.writsov.com.json").read_text())
    cas = [hashlib.sha256(base64.b64decode(k["x5c"][0])).hexdigest()
           for k in bundle["keys"] if k["use"] == "x509-svid"]
    kids = [k["kid"] for k in bundle["keys"] if k["use"] == "jwt-svid"]
    assert cas and kids
    shown = review["operations"][0]["bundle"]
    assert shown["trust_domain"] == "conus-1.writsov.com" and shown["impact_level"] == "IL4"
    assert shown["spiffe_sequence"] == {"old": 1, "new": 2}
    assert [fp["hex"] for fp in shown["x509_authorities"]] == cas
    assert shown["jwt_kids"] == kids
    assert re.search(r"spiffe_sequence +1 -> 2", text)
    assert all(_groups_whole(ca, text) for ca in cas) and all(k in text for k in kids)


def test_review_of_a_revocation_list(demo: Demo, tmp_path: Path) -> None:
    review, text = _locked_review(demo, tmp_path / "r", "emergency-revocation")
    op = review["operations"][0]
    assert op["sequence"] == {"old": 1, "new": 2}
    revokes = op["revokes"]
    fed = demo.keyid(tmp_path / "r" / "federation-key-conus-1-conus-nss-1.dsse.json")
    eucom = demo.keyid(tmp_path / "r" / "regional-root-EUCOM-1.dsse.json")
    assert [(r["revoke"], r.get("type"), r.get("name"), r.get("version")) for r in revokes] == [
        ("key", "federation-key",
         "CONUS: conus-1.writsov.com (IL4) <-> conus-nss-1.writsov.com (IL5)", None),
        ("key", "regional-root", "EUCOM", 1),
        ("statement", "enclave-bundle", "eucom-1.writsov.com", 1),
        ("key", None, None, None)]
    assert revokes[0]["keyid"]["hex"] == fed and revokes[1]["keyid"]["hex"] == eucom
    assert revokes[1]["serial"] == _statement(tmp_path / "r" / "regional-root-EUCOM-1.dsse.json"
                                              )["serial"] and revokes[3]["from"] == "previous list"
    for r in revokes:
        if "keyid" in r:
            assert r["keyid"]["groups"].count(" ") == 15
            assert _groups_whole(r["keyid"]["hex"], text)
    flat = " ".join(text.split())
    assert "the key of regional-root EUCOM, version 1" in flat
    assert "found in the previous list" in flat


def test_review_of_rotations(demo: Demo, tmp_path: Path) -> None:
    review, text = _locked_review(demo, tmp_path / "f", "fleet-rotation")
    assert review["operations"][0]["supersedes"]["version"] == 2
    assert review["operations"][0]["supersedes"]["keyid"]["hex"] == demo.fleet_v2
    assert _groups_whole(demo.fleet_v2, text)

    def enclaves_change(text: str) -> str:
        return text.replace(
            "      - {trust_domain: eucom-1.writsov.com, impact_level: IL4}\n",
            "      - {trust_domain: eucom-1.writsov.com, impact_level: IL4,"
            " may_sign: [enclave-bundle]}\n"
            "      - {trust_domain: eucom-2.writsov.com, impact_level: IL5}\n")

    review, text = _locked_review(demo, tmp_path / "g", "regional-issuance", enclaves_change)
    op = review["operations"][0]
    old = demo.keyid(tmp_path / "g" / "regional-root-EUCOM-1.dsse.json")
    assert op["supersedes"]["version"] == 1 and op["supersedes"]["keyid"]["hex"] == old
    diff = op["enclaves_diff"]
    assert [e["trust_domain"] for e in diff["added"]] == ["eucom-2.writsov.com"]
    assert diff["removed"] == []
    assert [c["trust_domain"] for c in diff["changed"]] == ["eucom-1.writsov.com"]
    assert diff["changed"][0]["new"]["may_sign"] == ["enclave-bundle"]
    flat = " ".join(text.split())
    assert "+ eucom-2.writsov.com (IL5" in flat and "~ eucom-1.writsov.com: IL4" in flat


def test_a_regional_rotation_to_the_same_key_is_refused(demo: Demo, tmp_path: Path) -> None:
    d = tmp_path / "same"
    d.mkdir()
    text = _regional_issuance(demo, d, (CEREMONIES / "regional-issuance.yaml").read_text())
    _copy(demo.ceremony / "requests" / "eucom-1.tar", d / "requests" / "eucom-2.tar")
    (d / "plan.yaml").write_text(text)
    proc = run_cli(*lock_cmd(d / "plan.yaml", demo.anchor, demo.published), cwd=d)
    assert proc.returncode == 1 and "the key this root supersedes" in proc.stderr
    assert not (d / "plan.lock.json").exists()


def test_review_escapes_what_inputs_carry(demo: Demo, tmp_path: Path) -> None:
    """A JWT kid is any string the bundle's owner chose: the review prints it escaped."""
    d = tmp_path / "kid"
    d.mkdir()
    plan = d / "plan.yaml"
    plan.write_text(_enclave_bundles(demo, d, (CEREMONIES / "enclave-bundles.yaml").read_text()))
    path = d / "bundles" / "conus-1.writsov.com.json"
    bundle = json.loads(path.read_text())
    jwt = next(k for k in bundle["keys"] if k["use"] == "jwt-svid")
    jwt["kid"] = "kid\x1b[2J\u202eevil"
    path.write_text(json.dumps(bundle))
    proc = run_cli(*lock_cmd(plan, demo.anchor, demo.published), cwd=d)
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout and "\u202e" not in proc.stdout
    assert "kid\\x1b[2J<U+202E>evil" in proc.stdout  # writroot/display.py inert()


def test_review_of_a_statement_revoked_by_its_artifact(demo: Demo, tmp_path: Path) -> None:
    """`revoke: serial` revokes the statement, not its key: the review says which, and shows
    the key it certifies as not revoked."""
    def by_serial(text: str) -> str:
        return text.replace("# revokes the key it certifies", "\n        revoke: serial")

    review, text = _locked_review(demo, tmp_path / "s", "emergency-revocation-first", by_serial)
    (item,) = review["operations"][0]["revokes"]
    fed = demo.keyid(tmp_path / "s" / "federation-key-conus-1-eucom-1.dsse.json")
    assert item["revoke"] == "statement" and item["serial"] == "demo-conus-enclaves.1"
    assert "keyid" not in item and item["certifies"]["hex"] == fed
    assert review["operations"][0]["sequence"] == {"old": None, "new": 1}
    flat = " ".join(text.split())
    assert "(not revoked)" in flat and "1 (no previous one named)" in flat
