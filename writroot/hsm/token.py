"""Opening a PKCS#11 token by label or serial and logging in."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from writroot.crypto.keys import wipe
from writroot.errors import BadInput, HSMError
from writroot.hsm.pin import read_pin

SOFTHSM2_PATHS = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)


def default_module() -> str:
    env = os.environ.get("WRITROOT_PKCS11_MODULE")
    if env:
        return env
    for path in SOFTHSM2_PATHS:
        if Path(path).exists():
            return path
    raise HSMError("no PKCS#11 module given and SoftHSM2 is not installed "
                   "(set WRITROOT_PKCS11_MODULE or --module)")


@dataclass(frozen=True)
class TokenSpec:
    """Which token to use and how to log in (the host profile's part of a ceremony)."""

    module: str
    label: str | None = None
    serial: str | None = None
    pin_source: str = "prompt"


def load_library(module: str) -> Any:
    import pkcs11

    if not Path(module).exists():
        raise HSMError(f"PKCS#11 module not found: {module}")
    try:
        return pkcs11.lib(module)
    except Exception as exc:
        raise HSMError(f"cannot load PKCS#11 module {module}: {str(exc) or type(exc).__name__}"
                       f"{load_hint(str(exc))}{softhsm_hint(module)}") from None


def load_hint(error: str) -> str:
    """Why a module built for a newer C library fails here, and where it loads."""
    if "GLIBC_" not in error:
        return ""
    return ("; the module needs a newer C library than this host's: run writroot where the "
            "module was built (the native test tokens: scripts/native-tokens.sh exec, "
            "docs/runbook.md)")


def find_token(spec: TokenSpec) -> Any:
    import pkcs11

    lib = load_library(spec.module)
    if not spec.label and not spec.serial:
        raise BadInput("name the token by label or serial", "token")
    kwargs: dict[str, Any] = {}
    if spec.label:
        kwargs["token_label"] = spec.label
    if spec.serial:
        kwargs["token_serial"] = spec.serial.encode()
    try:
        return lib.get_token(**kwargs)
    except pkcs11.NoSuchToken:
        raise HSMError(f"no token with {_describe(spec)} in {spec.module}"
                       f"{softhsm_hint(spec.module)}") from None
    except pkcs11.MultipleTokensReturned:
        raise HSMError(f"more than one token with {_describe(spec)}; name it by serial") from None
    except pkcs11.PKCS11Error as exc:
        raise HSMError(f"token lookup failed: {type(exc).__name__}") from None


def softhsm_hint(module: str) -> str:
    """Why SoftHSM2 may not see a token that exists: it reads the token directory from the
    config file SOFTHSM2_CONF names (or its built-in default when unset)."""
    if "softhsm" not in Path(module).name.lower():
        return ""
    conf = os.environ.get("SOFTHSM2_CONF")
    if not conf:
        return ("; SOFTHSM2_CONF is not set, so SoftHSM2 read its default config: set it to "
                "the softhsm2.conf of your token directory")
    if not Path(conf).is_file():
        return f"; SOFTHSM2_CONF names {conf!r}, which is not a file"
    return f"; SoftHSM2 read its tokens from the directory in SOFTHSM2_CONF ({conf!r})"


def pin_state(flags: int, who: str = "user") -> str | None:
    """What the token reports about a PIN's retries, in words (PKCS#11 token flags); None
    when it reports nothing (no failed tries, or a token that does not count them)."""
    from pkcs11.constants import TokenFlag

    prefix = "USER" if who == "user" else "SO"
    if flags & getattr(TokenFlag, f"{prefix}_PIN_LOCKED"):
        return "LOCKED"
    if flags & getattr(TokenFlag, f"{prefix}_PIN_FINAL_TRY"):
        return "ONE TRY LEFT before it locks"
    if flags & getattr(TokenFlag, f"{prefix}_PIN_COUNT_LOW"):
        return "a wrong PIN was typed since the last login: retries are running low"
    return None


def _wrong_pin(spec: TokenSpec, label: str) -> HSMError:
    """A wrong PIN, with the retries the token reports afterwards."""
    try:
        state = pin_state(int(find_token(spec).flags))
    except Exception:  # the message stands without it
        state = None
    return HSMError(f"PIN incorrect for token {label!r}" + (
        f"; the token reports: {state}" if state else
        "; the token does not report how many tries are left"))


def _describe(spec: TokenSpec) -> str:
    parts = []
    if spec.label:
        parts.append(f"label {spec.label!r}")
    if spec.serial:
        parts.append(f"serial {spec.serial!r}")
    return " and ".join(parts)


@contextmanager
def open_session(spec: TokenSpec, rw: bool = False, login: bool = True,
                 pin_bytes: bytearray | None = None) -> Iterator[Any]:
    """A logged-in session; the PIN lives only in a bytearray wiped after login.

    `pin_bytes` is a PIN already held in memory (a rebuilt split PIN, the demo's random PIN);
    it stays the caller's to wipe.
    """
    import pkcs11

    token = find_token(spec)
    pin = None
    if login:
        pin = bytearray(pin_bytes) if pin_bytes is not None else read_pin(spec.pin_source)
    try:
        try:
            # python-pkcs11 takes the PIN as str; that copy cannot be wiped.
            session = token.open(rw=rw, user_pin=pin.decode() if pin is not None else None)
        except pkcs11.PinIncorrect:
            raise _wrong_pin(spec, token.label) from None
        except pkcs11.PinLocked:
            raise HSMError(f"PIN locked on token {token.label!r}") from None
        except pkcs11.PKCS11Error as exc:
            raise HSMError(f"cannot open a session on {token.label!r}: "
                           f"{type(exc).__name__}") from None
    finally:
        wipe(pin)
    try:
        yield session
    finally:
        with contextlib.suppress(Exception):  # a failed close must not hide the first error
            session.close()


def token_facts(token: Any) -> dict[str, Any]:
    """What a transcript and `hsm info` record about a token."""
    slot = token.slot
    return {
        "label": token.label,
        "serial": token.serial.decode("ascii", "replace").strip(),
        "manufacturer": token.manufacturer_id.strip(),
        "model": token.model.strip(),
        "firmware": "{}.{}".format(*token.firmware_version),
        "slot": slot.slot_id,
        "cryptoki": "{}.{}".format(*slot.cryptoki_version)
        if hasattr(slot, "cryptoki_version") else None,
    }
