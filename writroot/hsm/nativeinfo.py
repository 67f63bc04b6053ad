"""What `writroot hsm info` says about native custody on a token.

The PQC mechanisms the token lists, a probe of each parameter set writroot would use natively
(a throwaway *session* pair: generated, read back, used to sign, checked by an independent
engine, destroyed; session objects vanish with the session, so nothing stays on the token),
the custody mode per algorithm, the deviations from PKCS#11 3.2 seen, and for each native key
on the token whether its private key reads back protected and unreadable.
"""

from __future__ import annotations

from typing import Any

from writroot.crypto.algorithms import ML_DSA_65, ML_DSA_87, SLH_DSA_SHA2_256S, Algorithm
from writroot.errors import HSMError
from writroot.hsm.p11raw import (
    CKM_ML_DSA,
    CKM_ML_DSA_KEY_PAIR_GEN,
    CKM_SLH_DSA,
    CKM_SLH_DSA_KEY_PAIR_GEN,
    RawPQC,
)

#: The algorithms writroot keeps on tokens: fleet and regional roots, custodian keys.
ALGORITHMS: tuple[Algorithm, ...] = (SLH_DSA_SHA2_256S, ML_DSA_87, ML_DSA_65)
MECHANISM_NAMES = {CKM_SLH_DSA_KEY_PAIR_GEN: "CKM_SLH_DSA_KEY_PAIR_GEN",
                   CKM_SLH_DSA: "CKM_SLH_DSA", CKM_ML_DSA_KEY_PAIR_GEN: "CKM_ML_DSA_KEY_PAIR_GEN",
                   CKM_ML_DSA: "CKM_ML_DSA"}
PROBE_MESSAGE = b"writroot hsm info: native custody probe"
#: What to do when a token lists a mechanism but cannot use it (docs/custody.md).
REMEDY = ("update or fix the token's PKCS#11 module (freehsm-c 2.0.0 as Debian packages it: "
          "rebuild it with the pairwise-test buffer fix, docs/custody.md), or keep this "
          "algorithm's keys on a token in wrapped custody (hsm keygen --custody wrapped)")


def native_report(custody: Any, probe: bool) -> dict[str, Any]:
    """The native-custody part of `hsm info`: mechanisms, probes, custody, deviations."""
    from writroot.crypto import engines
    from writroot.hsm import native

    mechs = custody.mechanisms()
    out: dict[str, Any] = {
        "pqc_mechanisms": sorted(n for m, n in MECHANISM_NAMES.items() if m in mechs),
        "custody": {a.name: custody.mode_for(a) for a in ALGORITHMS},
        "parameter_sets": [],
        "probed": probe,
    }
    deviations: list[str] = list(custody.deviations)
    failures = []

    def verify(a: Algorithm, public: bytes, message: bytes, sig: bytes) -> bool:
        checker = engines.independent_for(a, engines.verifier_for(a))
        return bool(checker.verify(a, public, message, sig))

    for alg in ALGORITHMS:
        if not probe or not custody.native_supported(alg):
            continue
        result = native.probe(custody.session, custody.module, alg, PROBE_MESSAGE, verify)
        deviations.extend(d for d in result.deviations if d not in deviations)
        entry: dict[str, Any] = {"algorithm": alg.name,
                                 "parameter_set": f"0x{result.parameter_set:X}",
                                 "generates_and_signs": result.ok,
                                 "keygen_seconds": round(result.keygen_seconds, 3),
                                 "sign_seconds": round(result.sign_seconds, 3)}
        if not result.ok:
            entry["error"] = result.error
            if result.rv is not None:
                entry["rv"] = f"0x{result.rv:08X}"
            failures.append(result)
        out["parameter_sets"].append(entry)
    out["deviations"] = deviations
    out["failures"] = [f"{f.algorithm}: {f.error}" for f in failures]
    return out


def probe_failure(report: dict[str, Any], token_label: str) -> HSMError | None:
    """Exit 3 for a token that lists a mechanism it cannot use (after the report is shown)."""
    bad = [p for p in report.get("parameter_sets", []) if not p["generates_and_signs"]]
    if not bad:
        return None
    first = bad[0]
    return HSMError(f"token {token_label!r} lists the PKCS#11 3.2 mechanisms for "
                    f"{first['algorithm']} but {first['error']}, so native custody of "
                    f"{first['algorithm']} fails here; {REMEDY}")


def private_key_state(custody: Any, record: Any) -> str:
    """For a native key: do its private key's protections read back, and is it unreadable?"""
    from writroot.hsm.native import private_value_readable

    if record.custody != "native":
        return "sealed under the token's KEK"
    raw = RawPQC(custody.module, custody.session.handle)
    try:
        handle = raw._find_private(record.token_id)
        raw.require_protected(handle)
        seen: list[str] = []
        readable = private_value_readable(raw, int(handle.value), seen)
        custody.deviations.extend(d for d in seen if d not in custody.deviations)
    except HSMError as exc:
        return f"PROBLEM: {exc.message}"
    if readable:
        return "PROBLEM: its CKA_VALUE can be read"
    return "on the token: sensitive, never extractable, CKA_VALUE not readable"


def print_native(out: Any, report: dict[str, Any]) -> None:
    for p in report.get("parameter_sets", []):
        if p["generates_and_signs"]:
            out.print(f"native   {p['algorithm']} (parameter set {p['parameter_set']}): "
                      f"generated on the token in {p['keygen_seconds']} s, signed in "
                      f"{p['sign_seconds']} s, verified independently; probe pair destroyed",
                      markup=False)
        else:
            out.print(f"FAILS    {p['algorithm']} (parameter set {p['parameter_set']}): "
                      f"{p['error']}", markup=False)
    for d in report.get("deviations", []):
        out.print(f"DEVIATION {d}", markup=False)
