"""Native custody on real PKCS#11 3.2 tokens (freehsm-c as packaged and rebuilt, openCryptoki).

The tokens live in a Debian sid root (`make native-tokens`, docs/native-tokens.md); their modules
need glibc >= 2.38, so each step runs `writroot` *inside* the root through
`scripts/native-tokens.sh exec --token NAME -- python -m writroot ...`, while this test process
(on the host) writes plans, approves, and verifies. Work files live under the repository's
.cache/native-work/, which the root sees at the same path.

freehsm tokens are throwaway: each test module initialises its own token directory
(FHSM_TOKENS_DIR). The openCryptoki soft token is shared: keys get unique labels and are
destroyed at the end, with the spent-plan records the test made.

Without the tokens these tests skip with the reason, except in CI (CI=true), where they fail.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import assert_no_traceback, run_cli
from writroot.crypto import spki
from writroot.crypto.algorithms import ML_DSA_87, SLH_DSA_SHA2_256S
from writroot.errors import HSMError
from writroot.hsm.custody import FIND_IGNORES
from writroot.hsm.native import SPKI_VALUE, public_from_value

REPO = Path(__file__).resolve().parent.parent
ENV_JSON = REPO / ".cache" / "native-tokens" / "env.json"
WORK = REPO / ".cache" / "native-work"
PASS = "native-custodian-passphrase"
#: Initialise a throwaway freehsm token in FHSM_TOKENS_DIR (run inside the root, PyKCS11).
INIT_TOKEN = """
import os, sys, PyKCS11
lib = PyKCS11.PyKCS11Lib(); lib.load(os.environ["NATIVE_PKCS11_MODULE"])
so, user = os.environ["NATIVE_SO_PIN"], os.environ["NATIVE_USER_PIN"]
lib.initToken(0, so, sys.argv[1])
s = lib.openSession(0, PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
s.login(so, PyKCS11.CKU_SO); s.initPin(user); s.logout(); s.closeSession()
"""
#: Every object a logged-in user sees on the token, by class and label (run inside the root).
LIST_OBJECTS = """
import json, os, sys, pkcs11
from pkcs11 import Attribute
tok = pkcs11.lib(os.environ["NATIVE_PKCS11_MODULE"]).get_token(token_label=sys.argv[1])
with tok.open(user_pin=os.environ["NATIVE_USER_PIN"]) as s:
    print(json.dumps(sorted([int(o[Attribute.CLASS]), str(o[Attribute.LABEL])]
                            for o in s.get_objects())))
"""
#: Destroy writroot keys whose label starts with argv[2] and spent-plan records whose output
#: directory is under argv[3] (the shared openCryptoki token; run inside the root).
CLEAN_UP = """
import os, sys
from pkcs11 import Attribute
from writroot.hsm.custody import Custody, SPENT_APPLICATION, SPENT_LABEL
from writroot.hsm.token import TokenSpec, open_session
from writroot.jsonio import loads_strict
spec = TokenSpec(os.environ["NATIVE_PKCS11_MODULE"], sys.argv[1], None, "env:NATIVE_USER_PIN")
with open_session(spec, rw=True) as s:
    c = Custody(s, spec.module)
    for r in c.keys():
        if r.label.startswith(sys.argv[2]):
            c.destroy_key(r)
    for o in c._private_data(SPENT_APPLICATION, SPENT_LABEL):
        if str(loads_strict(bytes(o[Attribute.VALUE]), "x").get("out", "")).startswith(sys.argv[3]):
            o.destroy()
"""


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"native tokens unavailable in CI: {reason}")
    pytest.skip(f"native tokens unavailable: {reason} (make native-tokens)")


@dataclass
class Native:
    env: dict[str, Any]
    work: Path

    def token(self, name: str) -> dict[str, Any]:
        return dict(self.env["tokens"][name])

    def prefix(self, name: str, **extra: str) -> list[str]:
        """The exec prefix for a token, with extra VAR=VALUE for the root."""
        script = self.env["exec"][0]
        return [script, "exec", "--token", name,
                *(f"{k}={v}" for k, v in extra.items()), "--"]

    def run(self, name: str, *cmd: str, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """A command inside the root, against token `name` (cwd: the work directory)."""
        here = cwd or self.work
        proc = subprocess.run([*self.prefix(name, **(env or {})), *cmd], capture_output=True,
                              text=True, cwd=here, timeout=600, check=False)
        assert_no_traceback(proc.stdout, proc.stderr)
        return proc

    def writroot(self, name: str, *args: str, env: dict[str, str] | None = None
                 ) -> subprocess.CompletedProcess[str]:
        module = self.token(name)["module"]
        return self.run(name, "python", "-m", "writroot", *args,
                        env={"WRITROOT_PKCS11_MODULE": module, **(env or {})})

    def objects(self, name: str, label: str, env: dict[str, str]) -> list[list[Any]]:
        proc = self.run(name, "python", "-c", LIST_OBJECTS, label, env=env)
        assert proc.returncode == 0, proc.stderr
        return list(json.loads(proc.stdout))

    def throwaway_freehsm(self, name: str, label: str) -> dict[str, str]:
        """A fresh freehsm token (its own FHSM_TOKENS_DIR); returns the env selecting it."""
        env = {"FHSM_TOKENS_DIR": str(self.work / f"fhsm-{name}-{secrets.token_hex(4)}")}
        proc = self.run(name, "python", "-c", INIT_TOKEN, label, env=env)
        assert proc.returncode == 0, proc.stderr
        return env


@pytest.fixture(scope="module")
def native() -> Iterator[Native]:
    if not ENV_JSON.is_file():
        _unavailable(f"{ENV_JSON} is missing")
    env = json.loads(ENV_JSON.read_text())
    if os.geteuid() != 0 and subprocess.run(["sudo", "-n", "true"], capture_output=True,
                                            check=False).returncode != 0:
        _unavailable("entering the root needs root or password-less sudo")
    probe = subprocess.run([env["exec"][0], "exec", "--", "python", "-c", "import writroot"],
                           capture_output=True, text=True, check=False, timeout=120)
    if probe.returncode != 0:
        _unavailable(f"the root does not run writroot: {probe.stderr.strip()[-300:]}")
    WORK.mkdir(parents=True, exist_ok=True)
    work = WORK / f"t-{secrets.token_hex(4)}"
    work.mkdir()
    try:
        yield Native(env, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.returncode == 0, proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


# -- pure: the public key from CKA_VALUE (raw or SPKI), on the host ------------------------------


def test_public_key_value_raw_or_spki_checked_against_oid_and_size() -> None:
    from writroot.crypto import engines

    raw, _private = engines.signer_for(ML_DSA_87).keygen(ML_DSA_87)
    seen: list[str] = []
    assert public_from_value(ML_DSA_87, raw, seen) == raw and seen == []
    der = spki.encode_der(ML_DSA_87, raw)
    assert public_from_value(ML_DSA_87, der, seen) == raw and seen == [SPKI_VALUE]
    with pytest.raises(HSMError, match=r"ML-DSA-87 public key .* for a SLH-DSA-SHA2-256s key"):
        public_from_value(SLH_DSA_SHA2_256S, der, [])
    with pytest.raises(HSMError, match="neither the 2592-byte raw key nor a SubjectPublic"):
        public_from_value(ML_DSA_87, raw[:-1], [])
    with pytest.raises(HSMError, match="neither"):
        public_from_value(ML_DSA_87, der[:-1], [])


# -- hsm info on each token ----------------------------------------------------------------------


@pytest.mark.native
def test_hsm_info_probes_each_token(native: Native) -> None:
    fixed = native.throwaway_freehsm("freehsm-fixed", "probe-fixed")
    info = _json(native.writroot("freehsm-fixed", "hsm", "info", "--token-label", "probe-fixed",
                                 "--pin", "env:NATIVE_USER_PIN", "--json", env=fixed))
    assert info["token"]["cryptoki"] == "3.2"
    assert info["pqc_mechanisms"] == ["CKM_ML_DSA", "CKM_ML_DSA_KEY_PAIR_GEN", "CKM_SLH_DSA",
                                      "CKM_SLH_DSA_KEY_PAIR_GEN"]
    assert info["custody"] == {"SLH-DSA-SHA2-256s": "native", "ML-DSA-87": "native",
                               "ML-DSA-65": "native"}
    assert [(p["algorithm"], p["generates_and_signs"]) for p in info["parameter_sets"]] == [
        ("SLH-DSA-SHA2-256s", True), ("ML-DSA-87", True), ("ML-DSA-65", True)]
    assert SPKI_VALUE in info["deviations"]
    assert any("CKA_PARAMETER_SET" in d for d in info["deviations"])
    assert any("CKR_OK with CK_UNAVAILABLE_INFORMATION" in d for d in info["deviations"])
    # the probe left nothing on the token
    assert native.objects("freehsm-fixed", "probe-fixed", fixed) == []

    tok = native.token("opencryptoki")
    ock = _json(native.writroot("opencryptoki", "hsm", "info", "--token-label", tok["label"],
                                "--pin", "env:NATIVE_USER_PIN", "--json"))
    assert ock["token"]["cryptoki"] == "3.2"
    assert ock["pqc_mechanisms"] == ["CKM_ML_DSA", "CKM_ML_DSA_KEY_PAIR_GEN"]
    assert ock["custody"] == {"SLH-DSA-SHA2-256s": "wrapped", "ML-DSA-87": "native",
                              "ML-DSA-65": "native"}
    assert all(p["generates_and_signs"] for p in ock["parameter_sets"])
    assert ock["deviations"] == []  # raw CKA_VALUE, readable parameter set: as specified


@pytest.mark.native
def test_packaged_freehsm_256s_exit_3_and_nothing_left(native: Native) -> None:
    env = native.throwaway_freehsm("freehsm", "packaged")
    args = ["--token-label", "packaged", "--pin", "env:NATIVE_USER_PIN"]
    info = native.writroot("freehsm", "hsm", "info", *args, env=env)
    assert info.returncode == 3, info.stderr
    line = info.stderr.strip().splitlines()[-1]
    assert "SLH-DSA-SHA2-256s" in line and "CKR_FUNCTION_FAILED (0x00000006)" in line
    assert "rebuild it with the pairwise-test buffer fix" in line and "(exit 3)" in line
    assert "FAILS    SLH-DSA-SHA2-256s" in info.stdout  # the report is shown first
    assert "native   ML-DSA-87" in info.stdout  # ML-DSA works as packaged
    keygen = native.writroot("freehsm", "hsm", "keygen", *args, "--role", "fleet-root",
                             "--label", "fleet-root-1", "--custody", "native", env=env)
    assert keygen.returncode == 3
    assert keygen.stderr.strip().splitlines()[-1].startswith("writroot: error: ")
    assert "CKR_FUNCTION_FAILED (0x00000006)" in keygen.stderr
    assert native.objects("freehsm", "packaged", env) == []


# -- a whole ceremony in native custody ----------------------------------------------------------


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _host(cli: Any, *args: str) -> dict[str, Any] | None:
    """A step on the host (custodians, plans, approvals, verification)."""
    proc = cli(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout) if "--json" in args else None


@pytest.mark.native
def test_whole_ceremony_in_native_custody(native: Native) -> None:
    """Genesis with an SLH-DSA-SHA2-256s fleet root born on the rebuilt freehsm-c token; CENTCOM's
    ML-DSA-87 root born on openCryptoki with its key request; the regional ceremony signs an
    enclave bundle with the native regional key; everything verifies independently on the
    host; hsm info shows native custody and no private key readable."""
    from writroot.demo_inputs import spire_bundle

    w = native.work / "ceremony"
    w.mkdir()

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, cwd=w, env={"PP": PASS})

    fixed = native.throwaway_freehsm("freehsm-fixed", "native-fleet")
    ock = native.token("opencryptoki")
    region_label = f"centcom-root-{secrets.token_hex(4)}"
    try:
        # the region: ML-DSA-87 root generated on openCryptoki, key request out
        request = _json(native.writroot(
            "opencryptoki", "region", "keygen", "--token-label", ock["label"], "--pin",
            "env:NATIVE_USER_PIN", "--region", "CENTCOM", "--fleet", "nativefleet", "--label",
            region_label, "--algorithm", "ML-DSA-87", "--out", str(w / "centcom-request.tar"),
            "--json"))
        assert request["custody"] == "native" and request["algorithm"] == "ML-DSA-87"

        # custodians and the genesis plan, on the host
        for cid in ("alice", "bruno", "chen"):
            _host(cli, "custodian", "keygen", "--id", cid, "--name", cid.title(), "--fleet",
                  "nativefleet", "--out", "custodians", "--passphrase", "env:PP")
        _write(w / "roster.yaml", "threshold: 2\ncustodians:\n" + "".join(
            f"  - id: {c}\n    name: {c.title()}\n"
            f"    enrolment: custodians/{c}.enrolment.dsse.json\n"
            for c in ("alice", "bruno", "chen")))
        _write(w / "genesis.yaml", """plan: 1
ceremony: native-genesis
fleet: nativefleet
signer: generate
roster: roster.yaml
operations:
  - op: generate-fleet-root
    label: fleet-root-1
    algorithm: SLH-DSA-SHA2-256s
  - op: sign-fleet-root
    validity_days: 548
    policy:
      regional_root_algorithms: [SLH-DSA-SHA2-256s, ML-DSA-87]
  - op: sign-regional-root
    region: CENTCOM
    request: centcom-request.tar
    validity_days: 104
    enclaves:
      - {trust_domain: centcom-1.writsov.com, impact_level: IL5}
""")
        _host(cli, "ceremony", "plan", "genesis.yaml")
        for cid in ("alice", "chen"):
            _host(cli, "ceremony", "approve", "genesis.lock.json", "--yes", "--custodian", cid,
                  "--key", f"custodians/{cid}.key.pem", "--passphrase", "env:PP", "--out",
                  "approvals-genesis")
        module = native.token("freehsm-fixed")["module"]
        _write(w / "fleet-host.yaml", f"module: {module}\ntoken_label: native-fleet\n"
               "pin: env:NATIVE_USER_PIN\n")

        # genesis on the rebuilt freehsm-c token: the fleet root is born there
        genesis = _json(native.writroot(
            "freehsm-fixed", "ceremony", "run", str(w / "genesis.lock.json"), "--approvals",
            str(w / "approvals-genesis"), "--host", str(w / "fleet-host.yaml"), "--out",
            str(w / "genesis"), "--yes", "--allow-network", "--json", env=fixed))
        fleet_keyid = genesis["signer_keyid"]
        arts = w / "genesis" / "artifacts"
        fleet_root = next(arts.glob("fleet-root-*.dsse.json"))
        regional_root = next(arts.glob("regional-root-*.dsse.json"))
        transcript = (w / "genesis" / "transcript.jsonl").read_text()
        assert '"custody":"native"' in transcript.replace(" ", "")

        # the regional ceremony on openCryptoki: CENTCOM signs its enclave bundle
        shutil.copy(fleet_root, w / "fleet-root.dsse.json")
        shutil.copy(regional_root, w / "regional-root-CENTCOM.dsse.json")
        from datetime import UTC, datetime

        (w / "centcom-1-bundle.json").write_bytes(
            spire_bundle("centcom-1.writsov.com", 1, datetime.now(UTC), 90))
        _write(w / "centcom.yaml", f"""plan: 1
ceremony: native-centcom-enclaves
fleet: nativefleet
signer: "{request['keyid']}"
roster: fleet-root.dsse.json
fleet_root: fleet-root.dsse.json
authority: regional-root-CENTCOM.dsse.json
operations:
  - op: sign-enclave-bundle
    region: CENTCOM
    trust_domain: centcom-1.writsov.com
    impact_level: IL5
    bundle: centcom-1-bundle.json
    validity_days: 90
""")
        # after genesis every ceremony pins the anchor; the genesis outputs are the published set
        pinned = ("--anchor", fleet_keyid, "--trust", str(w / "genesis"))
        _host(cli, "ceremony", "plan", "centcom.yaml", *pinned)
        for cid in ("bruno", "chen"):
            _host(cli, "ceremony", "approve", "centcom.lock.json", "--yes", "--custodian", cid,
                  "--key", f"custodians/{cid}.key.pem", "--passphrase", "env:PP", "--out",
                  "approvals-centcom", *pinned)
        _write(w / "region-host.yaml", f"module: {ock['module']}\n"
               f"token_label: {ock['label']}\npin: env:NATIVE_USER_PIN\n"
               f"anchor: {fleet_keyid}\ntrust: genesis\n")
        regional = _json(native.writroot(
            "opencryptoki", "ceremony", "run", str(w / "centcom.lock.json"), "--approvals",
            str(w / "approvals-centcom"), "--host", str(w / "region-host.yaml"), "--out",
            str(w / "centcom"), "--yes", "--allow-network", "--json"))
        assert regional["signer_keyid"] == request["keyid"]

        # an auditor on the host: everything verifies, SLH-DSA with a second implementation
        everything = sorted([*arts.glob("*.dsse.json"),
                             *(w / "centcom" / "artifacts").glob("*.dsse.json"),
                             w / "genesis" / "ceremony-record.dsse.json",
                             w / "centcom" / "ceremony-record.dsse.json"])
        assert sorted(p.name.split("-native")[0] for p in everything) == [
            "ceremony-record.dsse.json", "ceremony-record.dsse.json",
            "enclave-bundle-centcom-1.writsov.com", "fleet-root",
            "regional-root-CENTCOM"]
        verified = cli("verify", *map(str, everything), "--anchor", fleet_keyid,
                       "--independent", "--json")
        assert verified.returncode == 0, verified.stdout
        for out, extra in (("genesis", []), ("centcom", ["--with", str(fleet_root),
                                                         "--with", str(regional_root)])):
            audit = cli("audit", str(w / out / "transcript.jsonl"), "--anchor",
                        str(w / "genesis" / "fleet-root.pem"), *extra)
            assert audit.returncode == 0, audit.stdout + audit.stderr
            assert '"engine": "token"' in audit.stdout

        # hsm info: native custody, the private keys on the tokens and unreadable
        fleet_info = _json(native.writroot(
            "freehsm-fixed", "hsm", "info", "--token-label", "native-fleet", "--pin",
            "env:NATIVE_USER_PIN", "--json", "--no-probe", env=fixed))
        key = next(k for k in fleet_info["keys"] if k["keyid"] == fleet_keyid)
        assert (key["custody"], key["algorithm"]) == ("native", "SLH-DSA-SHA2-256s")
        assert key["private_key"].endswith("CKA_VALUE not readable")
        # freehsm-c's searches ignore CKA_APPLICATION: the spent-plan record is not taken for a
        # key record, because every object found is re-read
        assert FIND_IGNORES in fleet_info["deviations"]
        assert fleet_info["unreadable_records"] == [] and len(fleet_info["keys"]) == 1
        assert [p["state"] for p in fleet_info["spent_plans"]] == ["published"]
        region_info = _json(native.writroot(
            "opencryptoki", "hsm", "info", "--token-label", ock["label"], "--pin",
            "env:NATIVE_USER_PIN", "--json", "--no-probe"))
        key = next(k for k in region_info["keys"] if k["label"] == region_label)
        assert (key["custody"], key["algorithm"]) == ("native", "ML-DSA-87")
        assert key["private_key"].endswith("CKA_VALUE not readable")

        # no PIN or passphrase in any file written
        for path in w.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert ock["user_pin"].encode() not in data, path
                assert PASS.encode() not in data, path
    finally:
        native.run("opencryptoki", "python", "-c", CLEAN_UP, ock["label"], region_label,
                   str(w))
