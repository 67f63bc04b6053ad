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
CKA_NEVER_EXTRACTABLE = 0x164
CKA_ALWAYS_SENSITIVE = 0x165
CKA_PARAMETER_SET = 0x61D
CKR_OK = 0
CKR_ATTRIBUTE_SENSITIVE = 0x11
CKR_ATTRIBUTE_TYPE_INVALID = 0x12
CKR_MECHANISM_INVALID = 0x70
CKR_BUFFER_TOO_SMALL = 0x150
CK_UNAVAILABLE_INFORMATION = ctypes.c_ulong(-1).value
MAX_ATTRIBUTE_BYTES = 1024 * 1024
MAX_SIGNATURE_BYTES = 64 * 1024

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


_P = ctypes.POINTER
#: Every raw PKCS#11 entry point writroot calls, with its C signature (all return CK_RV).
_SIGNATURES: dict[str, list[Any]] = {
    "C_GenerateKeyPair": [CK_ULONG, _P(_Mechanism), _P(_Attribute), CK_ULONG, _P(_Attribute),
                          CK_ULONG, _P(CK_ULONG), _P(CK_ULONG)],
    "C_GetAttributeValue": [CK_ULONG, CK_ULONG, _P(_Attribute), CK_ULONG],
    "C_FindObjectsInit": [CK_ULONG, _P(_Attribute), CK_ULONG],
    "C_FindObjects": [CK_ULONG, _P(CK_ULONG), CK_ULONG, _P(CK_ULONG)],
    "C_FindObjectsFinal": [CK_ULONG],
    "C_SignInit": [CK_ULONG, _P(_Mechanism), CK_ULONG],
    "C_Sign": [CK_ULONG, _P(ctypes.c_char), CK_ULONG, _P(ctypes.c_char), _P(CK_ULONG)],
    "C_DestroyObject": [CK_ULONG, CK_ULONG],
}

#: What the private key of a native pair must read back as, right after generation.
PRIVATE_KEY_MUST_BE = ((CKA_TOKEN, True, "a token object"), (CKA_PRIVATE, True, "private"),
                       (CKA_SENSITIVE, True, "sensitive"),
                       (CKA_EXTRACTABLE, False, "not extractable"),
                       (CKA_ALWAYS_SENSITIVE, True, "always sensitive"),
                       (CKA_NEVER_EXTRACTABLE, True, "never extractable"))


def _bind(lib: Any) -> Any:
    for name, argtypes in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.argtypes = argtypes
        fn.restype = CK_ULONG
    return lib


class RawPQC:
    """Native PQC key generation and signing on a session python-pkcs11 opened."""

    def __init__(self, module: str, session_handle: int) -> None:
        try:
            self._lib = _bind(ctypes.CDLL(module))
        except (OSError, AttributeError) as exc:
            raise HSMError(f"cannot bind the PKCS#11 functions of {module}: {exc}") from None
        self._h = CK_ULONG(session_handle)

    def generate(self, family: str, parameter_set: int, label: str, key_id: bytes) -> bytes:
        """Generate a sensitive, non-extractable pair on the token; return the raw public key.

        The private key's protection is read back and checked; a pair that does not read back
        as asked for is destroyed and refused.
        """
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
        try:
            self.require_protected(h_priv)
            return self._value(h_pub)
        except HSMError:
            for handle in (h_priv, h_pub):
                self._lib.C_DestroyObject(self._h, handle)
            raise

    def require_protected(self, handle: CK_ULONG) -> None:
        """Refuse a private key that does not read back sensitive and never extractable."""
        wrong = []
        for attr, want, name in PRIVATE_KEY_MUST_BE:
            value = self.read_bool(handle, attr)
            if value is None:
                wrong.append(f"{name} (the token does not say)")
            elif value != want:
                wrong.append(name)
        if wrong:
            raise HSMError("the token generated a private key that is not "
                           f"{', '.join(wrong)}; it was destroyed")

    def _attribute(self, handle: CK_ULONG, attr_type: int, what: str) -> bytes | None:
        """An attribute's bytes; None when the token reports CK_UNAVAILABLE_INFORMATION."""
        attr = _Attribute(attr_type, None, 0)
        rv = self._lib.C_GetAttributeValue(self._h, handle, ctypes.byref(attr), CK_ULONG(1))
        if rv in (CKR_ATTRIBUTE_SENSITIVE, CKR_ATTRIBUTE_TYPE_INVALID) or \
                attr.ulValueLen == CK_UNAVAILABLE_INFORMATION:
            return None
        _check(rv, f"C_GetAttributeValue({what})")
        for _ in range(3):  # the value may change size between the two calls
            size = attr.ulValueLen
            if size > MAX_ATTRIBUTE_BYTES:
                raise HSMError(f"{what}: the token reports an implausible length {size}")
            buf = ctypes.create_string_buffer(max(size, 1))
            attr.pValue = ctypes.cast(buf, ctypes.c_void_p)
            rv = self._lib.C_GetAttributeValue(self._h, handle, ctypes.byref(attr), CK_ULONG(1))
            if rv == CKR_BUFFER_TOO_SMALL:
                attr.pValue = None
                _check(self._lib.C_GetAttributeValue(self._h, handle, ctypes.byref(attr),
                                                     CK_ULONG(1)), f"C_GetAttributeValue({what})")
                continue
            if rv in (CKR_ATTRIBUTE_SENSITIVE, CKR_ATTRIBUTE_TYPE_INVALID) or \
                    attr.ulValueLen == CK_UNAVAILABLE_INFORMATION:
                return None
            _check(rv, f"C_GetAttributeValue({what})")
            if attr.ulValueLen > size:
                raise HSMError(f"{what}: the token wrote past the buffer it was given")
            return buf.raw[: attr.ulValueLen]
        raise HSMError(f"{what}: the attribute kept changing size")

    def read_bool(self, handle: CK_ULONG, attr_type: int) -> bool | None:
        raw = self._attribute(handle, attr_type, f"attribute 0x{attr_type:X}")
        if raw is None or len(raw) != 1:
            return None
        return raw != b"\x00"

    def _value(self, handle: CK_ULONG) -> bytes:
        value = self._attribute(handle, CKA_VALUE, "CKA_VALUE of the public key")
        if not value:
            raise HSMError("the token did not return the public key (CKA_VALUE unavailable)")
        return value

    def _find(self, items: list[tuple[int, bool | int | bytes]], limit: int) -> list[CK_ULONG]:
        tmpl = _Template(items)
        _check(self._lib.C_FindObjectsInit(self._h, tmpl.array, CK_ULONG(len(tmpl))),
               "C_FindObjectsInit")
        found = (CK_ULONG * limit)()
        count = CK_ULONG()
        try:
            _check(self._lib.C_FindObjects(self._h, found, CK_ULONG(limit), ctypes.byref(count)),
                   "C_FindObjects")
        finally:
            self._lib.C_FindObjectsFinal(self._h)
        return [CK_ULONG(found[i]) for i in range(min(count.value, limit))]

    def _find_private(self, key_id: bytes) -> CK_ULONG:
        found = self._find([(CKA_CLASS, CKO_PRIVATE_KEY), (CKA_ID, key_id)], 2)
        if len(found) != 1:
            raise HSMError(f"expected one private key with id {key_id.hex()}, "
                           f"found {len(found)}")
        return found[0]

    def destroy(self, key_id: bytes) -> int:
        """Destroy every key object with this CKA_ID (a native pair); returns how many."""
        found = [*self._find([(CKA_CLASS, CKO_PRIVATE_KEY), (CKA_ID, key_id)], 16),
                 *self._find([(CKA_CLASS, CKO_PUBLIC_KEY), (CKA_ID, key_id)], 16)]
        for handle in found:
            _check(self._lib.C_DestroyObject(self._h, handle), "C_DestroyObject")
        return len(found)

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
        if length.value == CK_UNAVAILABLE_INFORMATION or length.value > MAX_SIGNATURE_BYTES:
            raise HSMError(f"C_Sign reports an implausible signature length {length.value}")
        size = length.value
        out = ctypes.create_string_buffer(max(size, 1))
        rv = self._lib.C_Sign(self._h, data, CK_ULONG(len(message)), out, ctypes.byref(length))
        if rv == CKR_BUFFER_TOO_SMALL:  # the operation stays active: ask again, larger
            if length.value > MAX_SIGNATURE_BYTES:
                raise HSMError(f"C_Sign reports an implausible signature length {length.value}")
            size = length.value
            out = ctypes.create_string_buffer(max(size, 1))
            rv = self._lib.C_Sign(self._h, data, CK_ULONG(len(message)), out,
                                  ctypes.byref(length))
        _check(rv, "C_Sign")
        if length.value > size:
            raise HSMError("C_Sign wrote past the buffer it was given")
        return out.raw[: length.value]
