"""The algorithm registry: names, OIDs (RFC 9909 / RFC 9881) and sizes."""

from __future__ import annotations

from dataclasses import dataclass

from writroot.errors import BadInput, excerpt

_NIST_SIG = "2.16.840.1.101.3.4.3"


@dataclass(frozen=True)
class Algorithm:
    name: str
    family: str  # "slh-dsa" or "ml-dsa"
    oid: str
    public_key_size: int
    signature_size: int
    private_key_size: int  # SLH-DSA: SK.seed||SK.prf||PK.seed||PK.root; ML-DSA: the 32-byte seed
    pkcs11_parameter_set: int  # CKP_* value of PKCS#11 3.2

    def __reduce__(self) -> tuple[object, tuple[str]]:
        """Unpickled as the registry's own object (a process pool keeps `is` true)."""
        return by_name, (self.name,)


SLH_DSA_SHA2_256S = Algorithm("SLH-DSA-SHA2-256s", "slh-dsa", f"{_NIST_SIG}.24", 64, 29792, 128,
                              0x09)
SLH_DSA_SHA2_256F = Algorithm("SLH-DSA-SHA2-256f", "slh-dsa", f"{_NIST_SIG}.25", 64, 49856, 128,
                              0x0B)
# ML-DSA-44: witness cosignatures and log checkpoints (C2SP tlog-cosignature, type 0x06).
ML_DSA_44 = Algorithm("ML-DSA-44", "ml-dsa", f"{_NIST_SIG}.17", 1312, 2420, 32, 0x01)
ML_DSA_65 = Algorithm("ML-DSA-65", "ml-dsa", f"{_NIST_SIG}.18", 1952, 3309, 32, 0x02)
ML_DSA_87 = Algorithm("ML-DSA-87", "ml-dsa", f"{_NIST_SIG}.19", 2592, 4627, 32, 0x03)

# Custodian smartcards: the raw key is the uncompressed SEC1 point; signatures are DER.
ECDSA_P384 = Algorithm("ECDSA-P384-SHA384", "ecdsa", "1.2.840.10045.2.1", 97, 104, 0, 0)
# Ed25519 (RFC 8032, SPKI per RFC 8410: absent parameters, the raw 32-byte key in the BIT STRING).
ED25519 = Algorithm("Ed25519", "eddsa", "1.3.101.112", 32, 64, 32, 0)

ALGORITHMS: dict[str, Algorithm] = {
    a.name: a for a in (SLH_DSA_SHA2_256S, SLH_DSA_SHA2_256F, ML_DSA_44, ML_DSA_65, ML_DSA_87,
                        ECDSA_P384, ED25519)
}
BY_OID: dict[str, Algorithm] = {a.oid: a for a in ALGORITHMS.values()}


def by_name(name: object, where: str = "algorithm") -> Algorithm:
    if not isinstance(name, str) or name not in ALGORITHMS:
        raise BadInput(f"unknown algorithm {excerpt(name, 40)} (known: "
                       f"{', '.join(ALGORITHMS)})", where)
    return ALGORITHMS[name]
