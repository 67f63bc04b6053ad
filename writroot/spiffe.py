"""SPIFFE trust bundles (the SPIFFE Trust Domain and Bundle spec, §4): a JWKS with `use`
x509-svid or jwt-svid, `spiffe_sequence` and `spiffe_refresh_hint`, as SPIRE exports them.

Checked strictly before a regional root signs one: a bundle SPIRE would reject, or that smuggles
a private key, must never be signed.
"""

from __future__ import annotations

import re
from typing import Any

from writroot.errors import BadInput, excerpt, field_name
from writroot.jsonio import b64decode

MAX_KEYS = 256
_TRUST_DOMAIN_RE = re.compile(r"[a-z0-9._-]{1,255}")
_B64URL_RE = re.compile(r"[A-Za-z0-9_-]+")
_KTY_FIELDS = {"EC": ("crv", "x", "y"), "RSA": ("n", "e"), "OKP": ("crv", "x")}
_PRIVATE_FIELDS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
_JWK_FIELDS = {"kty", "use", "kid", "alg", "crv", "x", "y", "n", "e", "x5c", "x5t", "x5t#S256",
               "key_ops"}


def trust_domain_check(value: Any, where: str) -> str:
    """A SPIFFE trust domain name: lowercase letters, digits, '.', '-', '_' (no scheme)."""
    if not isinstance(value, str) or not _TRUST_DOMAIN_RE.fullmatch(value) \
            or value.startswith(".") or value.endswith("."):
        raise BadInput("expected a SPIFFE trust domain like conus-1.writsov.com", where)
    return value


def _b64url(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _B64URL_RE.fullmatch(value):
        raise BadInput("expected unpadded base64url", where)
    return value


def _b64url_int(text: str) -> int:
    import base64

    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


def _same_key(jwk: dict[str, Any], public: Any, where: str) -> None:
    """RFC 7517 §4.7: the JWK's key parameters must be the certificate's key."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if isinstance(public, ec.EllipticCurvePublicKey) and jwk["kty"] == "EC":
        nums = public.public_numbers()
        same = (nums.x, nums.y) == (_b64url_int(jwk["x"]), _b64url_int(jwk["y"]))
    elif isinstance(public, rsa.RSAPublicKey) and jwk["kty"] == "RSA":
        rnums = public.public_numbers()
        same = (rnums.n, rnums.e) == (_b64url_int(jwk["n"]), _b64url_int(jwk["e"]))
    else:
        same = False
    if not same:
        raise BadInput("the JWK's key is not the key of the certificate in x5c", where)


def _x5c(value: Any, where: str, jwk: dict[str, Any] | None = None) -> None:
    from cryptography import x509

    if not isinstance(value, list) or len(value) != 1:
        raise BadInput("an x509-svid key carries exactly one certificate in x5c", where)
    der = b64decode(value[0], f"{where}[0]")
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise BadInput(f"not a DER X.509 certificate ({exc})", f"{where}[0]") from None
    try:
        ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        ca = False
    if not ca:
        raise BadInput("an x509-svid bundle key must be a CA certificate", f"{where}[0]")
    if jwk is not None:
        _same_key(jwk, cert.public_key(), where)


def _jwk(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadInput("expected a JWK object", where)
    for name in _PRIVATE_FIELDS:
        if name in value:
            raise BadInput("a trust bundle must not carry private key material",
                           f"{where}.{name}")
    extra = sorted(set(value) - _JWK_FIELDS)
    if extra:
        raise BadInput(f"unknown JWK field {excerpt(extra[0], 24)}",
                       f"{where}.{field_name(extra[0])}")
    for name in ("kid", "alg", "x5t", "x5t#S256"):  # free text, but text: a list would
        text = value.get(name, "-")                   # reach set() and the review unhashed
        if not isinstance(text, str) or not text or len(text) > 256:
            raise BadInput(f"{name} must be a string of 1 to 256 characters",
                           f"{where}.{name}")
    kty = value.get("kty")
    if kty not in _KTY_FIELDS:
        raise BadInput(f"kty must be one of {', '.join(_KTY_FIELDS)}", f"{where}.kty")
    for name in _KTY_FIELDS[kty]:
        if name not in value:
            raise BadInput(f"missing field {name!r} for kty {kty}", where)
        if name != "crv":
            _b64url(value[name], f"{where}.{name}")
    use = value.get("use")
    if use == "x509-svid":
        _x5c(value.get("x5c"), f"{where}.x5c", value)
    elif use == "jwt-svid":
        if "kid" not in value:
            raise BadInput("a jwt-svid key needs a key id", f"{where}.kid")
    else:
        raise BadInput("use must be x509-svid or jwt-svid", f"{where}.use")
    return value


def bundle_check(value: Any, where: str) -> dict[str, Any]:
    """A SPIFFE bundle: `keys` (JWKs), `spiffe_sequence`, optional `spiffe_refresh_hint`."""
    if not isinstance(value, dict):
        raise BadInput("expected a SPIFFE bundle object", where)
    extra = sorted(set(value) - {"keys", "spiffe_sequence", "spiffe_refresh_hint"})
    if extra:
        raise BadInput(f"unknown field {excerpt(extra[0], 24)}",
                       f"{where}.{field_name(extra[0])}")
    keys = value.get("keys")
    if not isinstance(keys, list) or not 1 <= len(keys) <= MAX_KEYS:
        raise BadInput(f"keys must be a list of 1 to {MAX_KEYS} JWKs", f"{where}.keys")
    for i, key in enumerate(keys):
        _jwk(key, f"{where}.keys[{i}]")
    kids = [k["kid"] for k in keys if "kid" in k]
    if len(set(kids)) != len(kids):
        raise BadInput("duplicate kid", f"{where}.keys")
    seq = value.get("spiffe_sequence")
    if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq < 2**53:
        raise BadInput("spiffe_sequence must be a non-negative integer (required for signing)",
                       f"{where}.spiffe_sequence")
    hint = value.get("spiffe_refresh_hint", 1)
    if not isinstance(hint, int) or isinstance(hint, bool) or not 1 <= hint <= 31 * 86400:
        raise BadInput("spiffe_refresh_hint must be 1 to 2678400 seconds",
                       f"{where}.spiffe_refresh_hint")
    return value


def bundle_facts(bundle: dict[str, Any]) -> dict[str, Any]:
    """What custodians check in a checked bundle: the SHA-256 of each CA certificate (the DER
    in an x509-svid key's x5c) and each JWT key id, in the bundle's order."""
    import hashlib

    cas = [hashlib.sha256(b64decode(k["x5c"][0], "x5c")).hexdigest()
           for k in bundle["keys"] if k.get("use") == "x509-svid"]
    kids = [str(k["kid"]) for k in bundle["keys"] if k.get("use") == "jwt-svid"]
    return {"x509_authorities": cas, "jwt_kids": kids}
