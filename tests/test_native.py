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
import re
import secrets
import shutil
import subprocess
import sys
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
#: this tree's script (env.json names the one of whichever checkout last ran setup)
SCRIPT = REPO / "scripts" / "native-tokens.sh"
CACHE = Path(os.environ.get("NATIVE_TOKENS_CACHE") or REPO / ".cache" / "native-tokens")
ENV_JSON = CACHE / "env.json"
RUNBOOK = REPO / "docs" / "runbook.md"
NATIVE_FENCE = re.compile(r"^```sh native\n(.*?)^```$", re.M | re.S)
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
        return [str(SCRIPT), "exec", "--token", name,
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
    probe = subprocess.run([str(SCRIPT), "exec", "--", "python", "-c", "import writroot"],
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


# -- the officer's path: docs/runbook.md §15, exec, the air gap, PINs -----------------------------


def _as_root(cmd: list[str]) -> list[str]:
    """The runbook's rehearsal form runs as root (sudo would drop its env: secrets)."""
    return cmd if os.geteuid() == 0 else ["sudo", "-n", "--preserve-env", *cmd]


def _host_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k != "SOFTHSM2_CONF" and not k.startswith(("WRITROOT_", "FHSM_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **extra}


def test_exec_help_and_usage() -> None:
    """`exec --help` prints exec's usage (no root, no tokens needed); no command is exit 2."""
    proc = subprocess.run([str(SCRIPT), "exec", "--help"], capture_output=True, text=True,
                          check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: scripts/native-tokens.sh exec [--token NAME]")
    for words in ("bind-mounted at its own path", "GLIBC_2.38", "air-gap check",
                  "COLUMNS and LINES", 'A ceremony on a native'):
        assert words in proc.stdout, words
    assert "No such file" not in proc.stdout + proc.stderr
    top = subprocess.run([str(SCRIPT), "--help"], capture_output=True, text=True, check=False)
    assert top.returncode == 0 and "exec --help" in top.stdout


@pytest.mark.native
def test_exec_no_command_is_usage_and_refuses_system_directories(native: Native) -> None:
    proc = subprocess.run([str(SCRIPT), "exec"], capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and proc.stderr.startswith("usage: ")
    for cwd in ("/", "/usr"):
        proc = subprocess.run([str(SCRIPT), "exec", "--", "true"], capture_output=True,
                              text=True, check=False, cwd=cwd)
        assert proc.returncode == 1 and "run it from a ceremony directory" in proc.stderr


@pytest.mark.native
def test_exec_hands_in_the_terminal_size(native: Native) -> None:
    if not shutil.which("script"):
        pytest.skip("util-linux script(1) is not installed")
    show = "sh -c 'echo size=$COLUMNS,$LINES'"
    # a stale exported COLUMNS/LINES (CI runners export 80x24) loses to the terminal itself
    stale = {**os.environ, "COLUMNS": "80", "LINES": "24"}
    inner = f"stty cols 173 rows 41; {SCRIPT} exec -- {show}"
    proc = subprocess.run(_as_root(["script", "-qec", inner, "/dev/null"]), capture_output=True,
                          text=True, check=False, timeout=120, stdin=subprocess.DEVNULL, env=stale)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "size=173,41" in proc.stdout
    # with no terminal at all, the exported size is what there is
    lone = {**os.environ, "COLUMNS": "99", "LINES": "33"}
    proc = subprocess.run(_as_root(["setsid", "-w", str(SCRIPT), "exec", "--", "sh", "-c",
                                    "echo size=$COLUMNS,$LINES"]),
                          capture_output=True, text=True, check=False, timeout=120,
                          stdin=subprocess.DEVNULL, env=lone)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "size=99,33" in proc.stdout


@pytest.mark.native
def test_runbook_native_officer_path(native: Native, tmp_path: Path) -> None:
    """docs/runbook.md §15 runs exactly as written, from a directory outside the repository:
    token init on a fresh freehsm-c token, a native genesis run through exec, verification and
    audit on the host, and the split PIN."""
    blocks = NATIVE_FENCE.findall(RUNBOOK.read_text(encoding="utf-8"))
    assert len(blocks) >= 5
    script = "\n".join(["set -euo pipefail",
                        "trap 'echo \"runbook: exit $? at: $BASH_COMMAND\" >&2' ERR",
                        *(b.rstrip("\n") for b in blocks)]) + "\n"
    for command in ("token init", "hsm info", "ceremony plan", "ceremony approve",
                    "ceremony run", "writroot verify", "writroot audit", "hsm split-pin",
                    "hsm check-shares"):
        assert command in script, command
    workdir = tmp_path / "officer"
    workdir.mkdir()
    assert REPO not in workdir.parents
    script_file = tmp_path / "native-runbook.sh"
    script_file.write_text(script, encoding="utf-8")
    proc = subprocess.run(_as_root(["bash", str(script_file)]), cwd=workdir,
                          env=_host_env(WRITROOT_REPO=str(REPO)), capture_output=True,
                          text=True, timeout=900, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "Traceback" not in output
    assert "fleet-root-1 native" in proc.stdout
    assert re.search(r"native\s+SLH-DSA-SHA2-256s", proc.stdout), proc.stdout[-3000:]
    assert "the 2 shares rebuild the PIN of token fleet" in proc.stdout
    assert "ceremony-record signature: verified" in proc.stdout
    start = json.loads((workdir / "out-genesis" / "transcript.jsonl").read_text()
                       .splitlines()[0])["facts"]
    assert start["allow_network"] is True and isinstance(start["network"], list)
    # the secrets the rehearsal exports reach no file
    for path in workdir.rglob("*"):
        if path.is_file() and "fleet-token" not in path.parts:
            data = path.read_bytes()
            for secret in (b"so-pin-12345", b"fleet-pin-12345", b"custodian passphrase 1"):
                assert secret not in data, path


def _interfaces_up() -> list[str]:
    from writroot.ceremony.host import network_interfaces_up

    return network_interfaces_up() or []


@pytest.mark.native
def test_air_gap_inside_the_root_sees_the_hosts_interfaces_and_refuses(native: Native,
                                                                       tmp_path: Path) -> None:
    """Inside the root, `ceremony run` sees the host's interfaces (exec mounts the host's /sys
    read-only) and refuses while one is up; it never records an empty list."""
    up = _interfaces_up()
    if not up:
        if os.environ.get("CI") == "true":
            pytest.fail("CI: no network interface is up on the host, so the air-gap refusal "
                        "inside the root cannot be shown")
        pytest.skip("no network interface is up on this machine")
    seen = native.run("freehsm-fixed", "python", "-c", "import json; from writroot.ceremony."
                      "host import network_interfaces_up as n; print(json.dumps(n()))",
                      cwd=tmp_path)
    assert seen.returncode == 0, seen.stderr
    assert json.loads(seen.stdout.strip().splitlines()[-1]) == up

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, cwd=tmp_path, env={"PP": PASS})

    for cid in ("alice", "bruno", "chen"):
        _host(cli, "custodian", "keygen", "--id", cid, "--name", cid.title(), "--fleet",
              "gapfleet", "--out", "custodians", "--passphrase", "env:PP")
    _write(tmp_path / "roster.yaml", "threshold: 2\ncustodians:\n" + "".join(
        f"  - {{id: {c}, name: {c.title()}, enrolment: custodians/{c}.enrolment.dsse.json}}\n"
        for c in ("alice", "bruno", "chen")))
    _write(tmp_path / "genesis.yaml", "plan: 1\nceremony: gap-genesis\nfleet: gapfleet\n"
           "signer: generate\nroster: roster.yaml\noperations:\n"
           "  - {op: generate-fleet-root, label: fleet-root-1, algorithm: SLH-DSA-SHA2-256s}\n"
           "  - {op: sign-fleet-root, validity_days: 30}\n")
    _host(cli, "ceremony", "plan", "genesis.yaml")
    for cid in ("alice", "bruno"):
        _host(cli, "ceremony", "approve", "genesis.lock.json", "--yes", "--custodian", cid,
              "--key", f"custodians/{cid}.key.pem", "--passphrase", "env:PP", "--out",
              "approvals")
    _write(tmp_path / "host.yaml", "token_label: never-opened\npin: env:NATIVE_USER_PIN\n")
    proc = native.run("freehsm-fixed", "python", "-m", "writroot", "ceremony", "run",
                      "genesis.lock.json", "--approvals", "approvals", "--host", "host.yaml",
                      "--out", "out", "--yes", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert f"network interfaces are up ({up[0]}" in line and "air-gapped" in line, line
    assert not (tmp_path / "out").exists()


@pytest.mark.native
def test_token_init_and_split_pin_on_freehsm_within_its_pin_range(native: Native) -> None:
    """freehsm-c (PINs of 4 to 64): token init finds the fresh slot; a PIN outside the range is
    refused before the token is touched; split-pin without --so-pin says why and leaves the
    PIN as it was (C_SetPIN refused while logged in); with it, the shares rebuild the PIN."""
    env = {"FHSM_TOKENS_DIR": str(native.work / f"fhsm-init-{secrets.token_hex(4)}"),
           "WRITROOT_SO": "so-pin-for-init", "WRITROOT_NEW": "user-pin-for-init",
           "WRITROOT_SHORT": "abc"}
    module = native.token("freehsm-fixed")["module"]
    base = ["--module", module]
    short = native.writroot("freehsm-fixed", "token", "init", *base, "--label", "pins",
                            "--so-pin", "env:WRITROOT_SO", "--pin", "env:WRITROOT_SHORT",
                            env=env)
    assert short.returncode == 3, short.stderr
    assert "the new user PIN has 3 characters; the token in slot 0 takes 4 to 64 " \
           "characters" in short.stderr
    made = native.writroot("freehsm-fixed", "token", "init", *base, "--label", "pins",
                           "--so-pin", "env:WRITROOT_SO", "--pin", "env:WRITROOT_NEW", env=env)
    assert made.returncode == 0, made.stderr
    assert "token pins initialised" in made.stdout
    again = native.writroot("freehsm-fixed", "token", "init", *base, "--label", "pins",
                            "--so-pin", "env:WRITROOT_SO", "--pin", "env:WRITROOT_NEW", env=env)
    assert again.returncode == 3 and "a token labelled 'pins' exists already" in again.stderr
    login = [*base, "--token-label", "pins", "--pin", "env:WRITROOT_NEW"]
    unused = f"pin-shares-{secrets.token_hex(3)}"
    refused = native.writroot("freehsm-fixed", "hsm", "split-pin", *login, "--threshold", "2",
                              "--shares", "3", "--yes", "--shares-out", unused, env=env)
    assert refused.returncode == 3, refused.stderr
    assert "UserAlreadyLoggedIn" in refused.stderr and "give --so-pin" in refused.stderr
    assert not (native.work / unused).exists()  # no share of a PIN the token never took
    still = native.writroot("freehsm-fixed", "hsm", "info", *login, "--no-probe", "--json",
                            env=env)
    assert still.returncode == 0, still.stderr
    out = f"pin-shares-{secrets.token_hex(3)}"  # no terminal: one mode-600 file per share
    split = _json(native.writroot("freehsm-fixed", "hsm", "split-pin", *login, "--so-pin",
                                  "env:WRITROOT_SO", "--threshold", "2", "--shares", "3",
                                  "--yes", "--shares-out", out, "--json", env=env))
    shares = [(native.work / f).read_text().strip() for f in split["share_files"]]
    assert len(shares) == 3
    check = native.writroot("freehsm-fixed", "hsm", "check-shares", *base, "--token-label",
                            "pins", "--pin-shares", "env:WRITROOT_A", "--pin-shares",
                            "env:WRITROOT_B", env={**env, "WRITROOT_A": shares[1],
                                                   "WRITROOT_B": shares[2]})
    assert check.returncode == 0, check.stderr
    old = native.writroot("freehsm-fixed", "hsm", "info", *login, "--no-probe", env=env)
    assert old.returncode == 3 and "PIN incorrect" in old.stderr


@pytest.mark.native
def test_split_pin_refused_where_the_token_cannot_take_128_bits(native: Native) -> None:
    """openCryptoki takes PINs of 4 to 8 characters: a split PIN (32 characters, 128 bits) is
    refused with the token's limit (exit 3) before any prompt, and the PIN stays as it was."""
    tok = native.token("opencryptoki")
    login = ["--module", tok["module"], "--token-label", tok["label"], "--pin",
             "env:NATIVE_USER_PIN"]
    for args in (["hsm", "split-pin", *login, "--threshold", "2", "--shares", "3"],
                 ["hsm", "split-pin", *login, "--threshold", "2", "--shares", "3", "--yes"],
                 ["hsm", "resplit", *login, "--pin-shares", "env:NATIVE_USER_PIN",
                  "--threshold", "2", "--shares", "3", "--yes"]):
        proc = native.writroot("opencryptoki", *args)
        assert proc.returncode == 3, proc.stdout + proc.stderr
        line = proc.stderr.strip().splitlines()[-1]
        assert line == (f"writroot: error: token {tok['label']!r} takes PINs of 4 to 8 "
                        "characters; a split PIN is 32 characters (128 random bits) and is "
                        "never made shorter: not split (protect this token's PIN otherwise) "
                        "(exit 3)"), line
        assert "type the token label" not in proc.stderr  # refused before the prompt
    info = native.writroot("opencryptoki", "hsm", "info", *login, "--no-probe", "--json")
    assert info.returncode == 0, info.stderr  # the published PIN still logs in


@pytest.mark.native
def test_host_writroot_says_where_to_load_a_module_it_cannot(native: Native) -> None:
    """On a host whose C library is older than the module's (Debian 12), writroot says why
    and where to run it (exit 3), in one line."""
    tok = native.token("freehsm-fixed")
    if tok["host_python_can_dlopen"]:
        pytest.skip("this host's C library loads the module (Debian 13)")
    path = CACHE / "root" / tok["module"].lstrip("/")
    proc = run_cli("hsm", "info", "--module", str(path), "--token-label", tok["label"],
                   "--pin", "env:NATIVE_USER_PIN", env={"NATIVE_USER_PIN": tok["user_pin"]})
    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "GLIBC_2.38" in lines[0], proc.stderr
    assert "run writroot where the module was built" in lines[0]
    assert "scripts/native-tokens.sh exec" in lines[0]


#: Log in as the SO and as the user with the PINs in WRITROOT_SO and WRITROOT_NEW (in the root).
LOGINS = """
import os, pkcs11
tok = pkcs11.lib(os.environ["NATIVE_PKCS11_MODULE"]).get_token(token_label="fresh-ock")
with tok.open(rw=True, so_pin=os.environ["WRITROOT_SO"]):
    pass
with tok.open(user_pin=os.environ["WRITROOT_NEW"]) as s:
    print("flags", int(tok.flags), "objects", len(list(s.get_objects())))
"""


@pytest.mark.native
def test_token_init_on_a_fresh_opencryptoki_token(native: Native) -> None:
    """openCryptoki's spare token, as it ships: token init wants its factory SO PIN (C_InitToken
    checks it), replaces it with the new one, and leaves a user PIN that needs no change;
    PINs outside 4 to 8 characters and a split PIN are refused before the token is touched."""
    tok = native.token("opencryptoki")
    if "spare_slot" not in tok:
        _unavailable("the tokens were set up before openCryptoki's spare slot: run "
                     "make native-tokens again")
    fresh = subprocess.run(_as_root([str(SCRIPT), "fresh-ock"]), capture_output=True,
                           text=True, check=False, timeout=120)
    assert fresh.returncode == 0, fresh.stderr
    env = {"WRITROOT_SO": "so-4567", "WRITROOT_NEW": "us-45678", "WRITROOT_LONG": "123456789",
           "WRITROOT_FACTORY": tok["factory_so_pin"]}
    init = ["token", "init", "--label", "fresh-ock", "--so-pin", "env:WRITROOT_SO"]
    split = native.writroot("opencryptoki", *init, "--threshold", "2", "--shares", "3",
                            "--factory-so-pin", "env:WRITROOT_FACTORY", env=env)
    assert split.returncode == 3, split.stderr
    assert "token 'fresh-ock' takes PINs of 4 to 8 characters; a split PIN is 32 characters" \
        in split.stderr and "share 1" not in split.stdout
    long = native.writroot("opencryptoki", *init, "--pin", "env:WRITROOT_LONG",
                           "--factory-so-pin", "env:WRITROOT_FACTORY", env=env)
    assert long.returncode == 3, long.stderr
    assert (f"the new user PIN has 9 characters; the token in slot {tok['spare_slot']} takes "
            "4 to 8 characters") in long.stderr
    no_factory = native.writroot("opencryptoki", *init, "--pin", "env:WRITROOT_NEW", env=env)
    assert no_factory.returncode == 3, no_factory.stderr
    assert "wants the SO PIN it shipped with (openCryptoki: 87654321); give it with " \
           "--factory-so-pin" in no_factory.stderr
    made = native.writroot("opencryptoki", *init, "--pin", "env:WRITROOT_NEW",
                           "--factory-so-pin", "env:WRITROOT_FACTORY", env=env)
    assert made.returncode == 0, made.stderr
    assert "token fresh-ock initialised" in made.stdout
    logins = native.run("opencryptoki", "python", "-c", LOGINS, env=env)
    assert logins.returncode == 0, logins.stderr
    flags = int(logins.stdout.split()[1])
    assert not flags & 0x80000 and not flags & 0x800000  # no PIN left to be changed
    again = native.writroot("opencryptoki", *init, "--pin", "env:WRITROOT_NEW",
                            "--factory-so-pin", "env:WRITROOT_FACTORY", env=env)
    assert again.returncode == 3 and "a token labelled 'fresh-ock' exists already" \
        in again.stderr
    other = native.writroot("opencryptoki", "token", "init", "--label", "another",
                            "--so-pin", "env:WRITROOT_SO", "--pin", "env:WRITROOT_NEW", env=env)
    assert other.returncode == 3, other.stderr
    assert (f"no uninitialised token in {tok['module']} (initialised: slot {tok['slot']} "
            f"{tok['label']!r}, slot {tok['spare_slot']} 'fresh-ock'); token init sets up a "
            "fresh token only") in other.stderr
