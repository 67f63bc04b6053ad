"""The PKCS#11 3.2 calls no maintained Python binding writroot uses can make.

python-pkcs11 0.10 takes mechanisms and key types only from its own enums, which have ML-DSA
but not SLH-DSA, and it turns a token's raw return codes into exceptions (a token that answers
CKR_OK with CK_UNAVAILABLE_INFORMATION looks like CKR_FUNCTION_FAILED). So this module calls the
module's exported C_* functions with ctypes, on the session handle python-pkcs11 opened (same
dlopen handle, same library state), for: SLH-DSA key generation and signing, and reading
attributes with the token's own return code (the protection read-back and the deviations
`writroot hsm info` reports). ML-DSA goes through python-pkcs11 (writroot/hsm/native.py).
"""

from __future__ import annotations

import ctypes
import sys
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
CKR_FUNCTION_FAILED = 0x06
CKR_ATTRIBUTE_SENSITIVE = 0x11
CKR_ATTRIBUTE_TYPE_INVALID = 0x12
CKR_MECHANISM_INVALID = 0x70
CKR_BUFFER_TOO_SMALL = 0x150
CK_UNAVAILABLE_INFORMATION = ctypes.c_ulong(-1).value
_LITTLE = sys.byteorder == "little"
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


#: Names of the return values a token gives writroot most often (the rest print as hex).
CKR_NAMES = {0x00: "CKR_OK", 0x05: "CKR_GENERAL_ERROR", 0x06: "CKR_FUNCTION_FAILED",
             0x07: "CKR_ARGUMENTS_BAD", 0x10: "CKR_ATTRIBUTE_READ_ONLY",
             0x11: "CKR_ATTRIBUTE_SENSITIVE", 0x12: "CKR_ATTRIBUTE_TYPE_INVALID",
             0x13: "CKR_ATTRIBUTE_VALUE_INVALID", 0x30: "CKR_DEVICE_ERROR",
             0x31: "CKR_DEVICE_MEMORY", 0x54: "CKR_FUNCTION_NOT_SUPPORTED",
             0x60: "CKR_KEY_HANDLE_INVALID", 0x63: "CKR_KEY_TYPE_INCONSISTENT",
             0x70: "CKR_MECHANISM_INVALID", 0x71: "CKR_MECHANISM_PARAM_INVALID",
             0x82: "CKR_OBJECT_HANDLE_INVALID", 0xA0: "CKR_PIN_INCORRECT",
             0xB3: "CKR_SESSION_HANDLE_INVALID", 0xB5: "CKR_SESSION_READ_ONLY",
             0xD0: "CKR_TEMPLATE_INCOMPLETE", 0xD1: "CKR_TEMPLATE_INCONSISTENT",
             0x101: "CKR_USER_NOT_LOGGED_IN", 0x150: "CKR_BUFFER_TOO_SMALL",
             0x190: "CKR_CRYPTOKI_ALREADY_INITIALIZED"}


def ckr_name(rv: int) -> str:
    """`CKR_FUNCTION_FAILED (0x00000006)`: a return value as a person reads it."""
    return f"{CKR_NAMES.get(rv, 'CKR vendor/other')} (0x{rv:08X})"


class TokenCallFailed(HSMError):
    """A PKCS#11 call returned an error; `rv` is the token's return value."""

    def __init__(self, message: str, rv: int) -> None:
        super().__init__(message)
        self.rv = rv


def _encoded(value: bool | int | bytes) -> bytes:
    """An attribute value as the token stores it (CK_BBOOL, CK_ULONG or bytes)."""
    if isinstance(value, bool):
        return b"\x01" if value else b"\x00"
    if isinstance(value, int):
        return bytes(CK_ULONG(value))
    return value


def _check(rv: int, what: str) -> None:
    if rv == CKR_MECHANISM_INVALID:
        raise TokenCallFailed(f"{what}: the token does not support this PKCS#11 3.2 mechanism "
                              f"({ckr_name(rv)})", rv)
    if rv != CKR_OK:
        raise TokenCallFailed(f"{what} failed with {ckr_name(rv)}", rv)


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

    def generate_pair(self, family: str, parameter_set: int, label: str, key_id: bytes,
                      token: bool = True) -> tuple[int, int]:
        """C_GenerateKeyPair of a private, sensitive, non-extractable pair; returns the
        (public, private) handles. `token=False` makes session objects (a probe): they vanish
        with the session. The caller reads the pair back and destroys it if it is wrong."""
        ckk, gen, _ = FAMILY[family]
        mech = _Mechanism(gen, None, 0)
        pub = _Template([(CKA_CLASS, CKO_PUBLIC_KEY), (CKA_KEY_TYPE, ckk), (CKA_TOKEN, token),
                         (CKA_VERIFY, True), (CKA_LABEL, label.encode()), (CKA_ID, key_id),
                         (CKA_PARAMETER_SET, parameter_set)])
        priv = _Template([(CKA_CLASS, CKO_PRIVATE_KEY), (CKA_KEY_TYPE, ckk), (CKA_TOKEN, token),
                          (CKA_PRIVATE, True), (CKA_SENSITIVE, True), (CKA_EXTRACTABLE, False),
                          (CKA_SIGN, True), (CKA_LABEL, label.encode()), (CKA_ID, key_id)])
        h_pub, h_priv = CK_ULONG(), CK_ULONG()
        _check(self._lib.C_GenerateKeyPair(self._h, ctypes.byref(mech), pub.array,
                                           CK_ULONG(len(pub)), priv.array, CK_ULONG(len(priv)),
                                           ctypes.byref(h_pub), ctypes.byref(h_priv)),
               f"C_GenerateKeyPair(0x{gen:X})")
        return h_pub.value, h_priv.value

    def destroy_handles(self, *handles: int) -> None:
        """Best effort: destroy objects of a pair that is being refused."""
        for handle in handles:
            self._lib.C_DestroyObject(self._h, CK_ULONG(handle))

    def attribute_status(self, handle: int, attr_type: int) -> tuple[int, int]:
        """The token's own answer to a length query: (return value, ulValueLen)."""
        attr = _Attribute(attr_type, None, 0)
        rv = self._lib.C_GetAttributeValue(self._h, CK_ULONG(handle), ctypes.byref(attr),
                                           CK_ULONG(1))
        return int(rv), int(attr.ulValueLen)

    def read_ulong(self, handle: int, attr_type: int) -> int | None:
        raw = self._attribute(CK_ULONG(handle), attr_type, f"attribute 0x{attr_type:X}")
        if raw is None or len(raw) != ctypes.sizeof(CK_ULONG):
            return None
        return int.from_bytes(raw, "little" if _LITTLE else "big")

    def value(self, handle: int) -> bytes:
        return self._value(CK_ULONG(handle))

    def require_protected(self, handle: CK_ULONG | int, token: bool = True) -> None:
        """Refuse a private key that does not read back sensitive and never extractable (and
        a token object, unless `token` is False: a probe's session key)."""
        if isinstance(handle, int):
            handle = CK_ULONG(handle)
        wrong = []
        for attr, want, name in PRIVATE_KEY_MUST_BE:
            if attr == CKA_TOKEN and not token:
                want, name = False, "a session object"
            value = self.read_bool(handle, attr)
            if value is None:
                wrong.append(f"{name} (the token does not say)")
            elif value != want:
                wrong.append(name)
        if wrong:
            raise HSMError("the token generated a private key that is not "
                           f"{', '.join(wrong)}; refused (it is destroyed)")

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
        handles = [CK_ULONG(found[i]) for i in range(min(count.value, limit))]
        # A token may ignore part of the template (freehsm-c matches only class, label, id):
        # keep only objects whose attributes read back as asked.
        return [h for h in handles
                if all(self._attribute(h, attr, f"attribute 0x{attr:X}") == _encoded(value)
                       for attr, value in items)]

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
        """Pure signature, empty context (no CK_SIGN_ADDITIONAL_CONTEXT parameter), single-part
        C_Sign."""
        return self.sign_handle(family, self._find_private(key_id), message)

    def sign_handle(self, family: str, key: CK_ULONG | int, message: bytes) -> bytes:
        _, _, mechanism = FAMILY[family]
        if isinstance(key, int):
            key = CK_ULONG(key)
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
