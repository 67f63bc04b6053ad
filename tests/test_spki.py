"""SubjectPublicKeyInfo encoding (RFC 9909 SLH-DSA, RFC 9881 ML-DSA) and strict decoding."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from writroot.crypto import spki
from writroot.crypto.algorithms import (
    ML_DSA_65,
    ML_DSA_87,
    SLH_DSA_SHA2_256F,
    SLH_DSA_SHA2_256S,
    Algorithm,
)
from writroot.errors import BadInput

VECTORS = Path(__file__).parent / "vectors"

# RFC 9909: the SPKI prefixes for SLH-DSA-SHA2-256s (OID 2.16.840.1.101.3.4.3.24) and
# SLH-DSA-SHA2-256f (.25), followed by the 64-byte raw public key.
SLH_256S_PREFIX = bytes.fromhex("3050300b0609608648016503040318034100")
SLH_256F_PREFIX = bytes.fromhex("3050300b0609608648016503040319034100")

# The DER OBJECT IDENTIFIER TLV for SLH-DSA-SHA2-256s.
SLH_256S_OID_TLV = bytes.fromhex("0609608648016503040318")

# An ACVP SLH-DSA-SHA2-256s public key (keyGen tcId 81) and an ML-DSA-87 one (tcId 51).
SLH_PK = bytes.fromhex(
    json.loads((VECTORS / "slh-dsa-sha2-256s-keygen.json").read_text())["tests"][0]["pk"]
)
MLDSA87_PK = bytes.fromhex(
    json.loads((VECTORS / "ml-dsa-87-keygen.json").read_text())["tests"][0]["pk"]
)


def _cryptography_spki(alg: Algorithm, seed: bytes) -> tuple[bytes, bytes, bytes]:
    """(raw pk, DER SPKI, PEM SPKI) from `cryptography` for an ML-DSA key."""
    from cryptography.hazmat.primitives.asymmetric import mldsa
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    cls = mldsa.MLDSA87PrivateKey if alg is ML_DSA_87 else mldsa.MLDSA65PrivateKey
    pub = cls.from_seed_bytes(seed).public_key()
    return (
        pub.public_bytes_raw(),
        pub.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo),
        pub.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo),
    )


# --------------------------------------------------------------------------- encoding


def test_slh_256s_der_is_rfc9909_prefix_plus_key() -> None:
    assert spki.encode_der(SLH_DSA_SHA2_256S, SLH_PK) == SLH_256S_PREFIX + SLH_PK


def test_slh_256f_der_is_rfc9909_prefix_plus_key() -> None:
    assert spki.encode_der(SLH_DSA_SHA2_256F, SLH_PK) == SLH_256F_PREFIX + SLH_PK


def test_keyid_is_sha256_of_the_literal_der() -> None:
    expected = hashlib.sha256(SLH_256S_PREFIX + SLH_PK).hexdigest()
    assert spki.keyid(SLH_DSA_SHA2_256S, SLH_PK) == expected
    assert len(expected) == 64 and expected == expected.lower()


def test_keyid_differs_between_parameter_sets() -> None:
    assert spki.keyid(SLH_DSA_SHA2_256S, SLH_PK) != spki.keyid(SLH_DSA_SHA2_256F, SLH_PK)


@pytest.mark.parametrize("alg", [ML_DSA_87, ML_DSA_65], ids=lambda a: a.name)
def test_mldsa_der_matches_cryptography(alg: Algorithm) -> None:
    raw, der, pem = _cryptography_spki(alg, bytes(range(32)))
    assert spki.encode_der(alg, raw) == der
    assert spki.encode_pem(alg, raw).encode("ascii") == pem
    assert spki.decode_der(der) == (alg, raw)


def test_mldsa87_acvp_pk_der_matches_cryptography() -> None:
    from cryptography.hazmat.primitives.asymmetric import mldsa
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    der = mldsa.MLDSA87PublicKey.from_public_bytes(MLDSA87_PK).public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo
    )
    assert spki.encode_der(ML_DSA_87, MLDSA87_PK) == der


@pytest.mark.parametrize(
    ("alg", "pk"),
    [(SLH_DSA_SHA2_256S, SLH_PK), (SLH_DSA_SHA2_256F, SLH_PK), (ML_DSA_87, MLDSA87_PK)],
    ids=["SLH-DSA-SHA2-256s", "SLH-DSA-SHA2-256f", "ML-DSA-87"],
)
def test_der_and_pem_round_trip(alg: Algorithm, pk: bytes) -> None:
    der = spki.encode_der(alg, pk)
    decoded_alg, decoded_pk = spki.decode_der(der)
    assert decoded_alg is alg and decoded_pk == pk

    pem = spki.encode_pem(alg, pk)
    assert pem.startswith("-----BEGIN PUBLIC KEY-----\n")
    assert pem.endswith("\n-----END PUBLIC KEY-----\n")
    body = pem.splitlines()[1:-1]
    assert all(len(line) <= 64 for line in body)
    assert base64.b64decode("".join(body)) == der
    assert spki.decode_pem(pem.encode("ascii")) == (alg, pk)
    # CRLF line endings and surrounding whitespace are tolerated.
    assert spki.decode_pem(b"\n" + pem.replace("\n", "\r\n").encode("ascii") + b"\n") == (alg, pk)


@settings(max_examples=25, deadline=None)
@given(pk=st.binary(min_size=64, max_size=64))
def test_round_trip_any_slh_key(pk: bytes) -> None:
    der = spki.encode_der(SLH_DSA_SHA2_256S, pk)
    assert der == SLH_256S_PREFIX + pk
    assert spki.decode_der(der) == (SLH_DSA_SHA2_256S, pk)
    assert spki.decode_pem(spki.encode_pem(SLH_DSA_SHA2_256S, pk).encode()) == (
        SLH_DSA_SHA2_256S, pk)


@pytest.mark.parametrize("length", [0, 63, 65, 2592])
def test_encode_refuses_wrong_key_length(length: int) -> None:
    with pytest.raises(BadInput):
        spki.encode_der(SLH_DSA_SHA2_256S, bytes(length))


# --------------------------------------------------------------------------- strict decoding

_PK = SLH_PK

HOSTILE_DER = {
    # AlgorithmIdentifier with parameters NULL present (RFC 9909 requires them absent).
    "parameters-null-present":
        bytes.fromhex("3052300d") + SLH_256S_OID_TLV + bytes.fromhex("0500034100") + _PK,
    # BIT STRING claiming one unused bit.
    "unused-bits-01": bytes.fromhex("3050300b") + SLH_256S_OID_TLV + bytes.fromhex("034101") + _PK,
    # Key one byte short, with all lengths consistent.
    "key-one-byte-short":
        bytes.fromhex("304f300b") + SLH_256S_OID_TLV + bytes.fromhex("034000") + _PK[:-1],
    # Key one byte long, with all lengths consistent.
    "key-one-byte-long":
        bytes.fromhex("3051300b") + SLH_256S_OID_TLV + bytes.fromhex("034200") + _PK + b"\x00",
    # A valid SPKI followed by one extra byte.
    "trailing-byte": SLH_256S_PREFIX + _PK + b"\x00",
    # Long-form lengths where DER requires the short form.
    "long-form-outer-length":
        bytes.fromhex("308150300b") + SLH_256S_OID_TLV + bytes.fromhex("034100") + _PK,
    "long-form-algid-length":
        bytes.fromhex("30513081" "0b") + SLH_256S_OID_TLV + bytes.fromhex("034100") + _PK,
    "long-form-bitstring-length":
        bytes.fromhex("3051300b") + SLH_256S_OID_TLV + bytes.fromhex("03814100") + _PK,
    # BER indefinite length.
    "indefinite-length":
        bytes.fromhex("3080300b") + SLH_256S_OID_TLV + bytes.fromhex("034100") + _PK + b"\x00\x00",
    # Unknown OID 2.16.840.1.101.3.4.3.99.
    "unknown-oid-3.4.3.99": bytes.fromhex("3050300b0609608648016503040363034100") + _PK,
    # Not a SEQUENCE: a SET, and an OCTET STRING.
    "set-not-sequence": bytes.fromhex("3150300b0609608648016503040318034100") + _PK,
    "octet-string-not-sequence": bytes.fromhex("0450300b0609608648016503040318034100") + _PK,
    # The key in an OCTET STRING instead of a BIT STRING.
    "key-in-octet-string": bytes.fromhex("3050300b0609608648016503040318044100") + _PK,
    # An ML-DSA-87 OID with an SLH-DSA-sized key.
    "mldsa87-oid-64-byte-key": bytes.fromhex("3050300b0609608648016503040313034100") + _PK,
    # Nothing, and a bare prefix.
    "empty": b"",
    "truncated": SLH_256S_PREFIX + _PK[:10],
}


def test_hostile_der_lengths_are_self_consistent() -> None:
    """The hand-built DER must be well formed where intended, so each case tests its one flaw."""
    for name in ("parameters-null-present", "unused-bits-01", "key-one-byte-short",
                 "key-one-byte-long", "unknown-oid-3.4.3.99", "mldsa87-oid-64-byte-key"):
        der = HOSTILE_DER[name]
        assert der[0] == 0x30 and der[1] == len(der) - 2, name


@pytest.mark.parametrize("der", HOSTILE_DER.values(), ids=HOSTILE_DER.keys())
def test_decode_der_refuses(der: bytes) -> None:
    with pytest.raises(BadInput) as info:
        spki.decode_der(der, "hostile.der")
    assert info.value.where == "hostile.der"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("parameters-null-present", "parameters"),
        ("unused-bits-01", "unused bits"),
        ("key-one-byte-short", "64 bytes"),
        ("key-one-byte-long", "64 bytes"),
        ("unknown-oid-3.4.3.99", "2.16.840.1.101.3.4.3.99"),
        ("mldsa87-oid-64-byte-key", "2592 bytes"),
    ],
)
def test_decode_der_refusal_reason(name: str, message: str) -> None:
    with pytest.raises(BadInput, match=message.replace(".", r"\.")):
        spki.decode_der(HOSTILE_DER[name])


def _pem(label: str, der: bytes) -> bytes:
    body = base64.b64encode(der).decode()
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN {label}-----\n{lines}\n-----END {label}-----\n".encode()


HOSTILE_PEM = {
    "garbage": b"this is not a PEM block at all\n",
    "empty": b"",
    "bad-base64": b"-----BEGIN PUBLIC KEY-----\n!!!!not*base64!!!!\n-----END PUBLIC KEY-----\n",
    "base64-missing-padding": b"-----BEGIN PUBLIC KEY-----\nAAA\n-----END PUBLIC KEY-----\n",
    "label-certificate": _pem("CERTIFICATE", SLH_256S_PREFIX + _PK),
    "label-rsa-public-key": _pem("RSA PUBLIC KEY", SLH_256S_PREFIX + _PK),
    "label-private-key": _pem("PRIVATE KEY", SLH_256S_PREFIX + _PK),
    "mismatched-end-label":
        _pem("PUBLIC KEY", SLH_256S_PREFIX + _PK).replace(b"END PUBLIC KEY", b"END CERTIFICATE"),
    "two-blocks": _pem("PUBLIC KEY", SLH_256S_PREFIX + _PK) * 2,
    "text-before-block": b"hello\n" + _pem("PUBLIC KEY", SLH_256S_PREFIX + _PK),
    "hostile-der-inside": _pem("PUBLIC KEY", HOSTILE_DER["parameters-null-present"]),
    "trailing-byte-inside": _pem("PUBLIC KEY", HOSTILE_DER["trailing-byte"]),
}


@pytest.mark.parametrize("pem", HOSTILE_PEM.values(), ids=HOSTILE_PEM.keys())
def test_decode_pem_refuses(pem: bytes) -> None:
    with pytest.raises(BadInput):
        spki.decode_pem(pem, "hostile.pem")


def test_valid_pem_control_case_is_accepted() -> None:
    """The hostile PEM cases differ from this one only in their flaw."""
    assert spki.decode_pem(_pem("PUBLIC KEY", SLH_256S_PREFIX + _PK)) == (SLH_DSA_SHA2_256S, _PK)
