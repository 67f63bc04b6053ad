"""Native custody: a PQC key pair generated on a PKCS#11 3.2 token, used there, never leaving it.

ML-DSA goes through python-pkcs11 (it has CKM_ML_DSA); SLH-DSA through writroot/hsm/p11raw.py
(no maintained binding writroot uses has CKM_SLH_DSA). Both on the one session python-pkcs11
opened. Every pair is read back before anyone uses it: the private key must be a private,
sensitive, never-extractable token object; the public key's CKA_VALUE must be the algorithm's
key, raw (as PKCS#11 3.2 says) or wrapped in a DER SubjectPublicKeyInfo (as freehsm-c gives it);
the parameter set must be the one asked for where the token shows it. A pair that fails any of
this is destroyed and refused. What the token does differently from the specification is
recorded as a deviation (`writroot hsm info` shows them).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from writroot.crypto import spki
from writroot.crypto.algorithms import Algorithm
from writroot.errors import BadInput, HSMError
from writroot.hsm.p11raw import (
    CK_UNAVAILABLE_INFORMATION,
    CKA_PARAMETER_SET,
    CKA_VALUE,
    CKR_ATTRIBUTE_SENSITIVE,
    CKR_OK,
    RawPQC,
    TokenCallFailed,
    ckr_name,
)

#: Deviations from PKCS#11 3.2 writroot knows how to live with (key -> what it means).
SPKI_VALUE = "public CKA_VALUE is a DER SubjectPublicKeyInfo (PKCS#11 3.2: the raw key)"
PARAMETER_SET_UNREADABLE = ("CKA_PARAMETER_SET cannot be read back (the parameter set is told "
                            "by the key's size and OID instead)")
SENSITIVE_OK_UNAVAILABLE = ("a sensitive CKA_VALUE answers CKR_OK with CK_UNAVAILABLE_INFORMATION "
                            "(PKCS#11 3.2: CKR_ATTRIBUTE_SENSITIVE); nothing is revealed")


@dataclass
class Pair:
    """A freshly generated, checked native pair."""

    public_key: bytes
    public_handle: int
    private_handle: int
    deviations: list[str] = field(default_factory=list)


def public_from_value(alg: Algorithm, value: bytes, deviations: list[str]) -> bytes:
    """The raw public key from a public key's CKA_VALUE: raw, or an SPKI with alg's OID."""
    if len(value) == alg.public_key_size:
        return value
    try:
        found, raw = spki.decode_der(value, "CKA_VALUE of the public key")
    except BadInput as exc:
        raise HSMError(f"the token's public {alg.name} key is neither the {alg.public_key_size}"
                       f"-byte raw key nor a SubjectPublicKeyInfo ({len(value)} bytes: "
                       f"{exc.message})") from None
    if found != alg:
        raise HSMError(f"the token returned a {found.name} public key (OID {found.oid}) for a "
                       f"{alg.name} key (OID {alg.oid})")
    if SPKI_VALUE not in deviations:
        deviations.append(SPKI_VALUE)
    return raw


def private_value_readable(raw: RawPQC, handle: int, deviations: list[str]) -> bool:
    """True if the private key's CKA_VALUE can be read (it must not be)."""
    rv, length = raw.attribute_status(handle, CKA_VALUE)
    if rv == CKR_ATTRIBUTE_SENSITIVE:
        return False
    if rv == CKR_OK and length == CK_UNAVAILABLE_INFORMATION:
        if SENSITIVE_OK_UNAVAILABLE not in deviations:
            deviations.append(SENSITIVE_OK_UNAVAILABLE)
        return False
    return rv == CKR_OK and length > 0


class NativeKeys:
    """Native PQC key pairs on one logged-in session."""

    def __init__(self, session: Any, module: str) -> None:
        self.session = session
        self.raw = RawPQC(module, session.handle)

    # -- generation -------------------------------------------------------------------------

    def generate(self, alg: Algorithm, label: str, key_id: bytes, token: bool = True) -> Pair:
        """Generate on the token and read it back; a pair that is not as asked is destroyed."""
        if alg.family == "ml-dsa":
            h_pub, h_priv = self._generate_ml_dsa(alg, label, key_id, token)
        else:
            h_pub, h_priv = self.raw.generate_pair(alg.family, alg.pkcs11_parameter_set, label,
                                                   key_id, token)
        try:
            return self._check_pair(alg, h_pub, h_priv, token)
        except Exception:
            self.raw.destroy_handles(h_priv, h_pub)
            raise

    def _generate_ml_dsa(self, alg: Algorithm, label: str, key_id: bytes,
                         token: bool) -> tuple[int, int]:
        import pkcs11
        from pkcs11 import Attribute, KeyType, MechanismFlag
        from pkcs11.mechanisms import MLDSAParameterSet

        try:
            pub, priv = self.session.generate_keypair(
                KeyType.ML_DSA, store=token, id=key_id, label=label,
                capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
                public_template={Attribute.PARAMETER_SET:
                                 MLDSAParameterSet(alg.pkcs11_parameter_set),
                                 Attribute.TOKEN: token, Attribute.VERIFY: True},
                private_template={Attribute.TOKEN: token, Attribute.PRIVATE: True,
                                  Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
                                  Attribute.SIGN: True})
        except pkcs11.PKCS11Error as exc:
            raise _failed(f"C_GenerateKeyPair(CKM_ML_DSA_KEY_PAIR_GEN, {alg.name})",
                          exc) from None
        return int(pub.handle), int(priv.handle)

    def _check_pair(self, alg: Algorithm, h_pub: int, h_priv: int, token: bool) -> Pair:
        deviations: list[str] = []
        self.raw.require_protected(h_priv, token)
        if private_value_readable(self.raw, h_priv, deviations):
            raise HSMError("the token lets the new private key's CKA_VALUE be read; refused "
                           "(it is destroyed)")
        for handle in (h_pub, h_priv):
            got = self.raw.read_ulong(handle, CKA_PARAMETER_SET)
            if got is None:
                if PARAMETER_SET_UNREADABLE not in deviations:
                    deviations.append(PARAMETER_SET_UNREADABLE)
            elif got != alg.pkcs11_parameter_set:
                raise HSMError(f"the token made a key with parameter set 0x{got:X}, not "
                               f"{alg.name} (0x{alg.pkcs11_parameter_set:X}); refused (it is "
                               "destroyed)")
        public = public_from_value(alg, self.raw.value(h_pub), deviations)
        return Pair(public, h_pub, h_priv, deviations)

    # -- use --------------------------------------------------------------------------------

    def sign(self, alg: Algorithm, key_id: bytes, message: bytes) -> bytes:
        """A pure signature with an empty context, single-part C_Sign, on the token."""
        if alg.family != "ml-dsa":
            return self.raw.sign(alg.family, key_id, message)
        import pkcs11
        from pkcs11 import Attribute, Mechanism, ObjectClass

        found = list(self.session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                                               Attribute.ID: key_id}))
        if len(found) != 1:
            raise HSMError(f"expected one private key with id {key_id.hex()}, found "
                           f"{len(found)}")
        try:
            return bytes(found[0].sign(message, mechanism=Mechanism.ML_DSA,
                                       buffer_size=alg.signature_size))
        except pkcs11.PKCS11Error as exc:
            raise _failed("C_Sign(CKM_ML_DSA)", exc) from None

    def destroy(self, key_id: bytes) -> int:
        return self.raw.destroy(key_id)


#: python-pkcs11 turns return values into exception classes: the usual ones, back to values.
_RV_OF = {"GeneralError": 0x05, "FunctionFailed": 0x06, "ArgumentsBad": 0x07,
          "AttributeTypeInvalid": 0x12, "AttributeValueInvalid": 0x13, "DeviceError": 0x30,
          "DeviceMemory": 0x31, "FunctionNotSupported": 0x54, "KeyTypeInconsistent": 0x63,
          "MechanismInvalid": 0x70, "MechanismParamInvalid": 0x71, "SessionReadOnly": 0xB5,
          "TemplateIncomplete": 0xD0, "TemplateInconsistent": 0xD1, "UserNotLoggedIn": 0x101}


def _failed(what: str, exc: Exception) -> HSMError:
    rv = _RV_OF.get(type(exc).__name__)
    if rv is None:
        return HSMError(f"{what} failed: {type(exc).__name__}")
    return TokenCallFailed(f"{what} failed with {ckr_name(rv)}", rv)


@dataclass
class Probe:
    """What `hsm info` learned by generating and using a throwaway session key pair."""

    algorithm: str
    parameter_set: int
    ok: bool
    deviations: list[str]
    keygen_seconds: float = 0.0
    sign_seconds: float = 0.0
    error: str = ""
    rv: int | None = None


def probe(session: Any, module: str, alg: Algorithm, message: bytes,
          verify: Any) -> Probe:
    """Generate a session (not token) pair, read it back, sign, verify independently, destroy.

    A session object vanishes with the session even if this process dies, so nothing is left
    on the token."""
    import os

    keys = NativeKeys(session, module)
    key_id = b"writroot-probe-" + os.urandom(8)
    t0 = time.perf_counter()
    try:
        pair = keys.generate(alg, "writroot-probe", key_id, token=False)
    except TokenCallFailed as exc:
        return Probe(alg.name, alg.pkcs11_parameter_set, False, [], error=exc.message,
                     rv=exc.rv)
    except HSMError as exc:
        return Probe(alg.name, alg.pkcs11_parameter_set, False, [], error=exc.message)
    t1 = time.perf_counter()
    try:
        signature = keys.sign(alg, key_id, message)
        t2 = time.perf_counter()
        if not verify(alg, pair.public_key, message, signature):
            return Probe(alg.name, alg.pkcs11_parameter_set, False, pair.deviations,
                         t1 - t0, t2 - t1, "the token's signature does not verify "
                         "independently")
        return Probe(alg.name, alg.pkcs11_parameter_set, True, pair.deviations, t1 - t0,
                     t2 - t1)
    except TokenCallFailed as exc:
        return Probe(alg.name, alg.pkcs11_parameter_set, False, pair.deviations, t1 - t0,
                     error=exc.message, rv=exc.rv)
    except HSMError as exc:
        return Probe(alg.name, alg.pkcs11_parameter_set, False, pair.deviations, t1 - t0,
                     error=exc.message)
    finally:
        keys.raw.destroy_handles(pair.private_handle, pair.public_handle)


__all__ = ["PARAMETER_SET_UNREADABLE", "SENSITIVE_OK_UNAVAILABLE", "SPKI_VALUE", "NativeKeys",
           "Pair", "Probe", "probe", "public_from_value"]
