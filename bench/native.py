"""Native custody against wrapped custody against the raw engine, side by side in one run.

    python -m bench.native [--json]     (also a section of `python -m bench`)

For SLH-DSA-SHA2-256s and ML-DSA-87: the raw engine signing with a key in memory; wrapped
custody on SoftHSM2 (find + unseal + sign, and the whole `Custody.sign` with its independent
check); native custody on the rebuilt freehsm-c token (SLH-DSA and ML-DSA) and on openCryptoki
(ML-DSA): the token's C_Sign alone, and the whole `Custody.sign` with its independent check.

The PKCS#11 3.2 tokens load only inside the Debian sid root (docs/native-tokens.md), so every
measurement runs there, one process per token (`scripts/native-tokens.sh exec`), on the root's
Python, and this process gathers the numbers. Without the tokens the section is SKIP.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import Row

SECTION = "native"
ALGORITHMS = ("SLH-DSA-SHA2-256s", "ML-DSA-87")
REPS = {"SLH-DSA-SHA2-256s": 3, "ML-DSA-87": 20}
REPO = Path(__file__).resolve().parent.parent
ENV_JSON = REPO / ".cache" / "native-tokens" / "env.json"
WORK = REPO / ".cache" / "native-work"
TOKEN_LABEL = "writroot-bench"


def _ms(samples: list[float]) -> float:
    return 1000 * statistics.median(samples)


def _timed(fn: Any, reps: int) -> float:
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return _ms(samples)


# -- inside the root: one process per custody ------------------------------------------------


_INIT_FREEHSM = """
import os, sys, PyKCS11
lib = PyKCS11.PyKCS11Lib(); lib.load(os.environ["NATIVE_PKCS11_MODULE"])
so, user = os.environ["NATIVE_SO_PIN"], os.environ["NATIVE_USER_PIN"]
lib.initToken(0, so, sys.argv[1])
s = lib.openSession(0, PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
s.login(so, PyKCS11.CKU_SO); s.initPin(user); s.logout(); s.closeSession()
"""


def _init_freehsm(label: str) -> None:
    """A fresh freehsm-c token in FHSM_TOKENS_DIR (a directory the caller chose), in a process
    of its own (PyKCS11 keeps the module initialised)."""
    subprocess.run([sys.executable, "-c", _INIT_FREEHSM, label], check=True,
                   capture_output=True)


def measure(kind: str) -> dict[str, dict[str, float]]:
    """Milliseconds per algorithm for one custody: "wrapped" (SoftHSM2, and the raw engine) or
    "native" (the token NATIVE_PKCS11_MODULE names)."""
    from writroot.crypto.algorithms import by_name
    from writroot.hsm.custody import Custody
    from writroot.hsm.token import TokenSpec, open_session

    message = os.urandom(4096)  # about a statement's DSSE PAE
    out: dict[str, dict[str, float]] = {}
    if kind == "wrapped":
        from bench.hsmtoken import throwaway_custody

        with throwaway_custody() as custody:
            for name in ALGORITHMS:
                out[name] = _wrapped(custody, by_name(name), REPS[name], message)
        return out
    label = os.environ["NATIVE_TOKEN_LABEL"]
    if os.environ.get("NATIVE_TOKEN", "").startswith("freehsm"):
        label = TOKEN_LABEL
        _init_freehsm(label)
    spec = TokenSpec(os.environ["NATIVE_PKCS11_MODULE"], label, None, "env:NATIVE_USER_PIN")
    with open_session(spec, rw=True) as session:
        custody = Custody(session, spec.module)
        for name in ALGORITHMS:
            if custody.native_supported(by_name(name)):
                out[name] = _native(custody, by_name(name), REPS[name], message)
    return out


def _wrapped(custody: Any, alg: Any, reps: int, message: bytes) -> dict[str, float]:
    from writroot.crypto import engines
    from writroot.crypto.keys import wipe

    record = custody.generate(alg, "regional-root", f"bench-{alg.name}", "wrapped")
    signer = engines.signer_for(alg)
    held = custody.unseal(record)
    try:
        raw = _timed(lambda: signer.sign(alg, held, message), reps)
    finally:
        wipe(held)

    def unseal_sign() -> None:
        private = custody.unseal(custody.find(record.keyid))
        try:
            signer.sign(alg, private, message)
        finally:
            wipe(private)

    return {"raw": raw, "sign": _timed(unseal_sign, reps),
            "whole": _timed(lambda: custody.sign(record.keyid, message), reps)}


def _native(custody: Any, alg: Any, reps: int, message: bytes) -> dict[str, float]:
    from writroot.hsm.native import NativeKeys

    record = custody.generate(alg, "regional-root", f"bench-{secrets.token_hex(4)}", "native")
    try:
        keys = NativeKeys(custody.session, custody.module)
        return {"sign": _timed(lambda: keys.sign(alg, record.token_id, message), reps),
                "whole": _timed(lambda: custody.sign(record.keyid, message), reps)}
    finally:
        custody.destroy_key(record)


# -- on the host: run each measurement where its token lives -----------------------------------


def _inside(env: dict[str, Any], token: str | None, kind: str, extra: dict[str, str]
            ) -> dict[str, dict[str, float]]:
    cmd = [env["exec"][0], "exec", *(["--token", token] if token else []),
           *(f"{k}={v}" for k, v in extra.items()), "--",
           "python", "-m", "bench.native", "--measure", kind]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, check=False,
                          timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"{token or 'softhsm2'}: {proc.stderr.strip()[-400:]}")
    result: dict[str, dict[str, float]] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def collect() -> dict[str, Any]:
    """Every measurement, by custody then algorithm (ms); raises when the root is missing."""
    if not ENV_JSON.is_file():
        raise RuntimeError("no native tokens (make native-tokens)")
    env = json.loads(ENV_JSON.read_text())
    WORK.mkdir(parents=True, exist_ok=True)
    fhsm = WORK / f"bench-{secrets.token_hex(4)}"
    try:
        return {
            "wrapped": _inside(env, None, "wrapped", {}),
            "freehsm-fixed": _inside(env, "freehsm-fixed", "native",
                                     {"FHSM_TOKENS_DIR": str(fhsm)}),
            "opencryptoki": _inside(env, "opencryptoki", "native", {}),
        }
    finally:
        shutil.rmtree(fhsm, ignore_errors=True)


def rows_from(data: dict[str, Any]) -> list[Row]:
    rows = []
    for name in ALGORITHMS:
        wrapped = data["wrapped"][name]
        raw = wrapped["raw"]
        note = f"median of {REPS[name]}, 4096 B, inside the sid root"
        rows += [Row(SECTION, f"{name}: raw engine sign", raw, "ms", note=note),
                 Row(SECTION, f"{name}: wrapped (SoftHSM2) unseal+sign", wrapped["sign"], "ms"),
                 Row(SECTION, f"{name}: wrapped Custody.sign (with check)", wrapped["whole"],
                     "ms")]
        for token in ("freehsm-fixed", "opencryptoki"):
            got = data[token].get(name)
            if got is None:
                continue
            rows += [Row(SECTION, f"{name}: native {token} C_Sign", got["sign"], "ms"),
                     Row(SECTION, f"{name}: native {token} Custody.sign (with check)",
                         got["whole"], "ms"),
                     Row(SECTION, f"{name}: native {token} C_Sign / raw engine",
                         got["sign"] / raw, "x")]
        rows.append(Row(SECTION, f"{name}: wrapped unseal+sign / raw engine",
                        wrapped["sign"] / raw, "x"))
    return rows


def run() -> list[Row]:
    """The bench section: SKIP rows when the tokens are not there."""
    try:
        return rows_from(collect())
    except (RuntimeError, OSError, ValueError, KeyError) as exc:
        return [Row(SECTION, "native custody", None, "ms", note=str(exc)[:200])]


def matrix(data: dict[str, Any]) -> Any:
    """One table: an algorithm per row, each custody side by side (ms, and x raw)."""
    from rich.table import Table

    out = Table(title="signing: raw engine, wrapped custody, native custody (median ms)")
    for col in ("algorithm", "raw engine", "wrapped: unseal+sign", "wrapped: Custody.sign",
                "native freehsm-c: C_Sign", "native freehsm-c: Custody.sign",
                "native openCryptoki: C_Sign", "native openCryptoki: Custody.sign"):
        out.add_column(col, justify="right")
    for name in ALGORITHMS:
        raw = data["wrapped"][name]["raw"]

        def cell(v: float | None, raw: float = raw) -> str:
            return "-" if v is None else f"{v:.1f} ({v / raw:.2f}x)"

        f = data["freehsm-fixed"].get(name, {})
        o = data["opencryptoki"].get(name, {})
        out.add_row(name, f"{raw:.1f}", cell(data["wrapped"][name]["sign"]),
                    cell(data["wrapped"][name]["whole"]), cell(f.get("sign")),
                    cell(f.get("whole")), cell(o.get("sign")), cell(o.get("whole")))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.native", description=__doc__)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--measure", choices=("wrapped", "native"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return 0
    data = collect()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    from rich.console import Console

    Console(width=200).print(matrix(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
