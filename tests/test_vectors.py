"""Known-answer tests (NIST ACVP) and cross-engine checks for every engine present.

The vectors live in tests/vectors/ (see the README there). Engines that cannot load on this
machine (liboqs without its shared library) are still collected and skipped with the reason.

Timing: an SLH-DSA-SHA2-256s signature costs about half a second with pqcrypto and several
seconds with slh-dsa-py, so 256s signatures are made only a few times and cached for the
whole module.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from writroot.crypto.algorithms import (
    ML_DSA_44,
    ML_DSA_65,
    ML_DSA_87,
    SLH_DSA_SHA2_256F,
    SLH_DSA_SHA2_256S,
    Algorithm,
)
from writroot.crypto.engines import ENGINE_NAMES, load
from writroot.crypto.engines.base import Engine
from writroot.errors import EngineUnavailable

VECTORS = Path(__file__).parent / "vectors"


def _vectors(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    return data


KEYGEN = _vectors("slh-dsa-sha2-256s-keygen.json")
SIGGEN = _vectors("slh-dsa-sha2-256s-siggen.json")
SIGVER = _vectors("slh-dsa-sha2-256s-sigver.json")
MLDSA_KEYGEN = _vectors("ml-dsa-87-keygen.json")
MLDSA44_CASE = _vectors("ml-dsa-44-keygen.json")["tests"][0]

KEYGEN_CASES = KEYGEN["tests"]
SIGGEN_CASE = SIGGEN["tests"][0]
SIGVER_CASE = SIGVER["tests"][0]
MLDSA_CASE = MLDSA_KEYGEN["tests"][0]

#: The ACVP keyGen cases whose secret keys are used to sign (each costs one 256s signature).
SIGNING_KEYGEN_CASES = [KEYGEN_CASES[0], KEYGEN_CASES[-1]]

ALGS = {a.name: a for a in (SLH_DSA_SHA2_256S, SLH_DSA_SHA2_256F, ML_DSA_44, ML_DSA_65,
                            ML_DSA_87)}


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# --------------------------------------------------------------------------- engine selection


@cache
def _load_status(name: str) -> tuple[Engine | None, str]:
    """(engine, "") or (None, why not); cached, since probing for liboqs spawns processes."""
    try:
        return load(name), ""
    except EngineUnavailable as exc:
        return None, f"engine {name} unavailable: {exc}"


def _try_load(name: str) -> Engine | None:
    return _load_status(name)[0]


def _unavailable_reason(name: str) -> str:
    return _load_status(name)[1]


def _engine(name: str) -> Engine:
    """Load an engine for a test; skip (with the reason) when it cannot load here."""
    engine, reason = _load_status(name)
    if engine is None:
        pytest.skip(reason)
    return engine


def _engine_params(alg: Algorithm, op: str, *, exclude: tuple[str, ...] = ()) -> list[Any]:
    """One pytest.param per engine that can `op` ("sign"/"verify") `alg`.

    An engine that does not load is kept, marked skip with its reason, so the report shows
    what was not exercised on this machine.
    """
    out = []
    for name in ENGINE_NAMES:
        if name in exclude:
            continue
        engine = _try_load(name)
        if engine is None:
            out.append(pytest.param(name, id=name,
                                    marks=pytest.mark.skip(reason=_unavailable_reason(name))))
        elif getattr(engine, f"can_{op}")(alg):
            out.append(pytest.param(name, id=name))
    return out


def _is_skipped(param: Any) -> bool:
    return any(m.name == "skip" for m in param.marks)


# --------------------------------------------------------------------------- module caches


@pytest.fixture(scope="module")
def acvp_signatures() -> dict[tuple[str, int], bytes]:
    """(signer engine name, tcId) -> signature over ACVP_MESSAGE with the ACVP keyGen sk."""
    return {}


@pytest.fixture(scope="module")
def fresh_signatures() -> dict[tuple[str, str], tuple[bytes, bytes, bytes]]:
    """(algorithm name, signer engine name) -> (pk, message, signature), keys made by the signer."""
    return {}


ACVP_MESSAGE = b"writroot: signed with an ACVP SLH-DSA-SHA2-256s keyGen secret key"


def _fresh(cache: dict[tuple[str, str], tuple[bytes, bytes, bytes]], alg: Algorithm,
           signer_name: str) -> tuple[bytes, bytes, bytes]:
    key = (alg.name, signer_name)
    if key not in cache:
        signer = _engine(signer_name)
        pk, sk = signer.keygen(alg)
        message = f"writroot cross-engine check: {alg.name} signed by {signer_name}".encode()
        signature = signer.sign(alg, sk, message)
        sk[:] = bytes(len(sk))
        assert len(pk) == alg.public_key_size
        assert len(signature) == alg.signature_size
        cache[key] = (pk, message, signature)
    return cache[key]


# =========================================================================== SLH-DSA keyGen


def test_keygen_vector_file_shape() -> None:
    assert KEYGEN["parameterSet"] == "SLH-DSA-SHA2-256s"
    assert len(KEYGEN_CASES) == 10
    for case in KEYGEN_CASES:
        assert len(h(case["pk"])) == SLH_DSA_SHA2_256S.public_key_size
        assert len(h(case["sk"])) == SLH_DSA_SHA2_256S.private_key_size


@pytest.mark.parametrize("case", KEYGEN_CASES, ids=lambda c: f"tcId{c['tcId']}")
def test_slh_keygen_from_seeds_reproduces_acvp(case: dict[str, Any]) -> None:
    engine = _engine("slh-dsa-py")
    pk, sk = engine.keygen_from_seeds(  # type: ignore[attr-defined]
        SLH_DSA_SHA2_256S, h(case["skSeed"]), h(case["skPrf"]), h(case["pkSeed"])
    )
    assert bytes(pk) == h(case["pk"])
    assert bytes(sk) == h(case["sk"])


@pytest.mark.parametrize("engine_name", _engine_params(SLH_DSA_SHA2_256S, "verify"))
@pytest.mark.parametrize("case", KEYGEN_CASES, ids=lambda c: f"tcId{c['tcId']}")
def test_slh_public_from_private_acvp(case: dict[str, Any], engine_name: str) -> None:
    engine = _engine(engine_name)
    assert engine.public_from_private(SLH_DSA_SHA2_256S, bytearray(h(case["sk"]))) == h(case["pk"])


def _acvp_signers() -> list[Any]:
    """Engines that sign SLH-DSA-SHA2-256s but have no keygen_from_seeds."""
    out = []
    for param in _engine_params(SLH_DSA_SHA2_256S, "sign"):
        name = param.values[0]
        engine = _try_load(name)
        if engine is None or not hasattr(engine, "keygen_from_seeds"):
            out.append(param)
    return out


@pytest.mark.parametrize("verifier_name", _engine_params(SLH_DSA_SHA2_256S, "verify"))
@pytest.mark.parametrize("signer_name", _acvp_signers())
@pytest.mark.parametrize("case", SIGNING_KEYGEN_CASES, ids=lambda c: f"tcId{c['tcId']}")
def test_acvp_secret_key_signs_and_acvp_public_key_verifies(
    case: dict[str, Any], signer_name: str, verifier_name: str,
    acvp_signatures: dict[tuple[str, int], bytes],
) -> None:
    key = (signer_name, case["tcId"])
    if key not in acvp_signatures:
        signer = _engine(signer_name)
        acvp_signatures[key] = signer.sign(SLH_DSA_SHA2_256S, bytearray(h(case["sk"])),
                                           ACVP_MESSAGE)
    signature = acvp_signatures[key]
    verifier = _engine(verifier_name)
    assert verifier.verify(SLH_DSA_SHA2_256S, h(case["pk"]), ACVP_MESSAGE, signature)
    # ... and under another case's key it does not.
    other = KEYGEN_CASES[1] if case is not KEYGEN_CASES[1] else KEYGEN_CASES[2]
    assert not verifier.verify(SLH_DSA_SHA2_256S, h(other["pk"]), ACVP_MESSAGE, signature)


# =========================================================================== SLH-DSA sigGen


def test_siggen_vector_file_shape() -> None:
    assert SIGGEN["parameterSet"] == "SLH-DSA-SHA2-256s"
    assert SIGGEN["deterministic"] is True
    assert SIGGEN["preHash"] == "pure"
    assert len(h(SIGGEN_CASE["context"])) == 255
    assert len(h(SIGGEN_CASE["signature"])) == SLH_DSA_SHA2_256S.signature_size
    assert h(SIGGEN_CASE["sk"])[64:] == h(SIGGEN_CASE["pk"])


def test_siggen_slhdsa_py_deterministic_reproduces_signature() -> None:
    engine = _engine("slh-dsa-py")
    signature = engine.sign_with_context(  # type: ignore[attr-defined]
        SLH_DSA_SHA2_256S, bytearray(h(SIGGEN_CASE["sk"])), h(SIGGEN_CASE["message"]),
        h(SIGGEN_CASE["context"]), randomize=False,
    )
    assert signature == h(SIGGEN_CASE["signature"])


def _pqcrypto_module_verify(pk: bytes, message: bytes, signature: bytes, context: bytes) -> bool:
    import pqcrypto.sign.slh_dsa_sha2_256s as mod

    try:
        mod.verify(pk, message, signature, context=context)
    except Exception:
        return False
    return True


def _slhdsa_py_verify(pk: bytes, message: bytes, signature: bytes, context: bytes) -> bool:
    engine = _engine("slh-dsa-py")
    return bool(engine.verify_with_context(  # type: ignore[attr-defined]
        SLH_DSA_SHA2_256S, pk, message, signature, context))


CONTEXT_VERIFIERS: dict[str, Callable[[bytes, bytes, bytes, bytes], bool]] = {
    "pqcrypto-module": _pqcrypto_module_verify,
    "slh-dsa-py": _slhdsa_py_verify,
}


@pytest.mark.parametrize("verifier", CONTEXT_VERIFIERS)
def test_siggen_signature_verifies_with_context_only(verifier: str) -> None:
    if verifier == "pqcrypto-module":
        _engine("pqcrypto")
    check = CONTEXT_VERIFIERS[verifier]
    pk, message = h(SIGGEN_CASE["pk"]), h(SIGGEN_CASE["message"])
    signature, context = h(SIGGEN_CASE["signature"]), h(SIGGEN_CASE["context"])
    assert check(pk, message, signature, context)
    assert not check(pk, message, signature, b"")
    assert not check(pk, message, signature, context[:-1])


@pytest.mark.parametrize("engine_name", _engine_params(SLH_DSA_SHA2_256S, "verify"))
def test_siggen_signature_rejected_by_empty_context_engine_api(engine_name: str) -> None:
    engine = _engine(engine_name)
    assert not engine.verify(SLH_DSA_SHA2_256S, h(SIGGEN_CASE["pk"]), h(SIGGEN_CASE["message"]),
                             h(SIGGEN_CASE["signature"]))


# =========================================================================== SLH-DSA sigVer


def _sigver_fixed() -> bytes:
    """The case's signature with the last bit of SIG_HT (the signature's last bit) flipped."""
    signature = bytearray(h(SIGVER_CASE["signature"]))
    signature[-1] ^= 0x01
    return bytes(signature)


def test_sigver_vector_file_shape() -> None:
    assert SIGVER["parameterSet"] == "SLH-DSA-SHA2-256s"
    assert SIGVER["preHash"] == "pure"
    assert SIGVER_CASE["testPassed"] is False
    assert SIGVER_CASE["reason"] == "modified signature - SIGHT"
    assert SIGVER_CASE["context"] == ""
    assert len(h(SIGVER_CASE["signature"])) == SLH_DSA_SHA2_256S.signature_size


@pytest.mark.parametrize("engine_name", _engine_params(SLH_DSA_SHA2_256S, "verify"))
def test_sigver_rejected_as_given_accepted_with_one_bit_fix(engine_name: str) -> None:
    engine = _engine(engine_name)
    pk, message = h(SIGVER_CASE["pk"]), h(SIGVER_CASE["message"])
    assert not engine.verify(SLH_DSA_SHA2_256S, pk, message, h(SIGVER_CASE["signature"]))
    assert engine.verify(SLH_DSA_SHA2_256S, pk, message, _sigver_fixed())


@pytest.mark.parametrize("verifier", CONTEXT_VERIFIERS)
def test_sigver_with_explicit_empty_context(verifier: str) -> None:
    if verifier == "pqcrypto-module":
        _engine("pqcrypto")
    check = CONTEXT_VERIFIERS[verifier]
    pk, message = h(SIGVER_CASE["pk"]), h(SIGVER_CASE["message"])
    assert not check(pk, message, h(SIGVER_CASE["signature"]), b"")
    assert check(pk, message, _sigver_fixed(), b"")


# =========================================================================== ML-DSA-87 keyGen


def test_mldsa87_cryptography_from_seed_gives_acvp_pk() -> None:
    _engine("cryptography")
    from cryptography.hazmat.primitives.asymmetric import mldsa

    key = mldsa.MLDSA87PrivateKey.from_seed_bytes(h(MLDSA_CASE["seed"]))
    assert key.public_key().public_bytes_raw() == h(MLDSA_CASE["pk"])
    assert key.private_bytes_raw() == h(MLDSA_CASE["seed"])


def test_mldsa87_cryptography_engine_public_from_private() -> None:
    engine = _engine("cryptography")
    assert engine.public_from_private(ML_DSA_87, bytearray(h(MLDSA_CASE["seed"]))) \
        == h(MLDSA_CASE["pk"])


MLDSA_MESSAGE = b"writroot: signed with the ACVP ML-DSA-87 keyGen key"


def _sign_pqcrypto_expanded_sk() -> bytes:
    _engine("pqcrypto")
    import pqcrypto.sign.ml_dsa_87 as mod

    assert len(h(MLDSA_CASE["sk"])) == mod.SECRET_KEY_SIZE == 4896
    return bytes(mod.sign(h(MLDSA_CASE["sk"]), MLDSA_MESSAGE))


def _sign_cryptography_seed() -> bytes:
    return _engine("cryptography").sign(ML_DSA_87, bytearray(h(MLDSA_CASE["seed"])),
                                        MLDSA_MESSAGE)


MLDSA_ACVP_SIGNERS = {
    "pqcrypto-expanded-sk": _sign_pqcrypto_expanded_sk,
    "cryptography-seed": _sign_cryptography_seed,
}


@pytest.fixture(scope="module")
def mldsa_acvp_signatures() -> dict[str, bytes]:
    return {}


@pytest.mark.parametrize("verifier_name", _engine_params(ML_DSA_87, "verify"))
@pytest.mark.parametrize("signer", MLDSA_ACVP_SIGNERS)
def test_mldsa87_acvp_keys_sign_and_verify_across_engines(
    signer: str, verifier_name: str, mldsa_acvp_signatures: dict[str, bytes]
) -> None:
    if signer not in mldsa_acvp_signatures:
        mldsa_acvp_signatures[signer] = MLDSA_ACVP_SIGNERS[signer]()
    signature = mldsa_acvp_signatures[signer]
    assert len(signature) == ML_DSA_87.signature_size
    verifier = _engine(verifier_name)
    pk = h(MLDSA_CASE["pk"])
    assert verifier.verify(ML_DSA_87, pk, MLDSA_MESSAGE, signature)
    assert not verifier.verify(ML_DSA_87, pk, MLDSA_MESSAGE + b".", signature)


# =========================================================================== ML-DSA-44 keyGen


def test_mldsa44_cryptography_engine_public_from_seed_gives_acvp_pk() -> None:
    """Witness and log keys (C2SP tlog-cosignature): the ACVP keyGen case, seed -> pk."""
    engine = _engine("cryptography")
    assert engine.public_from_private(ML_DSA_44, bytearray(h(MLDSA44_CASE["seed"]))) \
        == h(MLDSA44_CASE["pk"])


@pytest.mark.parametrize("verifier_name", _engine_params(ML_DSA_44, "verify"))
def test_mldsa44_acvp_key_signs_and_verifies_across_engines(verifier_name: str) -> None:
    message = b"writroot: signed with the ACVP ML-DSA-44 keyGen key"
    signature = _engine("cryptography").sign(ML_DSA_44, bytearray(h(MLDSA44_CASE["seed"])),
                                             message)
    assert len(signature) == ML_DSA_44.signature_size
    verifier = _engine(verifier_name)
    assert verifier.verify(ML_DSA_44, h(MLDSA44_CASE["pk"]), message, signature)
    assert not verifier.verify(ML_DSA_44, h(MLDSA44_CASE["pk"]), message + b".", signature)


def test_mldsa44_spki_round_trip() -> None:
    from writroot.crypto import spki

    pk = h(MLDSA44_CASE["pk"])
    assert spki.decode_pem(spki.encode_pem(ML_DSA_44, pk).encode(), "t") == (ML_DSA_44, pk)


# =========================================================================== cross-engine matrix


#: slh-dsa-py is pure Python and takes seconds per SLH-DSA-SHA2-256s signature; its 256s
#: signing is covered by the deterministic sigGen known-answer test instead.
MATRIX_SIGNER_EXCLUDE = {SLH_DSA_SHA2_256S.name: ("slh-dsa-py",)}


def _matrix() -> list[Any]:
    out = []
    for alg in (SLH_DSA_SHA2_256S, SLH_DSA_SHA2_256F, ML_DSA_44, ML_DSA_65, ML_DSA_87):
        exclude = MATRIX_SIGNER_EXCLUDE.get(alg.name, ())
        for signer in _engine_params(alg, "sign", exclude=exclude):
            for verifier in _engine_params(alg, "verify"):
                marks = [*signer.marks, *verifier.marks]
                s, v = signer.values[0], verifier.values[0]
                out.append(pytest.param(alg.name, s, v, id=f"{alg.name}:{s}->{v}",
                                        marks=marks))
    return out


@pytest.mark.parametrize(("alg_name", "signer_name", "verifier_name"), _matrix())
def test_cross_engine_matrix(
    alg_name: str, signer_name: str, verifier_name: str,
    fresh_signatures: dict[tuple[str, str], tuple[bytes, bytes, bytes]],
) -> None:
    alg = ALGS[alg_name]
    pk, message, signature = _fresh(fresh_signatures, alg, signer_name)
    verifier = _engine(verifier_name)
    assert verifier.verify(alg, pk, message, signature)


def test_cross_engine_matrix_has_independent_pairs() -> None:
    """Guard against the matrix silently degenerating to self-checks only."""
    pairs = {(p.values[0], p.values[1], p.values[2]) for p in _matrix() if not _is_skipped(p)}
    assert ("SLH-DSA-SHA2-256s", "pqcrypto", "slh-dsa-py") in pairs
    assert ("SLH-DSA-SHA2-256f", "pqcrypto", "slh-dsa-py") in pairs
    assert ("SLH-DSA-SHA2-256f", "slh-dsa-py", "pqcrypto") in pairs
    assert ("ML-DSA-65", "cryptography", "pqcrypto") in pairs
    assert ("ML-DSA-87", "cryptography", "pqcrypto") in pairs


# =========================================================================== bit flips

BIT_FLIP_SOURCES = {SLH_DSA_SHA2_256S.name: "pqcrypto", ML_DSA_87.name: "cryptography"}


def _bitflip_params() -> list[Any]:
    out = []
    for alg_name, signer in BIT_FLIP_SOURCES.items():
        for verifier in _engine_params(ALGS[alg_name], "verify"):
            v = verifier.values[0]
            out.append(pytest.param(alg_name, v, id=f"{alg_name}:{signer}->{v}",
                                    marks=verifier.marks))
    return out


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@pytest.mark.parametrize(("alg_name", "verifier_name"), _bitflip_params())
@settings(max_examples=25, deadline=None)
@given(target=st.sampled_from(["message", "signature", "public key"]), data=st.data())
def test_any_single_bit_flip_fails_verification(
    alg_name: str, verifier_name: str, target: str, data: st.DataObject,
    fresh_signatures: dict[tuple[str, str], tuple[bytes, bytes, bytes]],
) -> None:
    alg = ALGS[alg_name]
    verifier = _engine(verifier_name)
    pk, message, signature = _fresh(fresh_signatures, alg, BIT_FLIP_SOURCES[alg_name])
    parts = {"message": message, "signature": signature, "public key": pk}
    bit = data.draw(st.integers(min_value=0, max_value=len(parts[target]) * 8 - 1), label="bit")
    parts[target] = _flip(parts[target], bit)
    assert not verifier.verify(alg, parts["public key"], parts["message"], parts["signature"])
