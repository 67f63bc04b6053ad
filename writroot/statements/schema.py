"""Tiny strict-schema helpers: every field typed, unknown and missing fields refused."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from writroot.crypto.keys import PublicKey
from writroot.errors import BadInput, excerpt, field_name
from writroot.jsonio import is_hex_digest, parse_time

Check = Callable[[Any, str], Any]
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")


def record(obj: Any, where: str, required: dict[str, Check],
           optional: dict[str, Check] | None = None) -> dict[str, Any]:
    """Validate an object against field checks; return the checked values by name."""
    optional = optional or {}
    if not isinstance(obj, dict):
        raise BadInput("expected an object", where)
    extra = set(obj) - set(required) - set(optional)
    if extra:
        name = sorted(extra, key=str)[0]
        raise BadInput(f"unknown field {excerpt(name, 24)}", f"{where}.{field_name(name)}")
    out: dict[str, Any] = {}
    for name, check in required.items():
        if name not in obj:
            raise BadInput(f"missing field {name!r}", where)
        out[name] = check(obj[name], f"{where}.{name}")
    for name, check in optional.items():
        if name in obj:
            out[name] = check(obj[name], f"{where}.{name}")
    return out


def string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 1024:
        raise BadInput("expected a non-empty string (at most 1024 characters)", where)
    return value


def name(value: Any, where: str) -> str:
    """Identifiers: lowercase letters, digits, '.', '_' and '-'."""
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        raise BadInput("expected an identifier of [a-z0-9._-], at most 63 characters", where)
    return value


def integer(minimum: int = 0, maximum: int = 2**53) -> Check:
    def check(value: Any, where: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= maximum:
            raise BadInput(f"expected an integer from {minimum} to {maximum}", where)
        return value

    return check


def one_of(*choices: str) -> Check:
    def check(value: Any, where: str) -> str:
        if value not in choices:
            raise BadInput(f"must be one of {', '.join(choices)}", where)
        return str(value)

    return check


def list_of(item: Check, min_items: int = 0, max_items: int = 1000, unique: bool = True) -> Check:
    def check(value: Any, where: str) -> list[Any]:
        if not isinstance(value, list) or not min_items <= len(value) <= max_items:
            raise BadInput(f"expected a list of {min_items} to {max_items} items", where)
        out = [item(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if unique and len({repr(v) for v in value}) != len(value):
            raise BadInput("duplicate items", where)
        return out

    return check


def time(value: Any, where: str) -> datetime:
    return parse_time(value, where)


def digest(value: Any, where: str) -> str:
    if not is_hex_digest(value):
        raise BadInput("expected 64 lowercase hex digits (SHA-256)", where)
    return str(value)


def key(value: Any, where: str) -> PublicKey:
    return PublicKey.from_json(value, where)


def anything(value: Any, where: str) -> Any:
    return value
