"""SPIFFE trust bundles and trust-domain names, checked strictly before a regional root signs
them: a SPIRE-style bundle is accepted; private keys, non-CA certificates, unknown fields and
malformed sequences are refused, each naming the field."""

from __future__ import annotations

import base64
import copy
from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import NOW
from writroot.errors import BadInput
from writroot.spiffe import bundle_check, trust_domain_check

TRUST_DOMAIN = "conus-1.writsov.com"


def _b64url(n: int) -> str:
    return base64.urlsafe_b64encode(n.to_bytes(32, "big")).rstrip(b"=").decode()


def _ec_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    nums = key.public_key().public_numbers()
    return {"kty": "EC", "crv": "P-256", "x": _b64url(nums.x), "y": _b64url(nums.y)}


def _cert(key: ec.EllipticCurvePrivateKey, ca: bool | None) -> x509.Certificate:
    """Self-signed, as SPIRE's upstream-less CA is; ca=None omits basicConstraints."""
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "SPIFFE")])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOW - timedelta(hours=1))
               .not_valid_after(NOW + timedelta(days=7))
               .add_extension(x509.SubjectAlternativeName(
                   [x509.UniformResourceIdentifier(f"spiffe://{TRUST_DOMAIN}")]),
                   critical=False))
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None),
                                        critical=True)
    return builder.sign(key, hashes.SHA256())


def _x5c(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


@pytest.fixture(scope="module")
def material() -> dict[str, Any]:
    ca_key, jwt_key, other_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    return {"ca_key": ca_key, "jwt_key": jwt_key, "other_key": other_key,
            "ca": _cert(ca_key, True), "leaf": _cert(ca_key, False),
            "bare": _cert(ca_key, None), "other_ca": _cert(other_key, True)}


@pytest.fixture()
def bundle(material) -> dict[str, Any]:
    """What `spire-server bundle show -format spiffe` prints: an X.509 CA and a JWT key."""
    jwt_pub = material["jwt_key"].public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return {
        "keys": [
            {"use": "x509-svid", **_ec_jwk(material["ca_key"]), "x5c": [_x5c(material["ca"])]},
            {"use": "jwt-svid", **_ec_jwk(material["jwt_key"]),
             "kid": base64.urlsafe_b64encode(jwt_pub[-24:]).rstrip(b"=").decode()},
        ],
        "spiffe_sequence": 12,
        "spiffe_refresh_hint": 300,
    }


def test_spire_bundle_is_accepted(bundle) -> None:
    assert bundle_check(copy.deepcopy(bundle), "bundle") == bundle


def test_optional_fields_are_accepted(bundle) -> None:
    del bundle["spiffe_refresh_hint"]
    bundle["spiffe_sequence"] = 0
    bundle["keys"][1].update({"alg": "ES256", "key_ops": ["verify"]})
    bundle["keys"][0]["kid"] = "x509-ca-1"
    assert bundle_check(bundle, "bundle") is bundle


def test_rsa_and_okp_keys(bundle) -> None:
    bundle["keys"][1:] = [
        {"use": "jwt-svid", "kty": "RSA", "kid": "rsa-1", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSy",
         "e": "AQAB"},
        {"use": "jwt-svid", "kty": "OKP", "kid": "ed-1", "crv": "Ed25519",
         "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]
    assert bundle_check(bundle, "bundle") is bundle


def _set(bundle: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    node: Any = bundle
    for p in path[:-1]:
        node = node[p]
    if value is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value


DELETE = object()

REJECTED = [
    # (case, where to change, value, the `where` named, message)
    ("private key d on the jwt key", ("keys", 1, "d"), "jUvYgC4-d2rVpjzKqa4yGqL8mYk",
     "bundle.keys[1].d", "private key material"),
    ("private key d on the x509 key", ("keys", 0, "d"), "jUvYgC4", "bundle.keys[0].d",
     "private key material"),
    ("RSA private prime p", ("keys", 1, "p"), "AQAB", "bundle.keys[1].p", "private key material"),
    ("symmetric key k", ("keys", 1, "k"), "c2VjcmV0", "bundle.keys[1].k", "private key material"),
    ("unknown JWK field", ("keys", 1, "x5u"), "https://example.com/ca", "bundle.keys[1].x5u",
     "unknown JWK field 'x5u'"),
    ("unknown top-level field", ("spiffe_trust_domain",), TRUST_DOMAIN,
     "bundle.spiffe_trust_domain", "unknown field 'spiffe_trust_domain'"),
    ("missing kid on a jwt-svid key", ("keys", 1, "kid"), DELETE, "bundle.keys[1].kid",
     "needs a key id"),
    ("empty kid on a jwt-svid key", ("keys", 1, "kid"), "", "bundle.keys[1].kid",
     "kid must be a string of 1 to 256 characters"),
    # a list or object where text belongs was an internal fault (unhashable in set())
    ("list kid on the x509 key", ("keys", 0, "kid"), ["a", "b"], "bundle.keys[0].kid",
     "kid must be a string"),
    ("object kid on a jwt-svid key", ("keys", 1, "kid"), {"a": 1}, "bundle.keys[1].kid",
     "kid must be a string"),
    ("list alg", ("keys", 1, "alg"), ["ES256"], "bundle.keys[1].alg", "alg must be a string"),
    ("number x5t", ("keys", 0, "x5t"), 7, "bundle.keys[0].x5t", "x5t must be a string"),
    ("kid over 256 characters", ("keys", 1, "kid"), "k" * 257, "bundle.keys[1].kid",
     "kid must be a string of 1 to 256"),
    ("bad use", ("keys", 1, "use"), "sig", "bundle.keys[1].use", "x509-svid or jwt-svid"),
    ("missing use", ("keys", 0, "use"), DELETE, "bundle.keys[0].use", "x509-svid or jwt-svid"),
    ("unknown kty", ("keys", 1, "kty"), "oct", "bundle.keys[1].kty", "kty must be one of"),
    ("EC key without y", ("keys", 1, "y"), DELETE, "bundle.keys[1]", "missing field 'y'"),
    ("padded base64url coordinate", ("keys", 1, "x"), "AAAA==", "bundle.keys[1].x",
     "unpadded base64url"),
    ("x509-svid key without x5c", ("keys", 0, "x5c"), DELETE, "bundle.keys[0].x5c",
     "exactly one certificate"),
    ("x5c not base64", ("keys", 0, "x5c"), ["not base64!"], "bundle.keys[0].x5c[0]",
     "invalid base64"),
    ("x5c not a certificate", ("keys", 0, "x5c"), [base64.b64encode(b"\x30\x03\x02\x01\x01")
                                                   .decode()],
     "bundle.keys[0].x5c[0]", "not a DER X.509 certificate"),
    ("a JWK that is not an object", ("keys", 1), "jwt-key", "bundle.keys[1]",
     "expected a JWK object"),
    ("empty keys", ("keys",), [], "bundle.keys", "1 to 256 JWKs"),
    ("keys not a list", ("keys",), {"use": "jwt-svid"}, "bundle.keys", "1 to 256 JWKs"),
    ("missing spiffe_sequence", ("spiffe_sequence",), DELETE, "bundle.spiffe_sequence",
     "non-negative integer"),
    ("negative spiffe_sequence", ("spiffe_sequence",), -1, "bundle.spiffe_sequence",
     "non-negative integer"),
    ("bool spiffe_sequence", ("spiffe_sequence",), True, "bundle.spiffe_sequence",
     "non-negative integer"),
    ("string spiffe_sequence", ("spiffe_sequence",), "12", "bundle.spiffe_sequence",
     "non-negative integer"),
    ("float spiffe_sequence", ("spiffe_sequence",), 12.0, "bundle.spiffe_sequence",
     "non-negative integer"),
    ("spiffe_sequence beyond 2**53", ("spiffe_sequence",), 2**53, "bundle.spiffe_sequence",
     "non-negative integer"),
    ("refresh hint zero", ("spiffe_refresh_hint",), 0, "bundle.spiffe_refresh_hint",
     "1 to 2678400 seconds"),
    ("refresh hint over 31 days", ("spiffe_refresh_hint",), 31 * 86400 + 1,
     "bundle.spiffe_refresh_hint", "1 to 2678400 seconds"),
    ("refresh hint bool", ("spiffe_refresh_hint",), True, "bundle.spiffe_refresh_hint",
     "1 to 2678400 seconds"),
    ("refresh hint string", ("spiffe_refresh_hint",), "300", "bundle.spiffe_refresh_hint",
     "1 to 2678400 seconds"),
]


@pytest.mark.parametrize(("case", "path", "value", "where", "message"), REJECTED,
                         ids=[r[0] for r in REJECTED])
def test_rejected(bundle, case, path, value, where, message) -> None:
    _set(bundle, path, value)
    with pytest.raises(BadInput) as info:
        bundle_check(bundle, "bundle")
    assert info.value.where == where
    assert message in info.value.message


@pytest.mark.parametrize(("cert", "message"), [
    ("leaf", "must be a CA certificate"),
    ("bare", "must be a CA certificate"),  # no basicConstraints at all
])
def test_x509_svid_key_must_be_a_ca(bundle, material, cert, message) -> None:
    bundle["keys"][0]["x5c"] = [_x5c(material[cert])]
    with pytest.raises(BadInput) as info:
        bundle_check(bundle, "bundle")
    assert info.value.where == "bundle.keys[0].x5c[0]" and message in info.value.message


def test_x5c_carries_exactly_one_certificate(bundle, material) -> None:
    bundle["keys"][0]["x5c"] = [_x5c(material["ca"]), _x5c(material["other_ca"])]
    with pytest.raises(BadInput) as info:
        bundle_check(bundle, "bundle")
    assert info.value.where == "bundle.keys[0].x5c" and "exactly one" in info.value.message


def test_duplicate_kid(bundle) -> None:
    bundle["keys"].append({**bundle["keys"][1]})
    with pytest.raises(BadInput) as info:
        bundle_check(bundle, "bundle")
    assert info.value.where == "bundle.keys" and "duplicate kid" in info.value.message


def test_too_many_keys(bundle) -> None:
    bundle["keys"] = [{**bundle["keys"][1], "kid": f"k{i}"} for i in range(257)]
    with pytest.raises(BadInput) as info:
        bundle_check(bundle, "bundle")
    assert info.value.where == "bundle.keys"


@pytest.mark.parametrize("value", [[], "bundle", None, 7])
def test_bundle_must_be_an_object(value) -> None:
    with pytest.raises(BadInput) as info:
        bundle_check(value, "bundle")
    assert info.value.where == "bundle"


def test_x509_svid_key_must_match_its_certificate(bundle, material) -> None:
    bundle["keys"][0].update(_ec_jwk(material["other_key"]))  # the CA cert is ca_key's
    with pytest.raises(BadInput) as info:
        bundle_check(bundle, "bundle")
    assert info.value.where.startswith("bundle.keys[0]")


# -- trust-domain names -------------------------------------------------------------------

@pytest.mark.parametrize("name", [TRUST_DOMAIN, "conus-nss-1.writsov.com", "a", "td_1", "x" * 255,
                                  "1.2.3.4", "example.org"])
def test_trust_domain_accepted(name: str) -> None:
    assert trust_domain_check(name, "trust_domain") == name


@pytest.mark.parametrize("name", [
    "spiffe://x", "spiffe://conus-1.writsov.com", "Conus-1.writsov.com", "CONUS", "",
    ".conus-1.writsov.com", "conus-1.writsov.com.", "conus 1", "conus-1.writsov.com/ns",
    "x" * 256, "conus:443", "\uff43onus", "conus\n", None, 7, ["conus"]])
def test_trust_domain_rejected(name: Any) -> None:
    with pytest.raises(BadInput) as info:
        trust_domain_check(name, "op.trust_domain")
    assert info.value.where == "op.trust_domain"


_LABEL = "abcdefghijklmnopqrstuvwxyz0123456789-_"
_VALID = st.from_regex(r"[a-z0-9_-]([a-z0-9._-]{0,253}[a-z0-9_-])?", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(_VALID)
def test_trust_domain_names_of_the_spiffe_alphabet_are_accepted(name: str) -> None:
    assert trust_domain_check(name, "td") == name


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=40).filter(lambda s: any(c not in _LABEL + "." for c in s)))
def test_trust_domain_names_outside_the_alphabet_are_rejected(name: str) -> None:
    with pytest.raises(BadInput):
        trust_domain_check(name, "td")


@settings(max_examples=100, deadline=None)
@given(_VALID, st.sampled_from(["lead", "trail"]))
def test_trust_domain_names_with_an_edge_dot_are_rejected(name: str, edge: str) -> None:
    with pytest.raises(BadInput):
        trust_domain_check("." + name if edge == "lead" else name + ".", "td")


@settings(max_examples=100, deadline=None)
@given(_VALID.filter(lambda s: any(c.isalpha() for c in s)))
def test_uppercase_trust_domain_names_are_rejected(name: str) -> None:
    with pytest.raises(BadInput):
        trust_domain_check(name.upper(), "td")
