#!/usr/bin/env python3
"""Probe the native PKCS#11 3.2 post-quantum test tokens that `make native-tokens` sets up.

Runs inside the Debian sid root (see docs/native-tokens.md), through

    scripts/native-tokens.sh exec -- python scripts/native_probe.py [--token NAME] [--keep]

For each token (freehsm, freehsm-fixed, opencryptoki) it prints the Cryptoki version and
mechanisms, generates on the token an SLH-DSA-SHA2-256s and an ML-DSA-87 key pair (token,
private, sensitive, non-extractable, CKA_PARAMETER_SET), reads back the key's protection
attributes and the public CKA_VALUE (raw or SubjectPublicKeyInfo DER), signs with C_Sign with
no mechanism parameter and with a CK_SIGN_ADDITIONAL_CONTEXT (hedge preferred / deterministic,
empty context), and verifies each signature outside the token: `openssl pkeyutl -verify
-rawin` (OpenSSL >= 3.5 of the root), `cryptography` (ML-DSA) and the pure-Python `slh-dsa`
package (SLH-DSA) when importable. Each token runs in its own process: freehsm reads
FHSM_TOKENS_DIR at C_Initialize, and the two freehsm builds share one SONAME.

Exit status: 0 when every token behaved as expected (see EXPECT), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from ctypes import addressof, create_string_buffer
from pathlib import Path
from typing import Any

import PyKCS11
from PyKCS11 import LowLevel as LL

REPO = Path(__file__).resolve().parent.parent
DEFAULT_ENV = REPO / ".cache" / "native-tokens" / "env.json"
MESSAGE = b"writroot native token probe: sign me"
CONTEXT = b"writroot-probe"

# Algorithm table: keygen mechanism, sign mechanism, key type, parameter set, sizes, OID.
ALGS: dict[str, dict[str, Any]] = {
    "SLH-DSA-SHA2-256s": dict(gen=LL.CKM_SLH_DSA_KEY_PAIR_GEN, sign=LL.CKM_SLH_DSA,
                              ktype=LL.CKK_SLH_DSA, pset=LL.CKP_SLH_DSA_SHA2_256S,
                              pk=64, sig=29792, oid="2.16.840.1.101.3.4.3.24"),
    "ML-DSA-87": dict(gen=LL.CKM_ML_DSA_KEY_PAIR_GEN, sign=LL.CKM_ML_DSA,
                      ktype=LL.CKK_ML_DSA, pset=LL.CKP_ML_DSA_87,
                      pk=2592, sig=4627, oid="2.16.840.1.101.3.4.3.19"),
}

# What each token is expected to do with each algorithm's on-token key generation.
EXPECT = {
    "freehsm": {"SLH-DSA-SHA2-256s": "CKR_FUNCTION_FAILED", "ML-DSA-87": "ok"},
    "freehsm-fixed": {"SLH-DSA-SHA2-256s": "ok", "ML-DSA-87": "ok"},
    "opencryptoki": {"SLH-DSA-SHA2-256s": "unsupported", "ML-DSA-87": "ok"},
}


def ckr_name(exc: PyKCS11.PyKCS11Error) -> str:
    name = PyKCS11.CKR.get(exc.value)
    return name if isinstance(name, str) else f"0x{exc.value:08X}"


def mech_name(m: int) -> str:
    name = PyKCS11.CKM.get(m)
    return name if isinstance(name, str) else f"0x{m:08X}"


# --- tiny DER helpers (enough for an ML-DSA / SLH-DSA SubjectPublicKeyInfo) -----------------

def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _der_len(len(body)) + body


def _oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    out = bytearray([40 * parts[0] + parts[1]])
    for p in parts[2:]:
        enc = [p & 0x7F]
        p >>= 7
        while p:
            enc.append(0x80 | (p & 0x7F))
            p >>= 7
        out += bytes(reversed(enc))
    return _tlv(0x06, bytes(out))


def spki(oid: str, raw: bytes) -> bytes:
    return _tlv(0x30, _tlv(0x30, _oid(oid)) + _tlv(0x03, b"\x00" + raw))


def classify_public_value(value: bytes, alg: dict[str, Any]) -> tuple[str, bytes]:
    """Return ("raw" | "SPKI DER" | "unknown", raw public key)."""
    if len(value) == alg["pk"]:
        return "raw", value
    prefix = spki(alg["oid"], b"\x00" * alg["pk"])[: -alg["pk"]]
    if len(value) == len(prefix) + alg["pk"] and value.startswith(prefix):
        return "SPKI DER", value[len(prefix):]
    return "unknown", value


# --- independent verifiers ----------------------------------------------------------------

def verify_openssl(alg: dict[str, Any], raw_pub: bytes, sig: bytes, ctx: bytes) -> str:
    with tempfile.TemporaryDirectory(prefix="native-probe-") as d:
        p = Path(d)
        (p / "pub.der").write_bytes(spki(alg["oid"], raw_pub))
        (p / "msg").write_bytes(MESSAGE)
        (p / "sig").write_bytes(sig)
        r = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-keyform", "DER",
                            "-inkey", str(p / "pub.der"), "-rawin", "-in", str(p / "msg"),
                            "-sigfile", str(p / "sig")]
                           + (["-pkeyopt", f"hexcontext-string:{ctx.hex()}"] if ctx else []),
                           capture_output=True, text=True)
    out = (r.stdout + r.stderr).strip().splitlines()
    return "OK" if r.returncode == 0 else f"FAIL ({out[0] if out else r.returncode})"


def verify_python(name: str, raw_pub: bytes, sig: bytes, ctx: bytes) -> str:
    try:
        if name == "ML-DSA-87":
            from cryptography.hazmat.primitives.asymmetric import mldsa
            try:
                mldsa.MLDSA87PublicKey.from_public_bytes(raw_pub).verify(sig, MESSAGE, ctx or None)
                return "cryptography OK"
            except Exception as exc:
                return f"cryptography FAIL ({type(exc).__name__})"
        import slhdsa
        from slhdsa.lowlevel import parameters
        pub = slhdsa.PublicKey.from_digest(raw_pub, parameters.sha2_256s)
        ok = pub.verify_pure(MESSAGE, sig, ctx=ctx)
        return "slh-dsa OK" if ok else "slh-dsa FAIL"
    except ImportError as exc:
        return f"skipped ({exc.name} not importable)"


# --- one token ------------------------------------------------------------------------------

def t() -> float:
    return time.perf_counter()


def find_slot(lib: PyKCS11.PyKCS11Lib, label: str) -> int | None:
    for s in lib.getSlotList(tokenPresent=False):
        try:
            if lib.getTokenInfo(s).label.strip() == label:
                return int(s)
        except PyKCS11.PyKCS11Error:
            continue
    return None


def mechanism_list(lib: PyKCS11.PyKCS11Lib, slot: int) -> list[int]:
    """C_GetMechanismList, straight. PyKCS11 1.5.20's getMechanismList() appends 0x1D
    (CKM_ML_DSA) to every token's list, so it is not used here."""
    ml = LL.ckulonglist()
    rv = lib.lib.C_GetMechanismList(slot, ml)
    if rv != LL.CKR_OK:
        raise PyKCS11.PyKCS11Error(rv)
    return [int(m) for m in ml]


def get_attr(session: Any, obj: Any, attr: int) -> tuple[str, bytes | None]:
    """One C_GetAttributeValue with the token's own return value ("CKR_OK", raw bytes)."""
    tmpl = LL.ckattrlist(1)
    tmpl[0].SetType(attr)
    rv = session.lib.C_GetAttributeValue(session.session, obj, tmpl)
    if rv != LL.CKR_OK:
        return PyKCS11.CKR.get(rv, f"0x{rv:08X}"), None
    rv = session.lib.C_GetAttributeValue(session.session, obj, tmpl)
    if rv != LL.CKR_OK:
        return PyKCS11.CKR.get(rv, f"0x{rv:08X}"), None
    return "CKR_OK", bytes(tmpl[0].GetBin())


def show_bool(res: tuple[str, bytes | None]) -> Any:
    rv, val = res
    return rv if val is None else bool(val[0]) if len(val) == 1 else val.hex()


def show_pset(res: tuple[str, bytes | None]) -> str:
    rv, val = res
    return rv if val is None else f"0x{struct.unpack('=Q', val)[0]:x}" if len(val) == 8 \
        else val.hex()


def probe_token(name: str, tok: dict[str, Any], keep: bool) -> bool:
    ok = True
    print(f"== {name}: {tok['module']}")
    t0 = t()
    lib = PyKCS11.PyKCS11Lib()
    lib.load(tok["module"])
    info = lib.getInfo()
    print(f"   load+C_Initialize {t() - t0:.3f}s; Cryptoki {info.cryptokiVersion[0]}."
          f"{info.cryptokiVersion[1]}; {info.manufacturerID.strip()} / "
          f"{info.libraryDescription.strip()} {info.libraryVersion[0]}.{info.libraryVersion[1]}")
    slot = find_slot(lib, tok["label"])
    if slot is None:
        print(f"   FAIL: no token labelled {tok['label']!r}")
        return False
    mechs = mechanism_list(lib, slot)
    names = sorted(mech_name(m) for m in mechs)
    pq = [f"{mech_name(m)} 0x{m:x}" for m in sorted(mechs)
          if any(k in mech_name(m) for k in ("ML_DSA", "SLH_DSA", "ML_KEM"))]
    print(f"   slot {slot}, {len(mechs)} mechanisms; post-quantum: {', '.join(pq) or '-'}")
    print("   all: " + ", ".join(names))

    session = lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
    session.login(tok["user_pin"])
    made: list[Any] = []
    try:
        for aname, alg in ALGS.items():
            expect = EXPECT.get(name, {}).get(aname, "ok")
            if alg["gen"] not in mechs:
                got = "unsupported"
                print(f"   {aname}: key-pair mechanism {mech_name(alg['gen'])} not offered")
                if got != expect:
                    print(f"   UNEXPECTED: expected {expect}")
                    ok = False
                continue
            ok &= probe_alg(session, mechs, aname, alg, expect, made)
    finally:
        if not keep:
            for h in made:
                try:
                    session.destroyObject(h)
                except PyKCS11.PyKCS11Error:
                    pass
        session.logout()
        session.closeSession()
    return ok


def probe_alg(session: Any, mechs: list[int], aname: str, alg: dict[str, Any], expect: str,
              made: list[Any]) -> bool:
    label = f"probe-{aname}-{os.getpid()}"
    pset = struct.pack("=Q", alg["pset"])
    pub_t = [(LL.CKA_CLASS, LL.CKO_PUBLIC_KEY), (LL.CKA_KEY_TYPE, alg["ktype"]),
             (LL.CKA_TOKEN, True), (LL.CKA_VERIFY, True), (LL.CKA_LABEL, label),
             (LL.CKA_PARAMETER_SET, pset)]
    priv_t = [(LL.CKA_CLASS, LL.CKO_PRIVATE_KEY), (LL.CKA_KEY_TYPE, alg["ktype"]),
              (LL.CKA_TOKEN, True), (LL.CKA_PRIVATE, True), (LL.CKA_SENSITIVE, True),
              (LL.CKA_EXTRACTABLE, False), (LL.CKA_SIGN, True), (LL.CKA_LABEL, label)]
    t0 = t()
    try:
        pub, priv = session.generateKeyPair(pub_t, priv_t, PyKCS11.Mechanism(alg["gen"]))
    except PyKCS11.PyKCS11Error as exc:
        got = ckr_name(exc)
        print(f"   {aname}: C_GenerateKeyPair failed with {got} after {t() - t0:.2f}s"
              + ("  (expected)" if got == expect else f"  UNEXPECTED: expected {expect}"))
        return got == expect
    print(f"   {aname}: C_GenerateKeyPair on token {t() - t0:.2f}s"
          + ("" if expect == "ok" else f"  UNEXPECTED: expected {expect}"))
    made += [pub, priv]
    good = expect == "ok"

    flags = {k: show_bool(get_attr(session, priv, v))
             for k, v in [("SENSITIVE", LL.CKA_SENSITIVE), ("EXTRACTABLE", LL.CKA_EXTRACTABLE),
                          ("ALWAYS_SENSITIVE", LL.CKA_ALWAYS_SENSITIVE),
                          ("NEVER_EXTRACTABLE", LL.CKA_NEVER_EXTRACTABLE),
                          ("LOCAL", LL.CKA_LOCAL)]}
    print("      private: " + " ".join(f"{k}={v}" for k, v in flags.items()))
    if flags["SENSITIVE"] is not True or flags["EXTRACTABLE"] is not False \
            or flags["ALWAYS_SENSITIVE"] is not True or flags["NEVER_EXTRACTABLE"] is not True:
        print("      UNEXPECTED protection attributes")
        good = False
    rv, val = get_attr(session, priv, LL.CKA_VALUE)
    if val == b"":  # PyKCS11 shows ulValueLen = CK_UNAVAILABLE_INFORMATION as empty
        rv += " with no value (not CKR_ATTRIBUTE_SENSITIVE)"
    print(f"      private CKA_VALUE: {rv}; CKA_PARAMETER_SET private "
          f"{show_pset(get_attr(session, priv, LL.CKA_PARAMETER_SET))}, public "
          f"{show_pset(get_attr(session, pub, LL.CKA_PARAMETER_SET))}")
    if val:
        print(f"      UNEXPECTED: private CKA_VALUE readable ({len(val)} bytes)")
        good = False

    rv, val = get_attr(session, pub, LL.CKA_VALUE)
    if val is None:
        print(f"      public CKA_VALUE: {rv}")
        return False
    value = val
    kind, raw = classify_public_value(value, alg)
    print(f"      public CKA_VALUE: {len(value)} bytes, {kind}"
          + (f" (raw key {len(raw)} bytes inside)" if kind == "SPKI DER" else ""))
    if kind == "unknown":
        return False

    # CK_SIGN_ADDITIONAL_CONTEXT {CK_HEDGE_TYPE hedgeVariant; CK_BYTE_PTR pContext;
    # CK_ULONG ulContextLen}; the context bytes live in a ctypes buffer for the call.
    ctx_buf = create_string_buffer(CONTEXT, len(CONTEXT))
    variants = [("no parameter", None, b""),
                ("SIGN_ADDITIONAL_CONTEXT hedge-preferred, empty context",
                 struct.pack("=QQQ", LL.CKH_HEDGE_PREFERRED, 0, 0), b""),
                ("SIGN_ADDITIONAL_CONTEXT deterministic, empty context",
                 struct.pack("=QQQ", LL.CKH_DETERMINISTIC_REQUIRED, 0, 0), b""),
                (f"SIGN_ADDITIONAL_CONTEXT hedge-preferred, context {CONTEXT.decode()!r}",
                 struct.pack("=QQQ", LL.CKH_HEDGE_PREFERRED, addressof(ctx_buf), len(CONTEXT)),
                 CONTEXT)]
    signed = 0
    for vname, param, ctx in variants:
        mech = PyKCS11.Mechanism(alg["sign"], param)
        t0 = t()
        try:
            sig = bytes(session.sign(priv, MESSAGE, mech))
        except PyKCS11.PyKCS11Error as exc:
            print(f"      C_Sign [{vname}]: {ckr_name(exc)}")
            continue
        dt = t() - t0
        signed += 1
        try:  # a second signature: equal means the token signed deterministically
            again = bytes(session.sign(priv, MESSAGE, mech))
            rnd = "deterministic" if again == sig else "hedged"
        except PyKCS11.PyKCS11Error as exc:
            rnd = f"second C_Sign {ckr_name(exc)}"
        t1 = t()
        ossl = verify_openssl(alg, raw, sig, ctx)
        dt_ossl = t() - t1
        t1 = t()
        py = verify_python(aname, raw, sig, ctx)
        dt_py = t() - t1
        try:
            onv = "OK" if session.verify(pub, MESSAGE, sig, PyKCS11.Mechanism(alg["sign"], param)) \
                else "FAIL"
        except PyKCS11.PyKCS11Error as exc:
            onv = ckr_name(exc)
        bound = ""
        if ctx:  # the context must be in the signature: verifying without it has to fail
            bound = "; context bound" if verify_openssl(alg, raw, sig, b"") != "OK" \
                else "; CONTEXT IGNORED (verifies without it)"
        print(f"      C_Sign [{vname}]: {len(sig)} bytes in {dt:.2f}s, {rnd}; "
              f"openssl {ossl} ({dt_ossl:.2f}s); {py} ({dt_py:.2f}s); C_Verify {onv}{bound}")
        if len(sig) != alg["sig"] or ossl != "OK" or "FAIL" in py or "IGNORED" in bound:
            good = False
    if not signed:
        good = False
    return good


# --- driver ---------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--env", default=str(DEFAULT_ENV), help="env.json written by the setup")
    ap.add_argument("--token", action="append", help="probe only this token (repeatable)")
    ap.add_argument("--keep", action="store_true", help="leave the generated keys on the token")
    ap.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    env = json.loads(Path(args.env).read_text())
    tokens: dict[str, dict[str, Any]] = env["tokens"]
    chosen = args.token or list(tokens)
    if args.in_process:
        (name,) = chosen
        return 0 if probe_token(name, tokens[name], args.keep) else 1

    results = {}
    for name in chosen:
        child_env = dict(os.environ)
        child_env.update(env["common_env"])
        child_env.update(tokens[name]["env"])
        cmd = [sys.executable, __file__, "--env", args.env, "--token", name, "--in-process"]
        if args.keep:
            cmd.append("--keep")
        t0 = t()
        rc = subprocess.run(cmd, env=child_env).returncode
        results[name] = (rc, t() - t0)
        sys.stdout.flush()
    print("== summary")
    for name, (rc, dt) in results.items():
        print(f"   {name}: {'as expected' if rc == 0 else 'UNEXPECTED (see above)'} ({dt:.1f}s)")
    return 0 if all(rc == 0 for rc, _ in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
