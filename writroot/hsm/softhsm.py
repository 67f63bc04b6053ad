"""Initialising tokens (SoftHSM2 for the demo, tests and CI; any fresh PKCS#11 token for
`token init`) and reading a token's PIN length range.

python-pkcs11 has no C_InitToken and does not report ulMinPinLen/ulMaxPinLen, and
softhsm2-util wants PINs on argv or a terminal, so this is ctypes (PINs stay in memory).
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from writroot.errors import HSMError

CKF_TOKEN_INITIALIZED = 0x400
CKF_SERIAL_SESSION = 0x4
CKF_RW_SESSION = 0x2
CKF_USER_PIN_TO_BE_CHANGED = 0x80000
CKU_SO = 0
CKU_USER = 1
CKR_OK = 0
CKR_PIN_INCORRECT = 0xA0
CKR_CRYPTOKI_ALREADY_INITIALIZED = 0x191


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_ubyte), ("minor", ctypes.c_ubyte)]


class _TokenInfo(ctypes.Structure):
    _fields_ = [("label", ctypes.c_char * 32), ("manufacturerID", ctypes.c_char * 32),
                ("model", ctypes.c_char * 16), ("serialNumber", ctypes.c_char * 16),
                ("flags", ctypes.c_ulong), ("ulMaxSessionCount", ctypes.c_ulong),
                ("ulSessionCount", ctypes.c_ulong), ("ulMaxRwSessionCount", ctypes.c_ulong),
                ("ulRwSessionCount", ctypes.c_ulong), ("ulMaxPinLen", ctypes.c_ulong),
                ("ulMinPinLen", ctypes.c_ulong), ("ulTotalPublicMemory", ctypes.c_ulong),
                ("ulFreePublicMemory", ctypes.c_ulong), ("ulTotalPrivateMemory", ctypes.c_ulong),
                ("ulFreePrivateMemory", ctypes.c_ulong), ("hardwareVersion", _Version),
                ("firmwareVersion", _Version), ("utcTime", ctypes.c_char * 16)]


def write_config(directory: Path) -> Path:
    """A softhsm2.conf whose token directory lives under `directory`; export it yourself."""
    tokens = directory / "tokens"
    tokens.mkdir(parents=True, exist_ok=True, mode=0o700)
    conf = directory / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n"
                    "log.level = ERROR\nslots.removable = false\n")
    return conf


def _ok(rv: int, what: str) -> None:
    if rv != CKR_OK:
        raise HSMError(f"{what} failed with CKR 0x{rv:08X}")


@dataclass(frozen=True)
class SlotToken:
    """A slot's token as C_GetTokenInfo describes it."""

    slot: int
    label: str
    serial: str
    initialised: bool
    min_pin: int
    max_pin: int  # 0: the token states no limit

    def pin_range(self) -> str:
        top = str(self.max_pin) if self.max_pin else "any number of"
        return f"{self.min_pin} to {top} characters"

    def takes(self, length: int) -> bool:
        return length >= self.min_pin and (not self.max_pin or length <= self.max_pin)


def _max_pin(value: int) -> int:
    return 0 if value == 0 or value >= 0xFFFFFFFF else value  # CK_UNAVAILABLE_INFORMATION


@contextmanager
def _cryptoki(module: str) -> Iterator[Any]:
    """The module over ctypes, initialised for the block (left alone if already so)."""
    from writroot.hsm.token import load_hint

    try:
        lib = ctypes.CDLL(module)
    except OSError as exc:
        raise HSMError(f"cannot load PKCS#11 module {module}: {exc}{load_hint(str(exc))}") from None
    rv = lib.C_Initialize(None)
    owned = rv == CKR_OK
    if rv not in (CKR_OK, CKR_CRYPTOKI_ALREADY_INITIALIZED):
        _ok(rv, "C_Initialize")
    try:
        yield lib
    finally:
        if owned:
            lib.C_Finalize(None)


def _tokens(lib: Any) -> list[SlotToken]:
    # Every slot, not only those said to hold a token: freehsm-c lists none as present before
    # its first C_InitToken (docs/native-tokens.md, quirks).
    count = ctypes.c_ulong()
    _ok(lib.C_GetSlotList(ctypes.c_ubyte(0), None, ctypes.byref(count)), "C_GetSlotList")
    slots = (ctypes.c_ulong * count.value)()
    _ok(lib.C_GetSlotList(ctypes.c_ubyte(0), slots, ctypes.byref(count)), "C_GetSlotList")
    out = []
    for slot in slots[: count.value]:
        info = _TokenInfo()
        if lib.C_GetTokenInfo(ctypes.c_ulong(slot), ctypes.byref(info)) != CKR_OK:
            continue  # no token in that slot
        out.append(SlotToken(int(slot), info.label.decode("utf-8", "replace").strip(),
                             info.serialNumber.decode("ascii", "replace").strip(),
                             bool(info.flags & CKF_TOKEN_INITIALIZED), int(info.ulMinPinLen),
                             _max_pin(int(info.ulMaxPinLen))))
    return out


def tokens(module: str) -> list[SlotToken]:
    """Every token the module offers, initialised or not."""
    with _cryptoki(module) as lib:
        return _tokens(lib)


def free_slot(module: str, label: str) -> SlotToken:
    """The first slot whose token is not initialised yet; no token may carry `label`."""
    found = tokens(module)
    for t in found:
        if t.initialised and t.label == label:
            raise HSMError(f"a token labelled {label!r} exists already")
    for t in found:
        if not t.initialised:
            return t
    have = ", ".join(f"slot {t.slot} {t.label!r}" for t in found) or "none"
    raise HSMError(f"no uninitialised token in {module} (initialised: {have}); token init sets "
                   "up a fresh token only")


def token_named(module: str, label: str | None, serial: str | None) -> SlotToken:
    """The initialised token with this label and/or serial. Call it before python-pkcs11
    loads the module: freehsm-c answers a second C_Initialize with CKR_FUNCTION_FAILED."""
    for t in tokens(module):
        if t.initialised and (label is None or t.label == label) and (
                serial is None or t.serial == serial):
            return t
    raise HSMError(f"no token with label {label!r} in {module}" if label else
                   f"no token with serial {serial!r} in {module}")


def init_token(module: str, label: str, so_pin: bytes, user_pin: bytes,
               slot: SlotToken | None = None, factory_so_pin: bytes | None = None) -> str:
    """Initialise a free slot (`slot`, or the first) as a token `label`; return its serial.
    Both PINs must be within the token's PIN length range (C_GetTokenInfo).

    `factory_so_pin`: the SO PIN a token ships with, for a token whose C_InitToken checks it
    rather than taking the new one (openCryptoki); the new SO PIN then replaces it."""
    free = slot or free_slot(module, label)  # (its own C_Initialize and C_Finalize)
    for what, pin in (("SO PIN", so_pin), ("user PIN", user_pin)):
        if not free.takes(len(pin)):
            raise HSMError(f"the new {what} has {len(pin)} characters; the token in slot "
                           f"{free.slot} takes {free.pin_range()}")
    first = factory_so_pin if factory_so_pin is not None else so_pin
    with _cryptoki(module) as lib:
        padded = label.encode().ljust(32, b" ")[:32]
        rv = lib.C_InitToken(ctypes.c_ulong(free.slot), first, ctypes.c_ulong(len(first)), padded)
        if rv == CKR_PIN_INCORRECT and factory_so_pin is None:
            raise HSMError("C_InitToken refused the new SO PIN (CKR_PIN_INCORRECT): this token "
                           "wants the SO PIN it shipped with (openCryptoki: 87654321); give it "
                           "with --factory-so-pin, and the new SO PIN replaces it")
        _ok(rv, "C_InitToken")
        with _session(lib, free.slot, CKU_SO, first) as session:
            if factory_so_pin is not None:
                _ok(lib.C_SetPIN(session, first, ctypes.c_ulong(len(first)), so_pin,
                                 ctypes.c_ulong(len(so_pin))), "C_SetPIN(SO)")
            _ok(lib.C_InitPIN(session, user_pin, ctypes.c_ulong(len(user_pin))), "C_InitPIN")
        if _flags(lib, free.slot) & CKF_USER_PIN_TO_BE_CHANGED:
            _user_changes_pin(lib, free, user_pin)
        info = _TokenInfo()
        _ok(lib.C_GetTokenInfo(ctypes.c_ulong(free.slot), ctypes.byref(info)), "C_GetTokenInfo")
        serial: str = info.serialNumber.decode().strip()
        return serial


@contextmanager
def _session(lib: Any, slot: int, user: int, pin: bytes) -> Iterator[Any]:
    session = ctypes.c_ulong()
    _ok(lib.C_OpenSession(ctypes.c_ulong(slot), ctypes.c_ulong(CKF_SERIAL_SESSION |
                                                              CKF_RW_SESSION),
                          None, None, ctypes.byref(session)), "C_OpenSession")
    try:
        who = "SO" if user == CKU_SO else "user"
        _ok(lib.C_Login(session, ctypes.c_ulong(user), pin, ctypes.c_ulong(len(pin))),
            f"C_Login({who})")
        yield session
        lib.C_Logout(session)
    finally:
        lib.C_CloseSession(session)


def _flags(lib: Any, slot: int) -> int:
    info = _TokenInfo()
    _ok(lib.C_GetTokenInfo(ctypes.c_ulong(slot), ctypes.byref(info)), "C_GetTokenInfo")
    return int(info.flags)


def _user_changes_pin(lib: Any, token: SlotToken, user_pin: bytes) -> None:
    """A user PIN set by the SO that the user must change before use (openCryptoki): the
    user changes it, through a random interim PIN, to the very PIN chosen."""
    import secrets

    size = max(token.min_pin, min(8, token.max_pin or 8))
    interim = secrets.token_hex(size)[:size].encode()
    with _session(lib, token.slot, CKU_USER, user_pin) as session:
        for old, new in ((user_pin, interim), (interim, user_pin)):
            _ok(lib.C_SetPIN(session, old, ctypes.c_ulong(len(old)), new,
                             ctypes.c_ulong(len(new))), "C_SetPIN(user)")


def use_config(conf: Path) -> None:
    """Point this process's SoftHSM2 at `conf` (must happen before the module loads)."""
    os.environ["SOFTHSM2_CONF"] = str(conf)
