"""docs/format.md §8, the worked example, against a fresh demo (issue 19): the number of
ceremonies and their days, the published counts and file names, the verify summaries and
the genesis transcript's length; and §8.1-§8.4 (the statement's members, keyids, sizes).
scripts/worked_example.py prints the facts of any run."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

from writroot.crypto.fingerprint import hex_groups, pgp_words

ROOT = Path(__file__).resolve().parent.parent


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("worked_example",
                                                  ROOT / "scripts" / "worked_example.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_worked_example_matches_a_fresh_demo(audit_demo: dict[str, Any]) -> None:
    we = _script()
    workdir = Path(audit_demo["workdir"])
    run = we.facts(workdir)
    page = we.doc_facts((ROOT / "docs" / "format.md").read_text())
    assert run["ceremonies"] == audit_demo["ceremonies"] or \
        sorted(run["ceremonies"]) == sorted(audit_demo["ceremonies"])
    assert page["count"] == len(run["ceremonies"]), "§8: 'runs N ceremonies'"
    assert page["days"] == run["days"], "§8: the ceremony table (days and names)"
    assert page["published"] == (len(run["envelopes"]), len(run["records"])), \
        "§8: 'artifacts/ (N envelopes), records/ (M ceremony records)'"
    assert page["ok"] == run["envelopes"], "§8.5: the OK lines are the published envelopes"
    listing = we.verify_listing(workdir, we.CHECK_DAYS)
    total = len(run["envelopes"]) + run["log_files"]
    assert listing[-1] == f"{total} of {total} artifacts verified", listing
    late = we.verify_listing(workdir, we.AFTER_EXPIRY_DAYS)[-1]
    n, total, failed = page["summaries"][1]
    assert late == f"{n} of {total} artifacts verified; {failed} failed", \
        "§8.5: the summary of the run after expiry"
    assert page["summaries"][0] == (total, total, 0)
    assert page["genesis_entries"] == run["genesis_entries"], "§8.5: '- entries: N'"


def _b64_len(n: int) -> int:
    return 4 * ((n + 2) // 3)


def test_worked_example_sections_show_the_current_format(audit_demo: dict[str, Any]) -> None:
    """§8.1-§8.4 against the fresh demo: the statements' member paths (after the page's
    documented shortening), the file name, the keyids, the sizes and the PAE header."""
    we = _script()
    workdir = Path(audit_demo["workdir"])
    genesis = workdir / "out" / "demo-genesis" / "artifacts"
    page = we.doc_sections((ROOT / "docs" / "format.md").read_text())
    run = we.sections(workdir)
    regional = json.loads(base64.b64decode(json.loads((genesis / we.CONUS).read_bytes())
                                           ["payload"]))
    fleet = json.loads(base64.b64decode(json.loads((genesis / we.FLEET).read_bytes())
                                        ["payload"]))
    approval = json.loads(base64.b64decode(regional["ceremony"]["approvals"][0]["payload"]))

    # the format: every member the demo writes is on the page, and nothing else
    assert page["file"] == we.CONUS, "§8.2: the CONUS v1 regional-root envelope's name"
    assert we.member_paths(page["statement"]) == we.member_paths(regional), \
        "§8.2: the regional-root statement's members"
    assert we.member_paths(page["fleet_subject"]) == we.member_paths({"subject":
                                                                     fleet["subject"]}), \
        "§8.2: the fleet-root statement's subject"
    assert we.member_paths(page["approval"]) == we.member_paths(approval), \
        "§8.2: the approval statement"
    assert set(page["envelope"]) == {"payload", "payloadType", "signatures"}

    # the keyid: SHA-256 of the stated DER, which the PEM holds; the same fleet root throughout
    prefix, seed, root = (bytes.fromhex(h) for h in page["der"])
    assert prefix == we.SLH_PREFIX and len(seed) == len(root) == 32
    der = prefix + seed + root
    keyid = hashlib.sha256(der).hexdigest()
    assert page["keyid"] == keyid, "§8.1: keyid = SHA-256(DER)"
    assert base64.b64decode("".join(page["pem"].splitlines()[1:-1])) == der, "§8.1: the PEM"
    assert page["fingerprint"][0] == hex_groups(keyid)
    assert " ".join(page["fingerprint"][1].split()) == pgp_words(bytes.fromhex(keyid))
    statement = page["statement"]
    assert statement["issuer"]["keyid"] == keyid
    assert page["envelope"]["signatures"][0]["keyid"] == keyid
    fleet_key = page["fleet_subject"]["subject"]["key"]
    assert fleet_key["keyid"] == keyid and base64.b64decode(fleet_key["public_key"]) == seed + root
    key = statement["subject"]["key"]
    assert hashlib.sha256(we.SLH_PREFIX + base64.b64decode(key["public_key"])).hexdigest() \
        == key["keyid"], "§8.2: subject.key.keyid"
    assert page["approval"]["issuer"]["keyid"] == \
        statement["ceremony"]["approvals"][0]["signatures"][0]["keyid"]
    assert page["approval"]["subject"]["plan_sha256"] == statement["ceremony"]["plan_sha256"]

    # validity and serial as the prose explains them
    inclusion = statement["ceremony"]["inclusion"]
    days = (we._time(statement["not_after"]) - we._time(statement["not_before"])).days
    assert days == inclusion["operation"]["validity_days"]
    assert statement["serial"] == f"{statement['ceremony']['id']}.{inclusion['index']}"

    # the sizes: self-consistent, as the algorithms make them, and the demo's
    n = page["payload"]
    assert page["pae_payload"] == n
    payload_type = page["envelope"]["payloadType"]
    assert page["pae_bytes"] == we.pae_header(payload_type, n), "§8.3: the PAE header"
    assert page["pae_header"] == len(page["pae_bytes"]) and page["pae"] == page["pae_header"] + n
    assert page["payload_chars"] == _b64_len(n)
    assert page["sig"] == we.SLH_SIG_BYTES and page["sig_chars"] == _b64_len(we.SLH_SIG_BYTES)
    line = page["envelope_line"]
    env = page["envelope"]
    full = line.replace(env["payload"], "x" * page["payload_chars"]).replace(
        env["signatures"][0]["sig"], "x" * page["sig_chars"])
    assert page["envelope_bytes"] == len(full.encode()) + 1, "§8.4: the envelope's size"
    head = env["payload"].split("…")[0]
    assert base64.b64decode(head[:len(head) // 4 * 4]).startswith(b'{"ceremony":{"approvals":[')
    for name in ("payload", "approval_envelope"):
        assert page[name] == run["sizes"][name], f"§8.2: the {name} size of the demo"
    assert page["envelope_bytes"] == run["sizes"]["envelope"]

    # one run throughout §8: the keys of §8.5's listings and §8.6's file are §8.1's and §8.2's
    assert {a or b for a, b in page["anchors"]} == {hex_groups(keyid)}, "§8.5: the anchor"
    assert set(page["now"]) == {hex_groups(page["keyid_v2"])}, "§8.5: the fleet root now"
    assert {a or b for a, b in page["signed_by"]} == {keyid}, "§8.5: the fleet root's keyid"
    assert page["opened"] == [f"artifacts/{we.CONUS}"], "§8.6: the envelope it opens"
