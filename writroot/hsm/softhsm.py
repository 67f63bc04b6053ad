"""Throwaway SoftHSM2 tokens for the demo, tests and CI.

python-pkcs11 has no C_InitToken, and softhsm2-util wants PINs on argv or a terminal, so
the token is initialised here with ctypes (PINs stay in memory).
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from writroot.errors import HSMError

CKF_TOKEN_INITIALIZED = 0x400
CKF_SERIAL_SESSION = 0x4
CKF_RW_SESSION = 0x2
CKU_SO = 0
CKR_OK = 0
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


def init_token(module: str, label: str, so_pin: bytes, user_pin: bytes) -> str:
    """Initialise the free SoftHSM2 slot as a token `label`; return its serial."""
    lib = ctypes.CDLL(module)
    rv = lib.C_Initialize(None)
    owned = rv == CKR_OK
    if rv not in (CKR_OK, CKR_CRYPTOKI_ALREADY_INITIALIZED):
        _ok(rv, "C_Initialize")
    try:
        count = ctypes.c_ulong()
        _ok(lib.C_GetSlotList(ctypes.c_ubyte(1), None, ctypes.byref(count)), "C_GetSlotList")
        slots = (ctypes.c_ulong * count.value)()
        _ok(lib.C_GetSlotList(ctypes.c_ubyte(1), slots, ctypes.byref(count)), "C_GetSlotList")
        free = None
        for slot in slots[: count.value]:
            info = _TokenInfo()
            _ok(lib.C_GetTokenInfo(ctypes.c_ulong(slot), ctypes.byref(info)), "C_GetTokenInfo")
            if info.label.decode().strip() == label and info.flags & CKF_TOKEN_INITIALIZED:
                raise HSMError(f"a token labelled {label!r} exists already")
            if not info.flags & CKF_TOKEN_INITIALIZED and free is None:
                free = slot
        if free is None:
            raise HSMError("no free SoftHSM2 slot")
        padded = label.encode().ljust(32, b" ")[:32]
        _ok(lib.C_InitToken(ctypes.c_ulong(free), so_pin, ctypes.c_ulong(len(so_pin)), padded),
            "C_InitToken")
        session = ctypes.c_ulong()
        _ok(lib.C_OpenSession(ctypes.c_ulong(free), ctypes.c_ulong(CKF_SERIAL_SESSION |
                                                                   CKF_RW_SESSION),
                              None, None, ctypes.byref(session)), "C_OpenSession")
        try:
            _ok(lib.C_Login(session, ctypes.c_ulong(CKU_SO), so_pin, ctypes.c_ulong(len(so_pin))),
                "C_Login(SO)")
            _ok(lib.C_InitPIN(session, user_pin, ctypes.c_ulong(len(user_pin))), "C_InitPIN")
            lib.C_Logout(session)
        finally:
            lib.C_CloseSession(session)
        info = _TokenInfo()
        _ok(lib.C_GetTokenInfo(ctypes.c_ulong(free), ctypes.byref(info)), "C_GetTokenInfo")
        serial: str = info.serialNumber.decode().strip()
        return serial
    finally:
        if owned:
            lib.C_Finalize(None)


def use_config(conf: Path) -> None:
    """Point this process's SoftHSM2 at `conf` (must happen before the module loads)."""
    os.environ["SOFTHSM2_CONF"] = str(conf)
