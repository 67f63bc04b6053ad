"""PKCS#11 3.2 PQC calls (CKM_SLH_DSA, CKM_ML_DSA) that python-pkcs11 0.10 cannot name.

python-pkcs11 only accepts mechanisms and key types from its own enums, which lack SLH-DSA,
so native custody calls the module's exported C_* functions with ctypes, on the session
handle python-pkcs11 opened (same dlopen handle, same library state).
"""

from __future__ import annotations

import ctypes
from typing import Any

from writroot.errors import HSMError

CK_ULONG = ctypes.c_ulong
CK_BBOOL = ctypes.c_ubyte

# PKCS#11 3.2 constants.
CKO_PUBLIC_KEY = 0x02
CKO_PRIVATE_KEY = 0x03
CKK_ML_DSA = 0x4A
CKK_SLH_DSA = 0x4B
CKM_ML_DSA_KEY_PAIR_GEN = 0x1C
CKM_ML_DSA = 0x1D
CKM_SLH_DSA_KEY_PAIR_GEN = 0x2D
CKM_SLH_DSA = 0x2E
CKA_CLASS = 0x000
CKA_TOKEN = 0x001
CKA_PRIVATE = 0x002
CKA_LABEL = 0x003
CKA_VALUE = 0x011
CKA_KEY_TYPE = 0x100
CKA_ID = 0x102
CKA_SENSITIVE = 0x103
CKA_SIGN = 0x108
CKA_VERIFY = 0x10A
CKA_EXTRACTABLE = 0x162
CKA_PARAMETER_SET = 0x61D
CKR_OK = 0
CKR_MECHANISM_INVALID = 0x70

FAMILY = {
    "slh-dsa": (CKK_SLH_DSA, CKM_SLH_DSA_KEY_PAIR_GEN, CKM_SLH_DSA),
    "ml-dsa": (CKK_ML_DSA, CKM_ML_DSA_KEY_PAIR_GEN, CKM_ML_DSA),
}


class _Mechanism(ctypes.Structure):
    _fields_ = [("mechanism", CK_ULONG), ("pParameter", ctypes.c_void_p),
                ("ulParameterLen", CK_ULONG)]


class _Attribute(ctypes.Structure):
    _fields_ = [("type", CK_ULONG), ("pValue", ctypes.c_void_p), ("ulValueLen", CK_ULONG)]


class _Template:
    """A CK_ATTRIBUTE array that keeps its value buffers alive."""

    def __init__(self, items: list[tuple[int, bool | int | bytes]]) -> None:
        self._keep: list[Any] = []
        self.array = (_Attribute * len(items))()
        for i, (attr, value) in enumerate(items):
            if isinstance(value, bool):
                buf: Any = CK_BBOOL(1 if value else 0)
            elif isinstance(value, int):
                buf = CK_ULONG(value)
            else:
                buf = ctypes.create_string_buffer(value, len(value))
            self._keep.append(buf)
            self.array[i] = _Attribute(attr, ctypes.cast(ctypes.pointer(buf), ctypes.c_void_p),
                                       ctypes.sizeof(buf))

    def __len__(self) -> int:
        return len(self.array)


def _check(rv: int, what: str) -> None:
    if rv == CKR_MECHANISM_INVALID:
        raise HSMError(f"{what}: the token does not support this PKCS#11 3.2 mechanism")
    if rv != CKR_OK:
        raise HSMError(f"{what} failed with CKR 0x{rv:08X}")


class RawPQC:
    """Native PQC key generation and signing on a session python-pkcs11 opened."""

    def __init__(self, module: str, session_handle: int) -> None:
        self._lib = ctypes.CDLL(module)
        self._h = CK_ULONG(session_handle)

    def generate(self, family: str, parameter_set: int, label: str, key_id: bytes) -> bytes:
        """Generate a sensitive, non-extractable pair on the token; return the raw public key."""
        ckk, gen, _ = FAMILY[family]
        mech = _Mechanism(gen, None, 0)
        pub = _Template([(CKA_CLASS, CKO_PUBLIC_KEY), (CKA_KEY_TYPE, ckk), (CKA_TOKEN, True),
                         (CKA_VERIFY, True), (CKA_LABEL, label.encode()), (CKA_ID, key_id),
                         (CKA_PARAMETER_SET, parameter_set)])
        priv = _Template([(CKA_CLASS, CKO_PRIVATE_KEY), (CKA_KEY_TYPE, ckk), (CKA_TOKEN, True),
                          (CKA_PRIVATE, True), (CKA_SENSITIVE, True), (CKA_EXTRACTABLE, False),
                          (CKA_SIGN, True), (CKA_LABEL, label.encode()), (CKA_ID, key_id)])
        h_pub, h_priv = CK_ULONG(), CK_ULONG()
        _check(self._lib.C_GenerateKeyPair(self._h, ctypes.byref(mech), pub.array,
                                           CK_ULONG(len(pub)), priv.array, CK_ULONG(len(priv)),
                                           ctypes.byref(h_pub), ctypes.byref(h_priv)),
               "C_GenerateKeyPair")
        return self._value(h_pub)

    def _value(self, handle: CK_ULONG) -> bytes:
        attr = _Attribute(CKA_VALUE, None, 0)
        _check(self._lib.C_GetAttributeValue(self._h, handle, ctypes.byref(attr), CK_ULONG(1)),
               "C_GetAttributeValue")
        buf = ctypes.create_string_buffer(attr.ulValueLen)
        attr.pValue = ctypes.cast(buf, ctypes.c_void_p)
        _check(self._lib.C_GetAttributeValue(self._h, handle, ctypes.byref(attr), CK_ULONG(1)),
               "C_GetAttributeValue")
        return buf.raw[: attr.ulValueLen]

    def _find_private(self, key_id: bytes) -> CK_ULONG:
        tmpl = _Template([(CKA_CLASS, CKO_PRIVATE_KEY), (CKA_ID, key_id)])
        _check(self._lib.C_FindObjectsInit(self._h, tmpl.array, CK_ULONG(len(tmpl))),
               "C_FindObjectsInit")
        found = (CK_ULONG * 2)()
        count = CK_ULONG()
        try:
            _check(self._lib.C_FindObjects(self._h, found, CK_ULONG(2), ctypes.byref(count)),
                   "C_FindObjects")
        finally:
            self._lib.C_FindObjectsFinal(self._h)
        if count.value != 1:
            raise HSMError(f"expected one private key with id {key_id.hex()}, "
                           f"found {count.value}")
        return CK_ULONG(found[0])

    def sign(self, family: str, key_id: bytes, message: bytes) -> bytes:
        """Pure signature, empty context (no CK_SIGN_ADDITIONAL_CONTEXT parameter)."""
        _, _, mechanism = FAMILY[family]
        key = self._find_private(key_id)
        mech = _Mechanism(mechanism, None, 0)
        _check(self._lib.C_SignInit(self._h, ctypes.byref(mech), key), "C_SignInit")
        length = CK_ULONG()
        data = ctypes.create_string_buffer(message, len(message))
        _check(self._lib.C_Sign(self._h, data, CK_ULONG(len(message)), None, ctypes.byref(length)),
               "C_Sign")
        out = ctypes.create_string_buffer(length.value)
        _check(self._lib.C_Sign(self._h, data, CK_ULONG(len(message)), out, ctypes.byref(length)),
               "C_Sign")
        return out.raw[: length.value]
