"""SubjectPublicKeyInfo DER/PEM for SLH-DSA and ML-DSA (RFC 9909, RFC 9881).

AlgorithmIdentifier parameters are absent and the raw public key sits in the BIT STRING.
Decoding is strict: the input must re-encode to exactly the same DER bytes.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re

from asn1crypto import core

from writroot.crypto.algorithms import BY_OID, Algorithm
from writroot.errors import BadInput


class _AlgorithmIdentifier(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012 (asn1crypto's class-level schema)
        ("algorithm", core.ObjectIdentifier),
        ("parameters", core.Any, {"optional": True}),
    ]


class _SubjectPublicKeyInfo(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012 (asn1crypto's class-level schema)
        ("algorithm", _AlgorithmIdentifier),
        ("public_key", core.OctetBitString),
    ]


_PEM_RE = re.compile(
    rb"^-----BEGIN PUBLIC KEY-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END PUBLIC KEY-----\r?\n?$"
)


def _ecdsa_der(public_key: bytes) -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP384R1(), public_key)
    except ValueError:
        raise BadInput("not a P-384 point") from None
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def _decode_ecdsa(der: bytes, where: str) -> tuple[Algorithm, bytes]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from writroot.crypto.algorithms import ECDSA_P384

    try:
        key = serialization.load_der_public_key(der)
    except ValueError:
        raise BadInput("not a DER SubjectPublicKeyInfo", where) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp384r1":
        raise BadInput("only ECDSA keys on P-384 are supported", where)
    raw = key.public_bytes(serialization.Encoding.X962,
                           serialization.PublicFormat.UncompressedPoint)
    if _ecdsa_der(raw) != der:
        raise BadInput("not canonical DER", where)
    return ECDSA_P384, raw


def encode_der(alg: Algorithm, public_key: bytes) -> bytes:
    if alg.family == "ecdsa" and len(public_key) == alg.public_key_size:
        return _ecdsa_der(public_key)
    if len(public_key) != alg.public_key_size:
        raise BadInput(f"{alg.name} public key must be {alg.public_key_size} bytes, "
                       f"got {len(public_key)}")
    spki = _SubjectPublicKeyInfo(
        {
            "algorithm": _AlgorithmIdentifier({"algorithm": alg.oid}),
            "public_key": core.OctetBitString(public_key),
        }
    )
    return bytes(spki.dump(force=True))


def decode_der(der: bytes, where: str = "public key") -> tuple[Algorithm, bytes]:
    """Return (algorithm, raw public key); refuse unknown OIDs, parameters and non-DER."""
    try:
        spki = _SubjectPublicKeyInfo.load(der, strict=True)
        oid = spki["algorithm"]["algorithm"].dotted
        params = spki["algorithm"]["parameters"]
        bits = spki["public_key"]
        unused = bits.contents[0] if bits.contents else 1
        raw = bytes(bits.contents[1:])
    except (ValueError, TypeError, KeyError) as exc:
        raise BadInput(f"not a DER SubjectPublicKeyInfo: {exc}", where) from None
    alg = BY_OID.get(oid)
    if alg is not None and alg.family == "ecdsa":
        return _decode_ecdsa(der, where)
    if alg is None:
        raise BadInput(f"unsupported algorithm OID {oid}", where)
    if params.native is not None or params.contents:
        raise BadInput(f"{alg.name} AlgorithmIdentifier must have absent parameters", where)
    if unused != 0:
        raise BadInput("BIT STRING has unused bits", where)
    if len(raw) != alg.public_key_size:
        raise BadInput(f"{alg.name} public key must be {alg.public_key_size} bytes, "
                       f"got {len(raw)}", where)
    if encode_der(alg, raw) != der:
        raise BadInput("not canonical DER", where)
    return alg, raw


def encode_pem(alg: Algorithm, public_key: bytes) -> str:
    body = base64.b64encode(encode_der(alg, public_key)).decode("ascii")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"


def decode_pem(pem: bytes | str, where: str = "public key") -> tuple[Algorithm, bytes]:
    if isinstance(pem, str):
        pem = pem.encode("utf-8", "replace")
    match = _PEM_RE.match(pem.strip() + b"\n")
    if not match:
        raise BadInput("not a PEM PUBLIC KEY block", where)
    try:
        der = base64.b64decode(re.sub(rb"\s+", b"", match.group(1)), validate=True)
    except ValueError:
        raise BadInput("PEM body is not valid base64", where) from None
    return decode_der(der, where)


@functools.lru_cache(maxsize=4096)
def keyid(alg: Algorithm, public_key: bytes) -> str:
    """Lowercase hex SHA-256 of the SPKI DER (DESIGN §3). Cached: a verifier recomputes the
    keyid of every key it meets, often the same few keys many times."""
    return hashlib.sha256(encode_der(alg, public_key)).hexdigest()
