"""Inputs the demo fabricates as the other parties would: SPIRE's trust bundles, federation
service keys. Only public material leaves these functions."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from typing import Any

from writroot.crypto.keys import PublicKey


def _b64url(n: int, size: int) -> str:
    return base64.urlsafe_b64encode(n.to_bytes(size, "big")).rstrip(b"=").decode()


def spire_bundle(trust_domain: str, sequence: int, now: datetime, valid_days: int = 90
                 ) -> bytes:
    """A SPIFFE bundle as `spire-server bundle show -format spiffe` prints it: an X.509 CA
    (x509-svid) and a JWT signing key (jwt-svid), both P-256. The CA certificate is valid as
    long as the enclave-bundle statement that carries it (`valid_days`)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    ca_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "SPIFFE")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=valid_days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(f"spiffe://{trust_domain}")]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    jwt_key = ec.generate_private_key(ec.SECP256R1())
    keys = []
    for use, key in (("x509-svid", ca_key), ("jwt-svid", jwt_key)):
        nums = key.public_key().public_numbers()
        jwk: dict[str, Any] = {"use": use, "kty": "EC", "crv": "P-256", "x": _b64url(nums.x, 32),
               "y": _b64url(nums.y, 32)}
        if use == "x509-svid":
            jwk["x5c"] = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER))
                          .decode()]
        else:
            jwk["kid"] = base64.urlsafe_b64encode(jwt_key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)[-24:]
            ).rstrip(b"=").decode()
        keys.append(jwk)
    bundle = {"keys": keys, "spiffe_sequence": sequence, "spiffe_refresh_hint": 300}
    return (json.dumps(bundle, indent=4) + "\n").encode()


def federation_key_pem() -> bytes:
    """A federation-policy service's ML-DSA-87 public key (its private half stays there)."""
    from writroot.crypto import engines
    from writroot.crypto.algorithms import ML_DSA_87
    from writroot.crypto.keys import wipe

    public, private = engines.signer_for(ML_DSA_87).keygen(ML_DSA_87)
    wipe(private)
    return PublicKey(ML_DSA_87, public).pem.encode()
